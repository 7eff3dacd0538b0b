"""Real Chromium (Debian's, never a downloaded one), shared by the browser tests of a module."""

from __future__ import annotations

import pytest

from tests.conftest import chromium_path, require_peer


@pytest.fixture(scope="module")
def browser():
    path = chromium_path()
    require_peer(path is not None, "chromium not installed: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=path,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()
