"""Continuous training per deployment: the policy that says what retrains a deployment's
model, on which data, how the candidate is judged and how it rolls out; stored as revisions,
with the triggers it owns.

Owns the policy's schema, its checks and its storage, and the monitors a policy's
``monitoring:`` section runs (:func:`run_due_monitors`, called by the agent). Never runs
pipelines, evaluates or rolls out itself: the triggers of :mod:`modelpilot.pipelines` start
the training, and the agent that walks the rest of the loop comes next (issue 13).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelpilot.lazy import lazy_exports

if TYPE_CHECKING:
    from modelpilot.loop.monitors import (
        MonitorOutcome,
        run_due_monitors,
    )
    from modelpilot.loop.policy import (
        LoadedPolicy,
        LoopPolicy,
        duration_ms,
        load_loop_policy,
        parse_loop_policy,
    )
    from modelpilot.loop.service import (
        PolicyRevision,
        get_loop_policy,
        latest_loop_policies,
        loop_policy_history,
        set_loop_policy,
        trigger_name,
    )


__all__ = [
    "LoadedPolicy",
    "LoopPolicy",
    "MonitorOutcome",
    "PolicyRevision",
    "duration_ms",
    "get_loop_policy",
    "latest_loop_policies",
    "load_loop_policy",
    "loop_policy_history",
    "parse_loop_policy",
    "run_due_monitors",
    "set_loop_policy",
    "trigger_name",
]

# Imported on first use: the policy's storage and the alert rules its monitors name bring the
# store (SQLAlchemy), and the monitors bring monitoring, evaluation and the model loaders,
# which the CLI's start-up (and a model image's `modelpilot serve`) never needs.
__getattr__ = lazy_exports(
    __name__,
    __all__,
    ("modelpilot.loop.policy", "modelpilot.loop.service", "modelpilot.loop.monitors"),
)
