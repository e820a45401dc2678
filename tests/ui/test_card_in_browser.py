"""A model card opens in a real browser with no network and shows its plots."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from modelpilot.cards import build_model_card
from modelpilot.config import Settings
from modelpilot.registry.records import add_record
from modelpilot.workspace import Workspace


def test_model_card_renders_offline_with_plots(
    settings: Settings, render: Callable[[Path], str], tmp_path: Path
) -> None:
    ws = Workspace(settings)
    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.normal(size=(100, 2)), columns=["a", "b"])
    y = (x["a"] > 0).astype(int)
    with ws.start_run("ui"):
        train = ws.log_dataset(x.assign(y=y), "train")
        mv = ws.log_model(
            LogisticRegression().fit(x, y), "m", input_example=x.head(), datasets=[train]
        )
    add_record(
        ws.store,
        mv.ref,
        "evaluation",
        {
            "metrics": {"roc_auc": {"value": 0.9, "lower": 0.85, "upper": 0.94}},
            "calibration": {
                "bins": [
                    {"mean_predicted": 0.3, "fraction_positive": 0.35},
                    {"mean_predicted": 0.7, "fraction_positive": 0.66},
                ]
            },
        },
    )
    page = build_model_card(ws.store, ws.artifacts, mv.ref).save(tmp_path / "card.html")
    dom = render(page)
    assert "Model card: m/1" in dom
    assert dom.count("<svg") >= 3  # metric bars, reliability diagram, distribution strips
    assert "<script" not in dom and "<link" not in dom
    ws.close()
