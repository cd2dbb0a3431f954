"""tools/run_notebooks.py --unpinned --check: kernels without the AVX2 cap; nothing stored."""

import importlib.util
from pathlib import Path

import nbformat

from optedu.instruments.reproducible import CPU_KERNELS, pin_cpu_kernels

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("run_notebooks", ROOT / "tools/run_notebooks.py")
run_notebooks = importlib.util.module_from_spec(spec)
spec.loader.exec_module(run_notebooks)

CAPPED = dict(CPU_KERNELS, PATH="/usr/bin:/bin")


def test_kernel_env_pins_or_strips_the_cap():
    pinned = run_notebooks.kernel_env(environ={"PATH": "/bin"})
    assert pinned == {"PATH": "/bin", "OPTEDU_STATIC": "1", **pin_cpu_kernels({})}
    unpinned = run_notebooks.kernel_env(unpinned=True, environ=CAPPED)
    assert not set(CPU_KERNELS) & set(unpinned) and unpinned["PATH"] == CAPPED["PATH"]


def test_unpinned_check_starts_the_kernel_without_the_cap(tmp_path, monkeypatch):
    """The caller's environment sets the cap; the kernel must not see it. The same notebook,
    checked with the cap, fails, naming its cell and error: the check can fail."""
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
    elapsed, error = run_notebooks.check(path, 60, run_notebooks.kernel_env(unpinned=True))
    assert error is None and elapsed > 0
    _, error = run_notebooks.check(path, 60, run_notebooks.kernel_env())
    assert error.startswith(f"cell 2 (id {nb.cells[1].id}): ----> 3 assert not seen")
    assert "AssertionError: {'ATEN_CPU_CAPABILITY': 'avx2'" in error
    assert path.read_text() == before                     # nothing stored
