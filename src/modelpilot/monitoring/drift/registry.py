"""Drift methods by name, with their default threshold and the column kinds they accept.

Each method module registers itself with :func:`register`; ``modelpilot.monitoring.drift``
imports them all, so every name below is available once the package is imported.

>>> from modelpilot.monitoring import drift
>>> spec = get_method("psi")
>>> spec.default_threshold, sorted(spec.kinds)
(0.1, ['categorical', 'numeric'])
>>> DEFAULT_METHODS["numeric"]
'ks'
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from modelpilot.errors import InvalidInput, shown
from modelpilot.monitoring.drift.base import ColumnKind, DriftMethod

# Test-based defaults with a minimum effect size: see docs/monitoring.md, "Large samples".
DEFAULT_METHODS: dict[ColumnKind, str] = {"numeric": "ks", "categorical": "chi2"}

T = TypeVar("T")


@dataclass(frozen=True)
class MethodSpec:
    """A registered drift method."""

    name: str
    factory: Callable[..., DriftMethod]
    default_threshold: float
    kinds: frozenset[ColumnKind]
    uses_p_value: bool
    summary: str

    def create(self, *, threshold: float | None = None, **options: Any) -> DriftMethod:
        """A new, unfitted instance (``threshold`` defaults to the registered one)."""
        chosen = self.default_threshold if threshold is None else threshold
        return self.factory(threshold=chosen, **options)


_METHODS: dict[str, MethodSpec] = {}


def register(
    name: str,
    *,
    default_threshold: float,
    kinds: tuple[ColumnKind, ...],
    uses_p_value: bool,
    summary: str,
) -> Callable[[T], T]:
    """Class decorator that registers a drift method under ``name``."""

    def decorate(cls: T) -> T:
        _METHODS[name] = MethodSpec(
            name=name,
            factory=cls,  # type: ignore[arg-type]
            default_threshold=default_threshold,
            kinds=frozenset(kinds),
            uses_p_value=uses_p_value,
            summary=summary,
        )
        return cls

    return decorate


def get_method(name: str) -> MethodSpec:
    """The method registered as ``name``; InvalidInput lists the known names otherwise."""
    try:
        return _METHODS[name]
    except KeyError:
        raise InvalidInput(
            f"Unknown drift method {shown(name)}. Known methods: {', '.join(sorted(_METHODS))}.",
            field="method",
        ) from None


def method_for(name: str, kind: ColumnKind, column: str) -> MethodSpec:
    """The method ``name`` checked against the column's kind.

    >>> from modelpilot.monitoring import drift
    >>> method_for("ks", "numeric", "age").name
    'ks'
    """
    spec = get_method(name)
    if kind not in spec.kinds:
        allowed = ", ".join(available_methods(kind))
        raise InvalidInput(
            f"Drift method {shown(name)} does not accept {kind} column {shown(column)}. "
            f"Methods for {kind} columns: {allowed}.",
            field="method",
        )
    return spec


def available_methods(kind: ColumnKind | None = None) -> list[str]:
    """Registered method names, optionally only those accepting ``kind``.

    >>> from modelpilot.monitoring import drift
    >>> available_methods("categorical")
    ['chi2', 'jensenshannon', 'psi']
    """
    return sorted(n for n, s in _METHODS.items() if kind is None or kind in s.kinds)
