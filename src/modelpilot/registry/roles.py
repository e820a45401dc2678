"""What each dataset linked to a model version was for: training, validation, test, reference.

Monitoring takes its drift reference by role (``reference`` if given, else ``training``), so
a holdout set logged beside the training set never becomes the reference by accident.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from modelpilot.data import DatasetVersion
from modelpilot.errors import InvalidInput, shown
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
    links: dict[tuple[str, str], VersionDataset] = {}
    for role, ds in pairs:
        if not isinstance(ds, DatasetVersion):
            raise InvalidInput(
                "datasets must hold values returned by mp.log_dataset (a list, or a dict from "
                f"role to them); got {type(ds).__name__} for role {role!r}.",
                field="datasets",
            )
        known = links.setdefault((ds.name, ds.digest), VersionDataset(ds.name, ds.digest, role))
        if known.role != role:
            raise InvalidInput(
                f"Dataset {ds.ref} is given twice, as {known.role!r} and {role!r}; a dataset "
                "has one role per model version.",
                field="datasets",
            )
    return list(links.values())
