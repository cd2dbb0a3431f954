"""JupyterLab in headless Chromium (tests/lab): run with ``pytest tests/lab --lab``.

CI runs them in ``make site-test``. Without ``--lab`` they are skipped, so a plain ``pytest``
stays quick. The server and the browser come from ``labdriver.py``.
"""

from __future__ import annotations

import os

import pytest

from labdriver import CHROMEDRIVER, CHROMIUM, chromium


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
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        pytest.skip(f"needs Chromium and chromedriver ({CHROMIUM}, {CHROMEDRIVER} not found; "
                    "apt-get install chromium chromium-driver)")
    driver = chromium()
    yield driver
    driver.quit()
