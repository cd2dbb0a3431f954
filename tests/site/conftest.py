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
import shutil
import threading

import pytest

CHROMIUM = os.environ.get("CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER",
                              shutil.which("chromedriver") or "/usr/bin/chromedriver")
DESKTOP = (1280, 1000)  # a laptop's window
PHONE = (390, 844)      # an iPhone 12 to 15's screen, in CSS pixels


def pytest_addoption(parser):
    parser.addoption("--site", default=None, help="folder of the built website (_build/html)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--site", default=None):
        return
    skip = pytest.mark.skip(reason="browser tests need --site _build/html (make site-test)")
    for item in items:
        if "tests/site" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(skip)


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


def _driver(width: int, height: int, mobile: bool = False):
    """Headless Chromium in a ``width`` x ``height`` window; ``mobile``: a phone's screen
    (Chrome's mobileEmulation, 1 device pixel per CSS pixel), as a reader's phone lays out the
    page. A plain window is no phone: headless Chrome makes a window at least 500 px wide."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # The background-networking flags keep Chromium from calling Google's hosts, which a closed
    # network refuses (slowly, many at a time).
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 f"--window-size={width},{height}", "--disable-extensions", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-quic",
                 # the page gets the whole window, as under overlay scroll bars: a 1280 px
                 # window shows 1280 px of page
                 "--hide-scrollbars"):
        options.add_argument(flag)
    if mobile:
        options.add_experimental_option("mobileEmulation", {
            "deviceMetrics": {"width": width, "height": height, "pixelRatio": 1}})
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    return driver


@pytest.fixture(scope="session")
def browser():
    driver = _driver(DESKTOP[0], DESKTOP[1])
    yield driver
    driver.quit()


@pytest.fixture(scope="session")
def phone():
    driver = _driver(PHONE[0], PHONE[1], mobile=True)
    yield driver
    driver.quit()
