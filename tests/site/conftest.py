"""Browser tests of the built website: Chromium (Debian's package) driven by Selenium.

They run only when given a built site, ``pytest tests/site --site _build/html`` (``make
site-test`` builds nothing: run ``make book`` first). The site is served on 127.0.0.1 by a
thread of this process, and Selenium uses the system's ``chromedriver``, so nothing is downloaded.
"""

from __future__ import annotations

import functools
import http.server
import os
import pathlib
import threading

import pytest

import chromium

DESKTOP = (1280, 1000)  # a laptop's window
PHONE = (390, 844)      # an iPhone 12 to 15's screen, in CSS pixels


def pytest_addoption(parser):
    parser.addoption("--site", default=None, help="folder of the built website (_build/html)")


def pytest_report_header(config):
    if not config.getoption("--site", default=None):
        return "tests/site: left out (deselected); browser tests need --site _build/html"


def pytest_collection_modifyitems(config, items):
    """Without ``--site`` the browser tests are deselected, not skipped: a thousand skipped
    items cost the quick tier seconds of reporting."""
    if config.getoption("--site", default=None):
        return
    kept, left_out = [], []
    for item in items:
        site = "tests/site" in str(item.fspath).replace(os.sep, "/")
        (left_out if site else kept).append(item)
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = kept


@pytest.fixture(scope="session")
def site(pytestconfig) -> pathlib.Path:
    root = pathlib.Path(pytestconfig.getoption("--site")).resolve()
    assert (root / "index.html").exists(), f"no built site at {root}: run `make book`"
    return root


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest's output clean
        pass


@pytest.fixture(scope="session")
def base_url(site):
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="session")
def browser():
    driver = chromium.driver(*DESKTOP, log=True)
    yield driver
    driver.quit()


@pytest.fixture(scope="session")
def phone():
    driver = chromium.driver(*PHONE, mobile=True, log=True)
    yield driver
    driver.quit()
