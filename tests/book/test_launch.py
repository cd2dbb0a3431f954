"""Header buttons and install cells follow one setting: html_theme_options.repository_url."""

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, ROOT / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


site_links = _load("site_links", "book/_ext/site_links.py")
launch = _load("launch", "tools/launch.py")
URL = "https://github.com/example/optedu"


def test_no_repository_means_no_buttons_that_point_nowhere():
    options = site_links.configure({"repository_url": "", "use_download_button": True})
    assert options["use_repository_button"] is False
    assert options["use_issues_button"] is False
    assert options["launch_buttons"] == {}
    assert "repository_url" not in options and options["use_download_button"] is True


def test_a_repository_turns_on_repository_issue_binder_and_colab():
    options = site_links.configure({"repository_url": f" {URL} "})
    assert options["repository_url"] == URL
    assert options["use_repository_button"] and options["use_issues_button"]
    assert options["launch_buttons"]["binderhub_url"] == "https://mybinder.org"
    assert options["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    assert options["repository_branch"] == "main"


def test_install_cell_comes_first_and_follows_the_setting():
    notebook = {"cells": [{"cell_type": "markdown", "metadata": {}, "source": "# T"},
                          {"cell_type": "code", "metadata": {}, "source": "import optedu",
                           "outputs": [], "execution_count": 1}],
                "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    on = launch.stamped(notebook, URL)
    cell = on["cells"][1]
    assert "remove-cell" in cell["metadata"]["tags"]
    assert f'%pip install --quiet "optedu @ git+{URL}"' in "".join(cell["source"])
    assert all(len(line.rstrip("\n")) <= 80 for line in cell["source"])
    assert launch.stamped(on, URL) == on  # idempotent
    assert launch.stamped(on, "") == notebook  # the setting emptied: the cell goes
    moved = launch.stamped(on, URL + "2")
    assert len(moved["cells"]) == 3 and URL + "2" in "".join(moved["cells"][1]["source"])


def test_the_book_agrees_with_its_setting():
    assert launch.repository_url() == ""  # no public repository yet: no buttons, no cells
    result = subprocess.run([sys.executable, "tools/launch.py", "--check"], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_binder_pins_python_311_and_cpu_torch():
    assert (ROOT / ".binder/runtime.txt").read_text().strip() == "python-3.11"
    lines = (ROOT / ".binder/requirements.txt").read_text().splitlines()
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in lines
    assert "-r ../requirements.txt" in lines
    torch_pin = next(line for line in (ROOT / "requirements.txt").read_text().splitlines()
                     if line.startswith("torch=="))
    assert f"{torch_pin}+cpu" in lines
    assert "-e ." in (ROOT / "requirements.txt").read_text().splitlines()
