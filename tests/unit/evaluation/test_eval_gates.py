"""Gate policies (YAML schema, line-numbered errors), check_gate verdicts, measure_latency."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression

from modelpilot.errors import InvalidInput
from modelpilot.evaluation import (
    EvaluationResult,
    GatePolicy,
    check_gate,
    evaluate,
    load_policy,
    measure_latency,
    parse_policy,
)

SAMPLE = """\
schema_version: 1
name: churn-promotion
metrics:
  roc_auc: {min: 0.70}
baseline:
  confidence: 0.95
  max_drop: {roc_auc: 0.005}
slices:
  max_drop_vs_baseline: {roc_auc: 0.02}
calibration: {max_ece: 0.05}
fairness: {max_demographic_parity_difference: 0.1}
robustness: {max_drop: 0.05, allow_failures: true}
latency: {max_p99_ms: 5}
package: {max_size_mb: 200}
"""


def frame(n: int = 2000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "tenure": rng.normal(size=n),
            "calls": rng.normal(size=n),
            "region": rng.choice(["north", "south", "west"], n, p=[0.49, 0.49, 0.02]),
            "gender": rng.choice(["f", "m"], n),
        }
    )
    logit = 1.5 * df["tenure"] + 0.8 * df["calls"]
    df["churned"] = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    return df


@pytest.fixture(scope="module")
def df() -> pd.DataFrame:
    return frame()


@pytest.fixture(scope="module")
def strong(df: pd.DataFrame) -> LogisticRegression:
    return LogisticRegression().fit(df[["tenure", "calls"]], df["churned"])


@pytest.fixture(scope="module")
def weak(df: pd.DataFrame) -> LogisticRegression:
    return LogisticRegression().fit(df[["tenure"]], df["churned"])


@pytest.fixture(scope="module")
def better(df: pd.DataFrame, strong: object, weak: object) -> EvaluationResult:
    """The strong model against the weak baseline: every gate should let it through."""
    return evaluate(
        strong,
        df,
        "churned",
        slices=["region"],
        sensitive=["gender"],
        baseline=weak,
        n_bootstrap=300,
        explain=False,
    )


@pytest.fixture(scope="module")
def worse(df: pd.DataFrame, strong: object, weak: object) -> EvaluationResult:
    return evaluate(
        weak,
        df,
        "churned",
        slices=["region"],
        baseline=strong,
        n_bootstrap=300,
        robustness=False,
        explain=False,
    )


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gate.yaml"
    path.write_text(text, encoding="utf-8")
    return path


# --- the policy file -------------------------------------------------------------------------


def test_the_sample_policy_loads_with_every_section(tmp_path: Path) -> None:
    policy = load_policy(write(tmp_path, SAMPLE))
    assert policy.name == "churn-promotion"
    assert policy.metrics["roc_auc"].min == 0.70
    assert policy.baseline is not None and policy.baseline.max_drop == {"roc_auc": 0.005}
    assert policy.slices is not None and policy.slices.confidence is None
    assert policy.latency is not None and policy.latency.max_p99_ms == 5
    assert json.loads(json.dumps(policy.to_dict()))["package"] == {"max_size_mb": 200.0}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "metrics:\n  roc_auc: {min: 0.7\ncalibration: {max_ece: 0.05}\n",
            r"Gate policy gate.yaml, line 3: not valid YAML",
        ),
        (
            "name: x\ncalibration:\n  max_eec: 0.05\n",
            r"line 3, calibration.max_eec: unknown key. Did you mean 'max_ece'\?",
        ),
        (
            "calibration:\n  max_ece: lots\n",
            r"line 2, calibration.max_ece: Input should be a valid number.*got 'lots'",
        ),
        (
            "fairness:\n\n  max_demographic_parity_difference: 1.5\n",
            r"line 3, fairness.max_demographic_parity_difference: .*less than or equal to 1",
        ),
        (
            "metrics:\n  accuracy: {min: 0.8}\n  roc_acu: {min: 0.7}\n",
            r"line 3, metrics.roc_acu: unknown metric 'roc_acu'. Did you mean 'roc_auc'\?",
        ),
        (
            "metrics:\n  roc_auc: {}\n",
            r"line 2, metrics.roc_auc: give min, max or both",
        ),
        (
            "latency: {max_p99_ms: 5}\nbaseline:\n  confidence: 0.9\n",
            r"line 2, baseline.max_drop: missing required key",
        ),
        (
            "calibration: {max_ece: 0.05}\nlatency: {max_p99_ms: 5}\ncalibration: {max_ece: 0.1}\n",
            r"line 3: key 'calibration' appears twice",
        ),
        ("lattency: {max_p99_ms: 5}\n", r"line 1, lattency: unknown key. Did you mean 'latency'\?"),
        ("name: only-a-name\n", r"line 1, \(top level\): a policy needs at least one check"),
        ("- metrics\n", r"line 1: expected a mapping of sections"),
        ("\n# nothing here\n", r"gate.yaml is empty"),
        ("schema_version: 2\nlatency: {max_p99_ms: 5}\n", r"line 1, schema_version: .*got 2"),
    ],
)
def test_malformed_policies_name_the_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        load_policy(write(tmp_path, text))


def test_a_missing_policy_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="No gate policy file at .*nope.yaml"):
        load_policy(tmp_path / "nope.yaml")


# --- verdicts --------------------------------------------------------------------------------


def test_the_sample_policy_passes_a_better_model(better: EvaluationResult) -> None:
    verdict = check_gate(
        parse_policy(SAMPLE), better, latency_p99_ms=1.2, package_size_bytes=3_000_000
    )
    assert verdict.passed, verdict.summary()
    names = [c.name for c in verdict.checks]
    assert names[:3] == [
        "metrics.roc_auc.min",
        "baseline.roc_auc",
        "slices.roc_auc.max_drop_vs_baseline",
    ]
    assert "fairness.gender.demographic_parity_difference" in names
    payload = json.loads(json.dumps(verdict.to_dict(), allow_nan=False))
    assert payload["passed"] is True and payload["policy"] == "churn-promotion"
    assert list(verdict.to_frame().columns) == ["name", "passed", "value", "threshold", "message"]


def test_a_failing_check_fails_the_verdict_and_is_named(better: EvaluationResult) -> None:
    policy = parse_policy("metrics:\n  roc_auc: {min: 0.99}\n  log_loss: {max: 1.0}\n")
    verdict = check_gate(policy, better)
    assert not verdict.passed
    assert [c.name for c in verdict.failed] == ["metrics.roc_auc.min"]
    failed = verdict.failed[0]
    assert failed.threshold == 0.99 and failed.value == better.metrics["roc_auc"].value
    assert "FAIL  metrics.roc_auc.min" in verdict.summary()


def test_non_inferiority_fails_a_worse_challenger_with_its_bound(worse: EvaluationResult) -> None:
    policy = parse_policy("baseline:\n  max_drop: {roc_auc: 0.005, log_loss: 0.01}\n")
    verdict = check_gate(policy, worse)
    assert [c.name for c in verdict.failed] == ["baseline.roc_auc", "baseline.log_loss"]
    check = verdict.failed[0]
    assert check.value is not None and check.value < -0.005 and check.threshold == -0.005
    assert "one-sided 95% lower bound" in check.message


def _margin_between(low: float | None, high: float | None) -> float:
    """An allowed drop that a bound of ``high`` passes and a bound of ``low`` fails."""
    assert low is not None and high is not None and low < high
    return -(low + high) / 2


def test_non_inferiority_uses_the_policy_confidence(worse: EvaluationResult) -> None:
    def check(confidence: float, max_drop: float) -> tuple[bool, float | None]:
        policy = parse_policy(
            f"baseline:\n  confidence: {confidence}\n  max_drop: {{roc_auc: {max_drop}}}\n"
        )
        (result,) = check_gate(policy, worse).checks
        return result.passed, result.value

    _, bound_99 = check(0.99, 1.0)
    _, bound_80 = check(0.8, 1.0)
    margin = _margin_between(bound_99, bound_80)
    assert check(0.8, margin)[0] is True
    assert check(0.99, margin)[0] is False


def test_slice_drops_use_slices_confidence_when_set(worse: EvaluationResult) -> None:
    def check(confidence: str, max_drop: float) -> tuple[bool, float | None]:
        policy = parse_policy(
            f"slices:\n{confidence}  max_drop_vs_baseline: {{roc_auc: {max_drop}}}\n"
        )
        (result,) = check_gate(policy, worse).checks
        return result.passed, result.value

    _, worst_bound = check("  confidence: 0.99\n", 1.0)
    _, worst_point = check("", 1.0)
    margin = _margin_between(worst_bound, worst_point)
    assert check("", margin)[0] is True  # point differences by default
    assert check("  confidence: 0.99\n", margin)[0] is False  # lower bounds when set


def test_slice_drops_name_the_worst_slice(worse: EvaluationResult) -> None:
    policy = parse_policy("slices:\n  max_drop_vs_baseline: {roc_auc: 0.02}\n")
    (check,) = check_gate(policy, worse).checks
    assert not check.passed and "worst slice region=" in check.message
    assert "small slice(s) not judged: region=west" in check.message
    with_small = parse_policy(
        "slices:\n  max_drop_vs_baseline: {roc_auc: 0.02}\n  include_small: true\n"
    )
    message = check_gate(with_small, worse).checks[0].message
    assert "of 3 slices fail" in message and "not judged" not in message


def test_gates_fail_closed_when_evidence_is_missing(worse: EvaluationResult) -> None:
    policy = parse_policy(
        "fairness: {max_demographic_parity_difference: 0.1}\nrobustness: {max_drop: 0.1}\n"
        "latency: {max_p99_ms: 5}\npackage: {max_size_mb: 1}\n"
    )
    verdict = check_gate(policy, worse)
    messages = {c.name: c.message for c in verdict.checks}
    assert not any(c.passed for c in verdict.checks)
    assert "pass sensitive=" in messages["fairness"]
    assert "robustness=True" in messages["robustness"]
    assert "measure_latency" in messages["latency.p99_ms"]
    assert "package_size_bytes" in messages["package.size_mb"]


def test_baseline_rules_without_a_baseline(df: pd.DataFrame, strong: object) -> None:
    alone = evaluate(strong, df, "churned", n_bootstrap=0, robustness=False, explain=False)
    required = check_gate(parse_policy("baseline: {max_drop: {roc_auc: 0.01}}"), alone)
    assert not required.passed and "pass baseline=" in required.checks[0].message
    optional = parse_policy("baseline: {max_drop: {roc_auc: 0.01}, required: false}")
    assert check_gate(optional, alone).passed


def test_robustness_failures_fail_unless_allowed(better: EvaluationResult) -> None:
    strict = check_gate(parse_policy("robustness: {max_drop: 0.5}"), better)
    assert [c.name for c in strict.failed] == ["robustness.missing_0.1", "robustness.missing_0.3"]
    lenient = parse_policy("robustness: {max_drop: 0.5, allow_failures: true}")
    assert check_gate(lenient, better).passed


def test_a_metric_the_task_lacks_fails_with_what_was_computed(df: pd.DataFrame) -> None:
    reg = LinearRegression().fit(df[["tenure"]], df["calls"])
    result = evaluate(reg, df[["tenure", "calls"]], "calls", n_bootstrap=0, robustness=False,
                      explain=False)  # fmt: skip
    verdict = check_gate(
        parse_policy("metrics: {roc_auc: {min: 0.5}}\ncalibration: {max_ece: 0.1}"), result
    )
    assert "not computed for this regression evaluation; computed: rmse, mae, r2" in (
        verdict.checks[0].message
    )
    assert verdict.checks[1].message == "no calibration (regression)"


def test_latency_and_package_bounds(better: EvaluationResult) -> None:
    policy = parse_policy("latency: {max_p99_ms: 5}\npackage: {max_size_mb: 200}")
    slow = check_gate(policy, better, latency_p99_ms=7.5, package_size_bytes=250_000_000)
    assert [(c.name, c.value) for c in slow.failed] == [
        ("latency.p99_ms", 7.5),
        ("package.size_mb", 250.0),
    ]


def test_check_gate_rejects_the_wrong_objects(better: EvaluationResult) -> None:
    with pytest.raises(InvalidInput, match="needs a GatePolicy; got dict"):
        check_gate({"metrics": {}}, better)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="needs an EvaluationResult; got dict"):
        check_gate(parse_policy(SAMPLE), better.to_dict())  # type: ignore[arg-type]
    assert isinstance(parse_policy(SAMPLE), GatePolicy)


# --- latency -------------------------------------------------------------------------------


def test_measure_latency_gives_ordered_percentiles(df: pd.DataFrame, strong: object) -> None:
    stats = measure_latency(strong, df[["tenure", "calls"]].iloc[[0]], n=200, warmup=5)
    assert stats.n == 200
    assert 0 < stats.p50_ms <= stats.p90_ms <= stats.p99_ms <= stats.max_ms
    assert set(stats.to_dict()) == {"p50_ms", "p90_ms", "p99_ms", "mean_ms", "max_ms", "n"}


def test_measure_latency_wants_one_row(df: pd.DataFrame, strong: object) -> None:
    with pytest.raises(InvalidInput, match=r"times one row; got 3 rows.*data.iloc\[\[0\]\]"):
        measure_latency(strong, df[["tenure", "calls"]].head(3))
    with pytest.raises(InvalidInput, match="needs a model with predict"):
        measure_latency(object(), df.head(1))


def test_the_policy_in_the_docs_parses() -> None:
    docs = Path(__file__).resolve().parents[3] / "docs" / "evaluation.md"
    block = docs.read_text(encoding="utf-8").split("```yaml\n", 1)[1].split("```", 1)[0]
    policy = parse_policy(block, source="docs/evaluation.md")
    assert policy.name == "churn-promotion" and policy.package is not None
