"""What every drift method shares: the result, the column kinds and the batch protocol.

A method is fitted once on the reference and then scores as many current windows as needed.
Test-based methods (``ks``, ``chi2``) report a p-value and use ``threshold`` as the
significance level; distance-based methods (``psi``, ``wasserstein``, ``jensenshannon``)
report no p-value and use ``threshold`` as the distance above which a column has drifted.

>>> result = DriftResult(statistic=0.08, p_value=1e-9, threshold=0.05, drifted=True)
>>> result.drifted, result.p_value is not None
(True, True)
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol, Self, TypeVar

from modelpilot.errors import InvalidInput

ColumnKind = Literal["numeric", "categorical"]
COLUMN_KINDS: tuple[ColumnKind, ...] = ("numeric", "categorical")
T = TypeVar("T")


@dataclass(frozen=True)
class DriftResult:
    """One column's drift score against its reference.

    ``effect_size`` is how large the difference is, measured as ``effect`` names (see
    :mod:`.effect`); ``effects`` holds every effect size the method measured. Test-based
    methods only call a column drifted when its effect size also reaches ``min_effect_size``
    (calibrated, :mod:`.minimum`), so huge samples do not turn negligible differences into
    alarms. Distance methods report their distance as the effect and their threshold as
    the minimum.
    """

    statistic: float
    p_value: float | None
    threshold: float
    drifted: bool
    effect_size: float | None = None
    min_effect_size: float | None = None
    effect: str | None = None
    effects: dict[str, float] = field(default_factory=dict)
    check: str | None = None  # the minimum-effect key that decided it (minimum.MIN_EFFECT)

    def with_p_value(self, p_value: float) -> DriftResult:
        """The same result re-decided at a corrected (multiple-testing) p-value.

        >>> r = DriftResult(0.1, 0.01, 0.05, True, effect_size=0.1, min_effect_size=0.03)
        >>> r.with_p_value(0.2).drifted
        False
        """
        return replace(self, p_value=p_value, drifted=decide_test(self, p_value))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values."""
        return {
            "statistic": self.statistic,
            "p_value": self.p_value,
            "threshold": self.threshold,
            "drifted": self.drifted,
            "effect_size": self.effect_size,
            "min_effect_size": self.min_effect_size,
            "effect": self.effect,
            "effects": dict(self.effects),
            "check": self.check,
        }


def decide_test(result: DriftResult, p_value: float) -> bool:
    """A test-based decision: significant at ``threshold`` and large enough to matter.

    >>> decide_test(DriftResult(0.01, 0.001, 0.05, True, 0.01, 0.03), 0.001)
    False
    """
    large_enough = (
        result.effect_size is None
        or result.min_effect_size is None
        or result.effect_size >= result.min_effect_size
    )
    return p_value < result.threshold and large_enough


def distance_result(value: float, threshold: float, effect: str) -> DriftResult:
    """A distance method's result: the distance is the effect, the threshold its minimum.

    >>> distance_result(0.12, 0.1, "psi").drifted
    True
    """
    return DriftResult(
        statistic=value,
        p_value=None,
        threshold=threshold,
        drifted=value >= threshold,
        effect_size=value,
        min_effect_size=threshold,
        effect=effect,
        effects={effect: value},
    )


def fitted(state: T | None, method: str) -> T:
    """The fitted reference state of a method, or a clear error when fit was skipped.

    >>> fitted(None, "ks")
    Traceback (most recent call last):
    ...
    modelpilot.errors.InvalidInput: Drift method 'ks' is not fitted: call fit(reference) ...
    """
    if state is None:
        raise not_fitted(method)
    return state


def not_fitted(method: str) -> InvalidInput:
    """The error for scoring before fitting."""
    return InvalidInput(
        f"Drift method {method!r} is not fitted: call fit(reference) before score(current)."
    )


class DriftMethod(Protocol):
    """Batch form of a drift detector: fit the reference once, score many windows."""

    def fit(self, reference: Any) -> Self:
        """Learn what the method needs from the reference (a 1-D sample or a summary)."""
        ...

    def score(self, current: Any) -> DriftResult:
        """Compare one current window (a 1-D sample or a prepared one) to the reference."""
        ...
