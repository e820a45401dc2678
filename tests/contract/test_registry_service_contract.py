"""One contract for the registry, dataset and blob seams, run against every implementation.

Implementations: local on SQLite, local on PostgreSQL, and HTTP -> a real ``modelpilot server``
process on SQLite and on PostgreSQL (one server per module, a deployer token). Packages are
built on the caller's side with ``build_package`` against the implementation's blob store and
loaded back with ``load_package`` into a local cache, exactly as the SDK does.
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
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from modelpilot.artifacts import ArtifactStore, LocalArtifactStore, sha256_bytes
from modelpilot.client import HttpArtifactStore, HttpDatasets, HttpRegistry, HttpTracking
from modelpilot.data.local import LocalDatasets
from modelpilot.data.protocol import DatasetService
from modelpilot.errors import CorruptArtifact, InvalidInput, NotFound
from modelpilot.models import TrustPolicy, build_package, load_package
from modelpilot.registry.entities import VersionDataset
from modelpilot.registry.local import LocalRegistry
from modelpilot.registry.protocol import RegistryService
from modelpilot.server.auth import Role
from modelpilot.store import Store
from modelpilot.tracking.local import LocalTracking
from modelpilot.tracking.protocol import TrackingService
from mp_server import Backends, make_token

IMPLEMENTATIONS = [
    "local-sqlite",
    pytest.param("local-postgresql", marks=pytest.mark.postgres),
    "http-sqlite",
    pytest.param("http-postgresql", marks=pytest.mark.postgres),
]


@dataclass
class Services:
    """The seams one implementation provides."""

    registry: RegistryService
    datasets: DatasetService
    blobs: ArtifactStore
    tracking: TrackingService


@pytest.fixture(scope="module")
def backends(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backends]:
    with ExitStack() as stack:
        yield Backends(stack, tmp_path_factory.mktemp("registry-contract"))


@pytest.fixture(params=IMPLEMENTATIONS)
def services(request: pytest.FixtureRequest, backends: Backends) -> Iterator[Services]:
    mode, kind = str(request.param).split("-")
    uri = backends.store_uri(kind)
    if mode == "local":
        store = Store.open(uri)
        blobs = LocalArtifactStore(backends.home / f"blobs-{kind}")
        yield Services(
            LocalRegistry(store), LocalDatasets(store, blobs), blobs, LocalTracking(store)
        )
        store.close()
        return
    url = backends.server(kind).url
    token = make_token(uri, f"registry-{uuid.uuid4().hex[:6]}", Role.DEPLOYER)
    http_blobs = HttpArtifactStore(url, token=token)
    clients = (
        HttpRegistry(url, token=token),
        HttpDatasets(url, artifacts=http_blobs, token=token),
        http_blobs,
        HttpTracking(url, token=token),
    )
    yield Services(*clients)
    for client in clients:
        client.close()


def _frame(seed: int = 0, rows: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 3))
    return pd.DataFrame(
        {"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "y": (x[:, 0] + x[:, 1] > 0).astype(int)}
    )


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _pipeline(frame: pd.DataFrame) -> object:
    return make_pipeline(StandardScaler(), LogisticRegression()).fit(
        frame[["a", "b", "c"]], frame["y"]
    )


# -- blobs ----------------------------------------------------------------------------------
def test_blob_put_get_exists_by_sha256(services: Services, tmp_path: Path) -> None:
    data = uuid.uuid4().bytes * 1000
    digest = sha256_bytes(data)
    assert not services.blobs.exists(digest)
    assert services.blobs.put_bytes(data) == digest
    assert services.blobs.put_bytes(data) == digest  # idempotent
    assert services.blobs.exists(digest)
    assert services.blobs.get_bytes(digest) == data
    source = tmp_path / "f.bin"
    source.write_bytes(data + b"!")
    file_digest = services.blobs.put_file(source)
    copy = services.blobs.fetch_to(file_digest, tmp_path / "out" / "copy.bin")
    assert copy.read_bytes() == data + b"!"


def test_unknown_blob_is_not_found_and_bad_digest_refused(services: Services) -> None:
    with pytest.raises(NotFound, match="No artifact with digest 000000000000"):
        services.blobs.get_bytes("0" * 64)
    with pytest.raises(InvalidInput, match="is not a sha256 hex digest"):
        services.blobs.exists("../etc/passwd")


# -- datasets -------------------------------------------------------------------------------
def test_dataset_versions_are_content_hashed_and_read_back(services: Services) -> None:
    name = _name("ds")
    frame = _frame()
    first = services.datasets.log_dataset(frame, name, source="s3://bucket/x")
    assert services.datasets.log_dataset(frame.copy(), name) == first  # same content, same one
    assert (first.name, first.num_rows, first.storage) == (name, 60, "parquet")
    assert first.source == "s3://bucket/x"
    assert [c["name"] for c in first.schema] == ["a", "b", "c", "y"]
    assert services.datasets.get_dataset(f"{name}@{first.version}") == first
    second = services.datasets.log_dataset(_frame(seed=1), name)
    assert services.datasets.get_dataset(name).digest == second.digest  # newest
    pd.testing.assert_frame_equal(services.datasets.load_dataset(first.ref), frame)
    listed = [d.digest for d in services.datasets.list_datasets() if d.name == name]
    assert listed == [second.digest, first.digest]


def test_unknown_dataset_errors_name_what_exists(services: Services) -> None:
    name = _name("ds")
    version = services.datasets.log_dataset(_frame(), name)
    with pytest.raises(NotFound, match=f"Dataset '{name}' has no version 'ffff'. Recent"):
        services.datasets.get_dataset(f"{name}@ffff")
    with pytest.raises(NotFound, match="No dataset named 'nope-ds'"):
        services.datasets.get_dataset("nope-ds")
    with pytest.raises(InvalidInput, match="has no columns"):
        services.datasets.log_dataset(pd.DataFrame(), name)
    assert version.num_rows == 60


# -- registry -------------------------------------------------------------------------------
def test_register_alias_load_and_lineage(services: Services, tmp_path: Path) -> None:
    frame = _frame()
    name = _name("model")
    train = services.datasets.log_dataset(frame, _name("train"))
    test = services.datasets.log_dataset(_frame(seed=2), _name("test"))
    run = services.tracking.create_run(_name("exp"), name="fit")
    services.tracking.log_params(run.id, {"C": 1.0})
    services.datasets.record_input(run.id, train.name, train.digest, "training")
    model = _pipeline(frame)
    package = build_package(model, services.blobs, input_example=frame[["a", "b", "c"]].head())
    mv = services.registry.register_version(
        name,
        package_digest=package.digest,
        flavor=package.flavor,
        signature=package.signature.to_dict(),
        run_id=run.id,
        datasets=[
            VersionDataset(train.name, train.digest, "training"),
            VersionDataset(test.name, test.digest, "test"),
        ],
        metrics={"auc": 0.9},
        description="pipeline",
        tags={"team": "churn"},
        trusted_types=["sklearn.pipeline.Pipeline"],
    )
    assert (mv.name, mv.version, mv.flavor, mv.run_id) == (name, 1, "sklearn", run.id)
    assert mv.trusted_types == ("sklearn.pipeline.Pipeline",)
    assert {(d.name, d.role) for d in mv.linked_datasets} == {
        (train.name, "training"),
        (test.name, "test"),
    }
    assert services.registry.get_version(f"{name}/1") == mv
    assert services.registry.get_version(name) == mv
    assert [v.version for v in services.registry.list_versions(name)] == [1]

    moved = services.registry.set_alias(name, "champion", 1)
    assert moved.aliases == ("champion",)
    by_alias = services.registry.get_version(f"{name}@champion")
    assert by_alias.package_digest == package.digest
    listed = {m.name: m for m in services.registry.list_models()}
    assert (listed[name].latest_version, listed[name].aliases) == (1, {"champion": 1})

    loaded = load_package(
        services.blobs,
        by_alias.package_digest,
        trust=TrustPolicy(by_alias.trusted_types),
        cache_dir=tmp_path / "cache",
    )
    features = frame[["a", "b", "c"]]
    np.testing.assert_array_equal(loaded.predict(features), model.predict(features))  # type: ignore[attr-defined]

    trace = services.registry.lineage(f"{name}@champion")
    assert trace.model["ref"] == f"{name}/1"
    assert trace.run is not None and trace.run["params"] == {"C": "1.0"}
    assert {(d["name"], d["role"]) for d in trace.datasets} == {
        (train.name, "training"),
        (test.name, "test"),
    }
    kinds = [e.kind for e in services.registry.model_events(name)]
    assert "model_version.registered" in kinds and "alias.set" in kinds

    services.registry.delete_alias(name, "champion")
    with pytest.raises(NotFound, match=f"No alias 'champion' on model '{name}'"):
        services.registry.get_version(f"{name}@champion")


def test_registry_errors_list_what_exists(services: Services) -> None:
    name = _name("model")
    frame = _frame()
    package = build_package(_pipeline(frame), services.blobs, input_example=frame[["a", "b", "c"]])
    for _ in range(2):
        services.registry.register_version(
            name,
            package_digest=package.digest,
            flavor=package.flavor,
            signature=package.signature.to_dict(),
        )
    with pytest.raises(NotFound, match=f"model '{name}' has no version 7. Existing versions: 1, 2"):
        services.registry.set_alias(name, "champion", 7)
    with pytest.raises(NotFound, match=f"Model '{name}' has no version 9. Existing versions"):
        services.registry.get_version(f"{name}/9")
    with pytest.raises(NotFound, match="No registered model named 'no-such-model'"):
        services.registry.get_version("no-such-model")
    with pytest.raises(NotFound, match="No alias 'x' on model"):
        services.registry.delete_alias(name, "x")
    with pytest.raises(InvalidInput, match="Unknown dataset role 'holdout'"):
        services.registry.register_version(
            name,
            package_digest=package.digest,
            flavor=package.flavor,
            signature=package.signature.to_dict(),
            datasets=[VersionDataset("d", "0" * 64, "holdout")],
        )


def test_a_changed_blob_is_never_loaded(services: Services, tmp_path: Path) -> None:
    """What arrives is checked against its digest on the loading side."""
    data = b"model bytes " * 100
    digest = services.blobs.put_bytes(data)
    target = tmp_path / "x.bin"
    services.blobs.fetch_to(digest, target)
    assert target.read_bytes() == data
    with pytest.raises((NotFound, CorruptArtifact)):
        services.blobs.fetch_to("f" * 64, tmp_path / "y.bin")
    assert not (tmp_path / "y.bin").exists()
