"""The continuous-training policy file: every key checked, each error as FILE:LINE: KEY: what
is wrong; paths relative to the file; the duration parser."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelpilot.alerting.rules import DEFAULT_RULES
from modelpilot.errors import InvalidInput
from modelpilot.loop import LoopPolicy, duration_ms, load_loop_policy
from modelpilot.pipelines.triggers import TriggerKind

PIPELINE = Path(__file__).parents[2] / "integration" / "pipelines" / "tiny_pipeline.py"
VALID = """\
triggers:
  - schedule: "0 3 * * *"
    cooldown: 1h
  - on_alert: drift
    subject: churn-prod
    daily_budget: 3
  - on_dataset: customers
  - manual: true
training:
  pipeline: tiny_pipeline.py:tiny
  params: {x: 3}
evaluation:
  window: 7d
  target: churned
  gate: gate.yaml
rollout:
  steps: [10, 50, 100]
  guards: {max_error_rate_increase: 0.05}
require_approval: true
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    shutil.copy(PIPELINE, tmp_path / "tiny_pipeline.py")
    (tmp_path / "gate.yaml").write_text("latency: {max_p99_ms: 5}\n")
    return tmp_path


def _load(folder: Path, text: str) -> object:
    (folder / "loop.yaml").write_text(text)
    return load_loop_policy(folder / "loop.yaml")


def test_valid_policy_is_read_with_paths_from_its_folder_and_defaults(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir("/")
    (folder / "loop.yaml").write_text(VALID)
    loaded = load_loop_policy(folder / "loop.yaml")
    policy = loaded.policy
    assert policy.training.pipeline == f"{folder.resolve()}/tiny_pipeline.py:tiny"
    assert policy.evaluation.gate == str((folder / "gate.yaml").resolve())
    assert loaded.gate is not None and loaded.gate.latency is not None
    assert [t.condition()[0] for t in policy.triggers] == [
        TriggerKind.SCHEDULE, TriggerKind.ALERT, TriggerKind.DATASET, TriggerKind.MANUAL,
    ]  # fmt: skip
    assert policy.triggers[0].cooldown_ms == 3_600_000
    assert policy.triggers[1].condition()[1] == {"rule": "drift", "subject": "churn-prod"}
    assert policy.rollout.steps == (10, 50, 100) and policy.rollout.min_requests_per_step == 200
    assert policy.rollout.guards.max_error_rate_increase == 0.05
    assert policy.require_approval is True
    assert policy.training.param_texts() == ["x=3"]
    assert loaded.source == VALID


def test_a_guard_turned_off_with_null_stays_off_in_the_stored_policy(folder: Path) -> None:
    text = VALID.replace(
        "guards: {max_error_rate_increase: 0.05}", "guards: {max_prediction_psi: null}"
    )
    policy = _load(folder, text).policy  # type: ignore[attr-defined]
    assert policy.rollout.guards.max_prediction_psi is None
    stored = policy.to_dict()  # what a revision keeps; read back when the agent acts on it
    assert stored["rollout"]["guards"]["max_prediction_psi"] is None
    assert LoopPolicy.model_validate(stored) == policy
    assert "window" not in stored["training"]  # other unset keys are still left out


def test_window_is_passed_as_the_param_window(folder: Path) -> None:
    (folder / "windowed.py").write_text(
        "import modelpilot as mp\n\n@mp.step\ndef s(w: str) -> str:\n    return w\n\n"
        "@mp.pipeline\ndef p(window: str = '1d'):\n    return s(window)\n"
    )
    text = VALID.replace("tiny_pipeline.py:tiny", "windowed.py:p").replace(
        "params: {x: 3}", "window: 30d"
    )
    assert _load(folder, text).policy.training.param_texts() == ["window=30d"]  # type: ignore[attr-defined]
    # tiny takes no window: the error points at training.window
    with pytest.raises(InvalidInput, match=r"loop\.yaml:11: training\.window: Unknown param"):
        _load(folder, VALID.replace("params: {x: 3}", "window: 30d"))


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("tiny_pipeline.py:tiny", "missing.py:tiny",
         r"loop\.yaml:10: training\.pipeline: .*no Python file at .*missing\.py"),
        ("tiny_pipeline.py:tiny", "tiny_pipeline.py:nada",
         r"loop\.yaml:10: training\.pipeline: .*'nada' is nothing, not a pipeline "
         r"\(pipelines in it: tiny\)"),
        ("gate: gate.yaml", "gate: nogate.yaml",
         r"loop\.yaml:15: evaluation\.gate: No gate policy file at .*nogate\.yaml"),
        ("require_approval", "require_aproval",
         r"loop\.yaml:19: require_aproval: unknown key\. Did you mean 'require_approval'\? "
         r"Known keys: schema_version, triggers, training, evaluation, rollout, "
         r"require_approval, monitoring\."),
        ("    cooldown: 1h", "    cooldwn: 1h",
         r"loop\.yaml:3: triggers\.0\.cooldwn: unknown key\. Did you mean 'cooldown'\? Known "
         r"keys: schedule, on_dataset, on_alert, subject, manual, cooldown, max_concurrent, "
         r"daily_budget\."),
        ('"0 3 * * *"', '"0 25 * * *"',
         r"loop\.yaml:2: triggers\.0\.schedule: .*the hour field '25' is not valid; it "
         r"accepts 0-23"),
        ("cooldown: 1h", "cooldown: soon",
         r"loop\.yaml:3: triggers\.0\.cooldown: not a duration: use 0, 45s, 30m, 12h, 30d or "
         r"2w; got 'soon'\."),
        ("window: 7d", "window: 0",
         r"loop\.yaml:13: evaluation\.window: a window must be longer than 0"),
        ("daily_budget: 3", "daily_budget: 3000",
         r"loop\.yaml:6: triggers\.1\.daily_budget: daily_budget must be between 1 and 1000"),
        ("  - manual: true", "  - manual: true\n    on_dataset: x",
         r"loop\.yaml:8: triggers\.3: give exactly one of schedule \(cron\), on_dataset "
         r"\(NAME\), on_alert \(RULE\) or manual: true; got on_dataset and manual\."),
        ("params: {x: 3}", "params: {y: 3}",
         r"loop\.yaml:11: training\.params\.y: Unknown param 'y' for pipeline 'tiny'; it "
         r"takes: x=1\."),
        ("steps: [10, 50, 100]", "steps: [10, 50]",
         r"loop\.yaml:16: rollout: steps must rise strictly from above 0 to exactly 100; "
         r"got \[10, 50\]\.$"),
        ("  target: churned\n", "",
         r"loop\.yaml:12: evaluation\.target: missing required key\."),
        ("  window: 7d\n", "  window: 7d\n  dataset: d\n",
         r"loop\.yaml:12: evaluation: give one of dataset .* or window"),
        ("require_approval: true", "require_approval: true\nrollout: {}",
         r"loop\.yaml:20: rollout: the key appears twice"),
    ],
)  # fmt: skip
def test_each_bad_input_names_file_line_and_key(
    folder: Path, old: str, new: str, expected: str
) -> None:
    assert old in VALID
    with pytest.raises(InvalidInput, match=expected):
        _load(folder, VALID.replace(old, new, 1))


MONITORED = (
    VALID
    + """\
monitoring:
  window: 1h
  every: 15m
  rules:
    - {name: drift, metric: drift.share_drifted, op: ">=", threshold: 0.3}
    - {name: errors, metric: ops.error_rate, op: ">", threshold: 0.05, severity: critical,
       for_s: 600}
"""
)


def test_monitoring_section_is_read_and_round_trips_through_storage(folder: Path) -> None:
    policy = _load(folder, MONITORED).policy  # type: ignore[attr-defined]
    monitoring = policy.monitoring
    assert (monitoring.window_ms, monitoring.every_ms) == (3_600_000, 900_000)
    assert [(r.name, r.metric, r.op, r.threshold, r.for_s, r.severity, r.subject)
            for r in monitoring.rules] == [
        ("drift", "drift.share_drifted", ">=", 0.3, 0.0, "warning", "*"),
        ("errors", "ops.error_rate", ">", 0.05, 600.0, "critical", "*"),
    ]  # fmt: skip
    assert LoopPolicy.model_validate(policy.to_dict()) == policy
    json.dumps(policy.to_dict())  # what a stored revision keeps is JSON


def test_monitoring_defaults_every_to_the_window_and_rules_to_those_of_monitor_run(
    folder: Path,
) -> None:
    policy = _load(folder, VALID + "monitoring: {window: 2h}\n").policy  # type: ignore[attr-defined]
    assert policy.monitoring.every_ms == policy.monitoring.window_ms == 7_200_000
    assert tuple(policy.monitoring.rules) == DEFAULT_RULES
    assert DEFAULT_RULES[0].name == "dataset-drift"  # what `on_alert: dataset-drift` names
    assert LoopPolicy.model_validate(policy.to_dict()) == policy


def test_a_policy_stored_before_monitoring_existed_still_loads(folder: Path) -> None:
    policy = _load(folder, VALID).policy  # type: ignore[attr-defined]
    stored = policy.to_dict()
    assert "monitoring" not in stored
    assert LoopPolicy.model_validate(stored).monitoring is None


def test_an_on_alert_trigger_need_not_name_a_monitoring_rule(folder: Path) -> None:
    # the trigger `on_alert: drift` in VALID; alerts may come from elsewhere
    text = MONITORED.replace("{name: drift,", "{name: shift,")
    assert _load(folder, text).policy.monitoring.rules[0].name == "shift"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("{name: errors,", "{name: drift,",
         r"loop\.yaml:25: monitoring\.rules\.1\.name: rule name 'drift' is used by rule 1 "
         r"already; each rule needs its own name"),
        ("every: 15m", "every: 0",
         r"loop\.yaml:22: monitoring\.every: the interval must be longer than 0; use e\.g\. "
         r"15m or 1h, not '0'\."),
        ("every: 15m", "every: often",
         r"loop\.yaml:22: monitoring\.every: not a duration: use 0, 45s"),
        ("window: 1h", "window: 0",
         r"loop\.yaml:21: monitoring\.window: a window must be longer than 0"),
        ("every: 15m", "evry: 15m",
         r"loop\.yaml:22: monitoring\.evry: unknown key\. Did you mean 'every'\? Known keys: "
         r"window, every, rules\."),
        ('op: ">="', 'op: "=="',
         r"loop\.yaml:24: monitoring\.rules\.0\.op: Input should be '>', '>=', '<' or '<='"),
        ("threshold: 0.3}", "threshold: 0.3, actions: [rollback]}",
         r"loop\.yaml:24: monitoring\.rules\.0: a monitoring rule calls no hooks \(actions\); "
         r"to retrain when it fires, add a trigger on_alert: drift\."),
        ("for_s: 600}", "for_s: -1}",
         r"loop\.yaml:26: monitoring\.rules\.1\.for_s: Input should be greater than or equal "
         r"to 0"),
        ("metric: drift.share_drifted", "metrc: drift.share_drifted",
         r"loop\.yaml:24: monitoring\.rules\.0\.metrc: unknown key\. Did you mean 'metric'\?"),
    ],
)  # fmt: skip
def test_each_bad_monitoring_input_names_file_line_and_key(
    folder: Path, old: str, new: str, expected: str
) -> None:
    assert old in MONITORED
    with pytest.raises(InvalidInput, match=expected):
        _load(folder, MONITORED.replace(old, new, 1))


def test_missing_file_and_bad_yaml(folder: Path) -> None:
    with pytest.raises(InvalidInput, match=r"No policy file at .*nope\.yaml"):
        load_loop_policy(folder / "nope.yaml")
    with pytest.raises(InvalidInput, match=r"loop\.yaml:3: not valid YAML \(expected"):
        _load(folder, "triggers:\n  - [\n")
    with pytest.raises(InvalidInput, match=r"loop\.yaml:1: \(top level\): expected a mapping"):
        _load(folder, "- 1\n")


_UNITS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


@given(st.integers(min_value=0, max_value=10_000), st.sampled_from(sorted(_UNITS)),
       st.sampled_from(["", " "]))  # fmt: skip
def test_duration_ms_reads_whole_amounts_of_every_unit(amount: int, unit: str, pad: str) -> None:
    assert duration_ms(f"{pad}{amount}{unit}{pad}") == amount * _UNITS[unit]


@given(st.text(max_size=8).filter(lambda t: t.strip() != "0"))
def test_duration_ms_refuses_anything_else_with_the_accepted_forms(text: str) -> None:
    import re

    if re.fullmatch(r"\s*\d+(\.\d*)?\s*[smhdwSMHDW]\s*", text):
        return
    with pytest.raises(ValueError, match="not a duration: use 0, 45s, 30m, 12h, 30d or 2w"):
        duration_ms(text)
