"""The command line imports only the module of the command it runs: the table it does that
with must name every command each module registers, or a command would vanish."""

from __future__ import annotations

import importlib
import subprocess
import sys

import typer

from modelpilot.cli.main import _GROUPS, COMMANDS, app


def _registered(module: str) -> set[str]:
    scratch = typer.Typer()
    importlib.import_module(module).register(scratch)
    commands = {c.name or c.callback.__name__ for c in scratch.registered_commands if c.callback}
    return commands | {g.name for g in scratch.registered_groups if g.name}


def test_the_table_names_every_command_of_every_module() -> None:
    for module in _GROUPS:
        assert {name for name, owner in COMMANDS.items() if owner == module} == _registered(
            module
        ), module
    everything = typer.main.get_command(app)
    assert set(everything.commands) == set(COMMANDS) | {"version"}  # type: ignore[attr-defined]


def test_a_command_loads_its_own_module_only(exe: str) -> None:
    """``modelpilot models --help`` leaves the serving and evaluation stacks unimported."""
    probe = (
        "import sys\n"
        "from modelpilot.cli.main import main\n"
        "try:\n"
        "    main(['models', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "loaded = [m for m in ('modelpilot.cli.serve', 'modelpilot.cli.evaluate',"
        " 'modelpilot.cli.models') if m in sys.modules]\n"
        "print('LOADED', loaded)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "LOADED ['modelpilot.cli.models']" in done.stdout
    listed = subprocess.run(
        [exe, "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert listed.returncode == 0 and all(name in listed.stdout for name in COMMANDS)
    unknown = subprocess.run(
        [exe, "modles", "list"], capture_output=True, text=True, timeout=60, check=False
    )
    assert unknown.returncode == 2 and "No such command 'modles'" in unknown.stderr
