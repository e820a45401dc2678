"""What each dataset linked to a model version was for: training, validation, test, reference.

Monitoring takes its drift reference by role (``reference`` if given, else ``training``), so
a holdout set logged beside the training set never becomes the reference by accident; the
model's input domain (what the data plane flags requests against) is read from the same data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from modelpilot.artifacts import ArtifactStore
from modelpilot.data import DatasetVersion
from modelpilot.data.column_stats import ColumnKind, ColumnStats, column_stats
from modelpilot.errors import InvalidInput, shown
from modelpilot.models.signature import MAX_CATEGORIES, NUMERIC_DTYPES, InputDomain, Signature
from modelpilot.registry.entities import VersionDataset

DATASET_ROLES = ("training", "validation", "test", "reference")

DatasetsArg = Sequence[DatasetVersion] | Mapping[str, DatasetVersion | Sequence[DatasetVersion]]


def check_dataset_role(role: object) -> str:
    """One of :data:`DATASET_ROLES`.

    >>> check_dataset_role("test")
    'test'
    >>> check_dataset_role("holdout")
    Traceback (most recent call last):
    modelpilot.errors.InvalidInput: Unknown dataset role 'holdout': expected one of training, validation, test, reference, e.g. datasets={'training': train, 'test': holdout}.
    """  # noqa: E501
    if role not in DATASET_ROLES:
        raise InvalidInput(
            f"Unknown dataset role {shown(role)}: expected one of {', '.join(DATASET_ROLES)}, "
            "e.g. datasets={'training': train, 'test': holdout}.",
            field="datasets",
        )
    return str(role)


def link_datasets(datasets: DatasetsArg) -> list[VersionDataset]:
    """Read ``log_model``'s ``datasets``: a list means training data; a dict maps a role to
    one dataset or a list of them (``{"training": train, "test": holdout}``)."""
    links: dict[tuple[str, str], VersionDataset] = {}
    for role, ds in _pairs(datasets):
        known = links.setdefault((ds.name, ds.digest), VersionDataset(ds.name, ds.digest, role))
        if known.role != role:
            raise InvalidInput(
                f"Dataset {ds.ref} is given twice, as {known.role!r} and {role!r}; a dataset "
                "has one role per model version.",
                field="datasets",
            )
    return list(links.values())


def training_domain(
    artifacts: ArtifactStore, datasets: DatasetsArg, signature: Signature
) -> InputDomain | None:
    """The input domain of the data a model learnt from: the ``reference`` datasets if any,
    else the ``training`` ones (as monitoring picks its reference), merged; None without
    either or for tensor models. Columns no dataset has keep the input example's domain.

    Reads only the signature's columns, streamed (:func:`modelpilot.data.column_stats`).
    """
    pairs = _pairs(datasets)
    chosen = [ds for role, ds in pairs if role == "reference"] or [
        ds for role, ds in pairs if role == "training"
    ]
    if not chosen or signature.input_kind != "columns":
        return None
    kinds: dict[str, ColumnKind] = {
        s.name: "number"
        if s.dtype in NUMERIC_DTYPES
        else "category"
        if s.dtype == "string"
        else "other"
        for s in signature.inputs
    }
    distinct = list({(ds.name, ds.digest): ds for ds in chosen}.values())
    facts: dict[str, ColumnStats] = {}
    for ds in distinct:
        for name, stats in column_stats(artifacts, ds, kinds, max_values=MAX_CATEGORIES).items():
            facts[name] = stats if name not in facts else facts[name].merge(stats)
    source = ", ".join(ds.ref for ds in distinct)
    return InputDomain.from_facts(signature.inputs, facts, source, fallback=signature.domain)


def _kind(dtype: str) -> ColumnKind:
    if dtype in NUMERIC_DTYPES:
        return "number"
    return "category" if dtype == "string" else "other"


def _pairs(datasets: DatasetsArg) -> list[tuple[str, DatasetVersion]]:
    """(role, dataset) for each dataset given, roles and values checked."""
    if isinstance(datasets, Mapping):
        pairs = [
            (check_dataset_role(role), ds)
            for role, value in datasets.items()
            for ds in ([value] if isinstance(value, DatasetVersion) else value)
        ]
    elif isinstance(datasets, DatasetVersion):
        pairs = [("training", datasets)]
    else:
        pairs = [("training", ds) for ds in datasets]
    for role, ds in pairs:
        if not isinstance(ds, DatasetVersion):
            raise InvalidInput(
                "datasets must hold values returned by mp.log_dataset (a list, or a dict from "
                f"role to them); got {type(ds).__name__} for role {role!r}.",
                field="datasets",
            )
    return pairs
