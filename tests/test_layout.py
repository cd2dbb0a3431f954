"""The package's shape: folders that mirror the book, imports that run one way, and every piece
an optimizer needs (its catalogue row, export, entry, tests, chapter), named in one message.

The allowed directions are read from the import statements of every module (``ast``), so a
forbidden import fails here however it is written (relative or absolute, at the top of a module
or inside a function).
"""

from __future__ import annotations

import ast
import functools
import importlib
import inspect
import json
import pathlib
import re

import torch

import optedu

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "optedu"

# folder -> the other folders of optedu it may import. The facade (optedu/__init__.py) may import
# anything; only the practice pages, which list the public surface, may import the facade.
ALLOWED = {
    "optim": set(),
    "lr_scheduler": {"optim"},
    "training": {"optim", "lr_scheduler"},
    "precision": {"optim"},
    "theory": {"optim"},
    # lr_scheduler, training: the schedules and the clipping that the moving figures draw
    "instruments": {"optim", "lr_scheduler", "training"},
    "distributed": {"optim", "training", "precision"},
    "choosing": {"optim", "lr_scheduler", "training", "precision", "theory", "instruments"},
    # distributed: DiLoCo's runs, simulated in one process (the averaging grid)
    "experiments": {"optim", "lr_scheduler", "training", "precision", "theory", "instruments",
                    "choosing", "distributed"},
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


#: a path built upward from a module's own file: the repository around the package, which an
#: installed optedu does not have (data folders are passed in by the caller)
UPWARD = re.compile(r"__file__\)?(\.resolve\(\))?\s*\.(parents\[[1-9]|parent\.parent)")


def upward_paths(package: pathlib.Path = PACKAGE) -> list[str]:
    return [f"{path.relative_to(package)}:{number}"
            for path in sorted(package.rglob("*.py"))
            for number, line in enumerate(path.read_text().splitlines(), 1)
            if UPWARD.search(line)]


def test_the_package_never_reaches_above_itself():
    assert not upward_paths(), upward_paths()


def test_a_path_above_the_package_is_caught(tmp_path):
    (tmp_path / "a.py").write_text('ROOT = pathlib.Path(__file__).resolve().parents[2] / "book"\n'
                                   'HERE = pathlib.Path(__file__).parent\n'
                                   'UP = Path(__file__).parent.parent\n')
    assert upward_paths(tmp_path) == ["a.py:1", "a.py:3"]


def test_the_package_reads_as_a_table_of_contents():
    """At most thirteen entries at the top (a folder per part of the book, as CONTRIBUTING.md's
    "Layout" says; the ninth, choosing/, came with the part "Choosing an optimizer", the tenth,
    evidence/, holds the ledger of what large runs found, the eleventh, experiments/, the
    chapters' stored grids); every folder is listed in ALLOWED and opens with a docstring that
    says what lives there and what it may import."""
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


# --- adding an optimizer: every piece, named in one message -----------------------------------

CATALOGUE_FILE = "optedu/optim/catalogue.py"
SWITCHES = ("decoupled_weight_decay", "weight_decouple", "decouple")

# the pieces of a rule, each with the file to edit (CONTRIBUTING.md's "Adding an optimizer"
# names every file here: test_the_contributing_guide_names_every_piece)
PIECES = {
    "export": "optedu/__init__.py: import it and add it to __all__",
    "row": f"{CATALOGUE_FILE}: a Rule in CATALOGUE (module, chapter, parent and change, "
           f"reference and test, state, memory_settings, small_run, sheet; sharded, decay, "
           f"excluded)",
    "sheet": f"{CATALOGUE_FILE}: the row's sheet, its line of the cheat sheet (a Sheet: "
             f"formula, use, pitfall, section)",
    "test": "tests/optim/test_<rule>.py against its reference package (the row's test), or a "
            "Pair in PAIRS in tests/optimizers.py for a torch twin",
    "errors": "tests/optim/test_errors.py: its bad arguments in BAD (a torch twin)",
    "worked": "tests/optim/test_worked_examples.py: its first two steps in EXAMPLES (a torch twin)",
    "chapter": "_toc.yml: the row's chapter, with interview questions in the bank "
               "(python tools/questions.py)",
    "teach": "book/<chapter>.ipynb: the row's chapter must teach it (a section that names "
             "it), but no cell of the chapter names it",
    "state": "optedu/precision/memory.py: a layout function in LAYOUTS, if the row's state "
             "names one",
    "benchmark": "optedu/choosing/contestants.py: a Contestant in CONTESTANTS that builds it, "
                 "or the row's excluded",
}


def optimizer_classes() -> list[str]:
    return sorted(name for name in optedu.__all__
                  if isinstance(getattr(optedu, name), type)
                  and issubclass(getattr(optedu, name), torch.optim.Optimizer)
                  and name != "Optimizer")


def defined_classes() -> dict[str, type]:
    """Every public optimizer class defined in optedu/optim/ or optedu/precision/, exported or
    not (read from the folders, as the sharded-rules table reads them)."""
    from optedu.distributed.sharded_rules import optimizer_classes as defined
    return defined()


def _contestant_classes() -> set[str]:
    """The optimizer classes the benchmark's contestants build."""
    from optedu.choosing import contestants
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    return {type(o).__name__
            for c in contestants.CONTESTANTS.values()
            for o in contestants.training(c, model, c.defaults, steps=10,
                                          head="1").optimizers}


def missing_pieces(classes: dict[str, type] | None = None,
                   exported: set[str] | None = None) -> dict[str, list[str]]:
    """Rule -> what it lacks, each piece with the file to edit, for every optimizer class that
    is defined, exported or in the catalogue (``classes`` and ``exported`` default to the
    package's)."""
    from optedu.optim.catalogue import PARITY_TEST, RULES, When
    from optedu.practice import quiz
    from optedu.precision.memory import LAYOUTS
    from optimizers import PAIRS
    classes = defined_classes() if classes is None else classes
    exported = set(optimizer_classes()) if exported is None else exported
    toc = (ROOT / "_toc.yml").read_text()
    bank = {q.chapter for q in quiz.load()}
    pairs = {p.name: p for p in PAIRS}
    errors = (ROOT / "tests" / "optim" / "test_errors.py").read_text()
    worked = (ROOT / "tests" / "optim" / "test_worked_examples.py").read_text()
    built = None
    found: dict[str, list[str]] = {}
    for name in sorted(set(classes) | exported | set(RULES)):
        lacks = []
        if name not in classes and name not in RULES:
            found[name] = [f"the class itself: no optimizer class {name} in optedu/optim/ or "
                           f"optedu/precision/ (optedu/__init__.py or "
                           f"{CATALOGUE_FILE} names it)"]
            continue
        if name not in exported:
            lacks.append(PIECES["export"])
        rule = RULES.get(name)
        if rule is None:
            lacks.append(PIECES["row"])
            if name not in pairs:
                lacks.append(PIECES["test"])
            found[name] = lacks
            continue
        if rule.sheet is None:
            lacks.append(PIECES["sheet"])
        cls = classes.get(name)
        if cls is None:
            lacks.append(f"{rule.module}: the class itself ({CATALOGUE_FILE} has its row)")
        elif cls.__module__ != rule.module:
            lacks.append(f"{CATALOGUE_FILE}: its module is {cls.__module__}, not {rule.module}")
        else:
            signature = inspect.signature(cls.__init__).parameters
            switch = next((k for k in SWITCHES if k in signature), "")
            if switch != rule.decay:
                lacks.append(f"{CATALOGUE_FILE}: decay={switch!r} (its signature's switch), "
                             f"not {rule.decay!r}")
            for entry in rule.state if isinstance(rule.state, tuple) else ():
                if isinstance(entry, When) and entry.setting not in signature:
                    lacks.append(f"{CATALOGUE_FILE}: its state's When({entry.key!r}, "
                                 f"{entry.setting!r}): "
                                 f"{entry.setting!r} is not an argument of "
                                 f"{cls.__module__}.{name}")
        if rule.parent and rule.parent not in RULES:
            lacks.append(f"{CATALOGUE_FILE}: its parent {rule.parent!r} is not a row")
        if f"book/{rule.chapter}\n" not in toc or rule.chapter not in bank:
            lacks.append(PIECES["chapter"] + f" ({rule.chapter!r})")
        elif not _names(rule.chapter, name):
            lacks.append(PIECES["teach"].replace("<chapter>", rule.chapter))
        if rule.test == PARITY_TEST:
            if name not in pairs:
                lacks.append(PIECES["test"])
            elif rule.reference != ("torch.optim", pairs[name].theirs.__name__):
                lacks.append(f"{CATALOGUE_FILE}: reference={rule.reference}, but its Pair in "
                             f"tests/optimizers.py compares torch.optim."
                             f"{pairs[name].theirs.__name__}")
            if f"optedu.{name}," not in errors:
                lacks.append(PIECES["errors"])
            if f"optedu.{name}," not in worked:
                lacks.append(PIECES["worked"])
        else:
            test = ROOT / "tests" / rule.test
            if not test.exists() or name not in test.read_text():
                lacks.append(PIECES["test"] + f" ({rule.test} must exist and name {name})")
        if isinstance(rule.state, str) and rule.state not in {*LAYOUTS, "lbfgs"}:
            lacks.append(PIECES["state"] + f" ({rule.state!r})")
        if rule.sharded not in ("element-wise", "fixed", "refused"):
            lacks.append(f"{CATALOGUE_FILE}: sharded={rule.sharded!r}, not element-wise, fixed "
                         f"or refused")
        if not rule.memory_settings:
            lacks.append(f"{CATALOGUE_FILE}: memory_settings, at least one run ({{}})")
        for entry in rule.state if isinstance(rule.state, tuple) else ():
            if isinstance(entry, When) and not any(settings.get(entry.setting)
                                                   for settings in rule.memory_settings):
                lacks.append(f"{CATALOGUE_FILE}: memory_settings, one run with "
                             f"{entry.setting!r} on (its state's When({entry.key!r}, "
                             f"{entry.setting!r}))")
        if not rule.excluded:
            built = _contestant_classes() if built is None else built
            if name not in built:
                lacks.append(PIECES["benchmark"])
        if lacks:
            found[name] = lacks
    return found


@functools.cache
def _chapter_text(stem: str) -> str:
    """A chapter's cells, prose and code, with spaces and hyphens left out, in lower case."""
    path = ROOT / "book" / f"{stem}.ipynb"
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"] if path.exists() else []
    return _squeezed(" ".join("".join(cell["source"]) for cell in cells))


def _squeezed(text: str) -> str:
    return re.sub(r"[\s\-]", "", text).lower()


def _names(stem: str, name: str) -> bool:
    """Whether the chapter names the rule: its class name, or the name as prose writes it
    ("Distributed Shampoo", "Adam-mini")."""
    return _squeezed(name) in _chapter_text(stem)


def report(found: dict[str, list[str]]) -> str:
    return "\n".join(f"{name} lacks:" + "".join(f"\n  - {piece}" for piece in lacks)
                     for name, lacks in found.items())


def test_every_optimizer_has_every_piece():
    """One failure for every rule that lacks a piece, naming each piece and its file."""
    found = missing_pieces()
    assert not found, "\n" + report(found)


def test_a_stub_rule_is_named_with_every_piece_it_lacks():
    """A class defined in optedu/optim/ and nothing more: the check names its export, its
    catalogue row (whose fields include its cheat-sheet line) and its test, each with the file
    to edit."""
    stub = type("StubRule", (torch.optim.Optimizer,), {"__module__": "optedu.optim.stub_rule"})
    found = missing_pieces({**defined_classes(), "StubRule": stub})
    assert found["StubRule"] == [PIECES[k] for k in ("export", "row", "test")]
    message = report({"StubRule": found["StubRule"]})
    for path in ("optedu/__init__.py", "optedu/optim/catalogue.py", "tests/optimizers.py"):
        assert path in message, path


def test_a_row_without_its_cheat_sheet_line_is_named(monkeypatch):
    """A catalogue row whose sheet is left out: the check names the row's missing field."""
    import dataclasses

    from optedu.optim import catalogue
    rows = {**catalogue.RULES, "Lion": dataclasses.replace(catalogue.RULES["Lion"], sheet=None)}
    monkeypatch.setattr(catalogue, "RULES", rows)
    assert missing_pieces()["Lion"] == [PIECES["sheet"]]


def test_a_switched_buffer_whose_setting_the_class_lacks_is_named(monkeypatch):
    """A row's When must name an argument of the class: Adam's running maximum switched by
    LaProp's spelling, ``ams_bound``, which Adam does not take, is named with the row, the
    setting and the class (and, since no run of the row switches it on, so is that)."""
    import dataclasses

    from optedu.optim import catalogue
    wrong = ("step", "exp_avg", "exp_avg_sq", catalogue.When("max_exp_avg_sq", "ams_bound"))
    rows = {**catalogue.RULES, "Adam": dataclasses.replace(catalogue.RULES["Adam"], state=wrong)}
    monkeypatch.setattr(catalogue, "RULES", rows)
    assert missing_pieces()["Adam"] == [
        f"{CATALOGUE_FILE}: its state's When('max_exp_avg_sq', 'ams_bound'): 'ams_bound' is "
        f"not an argument of optedu.optim.adam.Adam",
        f"{CATALOGUE_FILE}: memory_settings, one run with 'ams_bound' on (its state's "
        f"When('max_exp_avg_sq', 'ams_bound'))"]


def test_a_switched_buffer_never_measured_is_named(monkeypatch):
    """A row whose memory_settings never switch its When on would leave that buffer unmeasured
    (Adam's running maximum without an amsgrad=True run)."""
    import dataclasses

    from optedu.optim import catalogue
    rows = {**catalogue.RULES,
            "Adam": dataclasses.replace(catalogue.RULES["Adam"], memory_settings=({},))}
    monkeypatch.setattr(catalogue, "RULES", rows)
    assert missing_pieces()["Adam"] == [
        f"{CATALOGUE_FILE}: memory_settings, one run with 'amsgrad' on (its state's "
        f"When('max_exp_avg_sq', 'amsgrad'))"]


def test_the_contributing_guide_names_every_piece():
    """CONTRIBUTING.md's "Adding an optimizer" names the file and the table of every piece."""
    guide = (ROOT / "CONTRIBUTING.md").read_text()
    section = guide.split("\n## Adding an optimizer\n")[1].split("\n## ")[0]
    names = []
    for piece in PIECES.values():
        names += re.findall(r"[\w/]+\.(?:py|yml)|\b[A-Z][A-Z_]{3,}\b", piece)
    missing = [name for name in dict.fromkeys(names)
               if name not in section and "<rule>" not in name]
    assert not missing, f"CONTRIBUTING.md, 'Adding an optimizer', does not name {missing}"


def test_every_rule_module_defines_a_class():
    """Each rule module of optedu/optim/ defines an optimizer class (whether each class is
    exported, catalogued and tested is test_every_optimizer_has_every_piece's to say)."""
    for path in sorted((PACKAGE / "optim").glob("*.py")):
        if path.name.startswith("_") or path.stem in ("optimizer", "foreach", "fused",
                                                       "catalogue"):
            continue
        module = importlib.import_module(f"optedu.optim.{path.stem}")
        classes = {name for name, obj in vars(module).items()
                   if isinstance(obj, type) and issubclass(obj, torch.optim.Optimizer)
                   and obj.__module__ == module.__name__ and not name.startswith("_")}
        assert classes, f"optedu/optim/{path.name} defines no optimizer class"


# The path modules: the machinery of the multi-tensor and compiled paths, holding no rule.
PATHS = ("foreach", "fused")
FORM = re.compile(r"^(?P<rule>[a-z][a-z0-9_]*?)_(?:foreach|fused)$")


def misplaced_forms(modules: dict[str, dict[str, object]]) -> list[str]:
    """Each rule's foreach and fused forms beside its one-tensor form: a function
    ``<rule>_foreach`` or ``<rule>_fused`` (Muon's ``muon_momentum_fused`` counts as Muon's)
    must be defined in ``<rule>``'s module, never in a path module.
    ``modules`` maps a module's short name to its functions defined there."""
    wrong = []
    for name, functions in modules.items():
        for fname in functions:
            match = FORM.match(fname)
            if not match or fname.startswith("check_"):
                continue
            if name in PATHS:
                wrong.append(f"optedu/optim/{name}.py defines the rule form {fname}: it belongs "
                             "beside the rule's one-tensor form, in the rule's module")
                continue
            rule = match["rule"]
            if rule != name and not rule.startswith(f"{name}_"):
                wrong.append(f"optedu/optim/{name}.py defines {fname}, a form of another "
                             f"rule ({rule}): it belongs in that rule's module")
    return wrong


def _optim_functions() -> dict[str, dict[str, object]]:
    out = {}
    for path in sorted((PACKAGE / "optim").glob("*.py")):
        module = importlib.import_module(f"optedu.optim.{path.stem}")
        out[path.stem] = {name: obj for name, obj in vars(module).items()
                          if inspect.isfunction(obj) and obj.__module__ == module.__name__}
    return out


def test_each_rule_keeps_its_forms_in_one_module():
    """A rule's one-tensor, foreach and fused forms are defined one after the other in its own
    module (optedu/optim/adam.py holds adam, adam_foreach and adam_fused); foreach.py and
    fused.py hold only the paths' machinery."""
    modules = _optim_functions()
    assert not misplaced_forms(modules), misplaced_forms(modules)
    for name, functions in modules.items():
        for fname in functions:
            match = FORM.match(fname)
            if match and name not in PATHS and match["rule"] == name:
                assert name in functions, f"optedu/optim/{name}.py: {fname} without {name}"


def test_a_rule_form_in_a_path_module_is_caught():
    def adam_fused():
        """A stand-in."""

    def adam_foreach():
        """A stand-in."""

    planted = {"fused": {"adam_fused": adam_fused, "compiled": len},
               "lion": {"lion": len, "adam_foreach": adam_foreach}}
    wrong = misplaced_forms(planted)
    assert len(wrong) == 2, wrong
    assert "fused.py defines the rule form adam_fused" in wrong[0]
    assert "lion.py defines adam_foreach, a form of another rule (adam)" in wrong[1]
    assert not misplaced_forms({"muon": {"muon_momentum_fused": len, "muon_apply_fused": len}})


def test_a_row_whose_chapter_never_names_it_is_named(monkeypatch):
    """A row that points at a chapter which does not teach the rule: the check names the
    chapter to write its section in."""
    import dataclasses

    from optedu.optim import catalogue
    rows = {**catalogue.RULES,
            "Lion": dataclasses.replace(catalogue.RULES["Lion"], chapter="rprop")}
    monkeypatch.setattr(catalogue, "RULES", rows)
    assert missing_pieces()["Lion"] == [PIECES["teach"].replace("<chapter>", "rprop")]


def rule_modules() -> set[str]:
    """The stems of optim's modules that a catalogue row names as its ``module``."""
    from optedu.optim.catalogue import CATALOGUE
    return {row.module.removeprefix("optedu.optim.") for row in CATALOGUE
            if row.module.startswith("optedu.optim.")}


def unnamed_modules(package: pathlib.Path = PACKAGE,
                    rules: set[str] | None = None) -> dict[str, list[str]]:
    """Folder -> the public modules its docstring leaves out. In ``optim`` a rule module
    (``rules``, default: every row's module) counts as named: the catalogue lists it, as the
    folder's docstring says, so a new rule needs its row, not a line there."""
    rules = rule_modules() if rules is None else rules
    missing = {}
    for init in sorted(package.glob("*/__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
        named = set(re.findall(r"[\w.~]*\.(\w+)`", doc))
        if init.parent.name == "optim":
            named |= rules
        modules = sorted(p.stem for p in init.parent.glob("*.py")
                         if not p.stem.startswith("_"))
        lacking = [m for m in modules if m not in named]
        if lacking:
            missing[init.parent.name] = lacking
    return missing


def test_every_folder_names_each_of_its_modules():
    """Each folder's docstring (the map of what is where) names every public module in it,
    so a module added without its line is caught: the lists of optim, instruments,
    distributed, practice, experiments and choosing had each left one or more out. optim's
    rule modules are the catalogue's rows instead."""
    missing = unnamed_modules()
    assert not missing, f"folders whose docstring leaves modules out: {missing}"


def test_a_module_neither_named_nor_catalogued_is_caught(tmp_path):
    """In optim, a module that is not a rule (catalogue) left out of the docstring, and a
    module that is neither a row's nor named, are both caught; a row's module passes unnamed."""
    optim = tmp_path / "optim"
    optim.mkdir()
    (optim / "__init__.py").write_text('"""* :mod:`.optimizer`: the base."""\n')
    for stem in ("optimizer", "catalogue", "lion", "adabelief", "_validation"):
        (optim / f"{stem}.py").write_text("")
    assert unnamed_modules(tmp_path, rules={"lion"}) == {"optim": ["adabelief", "catalogue"]}
