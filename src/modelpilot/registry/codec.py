"""Registry records as JSON and back, for the server's routes and the HTTP client.

>>> mv = ModelVersion("churn", 1, 5, None, "sklearn", "a" * 64, {}, {}, "", {},
...                   linked_datasets=(VersionDataset("d", "b" * 64, "test"),),
...                   datasets=(("d", "b" * 64),))
>>> version_from_json(version_to_json(mv)) == mv
True
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from modelpilot.registry.entities import (
    Event,
    ModelVersion,
    RegisteredModel,
    VersionDataset,
    VersionRecord,
)


def version_to_json(mv: ModelVersion) -> dict[str, Any]:
    """A version as JSON (``pii_findings`` are the logging call's, never stored or sent)."""
    data = asdict(mv)
    data.pop("pii_findings")
    return data


def version_from_json(data: dict[str, Any]) -> ModelVersion:
    """The inverse of :func:`version_to_json`."""
    links = tuple(VersionDataset(**d) for d in data["linked_datasets"])
    return ModelVersion(
        name=data["name"],
        version=int(data["version"]),
        created_ms=int(data["created_ms"]),
        run_id=data["run_id"],
        flavor=data["flavor"],
        package_digest=data["package_digest"],
        signature=data["signature"],
        metrics=data["metrics"],
        description=data["description"],
        tags=data["tags"],
        aliases=tuple(data["aliases"]),
        datasets=tuple((str(n), str(d)) for n, d in data["datasets"]),
        linked_datasets=links,
        trusted_types=tuple(data["trusted_types"]),
    )


def model_from_json(data: dict[str, Any]) -> RegisteredModel:
    """A registered model from its JSON form (``dataclasses.asdict``)."""
    return RegisteredModel(**data)


def event_from_json(data: dict[str, Any]) -> Event:
    """An event from its JSON form (``dataclasses.asdict``)."""
    return Event(**data)


def record_from_json(data: dict[str, Any]) -> VersionRecord:
    """A version record from its JSON form (``dataclasses.asdict``)."""
    return VersionRecord(**data)


__all__ = [
    "event_from_json",
    "model_from_json",
    "record_from_json",
    "version_from_json",
    "version_to_json",
]
