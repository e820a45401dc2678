"""Headless Chromium for pages modelpilot writes (cards, reports). `.ci/run` installs it."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from mp_browser import CHROMIUM, FLAGS


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
