"""tools/run_notebooks.py --unpinned --check: kernels without the AVX2 cap; nothing stored."""

import functools
import importlib.util
from pathlib import Path

import pytest

from optedu.instruments.reproducible import CPU_KERNELS, pin_cpu_kernels

ROOT = Path(__file__).resolve().parents[2]


@functools.cache
def tool():
    """tools/run_notebooks.py, loaded when a test first needs it (not in every worker that
    collects); it imports nbformat and nbclient only where it reads or runs a notebook."""
    spec = importlib.util.spec_from_file_location("run_notebooks", ROOT / "tools/run_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

CAPPED = dict(CPU_KERNELS, PATH="/usr/bin:/bin")


def test_kernel_env_pins_or_strips_the_cap():
    pinned = tool().kernel_env(environ={"PATH": "/bin"})
    assert pinned == {"PATH": "/bin", "OPTEDU_STATIC": "1", **pin_cpu_kernels({})}
    unpinned = tool().kernel_env(unpinned=True, environ=CAPPED)
    assert not set(CPU_KERNELS) & set(unpinned) and unpinned["PATH"] == CAPPED["PATH"]


@pytest.mark.full  # starts two kernels
def test_unpinned_check_starts_the_kernel_without_the_cap(tmp_path, monkeypatch):
    """The caller's environment sets the cap; the kernel must not see it. The same notebook,
    checked with the cap, fails, naming its cell and error: the check can fail."""
    import nbformat
    for name, value in CPU_KERNELS.items():
        monkeypatch.setenv(name, value)
    path = tmp_path / "env.ipynb"
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("The kernel's environment"),
        nbformat.v4.new_code_cell(
            "import os\n"
            f"seen = {{k: os.environ[k] for k in {sorted(CPU_KERNELS)} if k in os.environ}}\n"
            "assert not seen, seen"),
    ])
    nbformat.write(nb, path)
    before = path.read_text()
    elapsed, error = tool().check(path, 60, tool().kernel_env(unpinned=True))
    assert error is None and elapsed > 0
    _, error = tool().check(path, 60, tool().kernel_env())
    assert error.startswith(f"cell 2 (id {nb.cells[1].id}): ----> 3 assert not seen")
    assert "AssertionError: {'ATEN_CPU_CAPABILITY': 'avx2'" in error
    assert path.read_text() == before                     # nothing stored


class _Client:
    """A NotebookClient whose kernel fails as ``failures`` says, one entry per start."""
    starts = 0
    failures: list[str] = []

    def __init__(self, nb, **kwargs):
        pass

    def execute(self, env):
        _Client.starts += 1
        if _Client.starts <= len(_Client.failures):
            raise RuntimeError(_Client.failures[_Client.starts - 1])


def _check_with(monkeypatch, tmp_path, failures):
    import nbclient
    import nbformat
    _Client.starts, _Client.failures = 0, failures
    monkeypatch.setattr(nbclient, "NotebookClient", _Client)
    path = tmp_path / "n.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")]), path)
    return tool().check(path, 60, {})[1], _Client.starts


NOT_STARTED = "Kernel died before replying to kernel_info"


@pytest.mark.full  # imports nbformat and nbclient: seconds of CPU (jsonschema's URI grammar)
def test_a_kernel_that_did_not_start_is_started_once_more(monkeypatch, tmp_path):
    """Two kernels started at once can be handed the same free port (CI: "Address already in
    use", then this error). One more start, on new ports; never a third, and never for a
    kernel that died while running cells."""
    assert _check_with(monkeypatch, tmp_path, [NOT_STARTED]) == (None, 2)
    error, starts = _check_with(monkeypatch, tmp_path, [NOT_STARTED, NOT_STARTED])
    assert starts == 2 and NOT_STARTED in error
    error, starts = _check_with(monkeypatch, tmp_path, ["Kernel died"])
    assert starts == 1 and error == "RuntimeError: Kernel died"


@pytest.mark.parametrize("changes, always, runs", [(True, False, True), (False, False, False),
                                                   (False, True, True)])
def test_unpinned_runs_only_where_the_cap_changes_kernels(monkeypatch, changes, always, runs):
    """Where the cap selects no other kernel, the unpinned run would repeat nbval's: skipped,
    unless --always."""
    ran = []
    monkeypatch.setattr(tool(), "cap_changes_kernels", lambda: changes)
    monkeypatch.setattr(tool(), "check_all", lambda *args: ran.append(args) or 0)
    monkeypatch.setattr("sys.argv", ["run_notebooks.py", "--unpinned", "--check"]
                        + ["--always"] * always)
    assert tool().main() == 0 and bool(ran) == runs


def test_prints_split_by_the_kernel_are_stored_as_one_output():
    from types import SimpleNamespace as Output  # an nbformat output's fields, without its import

    def out(kind, name=None, text=None):
        return Output(output_type=kind, name=name, text=text)

    outputs = [out("stream", "stdout", "a\n"), out("stream", "stdout", "b\n"),
               out("stream", "stderr", "w\n"), out("stream", "stdout", "c\n"),
               out("display_data"), out("stream", "stdout", "d\n")]
    merged = tool().coalesced(outputs)
    assert [(o.output_type, o.name, o.text) for o in merged] == [
        ("stream", "stdout", "a\nb\n"), ("stream", "stderr", "w\n"), ("stream", "stdout", "c\n"),
        ("display_data", None, None), ("stream", "stdout", "d\n")]
