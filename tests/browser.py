"""Headless Chromium (the Debian package) driven by Playwright, for the tests that click through pages."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.servers.common import require_program


@contextmanager
def headless_chromium() -> Iterator[object]:
    """A launched Playwright browser; skips when Playwright is not installed."""
    chromium = require_program("chromium", "chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True,
                                             args=["--no-sandbox"] if os.geteuid() == 0 else [])
        try:
            yield browser
        finally:
            browser.close()
