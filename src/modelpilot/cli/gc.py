"""``modelpilot gc``: delete blobs no record references (a dry run unless ``--yes``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from modelpilot.artifacts import CollectableArtifactStore
from modelpilot.cli.context import console, err_console, print_json
from modelpilot.clock import parse_duration_s
from modelpilot.errors import InvalidInput, shown

_REFRESH_WARN_S = 600.0  # S3 refreshes a re-put blob older than this (artifacts/s3.py)


def parse_min_age(text: str) -> float:
    """``--min-age`` as seconds: a duration such as 30m, 1h or 1d (0s keeps none back).

    >>> parse_min_age("1h"), parse_min_age("0s")
    (3600.0, 0.0)
    """
    seconds = parse_duration_s(text)
    if seconds is None:
        raise InvalidInput(
            f"--min-age {shown(text)} is not a duration: expected a number and a unit (s, m, "
            "h, d, w) such as 30m, 1h or 2d. Blobs younger than this are kept (default 1h).",
            field="min_age",
        )
    return seconds


def _size(num_bytes: int) -> str:
    """Bytes for people.

    >>> _size(512), _size(3 * 2**20)
    ('512 B', '3.0 MiB')
    """
    size = float(num_bytes)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


@contextmanager
def _progress(quiet: bool) -> Iterator[tuple[Callable[[int], None], Callable[[int], None]]]:
    """Two counters on stderr: blobs listed (no total: S3 lists page by page) and deleted."""
    if quiet:
        yield (lambda n: None), (lambda n: None)
        return
    columns = (SpinnerColumn(), TextColumn("{task.description} {task.completed}"))
    with Progress(*columns, TimeElapsedColumn(), console=err_console, transient=True) as bar:
        listed = bar.add_task("Listing blobs", total=None)
        deleted = bar.add_task("Deleting blobs", total=None, visible=False)

        def on_deleted(n: int) -> None:
            bar.update(deleted, advance=n, visible=True)

        yield (lambda n: bar.advance(listed, n)), on_deleted


def gc(
    yes: bool = typer.Option(False, "--yes", help="Delete. Without it: a dry run."),
    min_age: str = typer.Option(
        "1h", "--min-age", help="Keep blobs written more recently than this (30m, 1h, 1d)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Delete artifact blobs no model version, run, dataset or record references.

    A dry run by default: prints how many blobs, how many bytes and a few examples.
    """
    from modelpilot.artifact_gc import collect_garbage
    from modelpilot.cli.context import get_workspace

    min_age_s = parse_min_age(min_age)
    ws = get_workspace()
    store = ws.store  # refused over MODELPILOT_SERVER_URI: gc runs beside the store
    blobs = ws.artifacts
    if not isinstance(blobs, CollectableArtifactStore):  # pragma: no cover - local or S3 here
        raise InvalidInput("gc needs the artifact store itself (local folder or S3).")
    if yes and min_age_s < _REFRESH_WARN_S and not as_json:
        err_console.print(
            f"[yellow]Warning:[/yellow] --min-age {min_age} is under 10m: a blob a running "
            "registration has just written may be deleted before its record commits."
        )
    with _progress(as_json) as (on_listed, on_deleted):
        result = collect_garbage(
            store, blobs, min_age_s=min_age_s, is_dry_run=not yes,
            on_listed=on_listed, on_deleted=on_deleted,
        )  # fmt: skip
    if as_json:
        print_json(result.to_dict())
        return
    console.print(
        f"{result.location}: {result.scanned} blobs ({_size(result.scanned_bytes)}); "
        f"{result.kept_young} unreferenced but younger than {min_age} (kept).",
        highlight=False, soft_wrap=True,
    )  # fmt: skip
    for info in result.unreferenced[:5]:
        console.print(f"  {info.digest}  {_size(info.size_bytes)}", highlight=False)
    count, size = len(result.unreferenced), _size(result.unreferenced_bytes)
    if not yes:
        console.print(
            f"Would delete {count} unreferenced blobs ({size}). Dry run: nothing deleted; "
            "run `modelpilot gc --yes` to delete them.",
            highlight=False, soft_wrap=True,
        )  # fmt: skip
        return
    kept = f"; {result.kept_on_recheck} kept (written or referenced meanwhile)"
    console.print(
        f"Deleted {result.deleted} unreferenced blobs ({_size(result.deleted_bytes)})"
        f"{kept if result.kept_on_recheck else ''}.",
        highlight=False, soft_wrap=True,
    )  # fmt: skip


def register(app: typer.Typer) -> None:
    """Attach ``gc``."""
    app.command("gc")(gc)
