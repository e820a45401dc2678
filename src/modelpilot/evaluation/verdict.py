"""Gate verdicts: one :class:`GateCheck` per policy rule, and the :class:`GateVerdict` over them.

>>> v = GateVerdict("demo", [GateCheck("calibration.ece", True, 0.02, 0.05, "ECE = 0.02")])
>>> v.passed, v.to_dict()["passed"]
(True, True)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd


@dataclass(frozen=True)
class GateCheck:
    """One rule's outcome. ``value`` and ``threshold`` are in the rule's own units."""

    name: str
    passed: bool
    value: float | None
    threshold: float | None
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "passed": self.passed,
            "value": self.value,
            "threshold": self.threshold,
            "message": self.message,
        }


@dataclass(frozen=True)
class GateVerdict:
    """All checks of one policy on one evaluation; passes when every check passes."""

    policy: str
    checks: list[GateCheck]
    policy_rules: dict[str, Any] | None = None

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def failed(self) -> list[GateCheck]:
        return [c for c in self.checks if not c.passed]

    def to_dict(self) -> dict[str, Any]:
        """What the registry stores as the version's gate record."""
        return {
            "policy": self.policy,
            "passed": self.passed,
            "checks": [c.to_dict() for c in self.checks],
            "policy_rules": self.policy_rules,
        }

    def to_frame(self) -> pd.DataFrame:
        """One row per check (what the CLI prints as a table)."""
        return pd.DataFrame(
            [c.to_dict() for c in self.checks],
            columns=["name", "passed", "value", "threshold", "message"],
        )

    def summary(self) -> str:
        """Plain-text lines: the verdict, then PASS/FAIL per check."""
        head = f"Gate '{self.policy}': {'PASSED' if self.passed else 'FAILED'}"
        lines = [f"  {'PASS' if c.passed else 'FAIL'}  {c.name}: {c.message}" for c in self.checks]
        return "\n".join([head, *lines])


def fmt(value: float | None) -> str:
    """A number for a check message (4 significant digits)."""
    return "n/a" if value is None else f"{value:.4g}"
