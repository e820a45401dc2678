"""``modelpilot score``: batch scoring of Parquet or CSV files with a progress bar."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from modelpilot.cli.context import console, get_workspace


def score_command(
    ref: str = typer.Argument(..., help="Model reference, e.g. churn@champion"),
    source: Path = typer.Argument(..., help="Input .parquet or .csv"),
    output: Path = typer.Option(..., "-o", "--output", help="Output .parquet or .csv"),
    chunk_rows: int = typer.Option(
        100_000, "--chunk-rows", min=1, help="Rows per chunk (bounds memory)."
    ),
    workers: int = typer.Option(0, "--workers", min=0, help="Processes (0 = one per core)."),
) -> None:
    """Score a file in chunks on every core, memory bounded whatever its size."""
    from modelpilot.serving.scoring import check_score_paths, score_file, total_rows

    check_score_paths(source, output)  # before loading the model or drawing a bar
    ws = get_workspace()
    model = ws.load_model(ref)
    total = total_rows(source) if source.suffix.lower() == ".parquet" and source.is_file() else None
    columns = [TextColumn("scoring"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("rows", total=total)
        rows = score_file(
            model,
            source,
            output,
            chunk_rows=chunk_rows,
            workers=workers or None,
            progress=lambda n: progress.advance(task, n),
        )
    console.print(f"Scored {rows:,} rows with {ref} into {output}")


def register(app: typer.Typer) -> None:
    """Attach ``score``."""
    app.command("score")(score_command)
