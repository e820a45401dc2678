"""Imports point down the layers (see docs/architecture.md, "Layers").

Every module under ``src/modelpilot`` is parsed with ``ast`` and every import form counts:
``import modelpilot.x``, ``from modelpilot import x``, ``from modelpilot.x import y``,
``import modelpilot`` (the SDK), relative imports (``from . import y``, ``from ..x import y``),
and imports inside functions or under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "modelpilot"
SDK = "modelpilot"  # the package's own __init__.py: the SDK users import as ``mp``

# Each top-level package or module of modelpilot sits on one layer; a module may import its
# own layer and the layers below, never above. A new package must be placed here first.
LAYERS: dict[str, int] = {
    # 0 foundation: imports nothing else of modelpilot
    "errors": 0,
    "clock": 0,
    "config": 0,
    "version": 0,
    "lazy": 0,  # a package's exports imported on first use (keeps SQLAlchemy out of serving)
    # 1 storage
    "store": 1,
    "artifacts": 1,
    # joining or starting a Ray cluster (pipelines, scoring and tuning on Ray): errors only
    "ray_cluster": 1,
    # which files are tables and how to read them (errors only; pandas/pyarrow on use)
    "tables": 1,
    # rows of numbers (sequences or packed doubles) as one float64 matrix (numpy only)
    "matrix": 1,
    # 2 core records
    "tracking": 2,
    "data": 2,
    "models": 2,
    "registry": 2,
    "evaluation": 2,
    "audit": 2,  # reading the audit log (sealing rows is store/audit.py's)
    "predictions": 2,  # the prediction log: writer, reader, labels, policies (DESIGN.md)
    "identity": 2,  # API tokens and roles: verified by the control plane and the data plane
    # 3 services and the data plane
    "lineage": 3,
    "artifact_gc": 3,  # modelpilot gc: what the records reference, over store and artifacts
    "release": 3,
    # the SDK's remote backend: HTTP calls for the seams of layers 2 and 3 (deployments are a
    # release seam), nothing of the store
    "client": 3,
    "monitoring": 3,
    "alerting": 3,
    "tuning": 3,
    "cards": 3,
    "serving": 3,
    # steps, pipeline graphs, the step cache and the pipeline-run records, on the service
    # protocols of layer 2 (never the workspace)
    "pipelines": 3,
    # optimised candidates (ONNX): conversion, fidelity, the candidate table, on the registry
    # and dataset protocols and the models package
    "optimization": 3,
    # container images of registered versions: build context, SBOM, docker build; writes the
    # serving package's model bundle and reads the registry's entities
    "images": 3,
    # 4 the SDK's engine
    "workspace": 4,
    "assessment": 4,
    # continuous training per deployment: the policy (triggers, pipeline, evaluation, rollout)
    # and, next, the agent that acts on it, over pipelines, release and evaluation
    "loop": 4,
    # governance evidence (NIST AI RMF, ISO/IEC 42001) read from every service's records,
    # the risk register and retirement
    "governance": 4,
    # 5 the SDK
    SDK: 5,
    # 6 entry points
    "cli": 6,
    "server": 6,
    "demo": 6,
    "demo_data": 6,
    "demo_loop": 6,
    # the step worker process (python -m modelpilot.pipeline_worker): runs a step with the
    # SDK's active run set to the step's child run
    "pipeline_worker": 6,
    # the edge profile's worker process (python -m modelpilot.profile_worker): loads a version
    # through the SDK on one pinned core under a memory cap
    "profile_worker": 6,
}

# Imports inside one layer that are still forbidden: importer -> what it must never import.
SIDEWAYS_FORBIDDEN: dict[str, set[str]] = {
    "tracking": {"registry"},
    "data": {"models", "registry"},
    "models": {"registry"},
    "release": {"serving", "monitoring", "client"},  # monitoring reads deployments: no cycle
    "monitoring": {"serving"},
    "alerting": {"serving", "release", "monitoring"},
    "tuning": {"serving"},
    "cards": {"serving"},
    "pipelines": {"serving", "client", "release", "monitoring", "alerting", "tuning", "cards"},
    "demo": {"cli"},
    "demo_loop": {"cli"},
    "server": {"cli"},
    # the client speaks the seams' protocols, entities and codecs (and hashes blobs); it never
    # opens a store or runs an evaluation
    "client": {"store", "models", "evaluation"},
}

# Known violations: none are left (the team-platform work gave services and the data plane
# the narrow things they need). A new one fails the test; allow-list it here only with a
# comment naming the issue that removes it.
KNOWN_VIOLATIONS: set[tuple[str, str]] = set()


def _unit_of_module(parts: list[str]) -> str | None:
    """The layer unit of a dotted module path (``modelpilot.serving.app`` -> ``serving``)."""
    if not parts or parts[0] != "modelpilot":
        return None
    return parts[1] if len(parts) > 1 else SDK


def _package_parts(path: Path) -> list[str]:
    """The dotted package a file's relative imports start from."""
    parts = ["modelpilot", *path.relative_to(SRC).with_suffix("").parts]
    return parts if path.name == "__init__.py" and parts[-1] != "__init__" else parts[:-1]


def _targets(path: Path, source: str | None = None) -> Iterator[str]:
    """Every modelpilot unit a file imports, in any form, anywhere in the file (``source``
    replaces the file's text, to probe the checker)."""
    text = path.read_text() if source is None else source
    for node in ast.walk(ast.parse(text, filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                unit = _unit_of_module(alias.name.split("."))
                if unit is not None:
                    yield unit
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = _package_parts(path)
                base = base[: len(base) - (node.level - 1)]
            else:
                base = []
            parts = base + (node.module.split(".") if node.module else [])
            if parts == ["modelpilot"]:
                # `from modelpilot import x`: x is a package/module of its own, or a name of the SDK
                for alias in node.names:
                    yield alias.name if alias.name in LAYERS else SDK
            else:
                unit = _unit_of_module(parts)
                if unit is not None:
                    yield unit


def _unit_of_file(path: Path) -> str:
    rel = path.relative_to(SRC).parts
    return SDK if rel == ("__init__.py",) else rel[0].removesuffix(".py")


def _modules() -> list[Path]:
    return [p for p in sorted(SRC.rglob("*.py")) if "migrations" not in p.parts]


def _is_allowed(importer: str, target: str) -> bool:
    if importer == target:
        return True
    if LAYERS[target] > LAYERS[importer]:
        return False
    return target not in SIDEWAYS_FORBIDDEN.get(importer, set())


def _violations() -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for path in _modules():
        importer = _unit_of_file(path)
        for target in set(_targets(path)):
            if not _is_allowed(importer, target):
                found.add((str(path.relative_to(SRC)), target))
    return found


def test_every_module_has_a_layer() -> None:
    units = {_unit_of_file(p) for p in _modules()}
    assert sorted(units - LAYERS.keys()) == []


def test_packages_only_import_downwards() -> None:
    new = sorted(_violations() - KNOWN_VIOLATIONS)
    assert new == [], "imports that point up or sideways (see docs/architecture.md)"


def test_known_violations_are_still_there() -> None:
    """A fixed violation must leave the allow-list, so it cannot come back unnoticed."""
    assert sorted(KNOWN_VIOLATIONS - _violations()) == []


def test_nothing_imports_the_cli() -> None:
    offenders = [
        (str(p.relative_to(SRC)), t)
        for p in _modules()
        for t in _targets(p)
        if t == "cli" and _unit_of_file(p) != "cli"
    ]
    assert offenders == []


@pytest.mark.parametrize(
    ("source", "where", "expected"),
    [
        ("import modelpilot.cli.main", "serving/app.py", {"cli"}),
        ("import modelpilot", "serving/app.py", {SDK}),
        ("from modelpilot import __version__", "serving/app.py", {SDK}),
        ("from modelpilot import workspace", "serving/app.py", {"workspace"}),
        ("from modelpilot.workspace import Workspace", "serving/app.py", {"workspace"}),
        ("from .. import workspace", "serving/app.py", {"workspace"}),
        ("from ..cli import main", "serving/app.py", {"cli"}),
        ("from . import batching", "serving/app.py", {"serving"}),
        ("from . import batching", "serving/__init__.py", {"serving"}),
        ("from .drift import psi", "monitoring/__init__.py", {"monitoring"}),
        ("from .. import registry", "monitoring/drift/psi.py", {"monitoring"}),
        ("from ... import registry", "monitoring/drift/psi.py", {"registry"}),
        ("from . import errors", "workspace.py", {"errors"}),
        ("def f():\n    from modelpilot.cli import main\n", "store/store.py", {"cli"}),
        (
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import modelpilot.server\n",
            "serving/app.py",
            {"server"},
        ),
        ("import os\nfrom pandas import DataFrame", "serving/app.py", set()),
    ],
)
def test_every_import_form_is_seen(source: str, where: str, expected: set[str]) -> None:
    """The checker resolves each form to the unit it loads, for a file placed at ``where``."""
    assert (SRC / where).exists()
    assert set(_targets(SRC / where, source)) == expected
