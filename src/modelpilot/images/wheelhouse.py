"""The requirements as wheel files, downloaded here so the image build needs no index.

The host's pip does the download, with its own configuration (index, mirror, certificates),
so ``docker build`` works without network, and so do buildah and kaniko in a cluster that
cannot reach a package index. Binary wheels only: the slim base has no compiler, and a
requirement that would need one is refused here, by name, before any build. Downloads are
cached by the requirements' text, the Python version and the machine; so are the wheels
with their native libraries stripped of symbol tables (:mod:`modelpilot.images.strip`), which
go into the context when this machine has ``strip``.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from modelpilot.errors import InvalidInput, ModelpilotError
from modelpilot.images.strip import strip_command, strip_wheel

_DOWNLOAD_TIMEOUT_S = 1800


def fill_wheelhouse(
    requirements: str, python_minor: str, cache_dir: Path, target: Path, *, strip: bool = True
) -> int:
    """Put a wheel of every line of ``requirements`` into ``target``, stripped unless
    ``strip`` is False or this machine has no ``strip``; the bytes downloaded (0 when the
    cache had them)."""
    key = hashlib.sha256(
        f"{requirements}\0{python_minor}\0{platform.machine()}".encode()
    ).hexdigest()[:32]
    cached = cache_dir / key
    downloaded = 0
    if not cached.is_dir():
        downloaded = _download(requirements, python_minor, cached)
    tool = strip_command() if strip else None
    target.mkdir(parents=True, exist_ok=True)
    for wheel in sorted(cached.glob("*.whl")):
        source = wheel if tool is None else _stripped(wheel, cache_dir / f"{key}-stripped", tool)
        _link_or_copy(source, target / wheel.name)
    return downloaded


def _stripped(wheel: Path, folder: Path, tool: str) -> Path:
    """``wheel`` stripped, made once into ``folder``."""
    done = folder / wheel.name
    if not done.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        partial = done.with_name(done.name + ".partial")
        strip_wheel(wheel, partial, tool)
        os.replace(partial, done)
    return done


def _download(requirements: str, python_minor: str, cached: Path) -> int:
    with tempfile.TemporaryDirectory(prefix="modelpilot-wheels-") as tmp:
        listing = Path(tmp) / "requirements.txt"
        listing.write_text(requirements)
        out = Path(tmp) / "wheels"
        command = [
            sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
            "--only-binary=:all:", "--python-version", python_minor, "-d", str(out),
            "-r", str(listing),
        ]  # fmt: skip
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=_DOWNLOAD_TIMEOUT_S, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ModelpilotError(f"Could not download the image's wheels: {exc}.") from exc
        if done.returncode != 0:
            raise InvalidInput(
                "Could not download a wheel of every requirement for Python "
                f"{python_minor} on Linux (pip download --only-binary=:all:). A requirement "
                "without a wheel would need a compiler, which a slim image does not have; "
                "one that cannot be reached needs pip's index configured here. pip said: "
                f"{done.stderr.strip()[-800:]}",
                field="requirements",
            )
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_name(cached.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        shutil.copytree(out, partial)
        os.replace(partial, cached)
        return sum(p.stat().st_size for p in cached.glob("*.whl"))


def _link_or_copy(source: Path, destination: Path) -> None:
    try:
        os.link(source, destination)
    except OSError:
        shutil.copyfile(source, destination)
