"""Headless Chromium for pages modelpilot writes (cards, reports) and for the dashboard.
`.ci/run` installs it."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from mp_browser import CHROMIUM, FLAGS, SERVER_FLAGS


@pytest.fixture
def render(tmp_path: Path) -> Callable[[Path], str]:
    """Open a local page in Chromium and return the DOM after scripts ran."""
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (.ci/run installs it with apt-get)")

    def _render(page: Path) -> str:
        result = subprocess.run(
            [
                CHROMIUM,
                *FLAGS,
                f"--user-data-dir={tmp_path / 'profile'}",
                "--dump-dom",
                page.as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        return result.stdout

    return _render


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Chromium driven by Playwright, able to reach only the loopback address."""
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (.ci/run installs it with apt-get)")
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=SERVER_FLAGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where dashboard screenshots go (kept after the run)."""
    root = os.environ.get("MODELPILOT_TEST_ARTIFACTS")
    folder = Path(root) / "dashboard" if root else tmp_path_factory.mktemp("dashboard-shots")
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\ndashboard screenshots: {folder}")
    return folder
