"""Personal data in the prediction log: policies set with the installed CLI reach a running
server, raw values never reach a file, files are 0600, labels still join, old segments go."""

from __future__ import annotations

import logging
import os
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from conftest import HERE, Server
from modelpilot import release
from modelpilot.config import Settings
from modelpilot.predictions import LogBatch, read_predictions, write_segments
from modelpilot.predictions.labels import log_labels, read_labels
from modelpilot.predictions.log_policy import REDACTED, hash_values, load_hash_key
from modelpilot.predictions.retention import DAY_MS
from modelpilot.release.report import quality_against_labels
from modelpilot.workspace import Workspace

PEOPLE = pd.DataFrame(
    {
        "email": ["ada@example.org", "alan@example.org", "grace@example.org"],
        "full_name": ["Ada Lovelace", "Alan Turing", "Grace Hopper"],
        "ssn": ["078-05-1120", "219-09-9999", "457-55-5462"],
        "age": [36, 41, 85],
        "plan": ["basic", "pro", "basic"],
    }
)


def _live(rows: int = 20) -> pd.DataFrame:
    """Records sent after the policy is in force; emails repeat so hashes must group."""
    return pd.DataFrame(
        {
            "email": [f"live{i % 10}@example.org" for i in range(rows)],
            "full_name": [f"Livia Person{i}" for i in range(rows)],
            "ssn": [f"123-45-{6000 + i}" for i in range(rows)],
            "age": [20 + 3 * i for i in range(rows)],
            "plan": ["basic", "pro"] * (rows // 2),
        }
    )


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """people/1 (a classifier over personal columns) behind the deployment people-prod."""
    home = tmp_path_factory.mktemp("pii") / "home"
    ws = Workspace(Settings(home=home))
    sys.path.insert(0, str(HERE))
    try:
        from pii_models import OlderThanForty

        mv = ws.log_model(OlderThanForty(), "people", input_example=PEOPLE)
    finally:
        sys.path.remove(str(HERE))
    release.create_deployment(ws.store, "people-prod", mv.ref)
    ws.close()
    yield home


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The installed ``modelpilot`` executable, as a user runs it."""
    exe = shutil.which("modelpilot")
    assert exe is not None, "the modelpilot executable is not installed on PATH"
    env = {**os.environ, "MODELPILOT_HOME": str(home), "COLUMNS": "200"}
    return subprocess.run(
        [exe, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


def _old_segment(predictions: Path, email: str) -> Path:
    """A segment of people-prod rows logged 40 days ago, raw email and all."""
    stamp = int(time.time() * 1000) - 40 * DAY_MS
    batch = LogBatch(
        "people",
        1,
        {
            "request_id": ["old-1"],
            "timestamp_ms": np.array([stamp], dtype=np.int64),
            "deployment": ["people-prod"],
            "in.email": [email],
        },
    )
    write_segments(predictions, [batch])
    (segment,) = (predictions / "people").glob("seg-*.parquet")
    return segment


def _until(condition: Callable[[], bool], what: str, deadline_s: float = 30) -> None:
    """Poll a running server's observable state until ``condition`` holds (bounded)."""
    deadline = time.monotonic() + deadline_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)  # polling another process; bounded by the deadline


def test_log_model_reports_personal_columns_with_suggested_policies(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ws = Workspace(Settings(home=tmp_path / "home"))
    sys.path.insert(0, str(HERE))
    try:
        from pii_models import OlderThanForty

        with caplog.at_level(logging.WARNING, logger="modelpilot.workspace"):
            mv = ws.log_model(OlderThanForty(), "people", input_example=PEOPLE)
    finally:
        sys.path.remove(str(HERE))
        ws.close()
    found = {f.column: (f.kind, f.suggested_action) for f in mv.pii_findings}
    assert found == {
        "email": ("email", "hash"),
        "full_name": ("person_name", "redact"),
        "ssn": ("national_id", "drop"),
    }
    assert "people/1: input 'email' looks like email" in caplog.text
    assert "modelpilot logs policy set people --column ssn=drop" in caplog.text


def test_policy_set_with_the_cli_reaches_a_running_server_and_protects_every_file(
    start_server: Callable[..., Server], home: Path
) -> None:
    predictions = home / "predictions"
    old = _old_segment(predictions, "old-raw@example.org")
    server = start_server("people-prod", extra=("--durability", "sync"), server_home=home)
    done = cli(
        home,
        *("logs", "policy", "set", "people", "--column", "email=hash"),
        *("--column", "full_name=redact", "--column", "ssn=drop", "--retention-days", "30"),
    )
    assert done.returncode == 0, done.stderr
    assert "email=hash" in cli(home, "logs", "policy", "show").stdout

    with httpx.Client() as client:

        def policy_applied() -> bool:  # a probe request, logged with whatever policy is live
            probe = {**PEOPLE.iloc[0].to_dict(), "email": "probe@example.org"}
            request_id = client.post(f"{server.url}/predict/people-prod", json=[probe]).json()[
                "request_id"
            ]
            client.post(f"{server.url}/admin/flush")
            rows = read_predictions(predictions, model="people")
            return bool(
                rows.loc[rows["request_id"] == request_id, "in.email"].ne(probe["email"]).all()
            )

        _until(policy_applied, "the new logging policy on the running server")
        live = _live()
        ids = [
            client.post(f"{server.url}/predict/people-prod", json=[record]).json()["request_id"]
            for record in live.to_dict(orient="records")
        ]
        client.post(f"{server.url}/admin/flush")
    _until(lambda: not old.exists(), "the 40-day-old segment to pass its 30-day retention")
    server.stop()  # the shutdown flush must respect the policy too

    files = _files(predictions)
    assert any(p.name.startswith("seg-") for p in files)
    for path in [*files, home / "predlog-hash.key"]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    raw_values = [*live["email"], *live["full_name"], *live["ssn"], "old-raw@example.org"]
    for path in files:
        data = path.read_bytes()
        leaked = [v for v in raw_values if v.encode() in data]
        assert leaked == [], f"{path} holds raw values {leaked[:3]}"

    rows = read_predictions(predictions, model="people").set_index("request_id").loc[ids]
    key = load_hash_key(home)
    assert rows["in.email"].tolist() == hash_values(key, live["email"].tolist())
    assert rows["in.email"].nunique() == 10  # equal inputs, equal hashes: group-bys work
    assert (rows["in.full_name"] == REDACTED).all()
    assert "in.ssn" not in rows or rows["in.ssn"].isna().all()  # dropped (null: earlier rows)
    assert rows["in.age"].astype(int).tolist() == live["age"].tolist()  # kept as sent
    assert rows["in.plan"].tolist() == live["plan"].tolist()

    # Labels join on request ids, untouched by hashing: accuracy still computes.
    truth = (live["age"] > 40).astype(int).to_numpy()
    truth[:4] = 1 - truth[:4]  # four wrong predictions out of twenty
    log_labels(home, "people-prod", ids, truth.tolist())
    joined = rows.reset_index().merge(read_labels(home, "people-prod"), on="request_id")
    quality, labelled = quality_against_labels(joined)
    assert labelled == 20 and quality["accuracy"] == pytest.approx(16 / 20)
    for path in (home / "labels").rglob("*.parquet"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_purge_before_a_date_deletes_only_older_segments_and_keeps_the_rest_readable(
    tmp_path: Path,
) -> None:
    predictions = tmp_path / "home" / "predictions"
    now = int(time.time() * 1000)
    for days_ago in (10, 5, 1, 0):
        batch = LogBatch(
            "people",
            2,
            {
                "request_id": [f"d{days_ago}-a", f"d{days_ago}-b"],
                "timestamp_ms": np.full(2, now - days_ago * DAY_MS, dtype=np.int64),
                "in.age": np.array([30.0, 50.0]),
            },
        )
        write_segments(predictions, [batch])
    dry = cli(tmp_path / "home", "logs", "purge", "--before", "3d", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "Would delete 2 segments (4 rows)" in dry.stdout
    assert len(list(predictions.rglob("seg-*.parquet"))) == 4
    done = cli(tmp_path / "home", "logs", "purge", "--before", "3d")
    assert "Deleted 2 segments (4 rows)" in done.stdout and "2 kept" in done.stdout
    left = read_predictions(predictions)
    assert sorted(left["request_id"]) == ["d0-a", "d0-b", "d1-a", "d1-b"]


def test_policy_for_an_input_the_model_lacks_is_refused_with_its_inputs(home: Path) -> None:
    done = cli(home, "logs", "policy", "set", "people", "--column", "emial=hash")
    assert done.returncode == 2
    assert "Model 'people' has no input 'emial'; its inputs are: email, full_name" in done.stderr
