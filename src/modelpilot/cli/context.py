"""Shared CLI state: the workspace (built once from settings) and output helpers."""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rich.console import Console

from modelpilot.config import Settings

if TYPE_CHECKING:
    # the workspace imports every store-backed service (SQLAlchemy); `serve --bundle` never
    # builds one, so the model image's entry point does not import them
    from modelpilot.workspace import Workspace

PIPED_WIDTH = 200


def _output_width() -> int | None:
    """The width to lay output out at: the terminal's (None), or PIPED_WIDTH when stdout is not
    a terminal. Rich then assumes 80 columns, which cuts every cell of a wide table (the
    candidate table of ``modelpilot optimize`` has 18 columns) to "…" in piped or captured
    output; COLUMNS, when set, still decides."""
    if os.environ.get("COLUMNS") or sys.stdout.isatty():
        return None
    return PIPED_WIDTH


console = Console(width=_output_width())
err_console = Console(stderr=True)
_workspace: Workspace | None = None


def get_workspace() -> Workspace:
    """The workspace for this command, from ``MODELPILOT_*`` settings."""
    global _workspace
    if _workspace is None:
        from modelpilot.workspace import Workspace

        _workspace = Workspace(Settings())
    return _workspace


def close_workspace() -> None:
    """Release the command's workspace (flush metrics, close database connections)."""
    global _workspace
    if _workspace is not None:
        _workspace.close()
        _workspace = None


def fmt_ms(value: int | None) -> str:
    """A stored millisecond timestamp as local-free ISO text.

    >>> fmt_ms(0)
    '1970-01-01 00:00:00'
    """
    if value is None:
        return "-"
    return datetime.fromtimestamp(value / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def print_json(data: Any) -> None:
    """Machine-readable output for ``--json``."""
    console.print_json(json.dumps(data, default=str))
