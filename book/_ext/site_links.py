"""Header buttons that point somewhere: one setting turns them on.

The repository, issue and launch (Binder, Colab) buttons appear only when
``html_theme_options.repository_url`` in _config.yml holds the book's public repository; with
it empty (the default) the header has none of them, so no button points nowhere. The download
button (.ipynb and source) needs no repository and stays on.
"""

from __future__ import annotations

from typing import Any

LAUNCH = {"binderhub_url": "https://mybinder.org",
          "colab_url": "https://colab.research.google.com",
          "notebook_interface": "jupyterlab"}


def configure(options: dict[str, Any]) -> dict[str, Any]:
    """The theme's options with the buttons set from ``repository_url`` (a new dict)."""
    options = dict(options)
    url = (options.get("repository_url") or "").strip()
    on = bool(url)
    options.update(use_repository_button=on, use_issues_button=on)
    if on:
        options["repository_url"] = url
        options.setdefault("repository_branch", "main")
        options.setdefault("path_to_docs", "")
        options["launch_buttons"] = dict(LAUNCH)
    else:
        options.pop("repository_url", None)
        options["launch_buttons"] = {}
    return options


def _config_inited(app: Any, config: Any) -> None:
    config.html_theme_options = configure(config.html_theme_options)


def setup(app: Any) -> dict[str, bool]:
    app.connect("config-inited", _config_inited, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
