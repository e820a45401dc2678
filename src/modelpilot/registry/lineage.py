"""Lineage: why a model version exists, answered from the records alone.

version -> run (params, code revision, Python, experiment) -> dataset versions; and from a
run forward: run -> the versions registered from it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from modelpilot.data import get_dataset
from modelpilot.errors import NotFound
from modelpilot.registry.entities import ModelVersion
from modelpilot.registry.service import get_version, versions_of_run
from modelpilot.store import Store
from modelpilot.tracking.entities import Run
from modelpilot.tracking.service import get_run


@dataclass(frozen=True)
class Lineage:
    """The chain behind one model version."""

    model: dict[str, Any]
    run: dict[str, Any] | None
    datasets: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Lineage:
        """Rebuild from :meth:`to_dict` (what the server sends)."""
        return cls(model=data["model"], run=data.get("run"), datasets=data.get("datasets", []))

    def __str__(self) -> str:
        lines = [
            f"{self.model['ref']} ({self.model['flavor']}, aliases: "
            f"{', '.join(self.model['aliases']) or 'none'})"
        ]
        if self.run:
            lines.append(
                f"└─ run {self.run['id'][:8]} '{self.run['name']}' in experiment "
                f"'{self.run['experiment']}' [{self.run['status']}]"
            )
            lines.append(
                f"   code {self.run['code_revision'] or 'unknown'}, Python {self.run['python']}"
            )
        for ds in self.datasets:
            lines.append(
                f"   └─ {ds['role']} data {ds['name']}@{ds['version']} ({ds['num_rows']} rows)"
            )
        return "\n".join(lines)


def lineage(store: Store, ref: str) -> Lineage:
    """Trace a model version back to its run and datasets."""
    mv = get_version(store, ref)
    run = None
    if mv.run_id is not None:
        try:
            run = get_run(store, mv.run_id)
        except NotFound:
            run = None
    roles = _roles(run, [mv])
    return Lineage(
        model=_model_info(mv),
        run=None if run is None else _run_info(run),
        datasets=_datasets(store, roles),
    )


@dataclass(frozen=True)
class RunLineage:
    """A run traced both ways: the datasets it used (its own inputs, and those its versions
    were registered with) and the model versions registered from it."""

    run: dict[str, Any]
    datasets: list[dict[str, Any]]
    versions: list[dict[str, Any]]


def run_lineage(store: Store, run_id: str) -> RunLineage:
    """What a run used and what it led to (the run page's lineage); NotFound for an unknown
    run."""
    run = get_run(store, run_id)
    versions = versions_of_run(store, run.id)
    return RunLineage(
        run=_run_info(run),
        datasets=_datasets(store, _roles(run, versions)),
        versions=[_model_info(v) for v in versions],
    )


def _model_info(mv: ModelVersion) -> dict[str, Any]:
    return {
        "ref": mv.ref,
        "name": mv.name,
        "version": mv.version,
        "flavor": mv.flavor,
        "aliases": list(mv.aliases),
        "package": mv.package_digest,
        "created_ms": mv.created_ms,
    }


def _run_info(run: Run) -> dict[str, Any]:
    return {
        "id": run.id,
        "name": run.name,
        "experiment": run.experiment,
        "status": run.status.value,
        "code_revision": run.code_revision,
        "python": run.environment.get("python"),
        "params": run.params,
        "start_ms": run.start_ms,
        "end_ms": run.end_ms,
    }


def _roles(run: Run | None, versions: list[ModelVersion]) -> dict[tuple[str, str], str]:
    """(dataset name, digest) -> role: the run's inputs, overridden by what each version's
    own link says the dataset was for."""
    roles: dict[tuple[str, str], str] = {}
    for d in run.datasets if run is not None else ():
        roles.setdefault((d.name, d.digest), d.role)
    for mv in versions:
        for linked in mv.linked_datasets:
            roles[(linked.name, linked.digest)] = linked.role
    return roles


def _datasets(store: Store, roles: dict[tuple[str, str], str]) -> list[dict[str, Any]]:
    datasets = []
    for (name, digest), role in roles.items():
        ds = get_dataset(store, f"{name}@{digest}")
        datasets.append(
            {
                "name": ds.name,
                "version": ds.version,
                "digest": ds.digest,
                "num_rows": ds.num_rows,
                "source": ds.source,
                "role": role,
            }
        )
    return datasets
