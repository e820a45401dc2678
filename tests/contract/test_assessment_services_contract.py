"""One contract for the assessment seams: version records (evaluations, gate verdicts), cards
and monitoring, run against every implementation.

Implementations: local on SQLite, local on PostgreSQL, and HTTP -> a real ``modelpilot server``
process on SQLite and on PostgreSQL (one server per module, a deployer token). Monitoring reads
the prediction log of the implementation's home: the local home, or the server's own home
(the log is written there directly, as a data plane sharing that home would).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from modelpilot.artifacts import ArtifactStore, LocalArtifactStore
from modelpilot.cards.protocol import CardService, LocalCards
from modelpilot.client import (
    HttpArtifactStore,
    HttpCards,
    HttpDatasets,
    HttpDeployments,
    HttpMonitoring,
    HttpRegistry,
)
from modelpilot.client.transport import HttpService
from modelpilot.clock import now_ms
from modelpilot.data.local import LocalDatasets
from modelpilot.data.protocol import DatasetService
from modelpilot.errors import InvalidInput, NotFound
from modelpilot.models import build_package
from modelpilot.monitoring.service import LocalMonitoring, MonitoringService
from modelpilot.predictions import LogBatch, log_folder, write_segments
from modelpilot.registry.entities import ModelVersion, VersionDataset
from modelpilot.registry.local import LocalRegistry
from modelpilot.registry.protocol import RegistryService
from modelpilot.release.protocol import DeploymentService, LocalDeployments
from modelpilot.server.auth import Role
from modelpilot.store import Store
from mp_server import Backends, make_token

IMPLEMENTATIONS = [
    "local-sqlite",
    pytest.param("local-postgresql", marks=pytest.mark.postgres),
    "http-sqlite",
    pytest.param("http-postgresql", marks=pytest.mark.postgres),
]
FEATURES = ["a", "b"]


@dataclass
class Services:
    """The seams one implementation provides, and the home whose prediction log it monitors."""

    registry: RegistryService
    datasets: DatasetService
    deployments: DeploymentService
    cards: CardService
    monitoring: MonitoringService
    blobs: ArtifactStore
    home: Path


@pytest.fixture(scope="module")
def backends(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backends]:
    with ExitStack() as stack:
        yield Backends(stack, tmp_path_factory.mktemp("assessment-contract"))


@pytest.fixture(params=IMPLEMENTATIONS)
def services(request: pytest.FixtureRequest, backends: Backends) -> Iterator[Services]:
    mode, kind = str(request.param).split("-")
    uri = backends.store_uri(kind)
    if mode == "local":
        store = Store.open(uri)
        blobs = LocalArtifactStore(backends.home / f"blobs-{kind}")
        home = backends.home / f"home-{kind}"
        yield Services(
            LocalRegistry(store),
            LocalDatasets(store, blobs),
            LocalDeployments(store),
            LocalCards(store, blobs),
            LocalMonitoring(store, blobs, home),
            blobs,
            home,
        )
        store.close()
        return
    server = backends.server(kind)
    token = make_token(uri, f"assess-{uuid.uuid4().hex[:6]}", Role.DEPLOYER)
    http_blobs = HttpArtifactStore(server.url, token=token)
    clients: list[HttpService] = [
        HttpRegistry(server.url, token=token),
        HttpDatasets(server.url, artifacts=http_blobs, token=token),
        HttpDeployments(server.url, token=token),
        HttpCards(server.url, token=token),
        HttpMonitoring(server.url, token=token),
    ]
    yield Services(*clients, http_blobs, server.home)  # type: ignore[arg-type]
    for client in [*clients, http_blobs]:
        client.close()


def _frame(rows: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame({"a": rng.normal(shift, 1.0, rows), "b": rng.normal(0.0, 1.0, rows)})
    return x.assign(label=(x["a"] + x["b"] > 0).astype(int))


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _register(services: Services) -> ModelVersion:
    """A logistic regression registered with its training dataset (the drift reference)."""
    train = _frame(400, seed=1)
    dataset = services.datasets.log_dataset(train, _name("train"))
    model = LogisticRegression().fit(train[FEATURES], train["label"])
    package = build_package(model, services.blobs, input_example=train[FEATURES].head())
    return services.registry.register_version(
        _name("model"),
        package_digest=package.digest,
        flavor=package.flavor,
        signature=package.signature.to_dict(),
        datasets=[VersionDataset(dataset.name, dataset.digest, "training")],
    )


# -- version records ------------------------------------------------------------------------
def test_records_are_appended_and_listed_newest_first(services: Services) -> None:
    mv = _register(services)
    report = services.blobs.put_bytes(b"<html>evaluation</html>")
    evaluation = services.registry.add_record(
        mv.ref, "evaluation", {"metrics": {"auc": 0.91}}, blob_digest=report
    )
    gate = services.registry.add_record(mv.ref, "gate", {})
    assert (evaluation.model_name, evaluation.version, evaluation.kind) == (
        mv.name,
        1,
        "evaluation",
    )
    assert evaluation.blob_digest == report and evaluation.payload == {"metrics": {"auc": 0.91}}
    assert evaluation.actor  # who attached it
    listed = services.registry.list_records(mv.name)
    assert [(r.id, r.kind) for r in listed] == [(gate.id, "gate"), (evaluation.id, "evaluation")]
    assert services.registry.list_records(mv.ref, "evaluation") == [evaluation]
    assert services.registry.get_version(mv.ref) == mv  # records never change the version


def test_unknown_record_kind_and_version_are_clear_errors(services: Services) -> None:
    mv = _register(services)
    with pytest.raises(InvalidInput, match="Unknown version record kind 'verdict'; kinds are eval"):
        services.registry.add_record(mv.ref, "verdict", {})
    with pytest.raises(InvalidInput, match="Unknown version record kind 'x'"):
        services.registry.list_records(mv.ref, "x")
    with pytest.raises(NotFound, match=f"{mv.name}.* has no version 9"):
        services.registry.add_record(f"{mv.name}/9", "note", {"text": "x"})


# -- cards ----------------------------------------------------------------------------------
def test_model_card_shows_records_and_keeps_written_fields(services: Services) -> None:
    mv = _register(services)
    services.registry.add_record(mv.ref, "evaluation", {"metrics": {"auc": 0.8}})
    services.registry.add_record(mv.ref, "gate", {"passed": True, "policy_file": "gate.yaml"})
    assert services.cards.update_card_fields(mv.ref, {"intended_use": "Rank calls."}) == {
        "intended_use": "Rank calls."
    }
    merged = services.cards.update_card_fields(mv.ref, {"limitations": "One region."})
    assert merged == {"intended_use": "Rank calls.", "limitations": "One region."}
    card = services.cards.model_card(mv.ref)
    assert card.data["model"]["ref"] == mv.ref and card.data["fields"] == merged
    assert card.data["evaluation"]["metrics"] == {"auc": 0.8}
    assert [g["passed"] for g in card.data["gates"]] == [True]
    assert "| auc | 0.8 |" in card.to_markdown() and "Rank calls." in card.to_html()
    with pytest.raises(InvalidInput, match="Unknown model card field\\(s\\) purpose; editable"):
        services.cards.update_card_fields(mv.ref, {"purpose": "x"})


def test_dataset_card_names_the_versions_that_use_it(services: Services) -> None:
    mv = _register(services)
    (link,) = mv.linked_datasets
    card = services.cards.dataset_card(f"{link.name}@{link.digest}")
    assert (card.data["name"], card.data["rows"], card.data["models"]) == (
        link.name,
        400,
        [f"{mv.name}/1"],
    )
    assert services.cards.dataset_card(link.name).data["digest"] == link.digest  # newest
    with pytest.raises(NotFound, match="No dataset named 'no-such-ds'"):
        services.cards.dataset_card("no-such-ds")


# -- monitoring -----------------------------------------------------------------------------
def _log_traffic(home: Path, mv: ModelVersion, deployment: str, rows: int, shift: float) -> None:
    """Rows as a data plane logs them (in the home the implementation monitors)."""
    live = _frame(rows, seed=2, shift=shift)
    stamp = now_ms()
    logged = [
        {
            "model": mv.name,
            "request_id": f"{deployment}-{i}",
            "row": 0,
            "timestamp_ms": stamp,
            "version": mv.version,
            "deployment": deployment,
            "variant": "stable",
            "latency_ms": 2.0,
            "error": None,
            "in.a": float(r.a),
            "in.b": float(r.b),
            "out.prediction": int(r.label),
            "out.proba.0": 0.5,
            "out.proba.1": 0.5,
        }
        for i, r in enumerate(live.itertuples())
    ]
    write_segments(log_folder(home), LogBatch.from_rows(logged))


def test_a_monitoring_job_scores_the_homes_log_and_keeps_its_report(services: Services) -> None:
    mv = _register(services)
    deployment = _name("dep")
    services.deployments.create_deployment(deployment, mv.ref)
    empty = services.monitoring.run(deployment, window_s=600)
    assert (empty.rows, empty.drift, empty.figures) == (0, None, {"ops.requests": 0.0})
    _log_traffic(services.home, mv, deployment, rows=300, shift=3.0)
    result = services.monitoring.run(deployment, window_s=600)
    assert (result.model, result.rows) == (mv.ref, 300)
    assert result.figures["ops.requests"] == 300 and result.figures["ops.error_rate"] == 0.0
    assert result.drift is not None and "a" in result.drift.drifted_columns
    assert result.drift.column("a").n_reference == 400
    assert isinstance(result.report_id, int) and result.created_ms is not None
    kept = services.monitoring.list_reports(deployment)
    assert [r.report_id for r in kept] == [result.report_id, empty.report_id]
    assert services.monitoring.get_report(deployment, result.report_id).to_dict() == (
        result.to_dict()
    )
    assert [r.report_id for r in services.monitoring.list_reports(deployment, limit=1)] == [
        result.report_id
    ]
    (record,) = services.registry.list_records(mv.ref, "monitoring")[:1]
    assert record.id == result.report_id  # kept on the stable version


def test_monitoring_errors_name_what_was_wrong(services: Services) -> None:
    mv = _register(services)
    deployment = _name("dep")
    services.deployments.create_deployment(deployment, mv.ref)
    with pytest.raises(InvalidInput, match="window"):
        services.monitoring.run(deployment, window_s=-1)
    with pytest.raises(NotFound, match="no-such-deployment"):
        services.monitoring.run("no-such-deployment")
    with pytest.raises(NotFound, match="no-such-deployment"):
        services.monitoring.list_reports("no-such-deployment")
    with pytest.raises(NotFound, match=f"Deployment '{deployment}' has no monitoring report 999"):
        services.monitoring.get_report(deployment, 999_999)
    with pytest.raises(InvalidInput, match="limit must be between 1 and 200; got 0"):
        services.monitoring.list_reports(deployment, limit=0)
