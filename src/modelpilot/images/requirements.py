"""The Python distributions an image installs: a model package's pinned requirements plus
modelpilot's runtime dependencies, closed over their own dependencies and pinned to the
versions installed here (where the package was made and tested).

No extras are followed except those a requirement names itself (``uvicorn[standard]``), so
test and development tools never reach an image, and ``xgboost``/``lightgbm`` arrive only
through a package whose flavor pinned them.
"""

from __future__ import annotations

import platform
import re
from dataclasses import dataclass
from importlib import metadata

from packaging.markers import Marker
from packaging.requirements import InvalidRequirement, Requirement

from modelpilot.errors import InvalidInput, shown

SELF = "modelpilot"


@dataclass(frozen=True, order=True)
class Pin:
    """One distribution to install, pinned."""

    name: str
    version: str

    @property
    def line(self) -> str:
        """The requirements.txt line."""
        return f"{self.name}=={self.version}"


def normalise(name: str) -> str:
    """PEP 503 name: lower case, runs of ``-_.`` as one ``-``.

    >>> normalise("Scikit_Learn")
    'scikit-learn'
    """
    return re.sub(r"[-_.]+", "-", name).lower()


def image_requirements(package_requirements: list[str], python_minor: str) -> list[Pin]:
    """Every distribution the image installs, sorted by name, modelpilot itself excluded
    (it is installed from its own wheel, without dependencies, in a later layer).

    The package's own pins win; the rest are the versions installed here. Their dependencies
    are read from the metadata installed here, so each one must be installed (InvalidInput
    naming it otherwise). CUDA runtime wheels (``nvidia-*``, which xgboost's Linux wheel pulls
    in for multi-GPU training) are left out: an image serves on CPU.

    >>> pins = image_requirements(["numpy==1.0"], "3.11")
    >>> [p.line for p in pins if p.name == "numpy"], "pytest" in [p.name for p in pins]
    (['numpy==1.0'], False)
    """
    roots = [_parse(r, "the package's requirements") for r in package_requirements]
    pinned_by_package = {
        normalise(r.name): s.version
        for r in roots
        for s in r.specifier
        if s.operator == "==" and "*" not in s.version
    }
    queue = [r for r in roots if normalise(r.name) != SELF]
    queue += _requires_of(SELF, frozenset(), python_minor)
    seen: set[tuple[str, frozenset[str]]] = set()
    pins: dict[str, Pin] = {}
    while queue:
        req = queue.pop()
        name = normalise(req.name)
        if (name, frozenset(req.extras)) in seen or name == SELF or _is_gpu_runtime(name):
            continue
        seen.add((name, frozenset(req.extras)))
        installed = _installed_version(name)
        if installed is None:
            raise InvalidInput(
                f"The image needs {req} (a requirement of the package or of modelpilot), which "
                "is not installed here, so its version and dependencies cannot be pinned. "
                f"Install it (pip install '{name}{req.specifier}') and package the image again.",
                field="requirements",
            )
        pins[name] = Pin(name, pinned_by_package.get(name, installed))
        queue += _requires_of(name, frozenset(req.extras), python_minor)
    return sorted(pins.values())


def _is_gpu_runtime(name: str) -> bool:
    return name.startswith("nvidia-")


def _parse(text: str, where: str) -> Requirement:
    try:
        return Requirement(text)
    except InvalidRequirement as exc:
        raise InvalidInput(
            f"Requirement {shown(text)} in {where} is not a valid requirement: {exc}.",
            field="requirements",
        ) from exc


def _installed_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _requires_of(name: str, extras: frozenset[str], python_minor: str) -> list[Requirement]:
    """``name``'s dependencies that apply on Linux with ``python_minor`` and ``extras``."""
    try:
        requires = metadata.requires(name) or []
    except metadata.PackageNotFoundError:
        return []
    found = []
    for text in requires:
        req = _parse(text, f"the metadata of {name}")
        if req.marker is None or any(_applies(req.marker, python_minor, e) for e in {"", *extras}):
            found.append(req)
    return found


def _applies(marker: Marker, python_minor: str, extra: str) -> bool:
    env = {
        "python_version": python_minor,
        "python_full_version": f"{python_minor}.0",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "os_name": "posix",
        "platform_machine": platform.machine(),
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "extra": extra,
    }
    return marker.evaluate(env)
