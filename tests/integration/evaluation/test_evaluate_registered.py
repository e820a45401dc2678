"""mp.evaluate and `modelpilot gate` on registered versions; results land on the version."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

from modelpilot.assessment import evaluate_version
from modelpilot.cards import build_model_card
from modelpilot.cli.main import app
from modelpilot.errors import InvalidInput
from modelpilot.registry.records import list_records
from modelpilot.workspace import Workspace


@pytest.fixture
def registered(ws: Workspace) -> Workspace:
    rng = np.random.default_rng(0)
    x = pd.DataFrame({"tenure": rng.normal(size=1500), "calls": rng.normal(size=1500)})
    y = (x["tenure"] + 0.5 * x["calls"] + rng.normal(scale=0.8, size=1500) > 0).astype(int)
    holdout = x.assign(churned=y, region=rng.choice(["north", "south"], 1500))
    ws.log_dataset(holdout, "holdout")
    ws.log_model(
        LogisticRegression().fit(x[["tenure"]], y), "churn", input_example=x[["tenure"]].head()
    )
    ws.log_model(LogisticRegression().fit(x, y), "churn", input_example=x.head())
    ws.set_alias("churn", "champion", 1)
    return ws


def test_evaluation_is_stored_on_the_version_and_shown_on_its_card(registered: Workspace) -> None:
    result = evaluate_version(
        registered,
        "churn/2",
        "holdout",
        "churned",
        baseline="churn@champion",
        slices=["region"],
        n_bootstrap=200,
        robustness=False,
        explain=False,
    )
    assert result.metrics["roc_auc"].value > 0.7
    assert result.comparison is not None
    records = list_records(registered.store, "churn/2", "evaluation")
    assert len(records) == 1 and records[0].payload["dataset"] == "holdout"
    assert registered.artifacts.get_bytes(records[0].blob_digest or "").startswith(b"<!")
    card = build_model_card(registered.store, registered.artifacts, "churn/2").to_markdown()
    assert "| roc_auc |" in card


def test_missing_target_is_a_clear_error(registered: Workspace) -> None:
    with pytest.raises(InvalidInput, match="nope"):
        evaluate_version(
            registered, "churn/2", "holdout", "nope", n_bootstrap=0, robustness=False, explain=False
        )


def test_gate_cli_exits_non_zero_naming_the_failed_check(
    registered: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELPILOT_HOME", str(registered.settings.home))
    if registered.settings.store_uri:
        monkeypatch.setenv("MODELPILOT_STORE_URI", registered.settings.store_uri)
    strict = tmp_path / "gate.yaml"
    strict.write_text("metrics:\n  roc_auc: {min: 0.99}\n")
    lenient = tmp_path / "ok.yaml"
    lenient.write_text("metrics:\n  roc_auc: {min: 0.6}\n")
    args = ["--data", "holdout", "--target", "churned"]
    failed = CliRunner().invoke(
        app, ["gate", "churn/2", "--policy", str(strict), *args], env={"COLUMNS": "200"}
    )
    assert failed.exit_code == 9, failed.output
    assert "FAILED" in failed.stdout and "roc_auc" in failed.stdout
    passed = CliRunner().invoke(app, ["gate", "churn/2", "--policy", str(lenient), *args])
    assert passed.exit_code == 0, passed.output
    verdicts = [r.payload["passed"] for r in list_records(registered.store, "churn/2", "gate")]
    assert verdicts == [True, False]  # newest first; both recorded on the version
