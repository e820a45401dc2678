"""Search spaces in plain Python: ranges, choices, or Optuna distributions.

* ``(2, 10)`` two ints -> integers in [2, 10]; ``(0.01, 0.3)`` floats -> uniform floats
* ``{"low": 1e-4, "high": 1e-1, "log": True}`` -> log-uniform (``step`` for a grid step)
* ``["gini", "entropy"]`` -> a categorical choice
* any ``optuna.distributions.BaseDistribution`` as is
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from modelpilot.errors import InvalidInput, shown


def to_distributions(space: Mapping[str, Any]) -> dict[str, BaseDistribution]:
    """Translate a search space into Optuna distributions.

    >>> d = to_distributions({"depth": (2, 8), "lr": {"low": 1e-3, "high": 0.3, "log": True}})
    >>> type(d["depth"]).__name__, d["lr"].log
    ('IntDistribution', True)
    """
    if not space:
        raise InvalidInput("The search space is empty; give at least one parameter.", field="space")
    return {name: _one(name, spec) for name, spec in space.items()}


def _one(name: str, spec: Any) -> BaseDistribution:
    if isinstance(spec, BaseDistribution):
        return spec
    if isinstance(spec, list):
        if not spec:
            raise InvalidInput(f"Search space {name!r}: the list of choices is empty.", field=name)
        return CategoricalDistribution(spec)
    if isinstance(spec, Mapping):
        unknown = set(spec) - {"low", "high", "log", "step"}
        if unknown or "low" not in spec or "high" not in spec:
            raise InvalidInput(
                f"Search space {name!r}: expected keys low, high and optionally log, step; got "
                f"{sorted(spec)}.",
                field=name,
            )
        return _range(
            name, spec["low"], spec["high"], bool(spec.get("log", False)), spec.get("step")
        )
    if isinstance(spec, tuple) and len(spec) == 2:
        return _range(name, spec[0], spec[1], False, None)
    raise InvalidInput(
        f"Search space {name!r}: cannot read {shown(spec)}. Use (low, high), "
        "{'low': …, 'high': …, 'log': True}, a list of choices, or an Optuna distribution.",
        field=name,
    )


def _range(name: str, low: Any, high: Any, log: bool, step: Any) -> BaseDistribution:
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)):
        raise InvalidInput(f"Search space {name!r}: low and high must be numbers.", field=name)
    if low >= high:
        raise InvalidInput(
            f"Search space {name!r}: low ({low}) must be below high ({high}).", field=name
        )
    if log and low <= 0:
        raise InvalidInput(
            f"Search space {name!r}: a log range needs low > 0; got {low}.", field=name
        )
    if isinstance(low, int) and isinstance(high, int) and not isinstance(step, float):
        return IntDistribution(low, high, log=log, step=step or 1)
    return FloatDistribution(float(low), float(high), log=log, step=step)
