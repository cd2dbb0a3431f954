"""JupyterLab in headless Chromium (tests/lab): run with ``pytest tests/lab --lab``.

CI runs them in ``make site-test``. Without ``--lab`` they are skipped, so a plain ``pytest``
stays quick. The server comes from ``labdriver.py``, the browser from ``tests/chromium.py``.
"""

from __future__ import annotations

import os

import pytest

import chromium


def pytest_addoption(parser):
    parser.addoption("--lab", action="store_true", default=False,
                     help="run the JupyterLab browser tests (starts a server and Chromium)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--lab", default=False):
        return
    skip = pytest.mark.skip(reason="JupyterLab browser tests need --lab (make site-test)")
    for item in items:
        if "tests/lab" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def browser():
    if chromium.missing():
        pytest.skip(chromium.missing())
    driver = chromium.driver(1300, 1000)
    yield driver
    driver.quit()
