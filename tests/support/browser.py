"""The browser the dashboard tests drive: Debian's chromium (never a downloaded build) through
playwright, the screen sizes they look at the page in, and :class:`Screen`, one page that
collects its script errors (each test module adds what else it watches).

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

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "LAPTOP", "WALL", "Screen", "chromium"]

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


class Screen:
    """One browser page and the script errors it raised (closing it asserts there were none).

    Subclasses add their listeners after ``super().__init__`` and then open their URL.
    """

    wait_s = 15.0   # how long wait() waits unless told

    def __init__(self, browser: Any, viewport: dict[str, int]) -> None:
        self.page = browser.new_page(viewport=viewport)
        self.errors: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))

    def wait(self, script: str, arg: Any = None, timeout_s: float | None = None) -> Any:
        """Wait until the JS function ``script`` returns something truthy; return it."""
        timeout_s = self.wait_s if timeout_s is None else timeout_s
        handle = self.page.wait_for_function(script, arg=arg, timeout=timeout_s * 1000)
        return handle.json_value()

    def wait_text(self, selector: str, text: str, timeout_s: float | None = None) -> None:
        """Wait until the element at ``selector`` contains ``text``."""
        self.wait("([sel, text]) => document.querySelector(sel)?.textContent.includes(text)",
                  [selector, text], timeout_s)

    def shot(self, path: Path) -> Path:
        self.page.screenshot(path=str(path))
        return path

    def close(self) -> None:
        self.page.close()
        assert not self.errors, f"script errors on the page: {self.errors}"
