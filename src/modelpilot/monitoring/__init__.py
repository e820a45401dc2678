"""Monitoring: is production data still like the data the model was built and checked on?

Owns the statistics of monitoring, usable from a notebook or CI with no deployment:

* reference profiles fitted once and kept (:func:`fit_profile`, :class:`ReferenceProfile`);
* per-column drift with registered methods (``ks``, ``chi2``, ``psi``, ``wasserstein``,
  ``jensenshannon``), prediction drift, a dataset verdict with multiple-testing control and a
  report for notebooks, CI and people (:func:`detect_drift`, :class:`DriftReport`);
* multivariate drift with a domain classifier (:func:`domain_classifier_drift`);
* performance without labels: CBPE for binary and multiclass classifiers, DLE for
  regressors (:func:`estimate_performance`);
* concept drift on an error stream (:class:`ADWIN`, :class:`PageHinkley`).

The statistics never serve requests, read the prediction log, write to the metadata store or
send alerts: callers hand them DataFrames and act on what they return. Monitoring jobs
(:mod:`.jobs`) read a deployment's window from the prediction log through its reader, and
the monitoring service (:mod:`.service`, local or over ``modelpilot server``) keeps their
reports as version records; alerts stay with the caller.

>>> import numpy as np, pandas as pd
>>> import modelpilot.monitoring as mon
>>> rng = np.random.default_rng(0)
>>> ref = pd.DataFrame({"x": rng.normal(size=5000)})
>>> mon.detect_drift(ref, pd.DataFrame({"x": rng.normal(0.2, 1, 5000)})).drifted_columns
['x']
"""

from modelpilot.monitoring.concept import ADWIN, PageHinkley, StreamDetector, detect_changes
from modelpilot.monitoring.drift import (
    DriftMethod,
    DriftResult,
    available_methods,
    get_method,
)
from modelpilot.monitoring.drift.detect import detect_drift
from modelpilot.monitoring.multivariate import MultivariateDriftResult, domain_classifier_drift
from modelpilot.monitoring.performance import METRICS as PERFORMANCE_METRICS
from modelpilot.monitoring.performance import estimate_performance
from modelpilot.monitoring.profile import ReferenceProfile, fit_profile
from modelpilot.monitoring.report import ColumnDrift, DriftReport

__all__ = [
    "ADWIN",
    "PERFORMANCE_METRICS",
    "ColumnDrift",
    "DriftMethod",
    "DriftReport",
    "DriftResult",
    "MultivariateDriftResult",
    "PageHinkley",
    "ReferenceProfile",
    "StreamDetector",
    "available_methods",
    "detect_changes",
    "detect_drift",
    "domain_classifier_drift",
    "estimate_performance",
    "fit_profile",
    "get_method",
]
