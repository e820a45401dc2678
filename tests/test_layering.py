"""Imports point down the layers (see docs/architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "modelpilot"

# package -> packages it must never import
FORBIDDEN: dict[str, set[str]] = {
    "store": {
        "tracking",
        "data",
        "models",
        "registry",
        "serving",
        "server",
        "cli",
        "release",
        "monitoring",
    },
    "artifacts": {"store", "tracking", "data", "models", "registry", "serving", "server", "cli"},
    "tracking": {"registry", "serving", "server", "cli", "release"},
    "data": {"models", "registry", "serving", "server", "cli"},
    "models": {"registry", "serving", "server", "cli", "release"},
    "registry": {"serving", "server", "cli", "release"},
    "serving": {"server", "cli"},
    "monitoring": {"server", "cli"},
    "evaluation": {"server", "cli"},
    "release": {"serving", "server", "cli"},
    "alerting": {"serving", "server", "cli", "release", "monitoring"},
    "tuning": {"serving", "server", "cli"},
    "cards": {"serving", "server", "cli"},
    "server": {"cli", "serving", "client"},
    "client": {"server", "cli", "serving", "registry", "release", "store"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.module.startswith("modelpilot.")
        ):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("modelpilot."):
                    found.add(alias.name.split(".")[1])
    return found


def test_packages_only_import_downwards() -> None:
    violations = []
    for package, forbidden in FORBIDDEN.items():
        for path in (SRC / package).rglob("*.py") if (SRC / package).exists() else []:
            bad = _imports(path) & forbidden
            if bad:
                violations.append(f"{path.relative_to(SRC)} imports {sorted(bad)}")
    assert violations == []


def test_nothing_imports_the_cli() -> None:
    offenders = [
        str(p.relative_to(SRC))
        for p in SRC.rglob("*.py")
        if "cli" not in p.relative_to(SRC).parts and "cli" in _imports(p)
    ]
    assert offenders == []
