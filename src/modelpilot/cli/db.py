"""``modelpilot db``: schema migrations."""

from __future__ import annotations

import typer

from modelpilot.cli.context import console, get_workspace

db_app = typer.Typer(help="Metadata store maintenance.", no_args_is_help=True)


@db_app.command("upgrade")
def upgrade() -> None:
    """Bring the metadata schema to the newest revision."""
    settings = get_workspace().settings
    from modelpilot.store import migrate
    from modelpilot.store.engine import make_engine

    engine = make_engine(
        settings.resolved_store_uri(), busy_timeout_ms=settings.sqlite_busy_timeout_ms
    )
    revision = migrate.upgrade(engine)
    console.print(
        f"Schema at revision {revision} ({engine.url.render_as_string(hide_password=True)})."
    )


def register(app: typer.Typer) -> None:
    """Attach ``db`` commands."""
    app.add_typer(db_app, name="db")
