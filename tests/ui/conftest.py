"""Headless Chromium for pages modelpilot writes (cards, reports). `.ci/run` installs it."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # no network at all: every host name fails to resolve
    "--host-resolver-rules=MAP * ~NOTFOUND",
]


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
