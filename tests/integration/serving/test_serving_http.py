"""The model server over real HTTP: tritonclient, JSON endpoint, bad input, batching, the log."""

from __future__ import annotations

import concurrent.futures
import re
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import pytest
import tritonclient.http as triton

from conftest import FEATURES, Server, bearer, frame, home_token
from modelpilot.identity import Role
from modelpilot.predictions import read_predictions
from mp_server import copy_home

RECORD = {"age": 40, "income": 52.5, "calls": 3}


def _metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_tritonclient_round_trip_with_column_tensors(server: Server) -> None:
    client = triton.InferenceServerClient(server.url.removeprefix("http://"))
    assert client.is_server_live() and client.is_model_ready("churn")
    x = frame(5, seed=3)
    inputs = []
    for name in FEATURES:
        values = x[[name]].to_numpy()
        datatype = "INT64" if values.dtype.kind == "i" else "FP64"
        tensor = triton.InferInput(name, list(values.shape), datatype)
        tensor.set_data_from_numpy(
            values.astype(np.int64 if datatype == "INT64" else np.float64), binary_data=False
        )
        inputs.append(tensor)
    result = client.infer("churn", inputs)
    proba = result.as_numpy("predict_proba")
    assert proba.shape == (5, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert result.as_numpy("predict").shape == (5,)
    client.close()


def test_tritonclient_binary_tensor_and_a_single_matrix_input(server: Server) -> None:
    client = triton.InferenceServerClient(server.url.removeprefix("http://"))
    matrix = frame(4, seed=5)[FEATURES].to_numpy(dtype=np.float64)
    matrix[:, 0] = np.round(matrix[:, 0])
    tensor = triton.InferInput("input-0", [4, 3], "FP64")
    tensor.set_data_from_numpy(matrix, binary_data=True)
    result = client.infer("churn", [tensor], model_version="2")
    assert result.as_numpy("predict_proba").shape == (4, 2)
    assert result.get_response()["model_version"] == "2"
    client.close()


def test_tritonclient_rejects_non_finite_values_with_a_named_field(server: Server) -> None:
    client = triton.InferenceServerClient(server.url.removeprefix("http://"))
    tensor = triton.InferInput("input-0", [1, 3], "FP64")
    tensor.set_data_from_numpy(np.array([[30.0, np.inf, 1.0]]), binary_data=True)
    with pytest.raises(Exception, match=r"Input 'income' \(row 0\): expected a finite number"):
        client.infer("churn", [tensor])
    client.close()


def test_json_endpoint_accepts_records_and_columns(server: Server) -> None:
    records = httpx.post(f"{server.url}/predict/churn", json=[RECORD, RECORD]).json()
    columns = httpx.post(
        f"{server.url}/predict/churn", json={"columns": {k: [v, v] for k, v in RECORD.items()}}
    ).json()
    assert records["predictions"] == columns["predictions"]
    assert len(records["probabilities"]) == 2 and records["classes"] == [0, 1]
    assert records["version"] == 1  # churn@champion is the default, not the later churn/2


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"dataframe_records": [RECORD, RECORD]}, id="mlflow-records"),
        pytest.param(
            {"dataframe_split": {"columns": ["calls", "age", "income"],
                                 "data": [[3, 40, 52.5], [3, 40, 52.5]]}},
            id="mlflow-split-in-another-order",
        ),
        pytest.param({"instances": [RECORD, RECORD]}, id="kserve-v1-objects"),
        pytest.param({"instances": [[40, 52.5, 3], [40, 52.5, 3]]}, id="kserve-v1-rows"),
    ],
)  # fmt: skip
def test_mlflow_and_kserve_v1_bodies_answer_as_records(server: Server, body: object) -> None:
    """Clients written for MLflow's scoring server or KServe v1 work unchanged."""
    expected = httpx.post(f"{server.url}/predict/churn", json=[RECORD, RECORD]).json()
    reply = httpx.post(f"{server.url}/predict/churn", json=body)
    assert reply.status_code == 200, reply.text
    assert reply.json()["probabilities"] == expected["probabilities"]


def test_oip_null_in_a_float_tensor_is_a_missing_value_the_signature_decides(
    server: Server,
) -> None:
    """JSON cannot write NaN: null in an FP64 tensor is a missing number, refused here by
    name because the model's income column takes none (not "expects numbers")."""
    tensors = [
        {"name": "age", "datatype": "INT64", "shape": [2], "data": [40, 41]},
        {"name": "income", "datatype": "FP64", "shape": [2], "data": [52.5, None]},
        {"name": "calls", "datatype": "INT64", "shape": [2], "data": [3, 3]},
    ]
    reply = httpx.post(f"{server.url}/v2/models/churn/infer", json={"inputs": tensors})
    assert reply.status_code == 422, reply.text
    assert "Input 'income' (row 1): expected a finite number" in reply.text
    assert "got a missing value" in reply.text


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ([{"age": 40, "income": 1.0}], 422, "missing 'calls'"),
        ([{**RECORD, "colour": "red"}], 422, "unexpected 'colour'"),
        (
            [{**RECORD, "age": "forty"}],
            422,
            r"Input 'age' \(row 0\): expected a whole number \(int64\); got 'forty'",
        ),
        (
            [RECORD, {**RECORD, "income": None}],
            422,
            r"Input 'income' \(row 1\): expected a finite number",
        ),
        (
            {"columns": {"age": [1, 2], "income": [1.0], "calls": [1, 2]}},
            422,
            "all of the same length",
        ),
        ({"something": 1}, 422, "Send a list of records"),
        (
            {"dataframe_split": {"columns": ["age", "income", "calls"], "data": [[1, 2.0]]}},
            422,
            r"dataframe_split row 0: expected a list of 3 values \(one per column\); got \[1,2.0\]",
        ),
        ({"dataframe_split": {"data": [[1, 2.0, 3]]}}, 422, 'needs "columns"'),
        ([], 422, "no rows"),
    ],
)
def test_bad_json_bodies_get_4xx_naming_the_field(
    server: Server, body: object, status: int, message: str
) -> None:
    reply = httpx.post(f"{server.url}/predict/churn", json=body)
    assert reply.status_code == status
    assert re.search(message, reply.json()["error"]["message"]), reply.json()


def test_malformed_json_is_400_and_oip_shape_mismatch_is_422(server: Server) -> None:
    reply = httpx.post(f"{server.url}/predict/churn", content=b"{not json")
    assert reply.status_code == 400 and "not valid JSON" in reply.json()["error"]["message"]
    oip = {"inputs": [{"name": "input-0", "shape": [2, 4], "datatype": "FP64", "data": [1.0] * 8}]}
    reply = httpx.post(f"{server.url}/v2/models/churn/infer", json=oip)
    assert reply.status_code == 422
    assert "expected [rows, 3]" in reply.json()["error"]  # the protocol's error body
    missing = httpx.post(f"{server.url}/v2/models/nope/infer", json=oip)
    assert missing.status_code == 404 and "Served models: churn, flaky" in missing.json()["error"]


def test_oip_requests_with_a_bad_version_duplicate_tensors_or_the_wrong_method_are_refused(
    server: Server,
) -> None:
    column = {"shape": [1], "datatype": "FP64", "data": [1.0]}
    tensors = [{"name": name, **column} for name in ("age", "income", "calls")]
    good = httpx.post(f"{server.url}/v2/models/churn/versions/2/infer", json={"inputs": tensors})
    assert good.status_code == 200 and good.json()["model_version"] == "2"
    bad_version = httpx.post(
        f"{server.url}/v2/models/churn/versions/two/infer", json={"inputs": tensors}
    )
    assert bad_version.status_code == 404 and "'two' is not a number" in bad_version.json()["error"]
    twice = httpx.post(
        f"{server.url}/v2/models/churn/infer", json={"inputs": [*tensors, tensors[0]]}
    )
    assert twice.status_code == 422 and "'age' came more than once" in twice.json()["error"]
    oip_wrong = httpx.get(f"{server.url}/v2/models/churn/infer")
    assert oip_wrong.status_code == 405 and "send POST" in oip_wrong.json()["error"]
    json_wrong = httpx.get(f"{server.url}/predict/churn")
    assert json_wrong.status_code == 405
    assert json_wrong.json()["error"]["field"] == "method"


def test_body_over_the_limit_is_413(start_server) -> None:  # type: ignore[no-untyped-def]
    small = start_server("churn@champion", extra=("--max-body-bytes", "2048", "--no-log"))
    reply = httpx.post(f"{small.url}/predict/churn", json=[RECORD] * 200)
    assert (
        reply.status_code == 413
        and "at most 2,048 are accepted" in reply.json()["error"]["message"]
    )


def test_a_model_that_raises_gives_500_with_the_request_id(server: Server) -> None:
    reply = httpx.post(f"{server.url}/predict/flaky", json=[{**RECORD, "age": -1}])
    assert reply.status_code == 500
    body = reply.json()
    assert body["request_id"] in body["error"]["message"]
    assert "RuntimeError: age must not be negative" in body["error"]["message"]
    assert httpx.post(f"{server.url}/predict/flaky", json=[RECORD]).json()["predictions"] == [80.0]


def test_batching_merges_concurrent_requests(server: Server) -> None:
    before = httpx.get(f"{server.url}/metrics").text
    batches_before = _metric(before, "modelpilot_batch_size_rows_count", model="churn", version="2")
    rows_before = _metric(before, "modelpilot_batch_size_rows_sum", model="churn", version="2")
    with httpx.Client() as client, concurrent.futures.ThreadPoolExecutor(16) as pool:
        replies = list(
            pool.map(
                lambda _: client.post(
                    f"{server.url}/v2/models/churn/versions/2/infer",
                    json={
                        "inputs": [
                            {
                                "name": "input-0",
                                "shape": [1, 3],
                                "datatype": "FP64",
                                "data": [40.0, 50.0, 2.0],
                            }
                        ]
                    },
                ),
                range(64),
            )
        )
    assert all(r.status_code == 200 for r in replies)
    after = httpx.get(f"{server.url}/metrics").text
    batches = (
        _metric(after, "modelpilot_batch_size_rows_count", model="churn", version="2")
        - batches_before
    )
    rows = (
        _metric(after, "modelpilot_batch_size_rows_sum", model="churn", version="2") - rows_before
    )
    assert rows == 64
    assert batches < 64  # at least some predict calls served several requests


def test_a_model_with_batching_off_in_the_server_file_predicts_each_request_alone(
    server: Server,
) -> None:
    def batches() -> float:
        text = httpx.get(f"{server.url}/metrics").text
        return _metric(text, "modelpilot_batch_size_rows_count", model="flaky", version="1")

    before = batches()
    with httpx.Client() as client, concurrent.futures.ThreadPoolExecutor(16) as pool:
        replies = list(
            pool.map(lambda _: client.post(f"{server.url}/predict/flaky", json=[RECORD]), range(48))
        )
    assert all(r.status_code == 200 for r in replies)
    assert batches() - before == 48


def test_after_n_requests_the_log_holds_exactly_n_rows(server: Server) -> None:
    ids = []
    with httpx.Client() as client:
        for i in range(25):
            reply = client.post(f"{server.url}/predict/churn", json=[{**RECORD, "calls": i % 5}])
            ids.append(reply.json()["request_id"])
    httpx.post(f"{server.url}/admin/flush")
    logged = read_predictions(server.home / "predictions", model="churn")
    mine = logged[logged["request_id"].isin(ids)]
    assert sorted(mine["request_id"]) == sorted(ids)
    assert set(mine["in.calls"]) == {0, 1, 2, 3, 4}
    assert mine["out.proba.1"].between(0, 1).all()


def test_metrics_follow_prometheus_conventions(server: Server) -> None:
    # one prediction of its own: the histograms have a sample whatever ran before
    assert httpx.post(f"{server.url}/predict/churn", json=[RECORD]).status_code == 200
    text = httpx.get(f"{server.url}/metrics").text
    for family in (
        "modelpilot_requests_total",
        "modelpilot_request_duration_seconds_bucket",
        "modelpilot_batch_size_rows_bucket",
        "modelpilot_queue_depth_rows",
    ):
        assert family in text
    assert 'model="churn"' in text


def test_model_metadata_lists_typed_inputs(server: Server) -> None:
    meta = httpx.get(f"{server.url}/v2/models/churn").json()
    assert [(i["name"], i["datatype"]) for i in meta["inputs"]] == [
        ("age", "INT64"),
        ("income", "FP64"),
        ("calls", "INT64"),
    ]
    assert httpx.get(f"{server.url}/v2/models/churn/versions/9/ready").status_code == 404
    assert httpx.get(f"{server.url}/v2").json()["name"] == "modelpilot"


def test_log_query_cli_counts_exactly_the_requests_a_dedicated_server_logged(
    start_server: Callable[..., Server], home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from modelpilot.cli.main import app

    own_home = tmp_path / "home"
    copy_home(home, own_home)  # the module's server is live on ``home``
    server = start_server("churn@champion", server_home=own_home)
    with httpx.Client() as client:
        for i in range(7):
            reply = client.post(f"{server.url}/predict/churn", json=[{**RECORD, "calls": i % 5}])
            assert reply.status_code == 200
    httpx.post(f"{server.url}/admin/flush")
    monkeypatch.setenv("MODELPILOT_HOME", str(own_home))
    result = CliRunner().invoke(
        app,
        [
            "logs",
            "query",
            'SELECT count(*) AS n, CAST(sum("in.calls") AS INTEGER) AS calls FROM predictions '
            "WHERE model = 'churn'",
        ],
    )
    assert result.exit_code == 0, result.output
    rows = [re.findall(r"\d+", line) for line in result.stdout.splitlines()]
    assert [row for row in rows if row] == [["7", "11"]], result.stdout


def test_load_and_unload_are_refused_without_model_control(server: Server) -> None:
    deployer = bearer(home_token(server.home, "http-deployer", Role.DEPLOYER))
    reply = httpx.post(f"{server.url}/v2/repository/models/churn/unload", headers=deployer)
    assert reply.status_code == 403
    assert "model control is off on this server" in reply.json()["error"]
    index = httpx.post(f"{server.url}/v2/repository/index", headers=deployer).json()
    assert {"name": "flaky", "version": "1", "state": "READY"} in index


def test_repository_routes_need_a_deployer_token_and_inference_stays_open(
    server: Server,
) -> None:
    viewer = bearer(home_token(server.home, "http-viewer", Role.VIEWER))
    missing = httpx.post(f"{server.url}/v2/repository/index")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    assert "requires an API token" in missing.json()["error"]
    wrong = httpx.post(f"{server.url}/v2/repository/index", headers=bearer("mp_" + "0" * 40))
    assert wrong.status_code == 401
    low = httpx.post(f"{server.url}/v2/repository/models/churn/load", headers=viewer)
    assert low.status_code == 403
    assert (
        "has role viewer; POST /v2/repository/models/churn/load needs deployer"
        in (low.json()["error"])
    )
    assert httpx.post(f"{server.url}/predict/churn", json=[RECORD]).status_code == 200
    assert httpx.get(f"{server.url}/v2/models/churn").status_code == 200
