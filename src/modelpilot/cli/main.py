"""Entry point: ``modelpilot <group> <command>``.

Errors print as one readable line and exit with the error's code; ``--debug`` shows the
traceback too.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterable
from typing import Any

import typer
from rich.markup import escape

from modelpilot.cli.context import close_workspace, err_console
from modelpilot.errors import ModelpilotError
from modelpilot.version import __version__

# The module each command (or command group) is registered by. Adding a group is one line
# here; tests/cli/test_cli_lazy_loading.py checks the table against what each module registers.
COMMANDS: dict[str, str] = {
    "runs": "modelpilot.cli.runs",
    "models": "modelpilot.cli.models",
    "datasets": "modelpilot.cli.datasets",
    "db": "modelpilot.cli.db",
    "deploy": "modelpilot.cli.deploy",
    "serve": "modelpilot.cli.serve",
    "logs": "modelpilot.cli.serve",
    "score": "modelpilot.cli.score",
    "monitor": "modelpilot.cli.monitor",
    "data": "modelpilot.cli.data",
    "evaluate": "modelpilot.cli.evaluate",
    "gate": "modelpilot.cli.evaluate",
    "optimize": "modelpilot.cli.optimize",
    "profile": "modelpilot.cli.profile",
    "audit": "modelpilot.cli.audit",
    "alerts": "modelpilot.cli.alerts",
    "server": "modelpilot.cli.server",
    "tokens": "modelpilot.cli.tokens",
    "pipelines": "modelpilot.cli.pipelines",
    "agent": "modelpilot.cli.agent",
    "approve": "modelpilot.cli.loop",
    "loop": "modelpilot.cli.loop",
    "governance": "modelpilot.cli.governance",
    "gc": "modelpilot.cli.gc",
    "package": "modelpilot.cli.package",
}
_GROUPS: list[str] = list(dict.fromkeys(COMMANDS.values()))

_state = {"debug": False}


def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks on errors."),
) -> None:
    _state["debug"] = debug


def version() -> None:
    """Print the modelpilot version."""
    typer.echo(f"modelpilot {__version__}")


def build_app(modules: Iterable[str]) -> typer.Typer:
    """The command line with the commands of ``modules`` (and ``version``)."""
    built = typer.Typer(
        name="modelpilot",
        help="Self-hosted MLOps: track, version, register, serve, release, monitor.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
    )
    built.callback()(_root)
    built.command()(version)
    for module in modules:
        importlib.import_module(module).register(built)
    return built


def __getattr__(name: str) -> Any:
    """``app``: every command, built on first use (``from modelpilot.cli.main import app``)."""
    if name == "app":
        built = build_app(_GROUPS)
        globals()["app"] = built
        return built
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def modules_for(args: list[str]) -> list[str]:
    """The command modules a command line needs: the named command's alone, since importing
    all of them costs about a second at every start (pandas, the evaluation and serving
    stacks); all of them for the root's help, no command or an unknown one (whose error
    lists the commands).

    >>> modules_for(["--debug", "models", "list"]), modules_for(["version"])
    (['modelpilot.cli.models'], [])
    >>> len(modules_for(["--help"])) == len(_GROUPS)
    True
    """
    command = next((arg for arg in args if not arg.startswith("-")), None)
    if command == "version":
        return []
    module = COMMANDS.get(command or "")
    return [module] if module else _GROUPS


def _run(args: list[str]) -> int:
    """Run one command; its exit code (click returns ``typer.Exit`` codes, not raises them)."""
    try:
        result = build_app(modules_for(args))(args=args, standalone_mode=False)
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
