"""README.md and CONTRIBUTING.md: every `make` command they name is a target of the Makefile (or
a name its `experiments-%` rule runs: an experiment of optedu/experiments/), and CI (.ci/run)
runs the README's two commands."""

import re
from pathlib import Path

import pytest

from optedu.experiments.grid import names

ROOT = Path(__file__).resolve().parents[2]
MAKEFILE = (ROOT / "Makefile").read_text()
TARGETS = set(re.findall(r"^([a-z][a-z-]*):", MAKEFILE, re.M))
if re.search(r"^experiments-%:", MAKEFILE, re.M):   # the chapters' experiments, one pattern rule
    TARGETS |= {"experiments-" + name.replace("_", "-") for name in names()}


@pytest.mark.parametrize("doc", ["README.md", "CONTRIBUTING.md"])
def test_every_make_command_is_a_target(doc):
    named = set(re.findall(r"\bmake ([a-z][a-z-]*)", (ROOT / doc).read_text()))
    assert {"test", "book"} <= named, doc
    assert not named - TARGETS, f"{doc} names targets the Makefile lacks: {sorted(named - TARGETS)}"


def test_ci_runs_the_readmes_two_commands():
    readme = (ROOT / "README.md").read_text()
    block = readme.split("\n## The two commands\n")[1].split("```bash\n")[1].split("```")[0]
    commands = [line.split("#")[0].strip() for line in block.splitlines()]
    assert commands == ["make test", "make book"]
    # each step of .ci/run is a line of its own, bare or timed by its `step` function
    ci = [line.strip().removeprefix("step ")
          for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert "make test" in ci and "make book" in ci
