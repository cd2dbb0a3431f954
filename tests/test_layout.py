"""The package's shape: folders that mirror the book, imports that run one way, and the short
list of registries an optimizer must be added to.

The allowed directions are read from the import statements of every module (``ast``), so a
forbidden import fails here however it is written (relative or absolute, at the top of a module
or inside a function).
"""

from __future__ import annotations

import ast
import importlib
import pathlib
import re

import pytest
import torch

import optedu
from optimizers import PAIRS, REFERENCE_TESTS

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "optedu"

# folder -> the other folders of optedu it may import. The facade (optedu/__init__.py) may import
# anything; only the practice pages, which list the public surface, may import the facade.
ALLOWED = {
    "optim": set(),
    "lr_scheduler": {"optim"},
    "training": {"optim"},
    "precision": {"optim"},
    "theory": {"optim"},
    "instruments": {"optim"},
    "distributed": {"optim", "training", "precision"},
    "choosing": {"optim", "lr_scheduler", "training", "precision", "theory", "instruments"},
    "experiments": {"optim", "lr_scheduler", "training", "precision", "theory", "instruments",
                    "choosing"},
    "evidence": set(),
    "practice": {"optim", "lr_scheduler", "training", "precision", "theory", "instruments",
                 "distributed", "choosing", "experiments", "evidence"},
}


def _imported(path: pathlib.Path) -> list[tuple[int, str]]:
    """(line, absolute module) for every import of optedu in the module at ``path``."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    package = parts[:-1]  # a module's package; an __init__'s package is its own folder
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "optedu"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module.split(".")[0] != "optedu":
                continue
            # `from optedu.optim import sgd` imports the module optedu.optim.sgd
            for alias in node.names:
                full = f"{module}.{alias.name}"
                is_module = (ROOT / (full.replace(".", "/") + ".py")).exists() or \
                    (ROOT / full.replace(".", "/") / "__init__.py").exists()
                found.append((node.lineno, full if is_module else module))
    return found


def _folder(module: str) -> str | None:
    """The top folder of optedu a dotted module name lies in (None: the facade itself)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def violations(package: pathlib.Path = PACKAGE) -> list[str]:
    found = []
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package)
        if rel == pathlib.Path("__init__.py"):
            continue  # the facade: the public surface, above every folder
        folder = rel.parts[0]
        for line, module in _imported(path):
            target = _folder(module)
            if target is None and folder != "practice":
                found.append(f"{rel}:{line} imports the facade ({module}): import from its "
                             f"folder instead")
            elif target is not None and target != folder and target not in ALLOWED.get(folder, set()):
                found.append(f"{rel}:{line} imports {module}: {folder}/ may import "
                             f"{sorted(ALLOWED.get(folder, set())) or 'nothing else'}")
    return found


def test_imports_run_one_way():
    assert not violations(), "\n".join(violations())


def test_a_forbidden_import_is_caught(tmp_path):
    """The check fails when a rule imports the practice pages, or a folder the facade."""
    fake = tmp_path / "optedu"
    for folder in ALLOWED:
        (fake / folder).mkdir(parents=True)
        (fake / folder / "__init__.py").write_text('"""x"""\n')
    (fake / "optim" / "sgd.py").write_text("from optedu.practice import quiz\n")
    (fake / "practice" / "quiz.py").write_text("x = 1\n")
    (fake / "training" / "clip.py").write_text("def f():\n    import optedu\n")
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        found = violations(fake)
    finally:
        ROOT = saved
    assert any(v.startswith("optim/sgd.py:1 imports optedu.practice.quiz") for v in found), found
    assert any(v.startswith("training/clip.py:2 imports the facade") for v in found), found


def test_the_package_reads_as_a_table_of_contents():
    """At most thirteen entries at the top (a folder per part of the book, as STYLE asks; the
    ninth, choosing/, came with the part "Choosing an optimizer", the tenth, evidence/, holds
    the ledger of what large runs found, the eleventh, experiments/, the chapters' stored
    grids); every folder is listed in ALLOWED and opens with a docstring that says what lives
    there and what it may import."""
    entries = sorted(p.name for p in PACKAGE.iterdir() if p.name != "__pycache__")
    assert len(entries) <= 13, entries
    folders = sorted(p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__")
    assert folders == sorted(ALLOWED), folders
    for init in sorted(PACKAGE.rglob("__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc, f"{init.relative_to(ROOT)} has no docstring"
        if init.parent != PACKAGE:
            assert "Imports:" in doc, \
                f"{init.relative_to(ROOT)}: the docstring does not say what it may import"


def test_the_tests_mirror_the_package():
    """tests/<folder>/ for every folder of optedu, and no test file left at tests/ but this one."""
    tests = ROOT / "tests"
    for folder in ALLOWED:
        assert (tests / folder).is_dir(), f"tests/{folder}/ is missing"
    assert sorted(p.name for p in tests.glob("test_*.py")) == ["test_layout.py"]


# --- adding an optimizer: the registries -------------------------------------------------------

def optimizer_classes() -> list[str]:
    return sorted(name for name in optedu.__all__
                  if isinstance(getattr(optedu, name), type)
                  and issubclass(getattr(optedu, name), torch.optim.Optimizer)
                  and name != "Optimizer")


def _has_layout(name: str) -> bool:
    from optedu.precision import memory
    try:
        memory.state_layout(name, (4, 3))
    except ValueError:
        return False
    return True


def registries() -> dict[str, set[str]]:
    """Registry -> the optimizer classes it lists. CONTRIBUTING.md's "Adding an optimizer" names
    each (test_the_contributing_guide_names_every_registry)."""
    from optedu.practice import cheatsheet_entries as cheatsheet, quiz
    bank = {q.chapter for q in quiz.load()}
    toc = (ROOT / "_toc.yml").read_text()
    names = optimizer_classes()
    return {
        "optedu/practice/cheatsheet_entries.py ENTRIES (the cheat sheet's row)": set(cheatsheet.ENTRIES),
        "optedu/practice/cheatsheet_entries.py LINEAGE (its place in the family tree)":
            set(cheatsheet.LINEAGE),
        "optedu/precision/memory.py STATE_LAYOUTS (its state in closed form)":
            {n for n in names if _has_layout(n)},
        "SETTINGS in tests/precision/test_memory.py (closed form = measured)": _memory_settings(),
        "PAIRS (a torch twin) or REFERENCE_TESTS (a reference package) in tests/optimizers.py":
            {p.ours.__name__ for p in PAIRS} | set(REFERENCE_TESTS),
        "the question bank: its chapter (the cheat-sheet entry's) in _toc.yml, with questions": {
            n for n, e in cheatsheet.ENTRIES.items()
            if f"book/{e.chapter}\n" in toc and e.chapter in bank},
        "optedu/choosing/contestants.py CONTESTANTS (it competes in the benchmark) or EXCLUDED "
        "(why not)": _contestant_classes(),
    }


def _contestant_classes() -> set[str]:
    """The optimizer classes the benchmark's contestants build, and those it excludes."""
    from optedu.choosing import contestants
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    built = {type(o).__name__
             for c in contestants.CONTESTANTS.values()
             for o in contestants.training(c, model, c.defaults, steps=10,
                                           head="1").optimizers}
    return built | set(contestants.EXCLUDED)


def _memory_settings() -> set[str]:
    tree = ast.parse((ROOT / "tests" / "precision" / "test_memory.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "SETTINGS":
            return {k.value for k in node.value.keys}
    raise AssertionError("tests/precision/test_memory.py has no SETTINGS table")


@pytest.mark.parametrize("registry", list(registries()))
def test_every_optimizer_is_in_every_registry(registry):
    missing = sorted(set(optimizer_classes()) - registries()[registry])
    assert not missing, f"add {missing} to {registry}"


def test_the_contributing_guide_names_every_registry():
    """CONTRIBUTING.md's "Adding an optimizer" names the file and the table of every registry,
    the exports, and the two test files whose tables a torch twin needs."""
    guide = (ROOT / "CONTRIBUTING.md").read_text()
    section = guide.split("\n## Adding an optimizer\n")[1].split("\n## ")[0]
    names = ["optedu/__init__.py", "__all__", "tests/optim/test_errors.py",
             "tests/optim/test_worked_examples.py"]
    for registry in registries():
        names += re.findall(r"[\w/]+\.(?:py|yml)|\b[A-Z][A-Z_]{3,}\b", registry)
    missing = [name for name in names if name not in section]
    assert not missing, f"CONTRIBUTING.md, 'Adding an optimizer', does not name {missing}"


def test_every_rule_module_is_exported():
    """Each module of optedu/optim/ that defines an optimizer class is exported by the facade."""
    exported = set(optimizer_classes())
    for path in sorted((PACKAGE / "optim").glob("*.py")):
        if path.name.startswith("_") or path.stem in ("optimizer", "foreach", "fused"):
            continue
        module = importlib.import_module(f"optedu.optim.{path.stem}")
        classes = {name for name, obj in vars(module).items()
                   if isinstance(obj, type) and issubclass(obj, torch.optim.Optimizer)
                   and obj.__module__ == module.__name__ and not name.startswith("_")}
        assert classes and classes <= exported, \
            f"optedu/optim/{path.name}: {sorted(classes - exported) or 'no class'} not in " \
            f"optedu.__all__ (optedu/__init__.py)"


def test_reference_tests_exist():
    """Each optimizer checked against a reference package names a test file that runs it."""
    for name, test in REFERENCE_TESTS.items():
        path = ROOT / "tests" / test
        assert path.exists(), (name, test)
        assert name in path.read_text(), f"{test} never mentions {name}"
