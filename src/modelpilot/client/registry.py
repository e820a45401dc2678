"""``HttpRegistry`` and ``HttpDatasets``: the registry and dataset services over HTTP.

Packages and Parquet bytes are built on the client and uploaded through
:class:`~modelpilot.client.artifacts.HttpArtifactStore`; these calls then record them. The
server decides (names, roles, aliases, whether the blobs exist); nothing is decided here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pandas as pd

from modelpilot.client.artifacts import HttpArtifactStore
from modelpilot.client.transport import HttpService
from modelpilot.data.entities import DatasetVersion
from modelpilot.data.service import file_version, frame_version, read_dataset, with_risks
from modelpilot.errors import InvalidInput
from modelpilot.registry.codec import (
    event_from_json,
    model_from_json,
    record_from_json,
    version_from_json,
)
from modelpilot.registry.entities import (
    Event,
    ModelVersion,
    RegisteredModel,
    VersionDataset,
    VersionRecord,
)
from modelpilot.registry.lineage import Lineage
from modelpilot.registry.refs import parse_ref


def _models(name: str) -> str:
    return f"/api/v1/models/{quote(name, safe='')}"


def resolve_version(service: HttpService, ref: str) -> ModelVersion:
    """``churn/3``, ``churn@champion`` or ``churn`` resolved by the server."""
    parsed = parse_ref(ref)
    if parsed.alias is not None:
        path = f"{_models(parsed.name)}/aliases/{parsed.alias}"
    elif parsed.version is not None:
        path = f"{_models(parsed.name)}/versions/{parsed.version}"
    else:
        path = f"{_models(parsed.name)}/latest"
    return version_from_json(service.call("GET", path, idempotent=True))


def version_path(service: HttpService, ref: str) -> str:
    """The API path of the version behind ``ref`` (``/api/v1/models/churn/versions/3``)."""
    mv = resolve_version(service, ref)
    return f"{_models(mv.name)}/versions/{mv.version}"


class HttpRegistry(HttpService):
    """:class:`~modelpilot.registry.protocol.RegistryService` on ``modelpilot server``."""

    def register_version(
        self,
        name: str,
        *,
        package_digest: str,
        flavor: str,
        signature: Mapping[str, Any],
        run_id: str | None = None,
        datasets: Sequence[VersionDataset] = (),
        metrics: Mapping[str, float] | None = None,
        description: str = "",
        tags: Mapping[str, str] | None = None,
        trusted_types: Sequence[str] = (),
    ) -> ModelVersion:
        """Register a version of a package already uploaded (not retried after a dropped
        connection: it could number a second version)."""
        body = {
            "package_digest": package_digest,
            "flavor": flavor,
            "signature": dict(signature),
            "run_id": run_id,
            "datasets": [dataclasses.asdict(d) for d in datasets],
            "metrics": dict(metrics or {}),
            "description": description,
            "tags": dict(tags or {}),
            "trusted_types": list(trusted_types),
        }
        data = self.call("POST", f"{_models(name)}/versions", body, idempotent=False)
        return version_from_json(data)

    def get_version(self, ref: str) -> ModelVersion:
        """Resolve a reference on the server."""
        return resolve_version(self, ref)

    def list_models(self) -> list[RegisteredModel]:
        """Every registered model."""
        data = self.call("GET", "/api/v1/models", idempotent=True)
        return [model_from_json(m) for m in data["models"]]

    def list_versions(self, name: str) -> list[ModelVersion]:
        """Every live version, newest first."""
        data = self.call("GET", f"{_models(name)}/versions", idempotent=True)
        return [version_from_json(v) for v in data["versions"]]

    def set_alias(self, name: str, alias: str, version: int) -> ModelVersion:
        """Point ``alias`` at ``version`` (deployer)."""
        path = f"{_models(name)}/aliases/{quote(alias, safe='')}"
        return version_from_json(self.call("PUT", path, {"version": version}, idempotent=True))

    def delete_alias(self, name: str, alias: str) -> None:
        """Remove an alias (deployer)."""
        self.call("DELETE", f"{_models(name)}/aliases/{quote(alias, safe='')}", idempotent=False)

    def lineage(self, ref: str) -> Lineage:
        """version -> run -> datasets, traced by the server."""
        mv = self.get_version(ref)
        path = f"{_models(mv.name)}/versions/{mv.version}/lineage"
        return Lineage.from_dict(self.call("GET", path, idempotent=True))

    def model_events(self, name: str, limit: int = 100) -> list[Event]:
        """Newest registry events of ``name``."""
        data = self.call("GET", f"{_models(name)}/events", params={"limit": limit}, idempotent=True)
        return [event_from_json(e) for e in data["events"]]

    def add_record(
        self,
        ref: str,
        kind: str,
        payload: Mapping[str, Any],
        *,
        blob_digest: str | None = None,
    ) -> VersionRecord:
        """Attach a document on the server (editor; not repeated after a dropped connection:
        records are append-only, so a repeat would store it twice)."""
        body = {"kind": kind, "payload": dict(payload), "blob_digest": blob_digest}
        path = f"{version_path(self, ref)}/records"
        return record_from_json(self.call("POST", path, body, idempotent=False))

    def list_records(self, ref: str, kind: str | None = None) -> list[VersionRecord]:
        """A version's documents, newest first."""
        path = f"{version_path(self, ref)}/records"
        params = {"kind": kind} if kind is not None else None
        data = self.call("GET", path, params=params, idempotent=True)
        return [record_from_json(r) for r in data["records"]]


class HttpDatasets(HttpService):
    """:class:`~modelpilot.data.protocol.DatasetService` on ``modelpilot server``.

    A DataFrame is described here (content hash, schema, profile) and its Parquet bytes
    uploaded; a file is kept where it is, by reference, as locally. The server records the
    version once it holds the bytes.
    """

    def __init__(
        self,
        base_url: str,
        *,
        artifacts: HttpArtifactStore,
        token: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(base_url, token=token, transport=transport)
        self.artifacts = artifacts

    def log_dataset(
        self,
        data: pd.DataFrame | str | Path,
        name: str,
        *,
        source: str | None = None,
        risks: dict[str, Any] | None = None,
    ) -> DatasetVersion:
        """Describe, upload and record a dataset version (with its data risks, if assessed)."""
        if isinstance(data, pd.DataFrame):
            version = with_risks(frame_version(self.artifacts, data, name, source), risks)
        elif isinstance(data, (str, Path)):
            version = with_risks(file_version(Path(data), name, source), risks)
        else:
            raise InvalidInput(
                f"Dataset {name!r}: expected a pandas DataFrame or a path to a Parquet/CSV "
                f"file; got {type(data).__name__}.",
                field="data",
            )
        body = dataclasses.asdict(version)
        body.pop("created_ms")
        return DatasetVersion(**self.call("POST", "/api/v1/datasets", body, idempotent=True))

    def get_dataset(self, ref: str) -> DatasetVersion:
        """A version by ``name@version`` or ``name``."""
        name, _, version = ref.partition("@")
        params = {"version": version} if version else None
        path = f"/api/v1/datasets/{quote(name, safe='')}"
        return DatasetVersion(**self.call("GET", path, params=params, idempotent=True))

    def list_datasets(self) -> list[DatasetVersion]:
        """Every version, newest first."""
        data = self.call("GET", "/api/v1/datasets", idempotent=True)
        return [DatasetVersion(**d) for d in data["datasets"]]

    def load_dataset(self, ref: str) -> pd.DataFrame:
        """A version's rows (its Parquet blob downloaded and verified)."""
        return read_dataset(self.artifacts, self.get_dataset(ref))

    def record_input(self, run_id: str, name: str, digest: str, role: str) -> None:
        """Record a run's input on the server (idempotent)."""
        body = {"name": name, "digest": digest, "role": role}
        self.call("POST", f"/api/v1/runs/{run_id}/inputs", body, idempotent=True)


__all__ = ["HttpDatasets", "HttpRegistry", "resolve_version", "version_path"]
