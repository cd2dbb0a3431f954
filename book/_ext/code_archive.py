"""The book's code, downloadable from every page: an archive built into the site.

At the end of an HTML build, the repository at the built commit (optedu, the notebooks, the
tests, requirements.txt, the Makefile: everything git tracks) is written to
``_downloads/optedu-<commit>.zip`` in the site, and every page's footer links to it and to
the intro's "Run it yourself" section. A chapter's own download button gives its ``.ipynb``,
which imports optedu; this archive is where optedu comes from.

The archive is ``git archive`` of the commit that was ``HEAD`` when the build started: what was
committed, not uncommitted edits. The name is fixed once, at the start, and the archive written
at the end is of that commit, so a commit made while the build runs cannot leave every page
linking to an archive that was never written (it did: pages linked ``optedu-aeb194d7b7.zip``
and the site held ``optedu-c6acacb60b.zip``). Outside a git checkout (a source tarball), it
zips the same folders from the working tree instead.
"""

from __future__ import annotations

import pathlib
import subprocess
import zipfile
from typing import Any

FOLDER = "_downloads"
# Outside git: what a reader needs to run the book, as git would have it.
TREE = ("book", "optedu", "tests", "tools", "bench", ".binder", ".ci", "_config.yml",
        "_toc.yml", "requirements.txt", "pyproject.toml", "Makefile", "README.md",
        "CONTRIBUTING.md", ".gitignore")
SKIP = {"__pycache__", ".ipynb_checkpoints", "_build", ".pytest_cache", ".hypothesis"}


def commit(root: pathlib.Path, short: bool = True) -> str | None:
    """The hash of ``HEAD`` in ``root`` (its first 10 digits, or all 40), or ``None`` outside a
    git checkout."""
    length = ["--short=10"] if short else []
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", *length, "HEAD"],
                             capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip() or None


def archive_name(full: str | None) -> str:
    """``optedu-<first 10 digits of the commit>.zip``, or ``optedu-source.zip`` outside git."""
    return f"optedu-{full[:10]}.zip" if full else "optedu-source.zip"


def write_archive(root: pathlib.Path, target: pathlib.Path,
                  full: str | None = None) -> pathlib.Path:
    """Write the archive of ``root`` at the commit ``full`` (default: ``HEAD`` now) into the
    folder ``target``; returns its path."""
    target.mkdir(parents=True, exist_ok=True)
    full = full or commit(root, short=False)
    name = archive_name(full)
    path = target / name
    prefix = name.removesuffix(".zip") + "/"
    if full:
        subprocess.run(["git", "-C", str(root), "archive", "--format=zip",
                        f"--prefix={prefix}", "-o", str(path), full], check=True)
        return path
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for entry in TREE:
            top = root / entry
            files = [top] if top.is_file() else sorted(top.rglob("*")) if top.is_dir() else []
            for file in files:
                if file.is_file() and not SKIP & set(file.relative_to(root).parts):
                    zf.write(file, prefix + file.relative_to(root).as_posix())
    return path


def footer(href: str, guide: str, name: str) -> str:
    """The footer line every page carries."""
    return (f'<p class="code-archive">The code of this book: <a href="{href}" download>'
            f"{name}</a> (optedu, every chapter as a notebook, the tests). "
            f'<a href="{guide}">How to run a chapter</a>.</p>')


def _page_context(app: Any, pagename: str, templatename: str, context: dict,
                  doctree: Any) -> None:
    pathto = context["pathto"]
    name = archive_name(app.config.optedu_commit)
    intro = pathto("book/intro")  # "#" on the intro itself
    context["theme_extra_footer"] = footer(
        pathto(f"{FOLDER}/{name}", 1), intro.rstrip("#") + "#run-it-yourself", name)


def _config_inited(app: Any, config: Any) -> None:
    """The commit the build archives, fixed once (``optedu_commit``), and the substitution
    ``{{ code_archive }}``: the archive's link, for the intro's "Run it yourself"
    (book/intro.md sits one folder below the site's root)."""
    config.optedu_commit = commit(pathlib.Path(app.srcdir), short=False)
    name = archive_name(config.optedu_commit)
    config.myst_substitutions = dict(
        config.myst_substitutions or {},
        code_archive=f'<a href="../{FOLDER}/{name}" download>{name}</a>')


def _build_finished(app: Any, exception: Exception | None) -> None:
    if exception is None and app.builder.format == "html":
        write_archive(pathlib.Path(app.srcdir), pathlib.Path(app.outdir) / FOLDER,
                      app.config.optedu_commit)


def setup(app: Any) -> dict[str, bool]:
    # set when the configuration is read; not a page's input, so it rebuilds nothing
    app.add_config_value("optedu_commit", None, "")
    app.connect("config-inited", _config_inited)
    app.connect("html-page-context", _page_context)
    app.connect("build-finished", _build_finished)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
