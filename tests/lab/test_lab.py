"""A reader copy of the Adam chapter (tools/reader.py) in JupyterLab, in headless Chromium.

JupyterLab renders Markdown cells itself (marked, its sanitizer, MathJax): this checks what it
shows, not what the converter writes. The rendered text must hold no raw MyST, the interview
answers must be folded, and screenshots of the top and of the questions are saved to
``$OPTEDU_LAB_SHOTS`` (default: the test's temporary folder). The index of the copies
(``00_index.ipynb``) must open a chapter from its link.

``OPTEDU_LAB_NOTEBOOK=book/adam.ipynb`` opens that notebook as it is instead of a reader copy;
on the stored chapter the checks fail (they can).
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import time

import pytest

from labdriver import ROOT, start_lab, stop_lab

# One worker for the module (one server, one browser) when run with xdist's --dist loadgroup.
pytestmark = pytest.mark.xdist_group("lab")

RAW = ("{glue", "{numref", "{cite", "{eq}", "{prf:", ":::{", "```{")


@pytest.fixture(scope="module")
def notebook(tmp_path_factory) -> pathlib.Path:
    """The notebook to open: a fresh reader copy of book/adam.ipynb, with the other copies
    and their index in a folder of their own."""
    folder = tmp_path_factory.mktemp("lab")
    given = os.environ.get("OPTEDU_LAB_NOTEBOOK")
    if given:
        shutil.copy(ROOT / given, folder / pathlib.Path(given).name)
        return folder / pathlib.Path(given).name
    subprocess.run([sys.executable, str(ROOT / "tools" / "reader.py"), "--force",
                    "--out", str(folder)], check=True)
    (adam,) = [p for p in folder.glob("*.ipynb") if p.name.partition("_")[2] == "adam.ipynb"]
    return adam   # 07_adam.ipynb


@pytest.fixture(scope="module")
def lab(notebook, tmp_path_factory):
    proc, url = start_lab(notebook.parent, tmp_path_factory.mktemp("jupyter"))
    yield url
    stop_lab(proc)


@pytest.fixture(scope="module")
def page(browser, lab, notebook):
    """The notebook open in JupyterLab, every Markdown cell rendered and typeset."""
    cells = json.loads(notebook.read_text())["cells"]
    markdown = sum(c["cell_type"] == "markdown" for c in cells)
    browser.get(f"{lab}/lab/tree/{notebook.name}")
    count = ("return [document.querySelectorAll('.jp-MarkdownCell .jp-RenderedMarkdown').length,"
             " document.querySelectorAll('.jp-MarkdownCell mjx-container').length]")
    deadline, last = time.monotonic() + 90, None
    while time.monotonic() < deadline:
        rendered, maths = browser.execute_script(count)
        if rendered == markdown and maths and (rendered, maths) == last:
            break
        last = (rendered, maths)
        time.sleep(1)
    else:
        pytest.fail(f"JupyterLab rendered {last} of {markdown} Markdown cells in 90 s")
    return browser


def shots() -> pathlib.Path | None:
    folder = os.environ.get("OPTEDU_LAB_SHOTS")
    return pathlib.Path(folder) if folder else None


def test_rendered_markdown_has_no_raw_myst(page, tmp_path):
    text = page.execute_script(
        "return [...document.querySelectorAll('.jp-MarkdownCell .jp-RenderedMarkdown')]"
        ".map(e => e.textContent).join('\\n')")
    folder = shots() or tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    page.execute_script("document.querySelector('.jp-MarkdownCell').scrollIntoView()")
    time.sleep(0.5)
    page.save_screenshot(str(folder / "lab_top.png"))
    left = {raw: text.count(raw) for raw in RAW if raw in text}
    assert not left, f"raw MyST in JupyterLab's rendering: {left}"
    # figure numbers and citations rendered as the site renders them (Fig. 7.1, [Kingma and
    # Ba, 2015] in Adam; any chapter given by OPTEDU_LAB_NOTEBOOK)
    assert re.search(r"Fig\. \d+\.1\b", text), "no figure number rendered"
    assert re.search(r"\[[A-Z][^\]]*, (19|20)\d\d\]", text), "no citation rendered"


def test_interview_answers_are_folded(page, tmp_path):
    found = page.execute_script("""
        const cell = [...document.querySelectorAll('.jp-MarkdownCell')]
            .find(e => e.querySelector('h2') &&
                       e.querySelector('h2').textContent.startsWith('Interview questions'));
        if (!cell) return null;
        cell.scrollIntoView({block: 'start'});
        return [...document.querySelectorAll('.jp-MarkdownCell details')].map(d =>
            [d.open, d.querySelector('summary') ? d.querySelector('summary').textContent : '',
             d.getBoundingClientRect().height]);""")
    folder = shots() or tmp_path
    time.sleep(0.5)
    page.save_screenshot(str(folder / "lab_questions.png"))
    assert found is not None, "no 'Interview questions' heading"
    questions = [f for f in found if f[1].startswith("Q")]
    assert len(questions) >= 5, f"interview questions as <details>: {len(questions)}"
    assert not [f[1] for f in found if f[0]], "answers shown unfolded"
    # Folded: one line high (the summary), not the answer's paragraphs.
    assert max(height for _, _, height in questions) < 80


def test_the_index_opens_a_chapter(browser, lab, notebook):
    """The index's links are relative names of the copies, which JupyterLab opens in a tab."""
    if not (notebook.parent / "00_index.ipynb").exists():
        pytest.skip("OPTEDU_LAB_NOTEBOOK: no index beside the notebook")
    browser.get(f"{lab}/lab/tree/00_index.ipynb")
    links = "return document.querySelectorAll('.jp-MarkdownCell .jp-RenderedMarkdown a').length"
    deadline = time.monotonic() + 60
    while browser.execute_script(links) < 50:
        if time.monotonic() > deadline:
            pytest.fail(f"the index rendered {browser.execute_script(links)} links in 60 s")
        time.sleep(0.5)
    browser.execute_script("""
        [...document.querySelectorAll('.jp-MarkdownCell .jp-RenderedMarkdown a')]
            .find(a => a.textContent === 'Adam').click();""")
    tabs = ("return [...document.querySelectorAll('.lm-DockPanel .lm-TabBar-tabLabel')]"
            ".map(e => e.textContent)")
    deadline = time.monotonic() + 30
    while notebook.name not in browser.execute_script(tabs):
        if time.monotonic() > deadline:
            pytest.fail(f"no tab {notebook.name} after the click: {browser.execute_script(tabs)}")
        time.sleep(0.5)



def test_copies_open_unmodified(page, lab, notebook):
    """Opening a copy changes nothing in it. JupyterLab marks a tab unsaved (a dot in place
    of the close button) when loading the notebook or connecting its kernel rewrites the
    model, and a reader who only reads would then be asked to save: the chapter, then the
    index (which has no code cell, and a kernel all the same)."""
    dirty = ("return [...document.querySelectorAll('.lm-DockPanel .lm-TabBar-tab.jp-mod-dirty')]"
             ".map(e => e.textContent)")
    idle = "return !!document.querySelector('.jp-Notebook-ExecutionIndicator[data-status=idle]')"

    def connected() -> None:  # the kernel has answered: its metadata is in the model
        deadline = time.monotonic() + 60
        while not page.execute_script(idle):
            if time.monotonic() > deadline:
                pytest.fail("the kernel did not connect in 60 s")
            time.sleep(0.5)
        time.sleep(1)

    connected()
    assert not page.execute_script(dirty), f"{notebook.name} marked unsaved on opening"
    if (notebook.parent / "00_index.ipynb").exists():
        page.get(f"{lab}/lab/tree/00_index.ipynb")
        time.sleep(1)
        connected()
        assert not page.execute_script(dirty), "marked unsaved on opening the index"
