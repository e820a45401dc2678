"""``modelpilot gc`` keeps the same promises on the local folder and on S3 (a real SeaweedFS):
every blob a record names survives (a package's files included), old orphans go, young ones
stay, a dry run deletes nothing, a reference made while gc runs is seen, and S3 listings page
past 1,000 keys. The CLI is checked through the installed executable."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from modelpilot.artifact_gc import collect_garbage
from modelpilot.artifacts import CollectableArtifactStore, S3ArtifactStore, sha256_bytes
from modelpilot.config import Settings
from modelpilot.models.package import read_manifest
from modelpilot.store.events import list_events
from modelpilot.workspace import Workspace
from mp_server import free_port
from s3_server import RunningS3

LATER_S = 2 * 3600.0  # a clock two hours on: every blob written now is past the 1 h grace
# the interpreter's bin folder first, where pip put the script (as test_console_script.py)
MODELPILOT = shutil.which(
    "modelpilot", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])
)


def _data() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"a": rng.normal(size=50), "b": rng.normal(size=50)})


def _s3_env(server: RunningS3) -> dict[str, str]:
    return {**server.env(), "MODELPILOT_S3_MAX_ATTEMPTS": "2"}


@pytest.fixture(params=["local", "s3"])
def ws(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Workspace]:
    """A workspace whose blobs are in the local folder, or under a fresh prefix in S3."""
    uri = None
    if request.param == "s3":
        server: RunningS3 = request.getfixturevalue("s3_server")
        for name, value in server.env().items():
            monkeypatch.setenv(name, value)
        uri = f"s3://{server.bucket}/gc/{uuid.uuid4().hex}"
    workspace = Workspace(Settings(home=tmp_path / "home", artifacts_uri=uri))
    yield workspace
    workspace.close()


def _blobs(ws: Workspace) -> CollectableArtifactStore:
    blobs = ws.artifacts
    assert isinstance(blobs, CollectableArtifactStore)
    return blobs


def test_blobs_named_by_records_survive_and_old_orphans_go(ws: Workspace, tmp_path: Path) -> None:
    data = _data()
    version = ws.log_model(
        LogisticRegression().fit(data, (data["a"] > 0).astype(int)), "churn",
        input_example=data.head(3),
    )  # fmt: skip
    manifest = read_manifest(ws.artifacts, version.package_digest)
    package_files = set(manifest["files"].values())
    dataset = ws.log_dataset(data, "train")
    report = ws.artifacts.put_bytes(b"<html>evaluation</html>")
    ws.registry.add_record(version.ref, "evaluation", {"ok": True}, blob_digest=report)
    (tmp_path / "notes.txt").write_text("run notes")
    with ws.start_run():
        logged = ws.log_artifact(tmp_path / "notes.txt")
    orphan = ws.artifacts.put_bytes(b"bytes of a registration that failed")

    result = collect_garbage(ws.store, _blobs(ws), is_dry_run=False, now_s=time.time() + LATER_S)

    assert [b.digest for b in result.unreferenced] == [orphan]
    assert (result.deleted, result.deleted_bytes) == (
        1,
        len(b"bytes of a registration that failed"),
    )
    assert not ws.artifacts.exists(orphan)
    kept = {version.package_digest, manifest["input_example"], dataset.location, report}
    kept |= package_files | set(logged.values())
    assert all(ws.artifacts.exists(d) for d in kept)
    # the files only the manifest names are what the model needs to load
    assert len(ws.load_model("churn/1").predict(data.head(4))) == 4


def test_a_young_orphan_is_kept_and_a_dry_run_deletes_nothing(ws: Workspace) -> None:
    orphan = ws.artifacts.put_bytes(b"just written, its record not committed yet")

    young = collect_garbage(ws.store, _blobs(ws), is_dry_run=False)
    dry = collect_garbage(ws.store, _blobs(ws), now_s=time.time() + LATER_S)

    assert (young.kept_young, young.deleted, young.unreferenced) == (1, 0, [])
    assert dry.is_dry_run and [b.digest for b in dry.unreferenced] == [orphan]
    assert dry.deleted == 0 and ws.artifacts.exists(orphan)


def test_a_reference_committed_while_gc_lists_is_seen_before_deleting(
    ws: Workspace, tmp_path: Path
) -> None:
    (tmp_path / "late.txt").write_text("logged while gc was listing")
    digest = ws.artifacts.put_file(tmp_path / "late.txt")
    run = ws.start_run()
    committed: list[str] = []

    def commit_a_record_once(_: int) -> None:  # a concurrent writer, at a known moment
        if not committed:
            committed.append(ws.run_artifacts.log_file(run.id, tmp_path / "late.txt", "x"))

    result = collect_garbage(
        ws.store, _blobs(ws), is_dry_run=False, now_s=time.time() + LATER_S,
        on_listed=commit_a_record_once,
    )  # fmt: skip

    assert committed == [digest]
    assert (result.deleted, result.kept_on_recheck) == (0, 1)
    assert ws.artifacts.exists(digest)


def test_a_real_gc_is_an_audit_event_with_count_and_bytes(ws: Workspace) -> None:
    ws.artifacts.put_bytes(b"a" * 10)
    ws.artifacts.put_bytes(b"b" * 32)

    collect_garbage(ws.store, _blobs(ws), is_dry_run=False, now_s=time.time() + LATER_S)

    with ws.store.read() as conn:
        event = list_events(conn, "artifacts:")[0]
    assert event.kind == "artifacts.gc"
    assert event.subject == f"artifacts:{_blobs(ws).describe()}"
    assert (event.payload["deleted"], event.payload["deleted_bytes"]) == (2, 42)


def test_putting_an_old_blob_again_makes_it_young(tmp_path: Path) -> None:
    ws = Workspace(Settings(home=tmp_path / "home"))
    try:
        digest = ws.artifacts.put_bytes(b"an old orphan about to be referenced again")
        path = ws.artifacts.path_for(digest)  # type: ignore[attr-defined]
        os.utime(path, (time.time() - LATER_S, time.time() - LATER_S))
        ws.artifacts.put_bytes(b"an old orphan about to be referenced again")
        result = collect_garbage(ws.store, _blobs(ws), is_dry_run=False)
    finally:
        ws.close()
    assert (result.kept_young, result.deleted) == (1, 0)


def test_s3_re_put_of_an_old_blob_refreshes_it_in_place(
    s3_server: RunningS3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    ws = Workspace(Settings(home=tmp_path / "h", artifacts_uri=f"s3://{s3_server.bucket}/r"))
    try:
        blobs = ws.artifacts
        assert isinstance(blobs, S3ArtifactStore)
        digest = blobs.put_bytes(b"refreshed")
        copies: list[str] = []  # the store's own client: a hook counts its CopyObject calls
        blobs._s3().meta.events.register(
            "before-call.s3.CopyObject", lambda **kw: copies.append("copy")
        )
        monkeypatch.setattr("modelpilot.artifacts.s3.REFRESH_AFTER_S", -1.0)  # every blob "old"
        assert blobs.put_bytes(b"refreshed") == digest
        assert copies == ["copy"] and blobs.get_bytes(digest) == b"refreshed"
    finally:
        ws.close()


def test_s3_listing_pages_past_1000_keys(
    s3_server: RunningS3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    uri = f"s3://{s3_server.bucket}/paged/{uuid.uuid4().hex}"
    ws = Workspace(Settings(home=tmp_path / "home", artifacts_uri=uri))
    try:
        blobs = ws.artifacts
        assert isinstance(blobs, S3ArtifactStore)
        client = s3_server.client()
        bodies = [f"blob {i}".encode() for i in range(1050)]

        def put(body: bytes) -> None:  # straight into the bucket: 1,050 puts in a few seconds
            key = blobs.location.key(sha256_bytes(body))
            client.put_object(Bucket=s3_server.bucket, Key=key, Body=body)

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(put, bodies))
        dry = collect_garbage(ws.store, blobs, now_s=time.time() + LATER_S)
        real = collect_garbage(ws.store, blobs, is_dry_run=False, now_s=time.time() + LATER_S)
        after = collect_garbage(ws.store, blobs, now_s=time.time() + LATER_S)
    finally:
        ws.close()
    # S3 answers at most 1,000 keys a request: the last 50 came from a second page
    assert dry.scanned == len(dry.unreferenced) == 1050
    assert real.deleted == 1050 and real.deleted_bytes == sum(len(b) for b in bodies)
    assert after.scanned == 0


# -- the CLI, through the installed executable ---------------------------------------------


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    assert MODELPILOT is not None, "install the package (pip install -e .)"
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MODELPILOT_"))}
    return subprocess.run(
        [MODELPILOT, "gc", *args], env={**inherited, "COLUMNS": "200", **env},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def _home_with_an_orphan(home: Path, uri: str | None = None) -> str:
    ws = Workspace(Settings(home=home, artifacts_uri=uri))
    try:
        data = _data()
        ws.log_model(
            LogisticRegression().fit(data, (data["a"] > 0).astype(int)), "churn",
            input_example=data.head(3),
        )  # fmt: skip
        return ws.artifacts.put_bytes(b"orphan of a failed registration")
    finally:
        ws.close()


def test_cli_dry_run_then_yes_on_the_local_folder(tmp_path: Path) -> None:
    home = tmp_path / "home"
    orphan = _home_with_an_orphan(home)
    env = {"MODELPILOT_HOME": str(home)}

    default = _cli(env)
    dry = _cli(env, "--min-age", "0s")
    real = _cli(env, "--min-age", "0s", "--yes")

    assert default.returncode == 0, default.stderr
    assert "Would delete 0 unreferenced blobs" in default.stdout
    assert "1 unreferenced but younger than 1h (kept)" in default.stdout
    assert dry.returncode == 0 and "Would delete 1 unreferenced blobs (31 B)" in dry.stdout
    assert orphan in dry.stdout and "nothing deleted" in dry.stdout
    assert real.returncode == 0, real.stderr
    assert "Deleted 1 unreferenced blobs (31 B)." in real.stdout
    assert not (home / "artifacts" / orphan[:2] / orphan[2:]).exists()
    assert len(list((home / "artifacts").glob("??/*"))) == 3  # manifest, model file, example


def test_cli_bad_min_age_is_exit_2_naming_the_option(tmp_path: Path) -> None:
    result = _cli({"MODELPILOT_HOME": str(tmp_path / "home")}, "--min-age", "soon", "--yes")

    assert result.returncode == 2
    assert "Error: --min-age 'soon' is not a duration" in result.stderr
    assert "30m, 1h or 2d" in result.stderr and "Traceback" not in result.stderr


def test_cli_on_s3_and_an_unreachable_endpoint(
    s3_server: RunningS3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    uri = f"s3://{s3_server.bucket}/cli/{uuid.uuid4().hex}"
    env = {**_s3_env(s3_server), "MODELPILOT_HOME": str(home), "MODELPILOT_ARTIFACTS_URI": uri}
    for name, value in s3_server.env().items():  # the workspace below reads AWS_* from here
        monkeypatch.setenv(name, value)
    orphan = _home_with_an_orphan(home, uri)

    real = _cli(env, "--min-age", "0s", "--yes", "--json")
    down = _cli({**env, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}"}, "--min-age", "0s")

    assert real.returncode == 0, real.stderr
    assert '"deleted": 1' in real.stdout and orphan in real.stdout
    assert down.returncode == 6
    assert (
        f"Error: Artifact store {uri}" in down.stderr and "cannot reach the endpoint" in down.stderr
    )
