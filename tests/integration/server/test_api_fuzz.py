"""schemathesis against the server's own OpenAPI document, bounded, on a server of its own.

Every documented operation gets generated requests (valid and invalid bodies, paths and
queries) with an admin token, derandomized so a run is repeatable. Half of them have their path
parameters pointed at records that exist (a run, a model version with an alias, a deployment,
a blob), so the fuzzer reaches the services and not only the 404 of a random name. The promise
checked is the issue's: no 5xx ever, and every 4xx is ``{"error": {"type", "message",
"field"}}`` with a message, naming the field for a request that failed validation (422). The
server runs on its own SQLite file and home, so what the fuzzer creates or revokes touches no
other test.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.openapi import from_url
from sklearn.linear_model import LogisticRegression

from modelpilot.client import HttpArtifactStore, HttpDeployments, HttpRegistry, HttpTracking
from modelpilot.models import build_package
from modelpilot.server.app import create_app
from modelpilot.server.auth import Role
from modelpilot.store import Store
from mp_server import RunningServer, make_token, start_server

# Every documented operation fuzzed against a live server: minutes on 2 cores, so it runs in
# `make test-slow` (CI runs both) and `make test` keeps the per-endpoint bad-input tests.
pytestmark = pytest.mark.slow

# Examples per operation: about 45 operations x 25 examples take well under a minute here.
MAX_EXAMPLES = 25


def _documented_operations() -> list[tuple[str, str]]:
    """(method, path) of every operation the OpenAPI document lists, read from an app built in
    process so the tests are known at collection; the fuzzing itself goes to a real server."""
    store = Store.open("sqlite:///:memory:")
    try:
        document = create_app(store).openapi()
    finally:
        store.close()
    return sorted((m.upper(), p) for p, ops in document["paths"].items() for m in ops)


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    home = tmp_path_factory.mktemp("api-fuzz")
    running = start_server(home, f"sqlite:///{home / 'mp.db'}")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def auth(fuzz_server: RunningServer) -> dict[str, str]:
    # a name the fuzzer will not generate, so DELETE /tokens/{name} cannot revoke it
    token = make_token(fuzz_server.store_uri, "fuzz-admin-7f3a9c2e", Role.ADMIN)
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def existing(fuzz_server: RunningServer, auth: dict[str, str]) -> dict[str, str]:
    """A run, a model with two versions (``champion`` on 1), a deployment of it and a blob,
    made through the real API, by path parameter name."""
    token = auth["Authorization"].removeprefix("Bearer ")
    blobs = HttpArtifactStore(fuzz_server.url, token=token)
    models = HttpRegistry(fuzz_server.url, token=token)
    deployments = HttpDeployments(fuzz_server.url, token=token)
    tracking = HttpTracking(fuzz_server.url, token=token)
    try:
        rng = np.random.default_rng(0)
        frame = pd.DataFrame(rng.normal(size=(30, 2)), columns=["a", "b"])
        model = LogisticRegression().fit(frame, (frame["a"] > 0).astype(int))
        package = build_package(model, blobs, input_example=frame.head())
        for _ in range(2):
            models.register_version(
                "fuzz-model",
                package_digest=package.digest,
                flavor=package.flavor,
                signature=package.signature.to_dict(),
            )
        models.set_alias("fuzz-model", "champion", 1)
        deployments.create_deployment("fuzz-dep", "fuzz-model/1")
        run = tracking.create_run("fuzz-exp")
    finally:
        for client in (blobs, models, deployments, tracking):
            client.close()
    return {
        "run_id": run.id,
        "version": "1",
        "alias": "champion",
        "sha256": package.digest,
        "/api/v1/models": "fuzz-model",
        "/api/v1/deployments": "fuzz-dep",
        "deployment": "fuzz-dep",
    }


def pointed_at(case: Case, existing: dict[str, str]) -> Case:
    """The case with its path parameters naming records that exist (tokens are left alone, so
    the fuzzer never revokes its own)."""
    params = dict(case.path_parameters or {})
    for key in params:
        if key in existing:
            params[key] = existing[key]
        elif key == "name":
            prefix = "/".join(case.path.split("/")[:4])
            params[key] = existing.get(prefix, params[key])
    case.path_parameters = params
    return case


@pytest.fixture(scope="module")
def api_schema(fuzz_server: RunningServer, auth: dict[str, str]) -> Any:
    return from_url(f"{fuzz_server.url}/api/openapi.json", headers=auth)


def check_reply(case: Case, auth: dict[str, str]) -> None:
    """Send one generated request and check the issue's promise on its answer."""
    response = case.call(headers=auth, timeout=30)
    what = f"{case.as_curl_command()}\n-> {response.status_code} {response.text[:400]}"
    assert response.status_code < 500, what
    if response.status_code < 400 or case.method.upper() == "HEAD":
        return
    body = response.json()
    assert isinstance(body, dict) and set(body) == {"error"}, what
    error = body["error"]
    assert set(error) == {"type", "message", "field"}, what
    assert isinstance(error["type"], str) and error["type"], what
    assert isinstance(error["message"], str) and error["message"].strip(), what
    if response.status_code == 422:
        assert isinstance(error["field"], str) and error["field"], what


@pytest.mark.parametrize(("method", "path"), _documented_operations())
def test_no_5xx_and_every_4xx_is_a_json_error_naming_the_field(
    method: str, path: str, api_schema: Any, auth: dict[str, str], existing: dict[str, str]
) -> None:
    operation = api_schema[path][method]
    generated = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )
    cases = st.one_of(generated, generated.map(lambda case: pointed_at(case, existing)))

    @given(cases)
    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def fuzz(case: Case) -> None:
        check_reply(case, auth)

    fuzz()
