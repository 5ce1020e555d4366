"""The browser the dashboard tests drive: Debian's chromium (never a downloaded build) through
playwright, and the screen sizes they look at the page in.

    @pytest.fixture(scope="module")
    def browser() -> Iterator[Any]:
        with chromium() as browser:
            yield browser
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "LAPTOP", "WALL", "chromium"]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
WALL = {"width": 1920, "height": 1080}
LAPTOP = {"width": 1366, "height": 768}


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless chromium browser (playwright's Browser), closed at the end."""
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: run scripts/setup.sh test"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
