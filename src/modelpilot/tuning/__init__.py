"""Hyperparameter tuning on Optuna, with every trial a tracked child run.

Owns search spaces, studies and their link to runs; never trains models itself (the caller's
function does) and never registers them.
"""

from __future__ import annotations

from modelpilot.tuning.space import to_distributions
from modelpilot.tuning.storage import StudyStorage
from modelpilot.tuning.study import TrialContext, TrialRuns, TuneResult, tune

__all__ = [
    "StudyStorage",
    "TrialContext",
    "TrialRuns",
    "TuneResult",
    "to_distributions",
    "tune",
]
