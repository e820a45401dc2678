"""Several processes on one SQLite store: no lock errors, no lost points."""

from __future__ import annotations

import logging
import multiprocessing
from pathlib import Path

from modelpilot.config import Settings
from modelpilot.store.migrate import HEAD_REVISION
from modelpilot.workspace import Workspace

PROCESSES = 8
POINTS_PER_PROCESS = 2_000


def _log_points(home: str, index: int) -> str:
    ws = Workspace(
        Settings(home=Path(home), metric_flush_interval_ms=5, metric_flush_max_points=200)
    )
    with ws.start_run("concurrency", name=f"worker-{index}") as run:
        ws.log_params({"worker": index})
        for step in range(POINTS_PER_PROCESS):
            ws.log_metric("loss", 1.0 / (step + 1))
            if step % 500 == 0:
                ws.log_metric("checkpoint", float(step), step=step)
    ws.close()
    return run.id


def test_eight_processes_log_to_one_sqlite_store_without_losing_points(
    sqlite_settings: Settings,
) -> None:
    Workspace(sqlite_settings).store  # noqa: B018 - create and migrate the store once
    context = multiprocessing.get_context("spawn")
    with context.Pool(PROCESSES) as pool:
        run_ids = pool.starmap(
            _log_points, [(str(sqlite_settings.home), i) for i in range(PROCESSES)]
        )
    ws = Workspace(sqlite_settings)
    for run_id in run_ids:
        run = ws.get_run(run_id)
        assert run.status.value == "FINISHED"
        history = ws.get_metric_history(run_id, "loss")
        assert len(history) == POINTS_PER_PROCESS
        assert [p.step for p in history] == list(range(POINTS_PER_PROCESS))
    assert len(set(run_ids)) == PROCESSES


def test_processes_opening_a_fresh_store_at_once_migrate_it_once(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    with context.Pool(4) as pool:
        results = pool.starmap(_log_points_small, [(str(tmp_path / "fresh"), i) for i in range(4)])
    ws = Workspace(Settings(home=tmp_path / "fresh"))
    assert {ws.get_run(r).name for r, _ in results} == {f"w{i}" for i in range(4)}
    creations = [steps for _, steps in results if steps]
    assert len(creations) == 1, results  # one process created the schema; the others waited
    assert creations[0] == [f"Created a new store's schema at revision {HEAD_REVISION}"]
    ws.close()


def _log_points_small(home: str, index: int) -> tuple[str, list[str]]:
    """Log one point; return the run id and the schema creations or Alembic upgrade steps
    this process ran."""
    steps: list[str] = []

    class Steps(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage().startswith(("Running upgrade", "Created a new store")):
                steps.append(record.getMessage())

    for name in ("alembic.runtime.migration", "modelpilot.store.migrate"):
        logging.getLogger(name).setLevel(logging.INFO)
        logging.getLogger(name).addHandler(Steps())
    ws = Workspace(Settings(home=Path(home)))
    with ws.start_run("fresh", name=f"w{index}") as run:
        ws.log_metric("m", 1.0)
    ws.close()
    return run.id, steps
