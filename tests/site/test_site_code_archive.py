"""Every page of the built site links to the book's code, and the archive it links holds
optedu, the notebooks, the requirements and the Makefile (book/_ext/code_archive.py)."""

import re
import zipfile
from urllib.parse import unquote

import pytest

LINK = re.compile(r'<p class="code-archive">.*?<a href="([^"]+\.zip)" download(?:="")?>', re.S)


@pytest.mark.xdist_group("static")
def test_every_page_links_the_code_archive(site):
    pages = [p for p in site.rglob("*.html")
             if "_static" not in p.parts and "_vendor" not in p.parts
             and p.name not in ("genindex.html", "search.html", "index.html")]
    assert len(pages) >= 30
    archives = set()
    for page in pages:
        found = LINK.search(page.read_text(encoding="utf-8"))
        assert found, f"{page.relative_to(site)}: no link to the code archive in the footer"
        target = (page.parent / unquote(found.group(1))).resolve()
        assert target.is_file(), f"{page.relative_to(site)}: {found.group(1)} does not exist"
        archives.add(target)
    assert len(archives) == 1
    with zipfile.ZipFile(archives.pop()) as zf:
        names = {n.split("/", 1)[1] for n in zf.namelist()}
    for needed in ("optedu/__init__.py", "book/adam.ipynb", "requirements.txt", "Makefile",
                   "README.md", "CONTRIBUTING.md", "_toc.yml"):
        assert needed in names, f"the code archive lacks {needed}"


@pytest.mark.xdist_group("static")
def test_the_intro_says_how_to_run_a_chapter(site):
    intro = (site / "book" / "intro.html").read_text(encoding="utf-8")
    section = intro.split('<section id="run-it-yourself">')[1].split("</section>")[0]
    text = re.sub(r"<[^>]+>", "", section)
    assert "make lab" in text and "unzip optedu-*.zip" in text
    link = re.search(r'href="([^"]+\.zip)" download', section)
    assert link and (site / "book" / unquote(link.group(1))).resolve().is_file()
