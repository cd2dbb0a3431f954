"""Headless Chromium for the browser tests (tests/site and tests/lab): Debian's chromium
driven by Selenium through the system's chromedriver, so nothing is downloaded."""

from __future__ import annotations

import os
import shutil

CHROMIUM = os.environ.get("CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER",
                              shutil.which("chromedriver") or "/usr/bin/chromedriver")


def missing() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    if os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER):
        return None
    return (f"needs Chromium and chromedriver ({CHROMIUM}, {CHROMEDRIVER} not found; "
            "apt-get install chromium chromium-driver)")


def driver(width: int, height: int, mobile: bool = False, log: bool = False):
    """Chromium in a ``width`` x ``height`` window. ``mobile``: a phone's screen (Chrome's
    mobileEmulation, 1 device pixel per CSS pixel), as a reader's phone lays out the page; a
    plain window is no phone, since headless Chrome makes a window at least 500 px wide.
    ``log``: keep the browser console's messages (``driver.get_log("browser")``)."""
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
    if log:
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    browser.set_page_load_timeout(60)
    return browser
