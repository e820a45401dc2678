"""The SDK through a real ``modelpilot server`` (SQLite and PostgreSQL).

``mp.init(server=..., token=...)`` or ``MODELPILOT_SERVER_URI``/``MODELPILOT_TOKEN`` switch
tracking, datasets, models, aliases, lineage, artifacts and deployments to the server with no
code change; metric points are buffered, sent in batches and all read back once the run ends; a
model logged remotely loads by alias and predicts as the original; each write refuses a token whose
role is too low; calls not yet served say so instead of writing locally.
"""

from __future__ import annotations

import json
import operator
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

import modelpilot as mp
from modelpilot import registry, release
from modelpilot.config import Settings
from modelpilot.errors import Forbidden, InvalidInput, UnsafeModel
from modelpilot.models import read_manifest
from modelpilot.server.auth import Role
from modelpilot.store import Store
from modelpilot.store.events import list_events
from modelpilot.tracking import service
from modelpilot.workspace import Workspace
from mp_server import RunningServer, make_token, server_on


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    home = tmp_path_factory.mktemp(f"sdk-{request.param}")
    with server_on(request.param, home) as running:
        yield running


@pytest.fixture(scope="module")
def token(server: RunningServer) -> str:
    return make_token(server.store_uri, "sdk", Role.EDITOR)


@pytest.fixture
def remote(server: RunningServer, token: str, tmp_path: Path) -> Iterator[Workspace]:
    ws = Workspace(
        Settings(
            home=tmp_path / "client-home",
            server_uri=server.url,
            token=token,
            metric_flush_interval_ms=20,
        )
    )
    yield ws
    ws.close()


def test_every_point_logged_one_by_one_reads_back_after_the_run_ends(
    remote: Workspace, server: RunningServer
) -> None:
    with remote.start_run("sdk-exp", name="one-by-one", tags={"via": "http"}) as run:
        remote.log_params({"lr": 0.1, "depth": 6})
        remote.set_tags({"stage": "dev"})
        for i in range(3000):
            remote.log_metric("loss", 1.0 / (i + 1))
        remote.log_batch("acc", [0.5, 0.6, 0.7])
    history = remote.get_metric_history(run.id, "loss")
    assert [p.step for p in history] == list(range(3000))
    assert [p.value for p in history] == [1.0 / (i + 1) for i in range(3000)]
    store = Store.open(server.store_uri)  # the server's own store holds it, exactly once
    try:
        assert service.count_metric_points(store, run.id) == 3003
        stored = service.get_run(store, run.id)
    finally:
        store.close()
    assert stored.status == mp.RunStatus.FINISHED
    assert stored.params == {"lr": "0.1", "depth": "6"}
    assert stored.tags == {"via": "http", "stage": "dev"}
    assert not (remote.settings.home / "modelpilot.db").exists()  # nothing written locally


def test_search_runs_through_the_server_returns_a_frame(remote: Workspace) -> None:
    for auc in (0.7, 0.9, 0.8):
        with remote.start_run("sdk-search"):
            remote.log_metric("auc", auc)
    frame = remote.search_runs("sdk-search", "metrics.auc > 0.75", ["metrics.auc DESC"])
    assert list(frame["metrics.auc"]) == [0.9, 0.8]
    assert len(remote.search_runs("sdk-search", max_results=2)) == 2


def test_calls_not_yet_served_say_so_instead_of_writing_locally(remote: Workspace) -> None:
    remote.tracking.get_or_create_experiment("sdk-listed")
    assert "sdk-listed" in [e.name for e in remote.list_experiments()]  # served now
    with pytest.raises(InvalidInput, match="This call is not yet available over modelpilot server"):
        remote.store  # what monitoring, evaluation and model cards need  # noqa: B018
    with pytest.raises(InvalidInput, match="served so far are start_run, .*log_model, load_model"):
        remote.store  # noqa: B018
    assert not (remote.settings.home / "modelpilot.db").exists()


def _training_frame(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(80, 3))
    return pd.DataFrame(
        {"age": x[:, 0], "tenure": x[:, 1], "spend": x[:, 2], "churned": (x[:, 0] > 0).astype(int)}
    )


def _remote_as(server: RunningServer, role: Role, home: Path) -> Workspace:
    token = make_token(server.store_uri, f"{role.label}-{uuid.uuid4().hex[:6]}", role)
    return Workspace(Settings(home=home, server_uri=server.url, token=token))


def test_datasets_models_aliases_and_lineage_go_through_the_server(
    server: RunningServer, tmp_path: Path
) -> None:
    ws = _remote_as(server, Role.DEPLOYER, tmp_path / "client-home")
    train, holdout = _training_frame(0), _training_frame(1)
    features = ["age", "tenure", "spend"]
    model = make_pipeline(StandardScaler(), LogisticRegression())
    model.fit(train[features], train["churned"])
    notes = tmp_path / "notes.txt"
    notes.write_text("trained on the churn extract")
    try:
        with ws.start_run("sdk-models", name="fit") as run:
            ws.log_params({"C": 1.0})
            train_ds = ws.log_dataset(train, "churn-train")
            test_ds = ws.log_dataset(holdout, "churn-test", role="test")
            mv = ws.log_model(
                model,
                "churn-http",
                input_example=train[features].head(),
                datasets={"training": train_ds, "test": test_ds},
            )
            stored = ws.log_artifact(notes)
        ws.set_alias("churn-http", "champion", mv.version)
        loaded = ws.load_model("churn-http@champion")
        np.testing.assert_array_equal(
            loaded.predict(holdout[features]), model.predict(holdout[features])
        )
        assert ws.get_model_version("churn-http@champion").package_digest == mv.package_digest
        domain = loaded.signature.domain  # read from the training set, not the 5-row example
        assert domain is not None and (domain.source, domain.rows) == (train_ds.ref, len(train))
        assert "churn-http" in {m.name for m in ws.list_models()}
        trace = ws.lineage("churn-http@champion")
        assert trace.run is not None and trace.run["id"] == run.id
        assert {(d["name"], d["role"]) for d in trace.datasets} == {
            ("churn-train", "training"),
            ("churn-test", "test"),
        }
        pd.testing.assert_frame_equal(ws.load_dataset(train_ds.ref), train)
        assert ws.get_run(run.id).artifacts == stored
        assert (ws.settings.home / "cache" / "packages" / mv.package_digest).is_dir()
    finally:
        ws.close()
    store = Store.open(server.store_uri)  # the server's store holds it, with the token as actor
    try:
        events = registry.model_events(store, "churn-http")
        assert events and all(e.actor.startswith("token:deployer-") for e in events)
        assert {e.kind for e in events} >= {"model_version.registered", "alias.set"}
    finally:
        store.close()
    assert not (tmp_path / "client-home" / "modelpilot.db").exists()
    assert not (tmp_path / "client-home" / "artifacts").exists()


def test_a_viewer_token_is_refused_on_every_write(server: RunningServer, tmp_path: Path) -> None:
    editor = _remote_as(server, Role.EDITOR, tmp_path / "editor")
    viewer = _remote_as(server, Role.VIEWER, tmp_path / "viewer")
    frame = _training_frame(2)
    features = ["age", "tenure", "spend"]
    model = LogisticRegression().fit(frame[features], frame["churned"])
    try:
        with editor.start_run("sdk-viewer") as run:
            mv = editor.log_model(model, "viewer-model", input_example=frame[features].head())
        editor_only = "has role viewer; .* needs editor or higher"
        with pytest.raises(Forbidden, match=editor_only):
            viewer.log_dataset(frame, "viewer-ds")
        with pytest.raises(Forbidden, match=editor_only):
            viewer.log_model(model, "viewer-model", input_example=frame[features].head(2))
        with pytest.raises(Forbidden, match=editor_only):
            viewer.run_artifacts.log_file(run.id, Path(__file__), "test.py")
        with pytest.raises(Forbidden, match=editor_only):
            viewer.datasets.record_input(run.id, "x", "0" * 64, "training")
        with pytest.raises(Forbidden, match="has role viewer; .* needs deployer or higher"):
            viewer.set_alias("viewer-model", "champion", mv.version)
        editor_deploy = "has role editor; .* needs deployer or higher"
        with pytest.raises(Forbidden, match=editor_deploy):
            editor.set_alias("viewer-model", "champion", mv.version)
        with pytest.raises(Forbidden, match="needs deployer or higher"):
            viewer.delete_alias("viewer-model", "champion")
        np.testing.assert_array_equal(  # reading and loading are a viewer's right
            viewer.load_model("viewer-model").predict(frame[features]),
            model.predict(frame[features]),
        )
    finally:
        editor.close()
        viewer.close()


def test_environment_variables_switch_an_unchanged_script_to_the_server(
    server: RunningServer, token: str, tmp_path: Path
) -> None:
    script = textwrap.dedent(
        """
        import modelpilot as mp
        with mp.start_run("env-switch") as run:
            mp.log_param("source", "env")
            for i in range(500):
                mp.log_metric("loss", float(i))
        print(run.id)
        """
    )
    env = {
        **os.environ,
        "MODELPILOT_HOME": str(tmp_path / "script-home"),
        "MODELPILOT_SERVER_URI": server.url,
        "MODELPILOT_TOKEN": token,
    }
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    run_id = out.stdout.strip().splitlines()[-1]
    store = Store.open(server.store_uri)
    try:
        assert service.count_metric_points(store, run_id, "loss") == 500
        assert service.get_run(store, run_id).params == {"source": "env"}
    finally:
        store.close()
    assert not (tmp_path / "script-home" / "modelpilot.db").exists()


def test_mp_init_with_server_and_token_routes_tracking_there(
    server: RunningServer, token: str, tmp_path: Path
) -> None:
    ws = mp.init(tmp_path / "init-home", server=server.url, token=token)
    try:
        with mp.start_run("init-switch") as run:
            mp.log_metrics({"a": 1.0, "b": 2.0})
        assert mp.get_run(run.id).metrics == {"a": 1.0, "b": 2.0}
        assert ws.is_remote
    finally:
        mp.init(tmp_path / "local-home")  # leave the process on a local workspace
        mp.workspace().close()


def test_loading_over_the_server_trusts_the_registration_never_the_manifest(
    server: RunningServer, tmp_path: Path
) -> None:
    ws = _remote_as(server, Role.EDITOR, tmp_path / "trust-home")
    x = _training_frame(3)[["age", "tenure", "spend"]]
    model = make_pipeline(FunctionTransformer(operator.neg), LogisticRegression())
    model.fit(x, (x["age"] > 0).astype(int))
    try:
        trusted = ws.log_model(
            model, "negated-http", input_example=x.head(), trusted_types=["_operator.neg"]
        )
        assert trusted.trusted_types == ("_operator.neg",)
        np.testing.assert_array_equal(ws.load_model(trusted.ref).predict(x), model.predict(x))
        plain = ws.log_model(model, "negated-http", input_example=x.head())
        with pytest.raises(UnsafeModel, match=r"Refusing to load negated-http/2: .*_operator\.neg"):
            ws.load_model(plain.ref)
        # a package whose own manifest vouches for the type gains nothing from it
        manifest = read_manifest(ws.artifacts, plain.package_digest)
        manifest["flavor_meta"]["vouched_types"] = ["_operator.neg"]
        crafted = ws.artifacts.put_bytes(json.dumps(manifest, sort_keys=True).encode())
        mv = ws.registry.register_version(
            "negated-http",
            package_digest=crafted,
            flavor=manifest["flavor"],
            signature=manifest["signature"],
        )
        with pytest.raises(UnsafeModel, match=r"not trusted: _operator\.neg"):
            ws.load_model(mv.ref)
        assert ws.load_model(mv.ref, trusted_types=["_operator.neg"]).predict(x).shape == (80,)
    finally:
        ws.close()


def test_sdk_deployment_calls_go_through_the_server_as_the_token(
    server: RunningServer, tmp_path: Path
) -> None:
    name = f"deployer-{uuid.uuid4().hex[:6]}"
    token = make_token(server.store_uri, name, Role.DEPLOYER)
    frame = _training_frame(3)
    features = ["age", "tenure", "spend"]
    model = LogisticRegression().fit(frame[features], frame["churned"])
    mp.init(tmp_path / "deploy-home", server=server.url, token=token)
    try:
        with mp.start_run("sdk-deploy"):
            v1 = mp.log_model(model, "deploy-http", input_example=frame[features].head())
            v2 = mp.log_model(model, "deploy-http", input_example=frame[features].head())
            v3 = mp.log_model(model, "deploy-http", input_example=frame[features].head())
        mp.create_deployment("churn-http", v1.ref, reason="first")
        mp.shadow("churn-http", v3.ref)
        mp.canary("churn-http", v2.ref, 10)
        mp.promote("churn-http", reason="canary healthy")
        mp.ab_test("churn-http", v1.ref, 20, "user_id")
        back = mp.rollback("churn-http", reason="worse conversion")
        assert back == mp.get_deployment("churn-http")
        assert {v.ref: v.weight for v in back.config.variants} == {v2.ref: 100, v3.ref: 0}
        actions = [r.action for r in mp.deployment_history("churn-http")]
        assert actions == ["rollback", "ab", "promote", "canary", "shadow", "create"]
    finally:
        mp.init(tmp_path / "local-home")  # leave the process on a local workspace
        mp.workspace().close()
    store = Store.open(server.store_uri)  # the server's store holds every revision and event
    try:
        revisions = release.history(store, "churn-http")
        assert {r.actor for r in revisions} == {f"token:{name}"}
        with store.read() as conn:
            events = list_events(conn, "deployment:churn-http")
        assert len(events) == 6 and {e.actor for e in events} == {f"token:{name}"}
    finally:
        store.close()
    assert not (tmp_path / "deploy-home" / "modelpilot.db").exists()
