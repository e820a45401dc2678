"""The Python distributions an image installs: a model package's pinned requirements plus
modelpilot's runtime dependencies, closed over their own dependencies and pinned to the
versions installed here (where the package was made and tested).

A model image gets the *serving* set of modelpilot's dependencies only (:data:`SERVED`): what
``modelpilot serve --bundle`` imports, found by serving a request and reading
``sys.modules``. The rest (:data:`NOT_SERVED`: DuckDB, the control plane's API and
migrations, tuning, the dashboard) stays out, which is most of an image's size after the
model's own libraries; so do the dependencies of served ones that serving never imports
(:data:`NOT_IMPORTED`: skops' model-card table, uvicorn's reloader and WebSockets, rich's
syntax highlighter and Markdown parser).
The platform image (``modelpilot package image modelpilot``) gets every runtime dependency.
No extras are followed except those a requirement names itself
(``uvicorn[standard]``) or the platform image is asked for, so test and development tools
never reach an image, and ``xgboost``/``lightgbm`` arrive only through a package whose flavor
pinned them.
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

# modelpilot's dependencies a model server imports, and why. tests/unit/images checks that a
# serving process imports nothing else, and that every dependency is in one of the two maps.
SERVED: dict[str, str] = {
    "numpy": "request rows and predictions",
    "pandas": "request frames and signature checks",
    "pyarrow": "the prediction log's Parquet segments",
    "scipy": "scikit-learn, and skops' trusted types",
    "scikit-learn": "skops loading and the entity modules' metrics",
    "skops": "loading scikit-learn packages safely",
    "pydantic": "settings, logging policies, protocol bodies",
    "pydantic-settings": "MODELPILOT_* settings",
    "typer": "the modelpilot command",
    "rich": "the modelpilot command's output",
    "httpx": "following a control plane (--deployment images)",
    "starlette": "the data plane's HTTP app",
    "uvicorn": "the HTTP server (uvloop, httptools)",
    "prometheus-client": "/metrics",
    "pyyaml": "server files (serve models.yaml)",
    "orjson": "response bodies and the prediction log's write-ahead file",
    "msgspec": "the usual /predict body of an all-float model, read in one pass",
    "threadpoolctl": "one BLAS thread per inline batch",
}
# modelpilot's dependencies a model server never imports, and what needs them.
NOT_SERVED: dict[str, str] = {
    "duckdb": "SQL over the prediction log and datasets (modelpilot logs query, monitoring)",
    "sqlalchemy": "the metadata store (with greenlet); the data plane imports only the "
    "registry's, release's and identity's entity modules, and a bundle has no store",
    "alembic": "metadata store migrations (modelpilot db upgrade)",
    "psycopg": "a PostgreSQL metadata store",
    "fastapi": "the control plane's REST API (modelpilot server)",
    "optuna": "tuning (mp.tune)",
    "croniter": "pipeline schedules (modelpilot agent)",
    "jinja2": "the dashboard's pages",
}
# Distributions a served dependency requires that a model server never imports, and what
# would. Left out of a model image only; the blocked-import test serves a bundle without them.
NOT_IMPORTED: dict[str, str] = {
    "prettytable": "skops' model cards (skops.card); skops.io loads without it",
    "wcwidth": "prettytable's column widths (3 MB of Unicode tables)",
    "watchfiles": "uvicorn --reload (uvicorn[standard])",
    "websockets": "uvicorn's WebSocket protocol (uvicorn[standard]); the data plane serves HTTP "
    "only, and uvicorn runs without a WebSocket protocol when none is installed",
    "pygments": "rich's syntax highlighting, which typer's rich help and tracebacks import; a "
    "model image sets TYPER_USE_RICH=0 (plain help), and httpx's command-line client, which "
    "httpx imports inside try/except ImportError",
    "markdown-it-py": "rich.markdown, which only typer's rich help imports (off in a model image)",
    "mdurl": "markdown-it-py's links",
}


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


def image_requirements(
    package_requirements: list[str],
    python_minor: str,
    *,
    serving_only: bool = True,
    extras: tuple[str, ...] = (),
) -> list[Pin]:
    """Every distribution the image installs, sorted by name, modelpilot itself excluded
    (it is installed from its own wheel, without dependencies, in a later layer).

    ``serving_only`` keeps modelpilot's :data:`SERVED` dependencies only (a model image);
    otherwise every runtime dependency and those of ``extras`` (the platform image).

    The package's own pins win; the rest are the versions installed here. Their dependencies
    are read from the metadata installed here, so each one must be installed (InvalidInput
    naming it otherwise). CUDA runtime wheels (``nvidia-*``, which xgboost's Linux wheel pulls
    in for multi-GPU training) are left out: an image serves on CPU. So are, with
    ``serving_only``, the :data:`NOT_IMPORTED` dependencies of what is served, unless the
    package names them itself.

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
    named_by_package = {normalise(r.name) for r in roots}
    queue = [r for r in roots if normalise(r.name) != SELF]
    queue += runtime_requirements(python_minor, serving_only=serving_only, extras=extras)
    seen: set[tuple[str, frozenset[str]]] = set()
    pins: dict[str, Pin] = {}
    while queue:
        req = queue.pop()
        name = normalise(req.name)
        if (name, frozenset(req.extras)) in seen or name == SELF or _is_gpu_runtime(name):
            continue
        if serving_only and name in NOT_IMPORTED and name not in named_by_package:
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


def runtime_requirements(
    python_minor: str, *, serving_only: bool = True, extras: tuple[str, ...] = ()
) -> list[Requirement]:
    """modelpilot's own requirements an image installs: the :data:`SERVED` ones, or all of
    them with those of ``extras``.

    >>> names = {normalise(r.name) for r in runtime_requirements("3.11")}
    >>> "pyarrow" in names, "duckdb" in names
    (True, False)
    """
    found = _requires_of(SELF, frozenset(extras), python_minor)
    if serving_only:
        found = [r for r in found if normalise(r.name) in SERVED]
    return found


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
