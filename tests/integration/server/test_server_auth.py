"""``modelpilot server`` auth and errors, against a real server process on SQLite.

Every /api route declares a role; the route table is walked so a new route without one, or
with the wrong one, fails here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute

from modelpilot import registry
from modelpilot.client import HttpTracking
from modelpilot.errors import Forbidden, Unauthorized
from modelpilot.server.app import api_routes, create_app
from modelpilot.server.auth import Role, revoke_token
from modelpilot.server.deps import RoleGuard
from modelpilot.store import Store
from modelpilot.store.events import list_events
from mp_server import RunningServer, make_token, start_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    home = tmp_path_factory.mktemp("server-auth")
    running = start_server(home, f"sqlite:///{home / 'mp.db'}")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def tokens(server: RunningServer) -> dict[Role, str]:
    return {role: make_token(server.store_uri, f"t-{role.label}", role) for role in Role}


@pytest.fixture(scope="module")
def store(server: RunningServer) -> Iterator[Store]:
    opened = Store.open(server.store_uri)
    yield opened
    opened.close()


def _api_routes() -> list[tuple[APIRoute, list[RoleGuard]]]:
    store = Store.open("sqlite:///:memory:")  # only to build the app and read its route table
    try:
        app = create_app(store)
    finally:
        store.close()
    found = []
    for route in api_routes(app):
        if route.path.startswith("/api"):
            guards = [d.call for d in route.dependant.dependencies if isinstance(d.call, RoleGuard)]
            found.append((route, guards))
    return found


def _call(server: RunningServer, method: str, path: str, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    concrete = re.sub(r"\{version\}", "1", path)
    concrete = re.sub(r"\{[^}]+\}", "x", concrete)
    return httpx.request(method, server.url + concrete, headers=headers, json={}, timeout=30)


def test_every_api_route_declares_exactly_one_role(
    server: RunningServer, tokens: dict[Role, str]
) -> None:
    routes = _api_routes()
    missing = [r.path for r, guards in routes if len(guards) != 1]
    assert missing == []
    reply = httpx.get(
        f"{server.url}/api/openapi.json", headers={"Authorization": f"Bearer {tokens[Role.VIEWER]}"}
    )
    documented = {(m.upper(), p) for p, ops in reply.json()["paths"].items() for m in ops}
    walked = {(m, r.path) for r, _ in routes for m in r.methods}
    assert documented <= walked  # the walk sees every route the server serves
    assert len(walked) >= 48


# Roles of the routes the CLI's groups use over the server (the walk below checks each refuses
# the role one lower): viewer reads, editor records, admin reads the audit log.
_EXPECTED_ROLES = {
    ("GET", "/api/v1/experiments"): Role.VIEWER,
    ("GET", "/api/v1/run-ids/{prefix}"): Role.VIEWER,
    ("GET", "/api/v1/alerts"): Role.VIEWER,
    ("POST", "/api/v1/alerts"): Role.EDITOR,
    ("GET", "/api/v1/audit/entries"): Role.ADMIN,
    ("GET", "/api/v1/audit/export"): Role.ADMIN,
    ("GET", "/api/v1/audit/verify"): Role.ADMIN,
    ("GET", "/api/v1/deployments"): Role.VIEWER,
    ("POST", "/api/v1/deployments/{name}/promote"): Role.DEPLOYER,
    ("PUT", "/api/v1/deployments/{name}/weight"): Role.DEPLOYER,
    ("GET", "/api/v1/models/{name}/versions"): Role.VIEWER,
    ("GET", "/api/v1/datasets"): Role.VIEWER,
}


def test_the_routes_the_cli_uses_declare_the_expected_roles() -> None:
    declared = {(m, r.path): guard.role for r, (guard,) in _api_routes() for m in r.methods}
    assert {key: declared.get(key) for key in _EXPECTED_ROLES} == _EXPECTED_ROLES


def test_every_api_route_refuses_no_token_and_a_role_one_too_low(
    server: RunningServer, tokens: dict[Role, str]
) -> None:
    for route, (guard,) in _api_routes():
        for method in route.methods:
            has_body = method != "HEAD"  # a HEAD answer is a status without a body
            reply = _call(server, method, route.path, None)
            assert reply.status_code == 401, (method, route.path, reply.text)
            assert not has_body or reply.json()["error"]["type"] == "Unauthorized"
            if guard.role > Role.VIEWER:
                low = _call(server, method, route.path, tokens[Role(guard.role - 1)])
                assert low.status_code == 403, (method, route.path, low.text)
                message = low.json()["error"]["message"] if has_body else ""
                assert not has_body or f"needs {guard.role.label} or higher" in message


def test_viewer_writes_are_refused_through_the_client(
    server: RunningServer, tokens: dict[Role, str]
) -> None:
    viewer = HttpTracking(server.url, token=tokens[Role.VIEWER])
    editor = HttpTracking(server.url, token=tokens[Role.EDITOR])
    run = editor.create_run("auth-exp")
    with pytest.raises(Forbidden, match="Token 't-viewer' has role viewer; POST .* needs editor"):
        viewer.create_run("auth-exp")
    with pytest.raises(Forbidden, match="needs editor or higher"):
        viewer.log_metrics(run.id, [("loss", 1.0, 0, 1)])
    with pytest.raises(Forbidden, match="needs editor or higher"):
        viewer.log_params(run.id, {"a": 1})
    with pytest.raises(Forbidden, match="needs editor or higher"):
        viewer.set_tags(run.id, {"a": 1})
    assert viewer.get_run(run.id).id == run.id  # reading is allowed
    viewer.close()
    editor.close()


def test_missing_wrong_and_malformed_tokens_are_refused(
    server: RunningServer, tokens: dict[Role, str]
) -> None:
    anonymous = HttpTracking(server.url)
    with pytest.raises(Unauthorized, match="This server requires an API token"):
        anonymous.get_run("x")
    anonymous.close()
    wrong = HttpTracking(server.url, token=tokens[Role.ADMIN][:-4] + "AAAA")
    with pytest.raises(Unauthorized, match="The API token is not valid"):
        wrong.get_run("x")
    wrong.close()
    reply = httpx.get(f"{server.url}/api/v1/models", headers={"Authorization": "Basic abc"})
    assert reply.status_code == 401
    assert "not 'Bearer mp_" in reply.json()["error"]["message"]


def test_expired_token_is_refused(server: RunningServer) -> None:
    token = make_token(server.store_uri, "short-lived", Role.VIEWER, expires_in_ms=1)
    client = HttpTracking(server.url, token=token)
    with pytest.raises(Unauthorized, match="API token 'short-lived' has expired"):
        client.search_runs()
    client.close()


def test_revoked_token_is_refused_from_the_next_request_on(
    server: RunningServer, store: Store
) -> None:
    token = make_token(server.store_uri, "to-revoke", Role.VIEWER)
    client = HttpTracking(server.url, token=token)
    assert client.search_runs(max_results=1).runs is not None  # verified (and remembered)
    revoke_token(store, "to-revoke", actor="local:test")
    with pytest.raises(Unauthorized, match="API token 'to-revoke' was revoked"):
        client.search_runs(max_results=1)
    client.close()


def test_token_changes_are_events_and_alias_changes_record_the_token_name(
    server: RunningServer, tokens: dict[Role, str], store: Store
) -> None:
    registry.register_version(
        store, "churn", package_digest="0" * 64, flavor="sklearn", signature={}
    )
    headers = {"Authorization": f"Bearer {tokens[Role.DEPLOYER]}"}
    reply = httpx.put(
        f"{server.url}/api/v1/models/churn/aliases/champion", headers=headers, json={"version": 1}
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["aliases"] == ["champion"]
    actors = [e.actor for e in registry.model_events(store, "churn") if "alias" in e.kind]
    assert actors == ["token:t-deployer"]
    created = httpx.post(
        f"{server.url}/api/v1/tokens",
        headers={"Authorization": f"Bearer {tokens[Role.ADMIN]}"},
        json={"name": "ci", "role": "editor", "expires_in": "30d"},
    )
    assert created.status_code == 201, created.text
    assert created.json()["token"].startswith("mp_")
    with store.read() as conn:
        events = [(e.kind, e.actor) for e in list_events(conn, "token:ci")]
    assert events == [("token.created", "token:t-admin")]


def test_error_bodies_have_one_shape(server: RunningServer, tokens: dict[Role, str]) -> None:
    headers = {"Authorization": f"Bearer {tokens[Role.EDITOR]}"}

    def error(reply: httpx.Response, status: int) -> dict[str, Any]:
        assert reply.status_code == status, reply.text
        body = reply.json()
        assert set(body) == {"error"} and set(body["error"]) == {"type", "message", "field"}
        return body["error"]  # type: ignore[no-any-return]

    run = httpx.post(f"{server.url}/api/v1/runs", headers=headers, json={"experiment": "e"})
    run_id = run.json()["id"]
    bad = error(
        httpx.post(
            f"{server.url}/api/v1/runs/{run_id}/metrics",
            headers=headers,
            json={"rows": [["loss", "abc", 0, 1]]},
        ),
        422,
    )
    assert (bad["type"], bad["field"]) == ("InvalidInput", "rows.0.1")
    assert "got 'abc'" in bad["message"]
    missing = error(httpx.post(f"{server.url}/api/v1/runs", headers=headers, json={}), 422)
    assert missing["field"] == "experiment"
    not_json = error(
        httpx.post(
            f"{server.url}/api/v1/runs",
            headers={**headers, "Content-Type": "application/json"},
            content=b"{not json",
        ),
        400,
    )
    assert not_json["type"] == "MalformedRequest"
    unknown = error(httpx.get(f"{server.url}/api/v1/runs/nope", headers=headers), 404)
    assert (unknown["type"], unknown["field"]) == ("NotFound", "run_id")
    no_route = error(httpx.get(f"{server.url}/api/v1/nothing-here", headers=headers), 404)
    assert "No route GET /api/v1/nothing-here" in no_route["message"]


def test_openapi_document_lists_the_api(server: RunningServer, tokens: dict[Role, str]) -> None:
    reply = httpx.get(
        f"{server.url}/api/openapi.json",
        headers={"Authorization": f"Bearer {tokens[Role.VIEWER]}"},
    )
    assert reply.status_code == 200
    paths = reply.json()["paths"]
    assert "/api/v1/runs/{run_id}/metrics" in paths
    assert "/api/v1/models/{name}/aliases/{alias}" in paths


def test_no_auth_is_announced_loudly_and_accepts_requests(tmp_path: Path) -> None:
    running = start_server(tmp_path, f"sqlite:///{tmp_path / 'mp.db'}", auth=False)
    try:
        assert httpx.get(f"{running.url}/api/v1/models").status_code == 200
    finally:
        running.stop()
    assert "WARNING: --no-auth: every request is accepted as admin" in running.stderr


@pytest.mark.parametrize(
    ("path", "body", "field", "message"),
    [  # each found by tests/integration/server/test_api_fuzz.py
        ("/api/v1/runs/{run}/artifacts", {"digest": "0" * 64}, "path", "Field required"),
        ("/api/v1/runs/{run}/tags", None, "body", "Input should be a valid dictionary"),
        ("/api/v1/deployments", [], "body", "Input should be a valid dictionary"),
        ("/api/v1/deployments/x/promote", {"": None}, '""', "Extra inputs are not permitted"),
    ],
)
def test_a_422_names_the_field_even_when_it_is_called_path_or_is_the_whole_body(
    server: RunningServer,
    tokens: dict[Role, str],
    path: str,
    body: object,
    field: str,
    message: str,
) -> None:
    headers = {"Authorization": f"Bearer {tokens[Role.ADMIN]}"}
    run = httpx.post(f"{server.url}/api/v1/runs", headers=headers, json={"experiment": "e"})
    url = server.url + path.format(run=run.json()["id"])
    headers["Content-Type"] = "application/json"
    reply = httpx.post(url, headers=headers, content=json.dumps(body))
    assert reply.status_code == 422, reply.text
    error = reply.json()["error"]
    assert error["field"] == field
    assert f"Request field {field!r}: {message}" in error["message"]


def test_recording_an_unknown_dataset_as_a_run_input_is_not_found_not_a_500(
    server: RunningServer, tokens: dict[Role, str]
) -> None:
    # found by tests/integration/server/test_api_fuzz.py: {"name": "", "digest": "", "role": "0"}
    # reached the foreign key and answered 500
    headers = {"Authorization": f"Bearer {tokens[Role.EDITOR]}"}
    run = httpx.post(f"{server.url}/api/v1/runs", headers=headers, json={"experiment": "e"})
    url = f"{server.url}/api/v1/runs/{run.json()['id']}/inputs"
    bad = httpx.post(url, headers=headers, json={"name": "", "digest": "", "role": "0"})
    assert bad.status_code == 422, bad.text
    assert bad.json()["error"]["field"] == "digest"
    assert "Artifact digest '' is not a sha256 hex digest" in bad.json()["error"]["message"]
    body = {"name": "never-logged", "digest": "a" * 64, "role": "training"}
    unknown = httpx.post(url, headers=headers, json=body)
    assert unknown.status_code == 404, unknown.text
    assert "No dataset named 'never-logged'" in unknown.json()["error"]["message"]
