"""Keep the chapters' install cell in step with the book's repository setting.

With ``html_theme_options.repository_url`` set in _config.yml, the site shows Binder and
Colab launch buttons (book/_ext/site_links.py), and a chapter opened there must install
optedu first: every notebook in book/ then starts with a cell (hidden on the site) that runs
``pip install "optedu @ git+<repository_url>"`` when optedu is missing. With the setting empty,
no notebook has that cell.

    python tools/launch.py          # add, update or remove the cell in every notebook
    python tools/launch.py --check  # exit 1 if a notebook disagrees with the setting
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
TAG = "optedu-install"


def repository_url(config: Path = ROOT / "_config.yml") -> str:
    """The one setting: html_theme_options.repository_url of _config.yml ('' when unset)."""
    data = yaml.safe_load(config.read_text())
    options = data.get("sphinx", {}).get("config", {}).get("html_theme_options", {})
    return (options.get("repository_url") or "").strip()


def install_cell(url: str) -> dict:
    """The first cell of every chapter when the book has a public repository."""
    source = ("# Colab, Binder or any Jupyter without optedu: install the book's package.\n"
              "import importlib.util\n\n"
              'if importlib.util.find_spec("optedu") is None:\n'
              f'    %pip install --quiet "optedu @ git+{url}"')
    return {"cell_type": "code", "execution_count": None,
            "metadata": {"tags": ["remove-cell", TAG]}, "outputs": [],
            "source": source.splitlines(keepends=True)}


def _is_install(cell: dict) -> bool:
    return TAG in cell.get("metadata", {}).get("tags", [])


def stamped(notebook: dict, url: str) -> dict:
    """``notebook`` with its install cell as the setting wants it (a new dict)."""
    cells = [cell for cell in notebook["cells"] if not _is_install(cell)]
    if url:
        first_code = next(i for i, cell in enumerate(cells) if cell["cell_type"] == "code")
        cells.insert(first_code, install_cell(url))
    return {**notebook, "cells": cells}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check, write nothing")
    args = parser.parse_args()
    url = repository_url()
    stale = []
    for path in sorted((ROOT / "book").glob("*.ipynb")):
        notebook = json.loads(path.read_text(encoding="utf-8"))
        wanted = stamped(notebook, url)
        if wanted == notebook:
            continue
        stale.append(path.name)
        if not args.check:
            text = json.dumps(wanted, indent=1, ensure_ascii=False) + "\n"
            path.write_text(text, encoding="utf-8")
    if args.check and stale:
        print(f"install cells disagree with repository_url={url!r} in: {', '.join(stale)}; "
              "run python tools/launch.py")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
