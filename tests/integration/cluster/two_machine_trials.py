"""Tuning on the two-machine cluster, run as its own process (a Ray driver of that cluster;
the test process may already be one of the session's local cluster).

    python two_machine_trials.py HOME STORE_URI|- RAY_ADDRESS

Prints ``{"children": [...in_container of each child run...]}``, or the error's message.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from contextlib import closing
from pathlib import Path

from modelpilot.config import Settings
from modelpilot.errors import ModelpilotError
from modelpilot.workspace import Workspace


def in_container(params: Mapping[str, object]) -> dict[str, float]:
    """A trial that says where it ran (Docker puts /.dockerenv in every container)."""
    x = float(params["x"])  # type: ignore[arg-type]
    return {"score": -((x - 1.0) ** 2), "in_container": float(Path("/.dockerenv").exists())}


def main(home: str, store_uri: str, address: str) -> None:
    settings = Settings(home=Path(home), store_uri=None if store_uri == "-" else store_uri)
    with closing(Workspace(settings)) as ws:
        try:
            result = ws.tune(in_container, {"x": (-3.0, 3.0)}, n_trials=4, n_jobs=2,
                             executor="ray", ray_address=address, study_name="nodes")  # fmt: skip
        except ModelpilotError as exc:
            print(json.dumps({"error": exc.message}))
            return
        runs = ws.search_runs("tuning")
    children = runs[runs["parent_run_id"] == result.parent_run_id]
    print(json.dumps({"children": children["metrics.in_container"].tolist()}))


if __name__ == "__main__":
    main(*sys.argv[1:4])
