"""The prediction log shared through a bucket (``MODELPILOT_PREDICTIONS_URI``) on a real
SeaweedFS: two machines' data planes ship their segments, a third reads every row once, the
bucket stays plain Parquet for pyarrow and DuckDB, and a bucket outage loses nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Literal

import duckdb
import numpy as np
import pytest

from modelpilot.errors import CorruptArtifact, InvalidInput, Unavailable
from modelpilot.predictions import LogBatch, PredictionReader, log_folder
from modelpilot.predictions.bucket import LogBucket
from modelpilot.predictions.writer import PredictionLog
from s3_server import ACCESS_KEY, SECRET_KEY, RunningS3


@pytest.fixture
def aws_env(s3_server: RunningS3, monkeypatch: pytest.MonkeyPatch) -> RunningS3:
    for key, value in s3_server.env().items():
        monkeypatch.setenv(key, value)
    return s3_server


@pytest.fixture
def uri(aws_env: RunningS3) -> str:
    """A fresh prefix of the test bucket per test."""
    return f"s3://{aws_env.bucket}/predlog-{uuid.uuid4().hex[:8]}"


def _batch(model: str, ids: list[str]) -> LogBatch:
    return LogBatch(
        model,
        len(ids),
        {
            "request_id": ids,
            "timestamp_ms": np.arange(1, len(ids) + 1, dtype=np.int64),
            "in.age": np.arange(len(ids), dtype=np.int64),
        },
    )


def _serve_rows(home: Path, uri: str, ids: list[str], durability: str = "sync") -> PredictionLog:
    """A data plane's log on one machine: rows appended, then closed (flushed and shipped)."""
    mode: Literal["async", "sync"] = "sync" if durability == "sync" else "async"
    predlog = PredictionLog(log_folder(home), durability=mode, bucket=LogBucket(uri))
    predlog.start()
    predlog.append(_batch("churn", ids))
    predlog.close()
    return predlog


def test_every_machine_reads_every_row_once(tmp_path: Path, uri: str) -> None:
    _serve_rows(tmp_path / "a", uri, ["a1", "a2", "a3"])
    _serve_rows(tmp_path / "b", uri, ["b1", "b2"], durability="async")
    reader_home = tmp_path / "reader"
    bucket = LogBucket(uri)

    first = bucket.pull(log_folder(reader_home))
    again = bucket.pull(log_folder(reader_home))

    rows = PredictionReader.of_home(reader_home).rows()
    assert sorted(rows["request_id"]) == ["a1", "a2", "a3", "b1", "b2"]
    assert (first.copied, again.copied, again.present) == (2, 0, 2)
    # machine a pulls b's segment next to its own, and never downloads its own back
    pulled = bucket.pull(log_folder(tmp_path / "a"))
    assert (pulled.copied, pulled.present) == (1, 1)
    assert sorted(PredictionReader.of_home(tmp_path / "a").rows()["request_id"]) == sorted(
        rows["request_id"]
    )
    # shipping again uploads nothing: the bucket has it all
    assert bucket.ship(log_folder(tmp_path / "a")).copied == 0


def test_the_bucket_is_plain_parquet_for_pyarrow_and_duckdb(
    tmp_path: Path, uri: str, aws_env: RunningS3
) -> None:
    import pyarrow.dataset as ds
    import pyarrow.fs as pafs

    _serve_rows(tmp_path / "a", uri, ["a1", "a2"])
    _serve_rows(tmp_path / "b", uri, ["b1"])
    s3 = pafs.S3FileSystem(
        endpoint_override=aws_env.endpoint_url,
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        region="us-east-1",
        scheme="http",
    )
    dataset = ds.dataset(uri.removeprefix("s3://"), filesystem=s3, format="parquet")
    assert sorted(dataset.to_table().column("request_id").to_pylist()) == ["a1", "a2", "b1"]
    with duckdb.connect() as con:
        con.register("predictions", dataset)
        assert con.execute("SELECT count(*) FROM predictions").fetchone() == (3,)


def test_a_segment_changed_in_the_bucket_is_refused_and_not_kept(
    tmp_path: Path, uri: str, aws_env: RunningS3
) -> None:
    _serve_rows(tmp_path / "a", uri, ["a1"])
    client = aws_env.client()
    prefix = uri.removeprefix(f"s3://{aws_env.bucket}/")
    key = client.list_objects_v2(Bucket=aws_env.bucket, Prefix=prefix)["Contents"][0]["Key"]
    metadata = client.head_object(Bucket=aws_env.bucket, Key=key)["Metadata"]
    client.put_object(Bucket=aws_env.bucket, Key=key, Body=b"not parquet", Metadata=metadata)

    folder = log_folder(tmp_path / "reader")
    with pytest.raises(CorruptArtifact, match="does not match the sha256"):
        LogBucket(uri).pull(folder)
    assert list(folder.rglob("*")) == [folder / "churn"]  # no partial or altered file


def test_a_bucket_outage_keeps_every_acknowledged_row_and_ships_later(
    tmp_path: Path, uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "a"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    predlog = _serve_rows(home, uri, ["a1", "a2"])  # close() must not raise
    assert predlog.ship_errors == 1
    assert sorted(PredictionReader.of_home(home).rows()["request_id"]) == ["a1", "a2"]
    with pytest.raises(Unavailable, match="Prediction log bucket .* refused the credentials"):
        LogBucket(uri).ship(log_folder(home))

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    assert LogBucket(uri).ship(log_folder(home)).copied == 1


def test_a_uri_that_is_not_s3_names_the_setting() -> None:
    with pytest.raises(InvalidInput, match="MODELPILOT_PREDICTIONS_URI='/srv/logs' is not an S3"):
        LogBucket("/srv/logs")


def _cli(home: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    executable = shutil.which("modelpilot")
    assert executable is not None, "the modelpilot console script must be installed"
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("MODELPILOT_")}
    return subprocess.run(
        [executable, "logs", *args],
        env={**inherited, **env, "MODELPILOT_HOME": str(home), "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_logs_ship_pull_and_query_through_the_cli(tmp_path: Path, uri: str) -> None:
    writer_home, reader_home = tmp_path / "writer", tmp_path / "reader"
    from modelpilot.predictions import write_segments

    write_segments(log_folder(writer_home), [_batch("churn", ["w1", "w2"])])
    setting = {"MODELPILOT_PREDICTIONS_URI": uri}

    unset = _cli(writer_home, {}, "ship")
    shipped = _cli(writer_home, setting, "ship")
    queried = _cli(reader_home, setting, "query", "SELECT count(*) AS n FROM predictions")
    pulled = _cli(reader_home, setting, "pull")

    assert unset.returncode == 2
    assert "set MODELPILOT_PREDICTIONS_URI=s3://bucket/prefix" in unset.stderr
    assert shipped.returncode == 0, shipped.stderr
    assert f"Shipped 1 segment(s) to {uri}" in shipped.stdout
    assert queried.returncode == 0, queried.stderr  # the query pulled the segment first
    assert "│ 2 │" in queried.stdout or " 2 " in queried.stdout
    assert pulled.returncode == 0, pulled.stderr
    assert "Pulled 0 segment(s)" in pulled.stdout
