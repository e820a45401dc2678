"""Drift methods, one per module, registered by name (see :mod:`.registry`).

Batch protocol: ``method.fit(reference) -> method`` and ``method.score(current) ->
DriftResult``. Numeric methods: ``ks`` (default), ``psi``, ``wasserstein``,
``jensenshannon``. Categorical methods: ``chi2`` (default), ``psi``, ``jensenshannon``.

>>> from modelpilot.monitoring.drift import available_methods
>>> available_methods("numeric")
['jensenshannon', 'ks', 'psi', 'wasserstein']
"""

from modelpilot.monitoring.drift import registry
from modelpilot.monitoring.drift.base import COLUMN_KINDS, ColumnKind, DriftMethod, DriftResult
from modelpilot.monitoring.drift.chi2 import ChiSquare
from modelpilot.monitoring.drift.jensenshannon import JensenShannon
from modelpilot.monitoring.drift.ks import KolmogorovSmirnov
from modelpilot.monitoring.drift.psi import PopulationStabilityIndex
from modelpilot.monitoring.drift.registry import (
    DEFAULT_METHODS,
    MethodSpec,
    available_methods,
    get_method,
)
from modelpilot.monitoring.drift.sample import CategoricalCounts, NumericSummary, SortedSample
from modelpilot.monitoring.drift.wasserstein import NormalisedWasserstein

__all__ = [
    "COLUMN_KINDS",
    "DEFAULT_METHODS",
    "CategoricalCounts",
    "ChiSquare",
    "ColumnKind",
    "DriftMethod",
    "DriftResult",
    "JensenShannon",
    "KolmogorovSmirnov",
    "MethodSpec",
    "NormalisedWasserstein",
    "NumericSummary",
    "PopulationStabilityIndex",
    "SortedSample",
    "available_methods",
    "get_method",
    "registry",
]
