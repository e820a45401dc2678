"""Entry point: ``modelpilot <group> <command>``.

Errors print as one readable line and exit with the error's code; ``--debug`` shows the
traceback too.
"""

from __future__ import annotations

import importlib
import sys

import typer
from rich.markup import escape

from modelpilot.cli.context import close_workspace, err_console
from modelpilot.errors import ModelpilotError
from modelpilot.version import __version__

app = typer.Typer(
    name="modelpilot",
    help="Self-hosted MLOps: track, version, register, serve, release, monitor.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# Each module exposes register(app). Adding a command group is one line here.
_GROUPS: list[str] = [
    "modelpilot.cli.runs",
    "modelpilot.cli.models",
    "modelpilot.cli.datasets",
    "modelpilot.cli.db",
    "modelpilot.cli.deploy",
    "modelpilot.cli.serve",
    "modelpilot.cli.score",
    "modelpilot.cli.monitor",
    "modelpilot.cli.data",
    "modelpilot.cli.evaluate",
    "modelpilot.cli.optimize",
    "modelpilot.cli.profile",
    "modelpilot.cli.audit",
    "modelpilot.cli.alerts",
    "modelpilot.cli.server",
    "modelpilot.cli.tokens",
    "modelpilot.cli.pipelines",
    "modelpilot.cli.agent",
    "modelpilot.cli.loop",
    "modelpilot.cli.governance",
    "modelpilot.cli.gc",
    "modelpilot.cli.package",
]

_state = {"debug": False}


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks on errors."),
) -> None:
    _state["debug"] = debug


@app.command()
def version() -> None:
    """Print the modelpilot version."""
    typer.echo(f"modelpilot {__version__}")


for _module in _GROUPS:
    importlib.import_module(_module).register(app)


def _run(args: list[str]) -> int:
    """Run one command; its exit code (click returns ``typer.Exit`` codes, not raises them)."""
    try:
        result = app(args=args, standalone_mode=False)
    finally:
        close_workspace()
    return result if isinstance(result, int) else 0


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; modelpilot errors become one line on stderr and their exit code."""
    args = sys.argv[1:] if argv is None else argv
    try:
        code = _run(args)
    except ModelpilotError as exc:
        if _state["debug"] or "--debug" in args:
            raise
        # escaped: a message's own brackets ("pip install 'modelpilot[ray]'") are not markup
        message = escape(exc.message)
        err_console.print(f"[red]Error:[/red] {message}", highlight=False, soft_wrap=True)
        raise SystemExit(exc.exit_code) from None
    except typer.Abort:
        err_console.print("Aborted.")
        raise SystemExit(130) from None
    except SystemExit:
        raise
    except Exception as exc:
        # Usage errors and exits of the command-line parser. Matched by shape, not class: newer
        # typer vendors its own click, whose exception classes are not click's.
        exit_code = getattr(exc, "exit_code", None)
        if not isinstance(exit_code, int):
            raise
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        raise SystemExit(exit_code) from None
    if code:
        raise SystemExit(code)


if __name__ == "__main__":  # pragma: no cover
    main()
