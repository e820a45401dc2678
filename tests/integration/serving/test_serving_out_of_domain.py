"""Values outside the training domain: answered (200), flagged in the log, counted in /metrics."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from conftest import Server
from modelpilot.config import Settings
from modelpilot.predictions import read_predictions
from modelpilot.workspace import Workspace

IN_DOMAIN = {"age": 40, "income": 52.5, "plan": "pro"}


@pytest.fixture(scope="module")
def plan_home(tmp_path_factory: pytest.TempPathFactory, module_store_uri: str | None) -> Path:
    """'plans' v1: a pipeline over two numbers and a category (basic, pro), logged with its
    training frame as the input example, so the signature records that domain."""
    home = tmp_path_factory.mktemp("domain") / "home"
    home.mkdir()
    rng = np.random.default_rng(7)
    x = pd.DataFrame(
        {
            "age": rng.integers(20, 61, 300),  # 20..60: "far outside" starts below -20, above 100
            "income": rng.normal(50.0, 10.0, 300),
            "plan": rng.choice(["basic", "pro"], 300),
        }
    )
    y = ((x["plan"] == "pro") & (x["income"] > 50)).astype(int)
    model = make_pipeline(
        ColumnTransformer(
            [("plan", OneHotEncoder(handle_unknown="ignore"), ["plan"])], remainder="passthrough"
        ),
        LogisticRegression(max_iter=500),
    ).fit(x, y)
    ws = Workspace(Settings(home=home))
    ws.log_model(model, "plans", input_example=x)
    ws.close()
    return home


def _out_of_domain_count(server: Server) -> float:
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    match = re.search(
        r'^modelpilot_out_of_domain_rows_total\{model="plans",version="1"\} (\S+)$', text, re.M
    )
    return 0.0 if match is None else float(match.group(1))


def test_out_of_domain_rows_are_answered_flagged_in_the_log_and_counted(
    start_server: Callable[..., Server], plan_home: Path
) -> None:
    server = start_server("plans", extra=("--durability", "sync"), server_home=plan_home)
    assert _out_of_domain_count(server) == 0.0
    records = [
        IN_DOMAIN,
        {"age": 95, "income": 52.5, "plan": "basic"},  # above 60, within one range of it
        {"age": 40, "income": 52.5, "plan": "enterprise"},  # an unseen category
        {"age": 400, "income": -1e6, "plan": "pro"},  # two numbers far outside
    ]
    reply = httpx.post(f"{server.url}/predict/plans", json=records, timeout=30)
    assert reply.status_code == 200, reply.text
    request_id = reply.json()["request_id"]
    assert len(reply.json()["predictions"]) == 4
    assert _out_of_domain_count(server) == 2.0

    assert httpx.post(f"{server.url}/admin/flush", timeout=30).status_code == 200
    logged = read_predictions(plan_home / "predictions", model="plans")
    rows = logged[logged["request_id"] == request_id].sort_values("row")
    assert rows["out_of_domain"].tolist() == [False, False, True, True]
    assert rows["out_of_domain_fields"].tolist() == [None, None, "plan", "age,income"]
