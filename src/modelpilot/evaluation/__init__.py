"""Evaluation: how good is a model, where is it weak, and may it replace the champion?

Owns the measurement of one model (optionally against a baseline) on labelled data:

* metrics per task with seeded, vectorised bootstrap intervals (:func:`evaluate`,
  :class:`EvaluationResult`, :class:`MetricValue`);
* per-slice metrics with small-slice warnings, calibration (ECE, reliability diagram),
  fairness per sensitive attribute (demographic parity, equalized odds), robustness under
  noise, missing values and category shifts, permutation importance and built-in TreeSHAP;
* the paired-bootstrap comparison with a baseline, metric by metric and slice by slice;
* promotion gates: a YAML policy (:func:`load_policy`, :class:`GatePolicy`) checked against a
  result (:func:`check_gate`, :class:`GateVerdict`), and in-process latency
  (:func:`measure_latency`).

It works on plain objects with ``predict``/``predict_proba`` and DataFrames. It never resolves
model references, loads packages, writes to the metadata store, or decides deployments: a
verdict says whether a policy's checks passed; promoting, registering and rolling out are the
caller's acts (``registry``/``release``).

>>> import numpy as np, pandas as pd
>>> from sklearn.linear_model import LogisticRegression
>>> import modelpilot.evaluation as ev
>>> rng = np.random.default_rng(0)
>>> df = pd.DataFrame({"x": rng.normal(size=500)})
>>> df["y"] = (df["x"] + rng.normal(size=500) > 0).astype(int)
>>> model = LogisticRegression().fit(df[["x"]], df["y"])
>>> result = ev.evaluate(model, df, "y", n_bootstrap=200, robustness=False, explain=False)
>>> policy = ev.parse_policy("metrics:\\n  roc_auc: {min: 0.7}\\ncalibration: {max_ece: 0.05}\\n")
>>> ev.check_gate(policy, result).passed
True
"""

from modelpilot.evaluation.bootstrap import MetricValue
from modelpilot.evaluation.calibration import (
    CalibrationBin,
    CalibrationResult,
    expected_calibration_error,
)
from modelpilot.evaluation.comparison import Comparison, Difference
from modelpilot.evaluation.evaluator import evaluate
from modelpilot.evaluation.explanations import Explanations, FeatureImportance
from modelpilot.evaluation.fairness import (
    FairnessResult,
    GroupMetrics,
    demographic_parity_difference,
    equalized_odds_difference,
)
from modelpilot.evaluation.gates import check_gate, fidelity_checks
from modelpilot.evaluation.latency import LatencyStats, measure_latency
from modelpilot.evaluation.metrics import METRICS, MetricSpec, metrics_for
from modelpilot.evaluation.policy import FidelityRules, GatePolicy, load_policy, parse_policy
from modelpilot.evaluation.prediction import Task, infer_task
from modelpilot.evaluation.result import EvaluationResult
from modelpilot.evaluation.robustness import RobustnessScenario
from modelpilot.evaluation.slices import SliceResult
from modelpilot.evaluation.verdict import GateCheck, GateVerdict

__all__ = [
    "METRICS",
    "CalibrationBin",
    "CalibrationResult",
    "Comparison",
    "Difference",
    "EvaluationResult",
    "Explanations",
    "FairnessResult",
    "FeatureImportance",
    "FidelityRules",
    "GateCheck",
    "GatePolicy",
    "GateVerdict",
    "GroupMetrics",
    "LatencyStats",
    "MetricSpec",
    "MetricValue",
    "RobustnessScenario",
    "SliceResult",
    "Task",
    "check_gate",
    "demographic_parity_difference",
    "equalized_odds_difference",
    "evaluate",
    "expected_calibration_error",
    "fidelity_checks",
    "infer_task",
    "load_policy",
    "measure_latency",
    "metrics_for",
    "parse_policy",
]
