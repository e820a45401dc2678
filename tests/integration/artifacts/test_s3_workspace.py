"""A workspace on ``MODELPILOT_ARTIFACTS_URI=s3://…`` (a real SeaweedFS): a model logged in
one process loads in a fresh one through the CLI, and wrong credentials or a missing bucket
are one clear line and exit code 6 from the CLI, with nothing half-registered."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from modelpilot.cli.main import main
from modelpilot.config import Settings
from modelpilot.errors import NotFound, Unavailable
from modelpilot.workspace import Workspace
from s3_server import SECRET_KEY, RunningS3

UNAVAILABLE_EXIT = 6


def _data() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})


def _env(
    home: Path, uri: str, server: RunningS3, *, secret_key: str = SECRET_KEY
) -> dict[str, str]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MODELPILOT_"))}
    return {
        **inherited,
        **server.env(secret_key=secret_key),
        "MODELPILOT_HOME": str(home),
        "MODELPILOT_ARTIFACTS_URI": uri,
        # a fresh machine's cache: the model must come from the bucket
        "MODELPILOT_ARTIFACT_CACHE_DIR": str(home / f"cache-{uuid.uuid4().hex}"),
    }


@pytest.fixture
def logged(
    s3_server: RunningS3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, str]:
    """A home whose model 'churn' v1 lives in the bucket (logged in this process)."""
    uri = f"s3://{s3_server.bucket}/ws/{uuid.uuid4().hex}"
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    data = _data()
    model = LogisticRegression().fit(data, (data["a"] > 0).astype(int))
    ws = Workspace(Settings(home=tmp_path / "home", artifacts_uri=uri))
    try:
        ws.log_model(model, "churn", input_example=data.head(3))
    finally:
        ws.close()
    prefix = uri.split("/", 3)[3]
    listed = s3_server.client().list_objects_v2(Bucket=s3_server.bucket, Prefix=prefix)
    assert listed["KeyCount"] >= 2  # the manifest and the model file at least
    assert not (tmp_path / "home" / "artifacts").exists()  # nothing in the local folder
    return tmp_path / "home", uri


_LOAD = (
    "import sys, pandas as pd, modelpilot as mp; "
    "print(len(mp.load_model('churn/1').predict(pd.read_csv(sys.argv[1]))))"
)


def test_a_model_logged_to_s3_loads_in_a_fresh_process(
    logged: tuple[Path, str], s3_server: RunningS3, tmp_path: Path
) -> None:
    home, uri = logged
    source = tmp_path / "in.csv"
    _data().to_csv(source, index=False)
    loaded = subprocess.run(
        [sys.executable, "-c", _LOAD, str(source)],
        capture_output=True,
        text=True,
        env=_env(home, uri, s3_server),
        timeout=120,
    )
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "200"


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("wrong credentials", "refused the credentials (HTTP 403"),
        ("missing bucket", "bucket 'no-such-bucket' does not exist there"),
    ],
)
def test_s3_misconfiguration_through_the_cli_is_one_line_and_exit_6(
    logged: tuple[Path, str],
    s3_server: RunningS3,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    case: str,
    expected: str,
) -> None:
    home, uri = logged
    if case == "missing bucket":
        env = _env(home, "s3://no-such-bucket/ws", s3_server)
    else:
        env = _env(home, uri, s3_server, secret_key="wrong")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    source = tmp_path / "in.csv"
    _data().to_csv(source, index=False)
    with pytest.raises(SystemExit) as exit_info:
        main(["score", "churn/1", str(source), "-o", str(tmp_path / "out.csv")])
    err = capsys.readouterr().err
    assert exit_info.value.code == UNAVAILABLE_EXIT, err
    assert f"Error: Artifact store {env['MODELPILOT_ARTIFACTS_URI']}" in err
    assert expected in err and "Traceback" not in err


def test_a_failed_upload_registers_no_version(
    s3_server: RunningS3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in s3_server.env(secret_key="wrong").items():
        monkeypatch.setenv(name, value)
    data = _data()
    model = LogisticRegression().fit(data, (data["a"] > 0).astype(int))
    ws = Workspace(Settings(home=tmp_path, artifacts_uri=f"s3://{s3_server.bucket}/failed"))
    try:
        with pytest.raises(Unavailable, match="refused the credentials"):
            ws.log_model(model, "churn", input_example=data.head(3))
        with pytest.raises(NotFound):
            ws.get_model_version("churn/1")
    finally:
        ws.close()
