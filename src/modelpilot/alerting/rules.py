"""Alert rules: a condition on a monitored figure, how long it must hold, and how bad it is."""

from __future__ import annotations

import fnmatch
import operator
from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Severity = Literal["info", "warning", "critical"]
_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


class AlertRule(BaseModel):
    """``metric op threshold`` held for ``for_s`` seconds on a subject fires an alert.

    >>> rule = AlertRule(name="errors", metric="ops.error_rate", op=">", threshold=0.05)
    >>> rule.breached(0.07), rule.breached(0.01)
    (True, False)
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=128)
    metric: str = Field(
        min_length=1, description="e.g. drift.share_drifted, ops.p99_ms, performance.roc_auc"
    )
    op: Literal[">", ">=", "<", "<="]
    threshold: float
    for_s: float = Field(
        default=0.0, ge=0, description="how long the condition must hold before firing"
    )
    severity: Severity = "warning"
    subject: str = Field(default="*", description="deployment or model the rule watches; * for any")
    actions: tuple[str, ...] = Field(
        default=(), description="hooks to call when it fires, e.g. rollback"
    )

    def breached(self, value: float) -> bool:
        """True when ``value`` meets the alert condition."""
        return _OPS[self.op](value, self.threshold)

    def watches(self, subject: str, metric: str) -> bool:
        """True when this rule applies to an observation (``subject`` may be a glob)."""
        return metric == self.metric and fnmatch.fnmatchcase(subject, self.subject)


# What ``modelpilot monitor run`` and a policy's ``monitoring:`` section use when no rules are
# given. The drift rule is named ``dataset-drift`` so that a trigger ``on_alert: dataset-drift``
# matches it. ``performance.slice_drop`` is how far the worst slice fell below its evaluated
# metric beyond the total's fall, its interval excluding the evaluated value
# (monitoring/slice_performance.py); 0.03 lets a true 0.05 AUC drop of a slice fire reliably
# through sampling noise while the total moves by 0.01.
DEFAULT_RULES: tuple[AlertRule, ...] = (
    AlertRule(
        name="dataset-drift", metric="drift.share_drifted", op=">=", threshold=0.3,
        severity="warning",
    ),
    AlertRule(
        name="error-rate", metric="ops.error_rate", op=">", threshold=0.05, severity="critical"
    ),
    AlertRule(
        name="slice-performance-drop", metric="performance.slice_drop", op=">", threshold=0.03,
        severity="warning",
    ),
)  # fmt: skip
