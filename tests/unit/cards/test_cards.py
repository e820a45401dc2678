"""Model and dataset cards: content, persistence of person-written fields, formats."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from modelpilot.cards import build_dataset_card, build_model_card, update_card_fields
from modelpilot.errors import InvalidInput
from modelpilot.registry.records import add_record
from modelpilot.workspace import Workspace


@pytest.fixture
def version(ws: Workspace) -> str:
    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.normal(size=(200, 2)), columns=["tenure", "calls"])
    y = (x["calls"] > 0).astype(int)
    with ws.start_run("churn", name="card-run"):
        ws.log_metric("auc", 0.91)
        train = ws.log_dataset(x.assign(churned=y), "churn-train")
        mv = ws.log_model(
            LogisticRegression().fit(x, y),
            "churn",
            input_example=x.head(),
            datasets=[train],
            description="Logistic baseline",
        )
    return mv.ref


def test_card_shows_training_data_metrics_and_lineage(ws: Workspace, version: str) -> None:
    card = build_model_card(ws.store, ws.artifacts, version)
    markdown = card.to_markdown()
    assert "# Model card: churn/1" in markdown
    assert "churn-train@" in markdown and "200 rows" in markdown
    assert "auc = 0.91" in markdown
    assert "card-run" in markdown
    assert "No evaluation recorded" in markdown


def test_person_written_fields_survive_regeneration(ws: Workspace, version: str) -> None:
    update_card_fields(ws.store, version, {"intended_use": "Rank customers for retention calls."})
    update_card_fields(ws.store, version, {"limitations": "Trained on one region."})
    card = build_model_card(ws.store, ws.artifacts, version)
    assert card.data["fields"] == {
        "intended_use": "Rank customers for retention calls.",
        "limitations": "Trained on one region.",
    }
    with pytest.raises(InvalidInput, match="Unknown model card field\\(s\\) purpose"):
        update_card_fields(ws.store, version, {"purpose": "x"})


def test_evaluation_and_gate_records_appear_with_plots(
    ws: Workspace, version: str, tmp_path: Path
) -> None:
    add_record(
        ws.store,
        version,
        "evaluation",
        {
            "metrics": {"roc_auc": {"value": 0.9, "lower": 0.87, "upper": 0.93}},
            "calibration": {
                "ece": 0.03,
                "bins": [
                    {"mean_predicted": 0.2, "fraction_positive": 0.25},
                    {"mean_predicted": 0.8, "fraction_positive": 0.7},
                ],
            },
        },
    )
    add_record(ws.store, version, "gate", {"passed": False, "policy": "gate.yaml"})
    card = build_model_card(ws.store, ws.artifacts, version)
    html = card.save(tmp_path / "card.html").read_text()
    assert "<svg" in html and "polyline" in html  # metric bars and the reliability diagram
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "")  # nothing to fetch
    assert "FAILED" in html
    assert json.loads(card.save(tmp_path / "card.json").read_text())["model"]["ref"] == "churn/1"
    assert "| roc_auc | 0.9 | 0.87 – 0.93 |" in card.to_markdown()
    with pytest.raises(InvalidInput, match="use a .md, .html or .json file name"):
        card.save(tmp_path / "card.pdf")


def test_dataset_card_lists_its_users(ws: Workspace, version: str) -> None:
    card = build_dataset_card(ws.store, "churn-train")
    assert card.data["models"] == ["churn/1"]
    assert card.data["runs"][0]["name"] == "card-run"
    assert "Dataset card: churn-train@" in card.to_html()
