"""Signature compatibility: a new variant must accept what the stable variant accepts.

Callers of a deployment send one shape of request whichever variant answers, so a canary
whose inputs differ (a column missing, renamed, or of another kind) would fail live traffic.
"""

from __future__ import annotations

from modelpilot.errors import InvalidInput
from modelpilot.models import Signature
from modelpilot.registry import ModelVersion, get_version
from modelpilot.release.config import Variant
from modelpilot.store import Store

_FAMILY = {
    "float64": "number",
    "float32": "number",
    "int64": "number",
    "int32": "number",
    "bool": "bool",
    "string": "string",
    "datetime": "datetime",
}


def check_compatible(
    store: Store, deployment: str, stable: Variant, candidate: ModelVersion
) -> None:
    """Raise InvalidInput naming every difference between the two input signatures."""
    base = Signature.from_dict(get_version(store, stable.ref).signature)
    new = Signature.from_dict(candidate.signature)
    problems = differences(base, new)
    if problems:
        raise InvalidInput(
            f"Deployment {deployment!r}: {candidate.ref} cannot serve alongside the stable "
            f"{stable.ref}: {'; '.join(problems)}. Requests are validated against one signature, "
            "so every variant must accept the same inputs.",
            field="model",
        )


def differences(base: Signature, new: Signature) -> list[str]:
    """Human-readable differences between two input signatures (empty when compatible).

    >>> from modelpilot.models.signature import ColumnSpec
    >>> a = Signature("columns", inputs=(ColumnSpec("age", "int64"), ColumnSpec("plan", "string")))
    >>> b = Signature("columns", inputs=(ColumnSpec("age", "float64"),))
    >>> differences(a, b)
    ["column 'plan' is missing"]
    """
    if base.input_kind != new.input_kind:
        return [f"it takes {new.input_kind} input, the stable variant takes {base.input_kind}"]
    if base.input_kind == "tensor":
        if base.tensor_shape[1:] != new.tensor_shape[1:]:
            return [f"tensor shape {list(new.tensor_shape)} differs from {list(base.tensor_shape)}"]
        return []
    new_specs = {c.name: c for c in new.inputs}
    problems = []
    for spec in base.inputs:
        other = new_specs.pop(spec.name, None)
        if other is None:
            problems.append(f"column {spec.name!r} is missing")
        elif _FAMILY[other.dtype] != _FAMILY[spec.dtype]:
            problems.append(
                f"column {spec.name!r} is {other.dtype}, the stable variant's is {spec.dtype}"
            )
    problems += [
        f"column {name!r} is not sent by callers of the stable variant" for name in new_specs
    ]
    return problems
