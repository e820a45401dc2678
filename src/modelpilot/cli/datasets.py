"""``modelpilot datasets``: dataset versions and their profiles."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from modelpilot.cli.context import console, fmt_ms, get_workspace, print_json

datasets_app = typer.Typer(help="Dataset versions.", no_args_is_help=True)


@datasets_app.command("list")
def list_all(as_json: bool = typer.Option(False, "--json")) -> None:
    """Every dataset version, newest first."""
    versions = get_workspace().datasets.list_datasets()
    if as_json:
        print_json([{"name": v.name, "version": v.version, "rows": v.num_rows} for v in versions])
        return
    table = Table(title="Datasets")
    for col in ("name", "version", "rows", "columns", "storage", "created"):
        table.add_column(col)
    for v in versions:
        table.add_row(
            v.name, v.version, str(v.num_rows), str(len(v.schema)), v.storage, fmt_ms(v.created_ms)
        )
    console.print(table)


@datasets_app.command("show")
def show(
    ref: str = typer.Argument(..., help="name or name@version"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Schema and profile of a dataset version."""
    version = get_workspace().get_dataset(ref)
    if as_json:
        print_json(
            {
                "name": version.name,
                "version": version.version,
                "digest": version.digest,
                "rows": version.num_rows,
                "schema": version.schema,
                "profile": version.profile,
                "source": version.source,
            }
        )
        return
    console.print(
        f"[bold]{version.ref}[/bold]  {version.num_rows} rows  stored as {version.storage}"
    )
    table = Table(title="Profile")
    for col in ("column", "dtype", "nulls", "min", "median", "max", "top"):
        table.add_column(col)
    for name, stats in version.profile.get("columns", {}).items():
        top = ", ".join(list(stats.get("top", {}))[:3])
        table.add_row(
            name,
            stats.get("dtype", ""),
            str(stats.get("nulls", 0)),
            _fmt(stats.get("min")),
            _fmt(stats.get("quantiles", {}).get("0.5")),
            _fmt(stats.get("max")),
            top,
        )
    console.print(table)


@datasets_app.command("card")
def card(
    ref: str = typer.Argument(..., help="name or name@version"),
    output: Path | None = typer.Option(
        None, "-o", "--output", help="card.html, card.md or card.json"
    ),
) -> None:
    """Write (or print as Markdown) the card of a dataset version (built by the server when
    one is configured)."""
    dataset_card = get_workspace().cards.dataset_card(ref)
    if output is None:
        console.print(dataset_card.to_markdown(), highlight=False, markup=False)
        return
    dataset_card.save(output)
    console.print(f"Wrote the dataset card of {dataset_card.data['ref']} to {output}")


def _fmt(value: object) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def register(app: typer.Typer) -> None:
    """Attach ``datasets`` commands."""
    app.add_typer(datasets_app, name="datasets")
