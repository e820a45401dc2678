"""The dashboard in Chromium for the browser tests: a page whose console errors and requests
are recorded, and a context logged in through the login form."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from playwright.sync_api import Browser, ConsoleMessage, Page, Response

from modelpilot.identity import Role
from mp_dashboard import Seeded

WIDTHS = {"desktop": 1280, "phone": 390}  # a laptop and a phone screen, in CSS pixels


class Watched:
    """A browser page whose console errors and requests are recorded."""

    def __init__(self, page: Page, base_url: str) -> None:
        self.page = page
        self.base_url = base_url
        self.errors: list[str] = []
        self.requests: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        page.on("request", lambda r: self.requests.append(r.url))

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def open(self, path: str) -> Response:
        """Go to ``path`` and wait until it loaded."""
        reply = self.page.goto(self.base_url + path, wait_until="load")
        assert reply is not None
        return reply

    def check_clean(self) -> None:
        """No console error and no request beyond the server so far."""
        outside = [u for u in self.requests if not u.startswith((self.base_url + "/", "data:"))]
        assert outside == [] and self.errors == []


@contextmanager
def logged_in(browser: Browser, seeded: Seeded, role: Role, width: int = 1280) -> Iterator[Watched]:
    """A fresh browser context logged in through the login form with a token of ``role``."""
    context = browser.new_context(viewport={"width": width, "height": 900})
    try:
        watched = Watched(context.new_page(), seeded.server.url)
        watched.open("/ui/runs")  # redirected to the login form
        assert "/ui/login" in watched.page.url
        watched.page.fill("#token", seeded.tokens[role])
        watched.page.click("button[type=submit]")
        watched.page.wait_for_url("**/ui/runs")
        yield watched
    finally:
        context.close()
