"""``modelpilot tokens``: create, list and revoke API tokens.

With ``MODELPILOT_SERVER_URI`` set they go through the server's admin routes (an admin
``MODELPILOT_TOKEN``); without one they work on the local store directly, so the first admin
token can be created before anyone can call the server.
"""

from __future__ import annotations

import typer
from rich.table import Table

from modelpilot.cli.context import console, fmt_ms, get_workspace, print_json
from modelpilot.clock import now_ms

tokens_app = typer.Typer(help="API tokens for modelpilot server.", no_args_is_help=True)


@tokens_app.command("create")
def create(
    name: str = typer.Argument(..., help="Who or what uses the token (a person, a CI job)."),
    role: str = typer.Option(..., "--role", help="viewer, editor, deployer or admin."),
    expires_in: str | None = typer.Option(
        None, "--expires-in", help="Lifetime such as 12h, 30d or 1w (default: never expires)."
    ),
) -> None:
    """Create a token and print it once (only a salted hash is stored)."""
    from modelpilot.identity import Role, parse_expires_in

    parse_expires_in(expires_in)  # a bad duration is refused before anything is asked
    new = get_workspace().tokens.create_token(name, Role.parse(role), expires_in=expires_in)
    expiry = fmt_ms(new.info.expires_ms) if new.info.expires_ms else "never"
    console.print(f"Created token {name!r} (role {new.info.role.label}, expires {expiry}).")
    console.print("Copy it now; it is not shown again:", highlight=False)
    typer.echo(new.token)


@tokens_app.command("list")
def list_command(as_json: bool = typer.Option(False, "--json")) -> None:
    """List tokens (never their secrets)."""
    found = get_workspace().tokens.list_tokens()
    if as_json:
        print_json([t.to_json() for t in found])
        return
    now = now_ms()
    table = Table(title="API tokens")
    for column in ("name", "role", "state", "created", "by", "expires", "last used"):
        table.add_column(column)
    for t in found:
        state = "revoked" if t.revoked_ms else ("active" if t.is_active(now) else "expired")
        table.add_row(
            t.name,
            t.role.label,
            state,
            fmt_ms(t.created_ms),
            t.created_by,
            fmt_ms(t.expires_ms) if t.expires_ms else "never",
            fmt_ms(t.last_used_ms),
        )
    console.print(table)


@tokens_app.command("revoke")
def revoke(name: str = typer.Argument(..., help="Token name (or id).")) -> None:
    """Revoke a token; the server refuses it from the next request on."""
    token = get_workspace().tokens.revoke_token(name)
    console.print(f"Revoked token {token.name!r} ({token.role.label}).")


def register(app: typer.Typer) -> None:
    """Attach ``tokens``."""
    app.add_typer(tokens_app, name="tokens")
