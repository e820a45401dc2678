"""``log_labels`` on a deployment that does not exist names it and lists those that do.

Before, it said the request ids were unknown, which sent people checking their ids.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from collections.abc import Callable

import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from modelpilot import release
from modelpilot.errors import NotFound
from modelpilot.predictions import LogBatch, write_segments
from modelpilot.predictions.labels import log_labels
from modelpilot.workspace import Workspace


@pytest.fixture
def shop(ws: Workspace) -> Workspace:
    """Deployments 'shop' and 'search'; one request logged for 'shop'."""
    x = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0]})
    ws.log_model(LogisticRegression().fit(x, [0, 1, 0, 1]), "m", input_example=x)
    release.create_deployment(ws.store, "shop", "m/1")
    release.create_deployment(ws.store, "search", "m/1")
    row = {"request_id": "r1", "row": 0, "timestamp_ms": 1, "model": "m", "version": 1,
           "deployment": "shop", "variant": "stable", "latency_ms": 1.0, "error": None}  # fmt: skip
    write_segments(ws.settings.home / "predictions", LogBatch.from_rows([row]))
    return ws


def _check(ws: Workspace) -> Callable[[str], object]:
    """The deployment check the SDK hands in: the store's deployments."""
    return functools.partial(release.get_deployment, ws.store)


def test_an_unknown_deployment_is_named_with_the_existing_ones(shop: Workspace) -> None:
    with pytest.raises(NotFound, match=r"No deployment named 'shpo'\. Deployments: search, shop"):
        log_labels(shop.settings.home, "shpo", ["r1"], [1], check_deployment=_check(shop))


def test_without_a_store_the_prediction_log_names_the_deployments(shop: Workspace) -> None:
    with pytest.raises(
        NotFound,
        match=r"No predictions logged for deployment 'shpo'\. Deployments in the log: shop",
    ):
        log_labels(shop.settings.home, "shpo", ["r1"], [1])


def test_a_known_deployment_still_stores_labels(shop: Workspace) -> None:
    assert log_labels(shop.settings.home, "shop", ["r1"], [1], check_deployment=_check(shop)) == 1


def test_the_sdk_names_the_unknown_deployment(shop: Workspace) -> None:
    code = (
        "import modelpilot as mp\n"
        "from modelpilot.errors import NotFound\n"
        "try:\n    mp.log_labels('shpo', ['r1'], [1])\n"
        "except NotFound as exc:\n    print(exc.message)\n"
    )
    env = {**os.environ, "MODELPILOT_HOME": str(shop.settings.home)}
    if shop.settings.store_uri:
        env["MODELPILOT_STORE_URI"] = shop.settings.store_uri
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("No deployment named 'shpo'. Deployments: search, shop")
