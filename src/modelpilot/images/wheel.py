"""modelpilot's own wheel for an image's runtime layer, built from this source checkout.

Why a wheel built here rather than ``pip install modelpilot==X`` in the image: the image must
run the code that made and checked the package (a checkout may be ahead of any release), and
a build must not need a package index that has modelpilot. The installed distribution cannot
serve: a development install is a link to the checkout, not files to copy. So the checkout's
sources (``pyproject.toml``, ``README.md``, ``src/modelpilot``) are copied to a temporary
folder (the checkout is never written to) and built with ``pip wheel --no-deps``, with
``SOURCE_DATE_EPOCH`` fixed so the same sources give the same bytes: Docker then reuses the
runtime layer when only the model changed. Wheels are cached by a hash of those sources.
Without a checkout (modelpilot installed from a wheel), pass the wheel with ``--wheel``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import modelpilot.version
from modelpilot.errors import InvalidInput, ModelpilotError

# 1980-01-01, the earliest time a zip file can hold: any fixed value makes builds repeatable.
_SOURCE_DATE_EPOCH = "315532800"
_BUILD_TIMEOUT_S = 600
_TOP_FILES = ("pyproject.toml", "README.md")
# Bytecode, and the compiled records decoder a development install builds in place: built for
# this machine's Python, it does not belong in a pure wheel (an image's data plane reads the
# same bodies with msgspec; see modelpilot/serving/records_decoder.py).
_NOT_SOURCES = (".pyc", ".so")


def source_checkout() -> Path | None:
    """The checkout this modelpilot runs from (None when installed from a wheel)."""
    package = Path(modelpilot.version.__file__).resolve().parent
    root = package.parents[1]
    pyproject = root / "pyproject.toml"
    if package.parent.name != "src" or not pyproject.is_file():
        return None
    return root if 'name = "modelpilot"' in pyproject.read_text() else None


def modelpilot_wheel(cache_dir: Path, wheel: Path | None = None) -> Path:
    """The wheel to install: ``wheel`` when given, else one built from the checkout (cached)."""
    if wheel is not None:
        if not wheel.is_file() or not wheel.name.startswith("modelpilot-"):
            raise InvalidInput(
                f"--wheel {wheel} is not a modelpilot wheel file (expected "
                "modelpilot-<version>-py3-none-any.whl).",
                field="wheel",
            )
        return wheel
    root = source_checkout()
    if root is None:
        raise InvalidInput(
            "modelpilot is not running from a source checkout, so its wheel cannot be built "
            "here. Pass the wheel it was installed from: --wheel modelpilot-<version>-py3-none-"
            "any.whl.",
            field="wheel",
        )
    target = cache_dir / _sources_hash(root)
    built = sorted(target.glob("modelpilot-*.whl")) if target.is_dir() else []
    return built[0] if built else _build(root, target)


def _source_files(root: Path) -> list[Path]:
    files = [root / name for name in _TOP_FILES if (root / name).is_file()]
    files += sorted(
        p
        for p in (root / "src" / "modelpilot").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix not in _NOT_SOURCES
    )
    return files


def _sources_hash(root: Path) -> str:
    digest = hashlib.sha256()
    for path in _source_files(root):
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:32]


def _build(root: Path, target: Path) -> Path:
    with tempfile.TemporaryDirectory(prefix="modelpilot-wheel-") as tmp:
        sources = Path(tmp) / "src-tree"
        for path in _source_files(root):
            copy = sources / path.relative_to(root)
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, copy)
            os.utime(copy, (int(_SOURCE_DATE_EPOCH),) * 2)
        out = Path(tmp) / "dist"
        command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out)]
        env = {**os.environ, "SOURCE_DATE_EPOCH": _SOURCE_DATE_EPOCH}
        try:
            done = subprocess.run(
                [*command, str(sources)],
                capture_output=True,
                text=True,
                env=env,
                timeout=_BUILD_TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ModelpilotError(f"Could not build modelpilot's wheel: {exc}.") from exc
        wheels = sorted(out.glob("modelpilot-*.whl"))
        if done.returncode != 0 or not wheels:
            raise ModelpilotError(
                "Could not build modelpilot's wheel with pip wheel --no-deps "
                f"(exit {done.returncode}): {done.stderr.strip()[-800:]}"
            )
        target.mkdir(parents=True, exist_ok=True)
        final = target / wheels[0].name
        shutil.copyfile(wheels[0], final)
        return final
