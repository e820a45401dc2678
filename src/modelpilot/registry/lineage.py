"""Lineage: why a model version exists, answered from the records alone.

version -> run (params, code revision, Python, experiment) -> dataset versions.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from modelpilot.data import get_dataset
from modelpilot.errors import NotFound
from modelpilot.registry.service import get_version
from modelpilot.store import Store
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
    model = {
        "ref": mv.ref,
        "name": mv.name,
        "version": mv.version,
        "flavor": mv.flavor,
        "aliases": list(mv.aliases),
        "package": mv.package_digest,
        "created_ms": mv.created_ms,
    }
    run_info: dict[str, Any] | None = None
    roles: dict[tuple[str, str], str] = {}
    if mv.run_id is not None:
        try:
            run = get_run(store, mv.run_id)
        except NotFound:
            run = None
        if run is not None:
            run_info = {
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
            for d in run.datasets:
                roles.setdefault((d.name, d.digest), d.role)
    for linked in mv.linked_datasets:  # the version's own link says what each dataset was for
        roles[(linked.name, linked.digest)] = linked.role
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
    return Lineage(model=model, run=run_info, datasets=datasets)
