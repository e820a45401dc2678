"""DuckDB over the prediction log: every segment as one ``predictions`` view, and the
read-only SQL of ``modelpilot logs query``.

Only this module and :mod:`.reader` write SQL against the log; everyone else calls
:class:`~modelpilot.predictions.reader.PredictionReader`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from modelpilot.errors import InvalidInput, NotFound
from modelpilot.predictions.files import has_segments, segments_glob

if TYPE_CHECKING:
    import duckdb


@contextmanager
def connect(folder: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A DuckDB connection with the ``predictions`` view over every segment under ``folder``.

    The caller checks :func:`~modelpilot.predictions.files.has_segments` first: DuckDB fails
    on a glob that matches nothing.
    """
    import duckdb

    with duckdb.connect() as con:
        _create_view(con, folder)
        yield con


def _create_view(con: Any, folder: Path) -> None:
    """The ``predictions`` view (DDL cannot take parameters, so the path is quoted here)."""
    glob = segments_glob(folder).replace("'", "''")
    con.execute(
        f"CREATE VIEW predictions AS SELECT * FROM read_parquet('{glob}', union_by_name = true)"
    )


def query(folder: Path, sql: str) -> pd.DataFrame:
    """Run one read-only SELECT (or WITH) over the ``predictions`` view spanning every segment.

    The SQL comes from a person at a terminal, so it gets the prediction log and nothing else:
    one statement, SELECT or WITH only, in a connection whose file access is limited to the
    log's folder and whose configuration is locked (DuckDB ``enable_external_access`` and
    ``allowed_directories``). ``read_csv('/etc/passwd')``, ``COPY ... TO``, ``ATTACH`` and
    ``SET`` all fail with InvalidInput.
    """
    import duckdb

    folder = folder.resolve()  # the view and the allowed directory must name it alike
    if not has_segments(folder):
        raise NotFound(
            f"No prediction log segments under {folder} yet. Serve some requests first "
            "(the log flushes every second, and on shutdown).",
            field="predictions",
        )
    with connect(folder) as con:
        _check_read_only(con, sql)
        _lock_to_folder(con, folder)
        try:
            return con.execute(sql).df()
        except duckdb.PermissionException as exc:
            raise InvalidInput(
                f"The query tried to touch a file outside the prediction log "
                f"({_first_line(exc)}); `modelpilot logs query` only reads the prediction "
                "log: query the view, e.g. SELECT count(*) FROM predictions.",
                field="sql",
            ) from exc
        except duckdb.Error as exc:
            raise InvalidInput(f"The query failed: {_first_line(exc)}", field="sql") from exc


def _check_read_only(con: Any, sql: str) -> None:
    """Accept exactly one SELECT statement (a WITH query parses as one)."""
    import duckdb

    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise InvalidInput(f"The query does not parse: {_first_line(exc)}", field="sql") from exc
    kinds = [s.type.name for s in statements]
    if kinds != ["SELECT"]:
        got = ", ".join(kinds) or "nothing"
        raise InvalidInput(
            f"`modelpilot logs query` runs only SELECT or WITH queries, one at a time; got "
            f"{got}. Example: SELECT model, count(*) FROM predictions GROUP BY model.",
            field="sql",
        )


def _lock_to_folder(con: Any, folder: Path) -> None:
    """Files only under ``folder`` (the view reads them lazily), and no way to undo that."""
    allowed = (str(folder).rstrip("/") + "/").replace("'", "''")
    con.execute(f"SET allowed_directories = ['{allowed}']")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
