"""book/_ext/code_archive.py: the repository at the built commit, as a zip in the site."""

import importlib.util
import subprocess
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("code_archive", ROOT / "book/_ext/code_archive.py")
code_archive = importlib.util.module_from_spec(spec)
spec.loader.exec_module(code_archive)


def _git(repo, *args):
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def test_archive_of_the_committed_tree(tmp_path):
    repo = tmp_path / "repo"
    (repo / "optedu").mkdir(parents=True)
    (repo / "optedu" / "__init__.py").write_text("x = 1\n")
    (repo / "Makefile").write_text("lab:\n")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c")
    (repo / "optedu" / "__init__.py").write_text("x = 2\n")  # not committed: not archived
    (repo / "scratch.txt").write_text("untracked\n")
    short = code_archive.commit(repo)
    path = code_archive.write_archive(repo, tmp_path / "site" / "_downloads")
    assert path.name == code_archive.archive_name(code_archive.commit(repo, short=False))
    assert path.name == f"optedu-{short}.zip" and len(short) == 10
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        assert {f"optedu-{short}/Makefile", f"optedu-{short}/optedu/__init__.py"} <= names
        assert not any(n.endswith("scratch.txt") for n in names)
        assert zf.read(f"optedu-{short}/optedu/__init__.py") == b"x = 1\n"


def test_a_commit_made_during_the_build_does_not_change_the_archive(tmp_path):
    """The archive is of the commit the build started at, under the name its pages link to,
    though HEAD moved on before the build finished."""
    repo = tmp_path / "repo"
    (repo / "optedu").mkdir(parents=True)
    (repo / "optedu" / "__init__.py").write_text("x = 1\n")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "a")
    started = code_archive.commit(repo, short=False)
    linked = code_archive.archive_name(started)           # what every page links to
    (repo / "optedu" / "__init__.py").write_text("x = 2\n")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "b")
    assert code_archive.commit(repo, short=False) != started
    path = code_archive.write_archive(repo, tmp_path / "site", started)
    assert path.name == linked and sorted(p.name for p in path.parent.iterdir()) == [linked]
    with zipfile.ZipFile(path) as zf:
        assert zf.read(f"{linked.removesuffix('.zip')}/optedu/__init__.py") == b"x = 1\n"


def test_archive_outside_git(tmp_path):
    (tmp_path / "optedu" / "__pycache__").mkdir(parents=True)
    (tmp_path / "optedu" / "__init__.py").write_text("")
    (tmp_path / "optedu" / "__pycache__" / "x.pyc").write_text("")
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / "big").write_text("")
    (tmp_path / "requirements.txt").write_text("torch\n")
    (tmp_path / "CONTRIBUTING.md").write_text("# Contributing\n")
    assert code_archive.commit(tmp_path) is None
    path = code_archive.write_archive(tmp_path, tmp_path / "out")
    with zipfile.ZipFile(path) as zf:
        assert sorted(zf.namelist()) == ["optedu-source/CONTRIBUTING.md",
                                         "optedu-source/optedu/__init__.py",
                                         "optedu-source/requirements.txt"]


def test_footer_links_the_archive_and_the_guide():
    html = code_archive.footer("../_downloads/optedu-abc.zip", "intro.html#run-it-yourself",
                               "optedu-abc.zip")
    assert 'href="../_downloads/optedu-abc.zip" download' in html
    assert 'href="intro.html#run-it-yourself"' in html
