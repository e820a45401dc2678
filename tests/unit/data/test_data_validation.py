"""Data validation: inferred and declared rules, examples, CLI exit codes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from modelpilot.cli.main import app
from modelpilot.data.validation import declared_rules, infer_rules, row_flags, validate
from modelpilot.errors import InvalidInput
from modelpilot.workspace import Workspace

REFERENCE = pd.DataFrame(
    {
        "age": np.arange(18, 78),
        "plan": ["basic", "premium"] * 30,
        "income": np.linspace(10, 100, 60),
    }
)


def test_data_like_the_reference_passes() -> None:
    sample = REFERENCE.sample(40, random_state=0).reset_index(drop=True)
    assert validate(sample, infer_rules(REFERENCE)).passed


def test_failures_name_rule_count_and_examples() -> None:
    new = REFERENCE.head(10).copy()
    new.loc[3, "age"] = 400
    new.loc[5, "plan"] = "gold"
    new = new.drop(columns="income")
    result = validate(new, infer_rules(REFERENCE))
    described = {f.rule.describe(): f for f in result.failures}
    assert "column income is present" in described
    age = next(f for f in result.failures if f.rule.column == "age" and f.rule.kind == "range")
    assert age.failed_rows == 1 and age.examples == [(3, 400)]
    plan = next(f for f in result.failures if f.rule.kind == "allowed_values")
    assert plan.examples == [(5, "gold")]
    assert row_flags(new, infer_rules(REFERENCE))[3] == [age.rule.describe()]


def test_declared_rules_add_to_inferred_ones_and_bad_ones_are_clear() -> None:
    rules = declared_rules([{"column": "age", "kind": "range", "min": 21, "max": 120}])
    result = validate(REFERENCE, rules)
    assert result.failures[0].failed_rows == 3 and result.failures[0].rule.source == "declared"
    with pytest.raises(InvalidInput, match="Validation rule 1: Input should be"):
        declared_rules([{"column": "age", "kind": "between"}])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=40))
def test_a_dataset_always_satisfies_the_rules_inferred_from_itself(values: list[float]) -> None:
    frame = pd.DataFrame({"x": values, "c": [str(int(v) % 3) for v in values]})
    assert validate(frame, infer_rules(frame)).passed


def test_cli_exits_non_zero_with_a_table_of_failures(
    ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws.log_dataset(REFERENCE, "customers")
    monkeypatch.setenv("MODELPILOT_HOME", str(ws.settings.home))
    if ws.settings.store_uri:
        monkeypatch.setenv("MODELPILOT_STORE_URI", ws.settings.store_uri)
    good, bad = tmp_path / "good.parquet", tmp_path / "bad.csv"
    REFERENCE.head(20).to_parquet(good)
    REFERENCE.head(20).assign(plan="gold").to_csv(bad, index=False)
    assert CliRunner().invoke(app, ["data", "validate", "customers", str(good)]).exit_code == 0
    result = CliRunner().invoke(
        app, ["data", "validate", "customers", str(bad)], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 8
    assert "plan in {basic, premium}" in result.stdout and "row 0: 'gold'" in result.stdout
