"""Debian's Chromium for the browser tests (`.ci/run` installs it; no browser is downloaded)."""

from __future__ import annotations

import shutil

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

# Pages served by a test's own server on the loopback address: that one address resolves.
SERVER_FLAGS = [
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1" if f.startswith("--host-") else f
    for f in FLAGS
    if f != "--headless"  # Playwright passes its own
]
