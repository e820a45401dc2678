"""Capture of where a run ran: code revision (git), Python version and installed packages.

Captured once per process and cached: the package list does not change while a script runs,
and asking git for every run would cost a subprocess each time.
"""

from __future__ import annotations

import functools
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

_GIT_TIMEOUT_S = 5


@functools.cache
def code_revision(folder: str | None = None) -> str | None:
    """The git commit of ``folder`` (the working directory by default), ``+dirty`` if changed.

    Returns None outside a git checkout or without git.
    """
    cwd = Path(folder) if folder else Path.cwd()
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT_S,
            check=False,
        )
        if head.returncode != 0:
            return None
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    revision = head.stdout.strip()
    return revision + ("+dirty" if status.stdout.strip() else "")


@functools.cache
def installed_packages() -> dict[str, str]:
    """Every installed distribution and its version, names normalised to lower case.

    >>> "numpy" in installed_packages()
    True
    """
    packages: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            packages[name.lower().replace("_", "-")] = dist.version
    return dict(sorted(packages.items()))


def capture_environment() -> dict[str, Any]:
    """Python version, platform and packages, as stored on each run."""
    return {
        "python": platform.python_version(),
        "implementation": sys.implementation.name,
        "platform": platform.platform(),
        "packages": installed_packages(),
    }


def pinned(names: list[str]) -> list[str]:
    """``name==version`` for each installed distribution in ``names`` (missing ones skipped).

    >>> pinned(["numpy"])[0].startswith("numpy==")
    True
    """
    packages = installed_packages()
    return [f"{name}=={packages[name]}" for name in names if name in packages]
