"""Values outside the training domain: answered (200), flagged in the log with their kind,
counted per column in /metrics, and shown by `modelpilot logs domain`."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from conftest import Server
from modelpilot.config import Settings
from modelpilot.models.signature import Signature
from modelpilot.predictions import read_predictions
from modelpilot.workspace import Workspace
from mp_domain import imputed_plan_model

IN_DOMAIN = {"age": 40, "income": 52.5, "plan": "pro"}


@pytest.fixture(scope="module")
def plan_home(tmp_path_factory: pytest.TempPathFactory, module_store_uri: str | None) -> Path:
    """'plans' v1: a pipeline over two numbers (income imputed, so nullable) and a category
    (basic, pro; encoded ignoring the unknown, so nullable too), logged with its 300-row
    training frame as a dataset and only five rows as the input example, so the signature
    records the training data's domain."""
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
    x.loc[:4, ["age", "plan"]] = [[40, "pro"]] * 5  # the example alone covers age 40, plan pro
    y = ((x["plan"] == "pro") & (x["income"] > 50)).astype(int)
    model = imputed_plan_model(x, y)
    ws = Workspace(Settings(home=home))
    train = ws.log_dataset(x, "plans-train")
    version = ws.log_model(model, "plans", input_example=x.head(5), datasets=[train])
    ws.close()
    domain = Signature.from_dict(version.signature).domain
    assert domain is not None and domain.source == train.ref and domain.rows == 300
    assert domain.categories["plan"] == {"basic", "pro"}  # not the example's {"pro"}
    assert domain.never_null == {"income", "plan"}  # the nullable columns: age refuses nulls
    return home


def _metric_values(server: Server) -> dict[tuple[str, ...], float]:
    """The out-of-domain counters of 'plans' v1 on /metrics: (name, column, kind) -> value."""
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    found: dict[tuple[str, ...], float] = {}
    for name, labels, value in re.findall(
        r"^(modelpilot_out_of_domain_\w+_total)\{(.*)\} (\S+)$", text, re.M
    ):
        pairs = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        if (pairs.pop("model"), pairs.pop("version")) == ("plans", "1"):
            found[(name, *(pairs[k] for k in sorted(pairs)))] = float(value)
    return found


def test_out_of_domain_values_are_answered_flagged_in_the_log_and_counted_per_column(
    start_server: Callable[..., Server], plan_home: Path
) -> None:
    server = start_server("plans", extra=("--durability", "sync"), server_home=plan_home)
    assert _metric_values(server) == {}
    records = [
        IN_DOMAIN,
        {"age": 95, "income": 52.5, "plan": "basic"},  # above 60, within one range of it
        {"age": 40, "income": 52.5, "plan": "enterprise"},  # an unseen category
        {"age": 400, "income": -1e6, "plan": "pro"},  # two numbers far outside
        {"age": 40, "income": None, "plan": "pro"},  # missing where training had no nulls
        {"age": -50, "income": None, "plan": "gold"},  # all three kinds
    ]
    reply = httpx.post(f"{server.url}/predict/plans", json=records, timeout=30)
    assert reply.status_code == 200, reply.text
    request_id = reply.json()["request_id"]
    assert len(reply.json()["predictions"]) == 6

    rows = "modelpilot_out_of_domain_rows_total"
    values = "modelpilot_out_of_domain_values_total"
    assert _metric_values(server) == {
        (rows,): 4.0,
        (values, "age", "out_of_range"): 2.0,
        (values, "income", "out_of_range"): 1.0,
        (values, "plan", "unseen_category"): 2.0,
        (values, "income", "unexpected_null"): 2.0,
    }

    assert httpx.post(f"{server.url}/admin/flush", timeout=30).status_code == 200
    logged = read_predictions(plan_home / "predictions", model="plans")
    logged = logged[logged["request_id"] == request_id].sort_values("row")
    assert logged["out_of_domain"].tolist() == [False, False, True, True, True, True]
    assert logged["out_of_domain_fields"].tolist() == [
        None,
        None,
        "plan:unseen_category",
        "age:out_of_range,income:out_of_range",
        "income:unexpected_null",
        "age:out_of_range,plan:unseen_category,income:unexpected_null",
    ]

    shown = _logs_domain(plan_home, "plans")
    assert shown.returncode == 0, shown.stderr
    lines = [line.split("│") for line in shown.stdout.splitlines() if "plans" in line]
    assert [[c.strip() for c in line[1:5]] for line in lines] == [
        ["plans", "age", "out_of_range", "2"],
        ["plans", "income", "unexpected_null", "2"],
        ["plans", "plan", "unseen_category", "2"],
        ["plans", "income", "out_of_range", "1"],
    ]


def _logs_domain(home: Path, model: str) -> subprocess.CompletedProcess[str]:
    executable = shutil.which("modelpilot")
    assert executable is not None, "the modelpilot console script must be installed"
    env = {**os.environ, "MODELPILOT_HOME": str(home), "COLUMNS": "200"}
    return subprocess.run(
        [executable, "logs", "domain", model, "--since", "1h"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
