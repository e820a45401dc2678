"""``modelpilot score``: batch scoring of Parquet, CSV or TSV files with a progress bar."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from modelpilot.cli.context import console, get_workspace
from modelpilot.errors import InvalidInput

_EXECUTORS: dict[str, Literal["local", "ray"]] = {"local": "local", "ray": "ray"}


def score_command(
    ref: str = typer.Argument(..., help="Model reference, e.g. churn@champion"),
    source: Path = typer.Argument(
        ..., help="Input table: .parquet, .csv, .tsv, .csv.gz or .tsv.gz"
    ),
    output: Path = typer.Option(
        ..., "-o", "--output", help="Output table: .parquet, .csv, .tsv, .csv.gz or .tsv.gz"
    ),
    chunk_rows: int = typer.Option(
        100_000, "--chunk-rows", min=1, help="Rows per chunk, or per Ray batch (bounds memory)."
    ),
    workers: int = typer.Option(
        0,
        "--workers",
        min=0,
        help="Threads (on Ray: in all, shared out over the nodes; 0 = one per core).",
    ),
    executor: str = typer.Option(
        "local", "--executor", help="local (threads in this process) or ray (Ray actors)."
    ),
    ray_address: str | None = typer.Option(
        None,
        "--ray-address",
        help="Ray cluster for --executor ray (default: MODELPILOT_RAY_ADDRESS, else a local one).",
    ),
) -> None:
    """Score a file in chunks on every core (or on a Ray cluster), memory bounded whatever
    its size."""
    from modelpilot.serving.scoring import check_score_paths, total_rows

    if executor not in _EXECUTORS:
        raise InvalidInput(f"Unknown --executor {executor!r}; use local or ray.", field="executor")
    check_score_paths(source, output)  # before loading the model or drawing a bar
    if executor == "ray":
        from modelpilot.ray_cluster import import_ray

        import_ray("--executor ray")  # say how to install it before any work
    ws = get_workspace()
    total = total_rows(source)
    columns = [TextColumn("scoring"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("rows", total=total)
        rows = ws.score(
            ref,
            source,
            output,
            executor=_EXECUTORS[executor],
            ray_address=ray_address,
            chunk_rows=chunk_rows,
            workers=workers or None,
            progress=lambda n: progress.advance(task, n),
        )
    where = " on Ray" if executor == "ray" else ""
    console.print(f"Scored {rows:,} rows with {ref}{where} into {output}")


def register(app: typer.Typer) -> None:
    """Attach ``score``."""
    app.command("score")(score_command)
