"""The dashboard's pages over HTTP, against a real ``modelpilot server`` process on SQLite.

Pages are read with a Bearer token (as scripts do) and through a logged-in session (as a
browser does); changes go through the forms, with their CSRF token, confirmation and reason.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from modelpilot import release
from modelpilot.identity import Role, revoke_token
from modelpilot.store import Store
from modelpilot.tracking.local import LocalTracking
from mp_dashboard import (
    ARTIFACT,
    LONG_SERIES,
    Seeded,
    canary_deployment,
    csrf_of,
    logged_in_client,
    seeded_server,
)
from mp_server import make_token, start_server


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    with seeded_server(tmp_path_factory.mktemp("dashboard")) as running:
        yield running


def _get(seeded: Seeded, path: str, role: Role = Role.VIEWER) -> httpx.Response:
    return httpx.get(seeded.server.url + path, headers=seeded.headers(role), timeout=30)


def test_root_and_pages_without_a_login_go_to_the_login_form(seeded: Seeded) -> None:
    root = httpx.get(seeded.server.url + "/")
    assert root.status_code == 307 and root.headers["location"] == "/ui/runs"
    page = httpx.get(seeded.server.url + "/ui/runs?filter=x")
    assert page.status_code == 303
    assert page.headers["location"] == "/ui/login?next=%2Fui%2Fruns%3Ffilter%3Dx"
    bad = httpx.get(seeded.server.url + "/ui/runs", headers={"Authorization": "Bearer mp_nope"})
    assert bad.status_code == 401 and "Bearer mp_" in bad.text  # a script's bad token: no redirect


def test_runs_table_shows_last_min_and_max_per_metric(seeded: Seeded) -> None:
    page = _get(seeded, "/ui/runs?experiment=churn").text
    tuned = seeded.run_ids["tuned"]
    row = re.search(rf'<tr>\s*<td><input[^>]*value="{tuned}".*?</tr>', page, re.S)
    assert row is not None
    cells = re.findall(r'data-col="metrics.auc" class="num">([^<]*)<', row.group(0))
    assert cells == ["0.759", "0.71", "0.759"]  # last, min, max of 0.71 + step/1000
    assert 'data-col="params.lr">0.05<' in row.group(0)


def test_runs_sort_and_filter_use_the_search_language(seeded: Seeded) -> None:
    page = _get(seeded, "/ui/runs?order=metrics.auc+DESC&filter=params.depth+%3D+%276%27").text
    names = re.findall(r'<a href="/ui/runs/[0-9a-f]+">([^<]+)</a>', page)
    assert names == ["tuned", "baseline"]


def test_a_bad_filter_shows_where_it_is_wrong(seeded: Seeded) -> None:
    reply = _get(seeded, "/ui/runs?filter=metrics.auc+%3E")
    assert reply.status_code == 422
    error = re.search(
        r'<pre class="error" role="alert" id="search-error">(.*?)</pre>', reply.text, re.S
    )
    assert error is not None and "at character 14: incomplete clause" in error.group(1)
    assert "No runs match." in reply.text
    size = _get(seeded, "/ui/runs?size=7")
    assert size.status_code == 422 and "Page size 7 is not offered" in size.text


def test_runs_are_paged_on_the_server(seeded: Seeded) -> None:
    store = Store.open(seeded.server.store_uri)
    tracking = LocalTracking(store)
    for i in range(30):
        tracking.create_run("paging", name=f"p{i:02d}")
    store.close()
    first = _get(seeded, "/ui/runs?experiment=paging&size=25&order=name+ASC").text
    assert re.findall(r">(p\d\d)</a>", first) == [f"p{i:02d}" for i in range(25)]
    assert "Runs 1–25" in first
    next_url = re.search(r'<a href="([^"]+)" rel="next">', first)
    assert next_url is not None
    second = _get(seeded, next_url.group(1).replace("&amp;", "&")).text
    assert re.findall(r">(p\d\d)</a>", second) == [f"p{i:02d}" for i in range(25, 30)]
    assert 'rel="prev"' in second and 'rel="next"' not in second


def test_run_page_shows_params_charts_artifacts_and_children(seeded: Seeded) -> None:
    page = _get(seeded, f"/ui/runs/{seeded.run_ids['baseline']}").text
    assert '<th scope="row">lr</th><td>0.1</td>' in page
    assert '<th scope="row">team</th><td>risk</td>' in page
    assert page.count("<polyline") == 1  # auc
    assert f'href="/ui/runs/{seeded.run_ids["trial-1"]}">trial-1</a>' in page
    link = re.search(r'<a href="(/ui/artifacts/[^"]+)" download>eval/confusion.txt</a>', page)
    assert link is not None
    blob = _get(seeded, link.group(1))
    assert blob.content == ARTIFACT
    assert blob.headers["content-disposition"] == "attachment; filename*=UTF-8''confusion.txt"


def test_a_long_series_is_drawn_from_at_most_2000_points(seeded: Seeded) -> None:
    page = _get(seeded, f"/ui/runs/{seeded.run_ids['long'][:10]}").text  # an id prefix works
    points = re.findall(r'<polyline points="([^"]*)"', page)
    assert len(points) == 1 and 1000 < len(points[0].split()) <= 2000 < LONG_SERIES


def test_compare_shows_only_differing_params_unless_asked(seeded: Seeded) -> None:
    ids = ",".join(seeded.run_ids[n] for n in ("baseline", "tuned", "wide"))
    diff = _get(seeded, f"/ui/compare?runs={ids}").text
    assert re.findall(r'data-param="([^"]+)"', diff) == ["depth", "lr"]
    assert "Params: 2 of 4 differ." in diff
    assert "+0.01 higher" in diff and "+0.02 higher" in diff  # auc against the first run
    every = _get(seeded, f"/ui/compare?runs={ids}&show=all").text
    assert re.findall(r'data-param="([^"]+)"', every) == ["depth", "lr", "model", "seed"]
    ticked = "&".join(f"runs={seeded.run_ids[n]}" for n in ("baseline", "tuned"))
    assert _get(seeded, f"/ui/compare?{ticked}").status_code == 200  # the table's checkboxes
    one = _get(seeded, f"/ui/compare?runs={seeded.run_ids['wide']}")
    assert one.status_code == 422 and "Compare needs 2 to 50 runs; got 1" in one.text


def test_deployments_show_variants_and_history(seeded: Seeded) -> None:
    listing = _get(seeded, "/ui/deployments").text
    assert "canary: churn v2 (10%)" in listing and "stable: churn v1 (90%)" in listing
    page = _get(seeded, "/ui/deployments/churn-prod").text
    assert "<td>token:seed</td>" in page and "<td>try v2</td>" in page
    assert "promote-form" not in page  # a viewer gets no forms
    assert "promote-form" in _get(seeded, "/ui/deployments/churn-prod", Role.DEPLOYER).text
    assert _get(seeded, "/ui/deployments/nope").status_code == 404


def test_login_sets_a_signed_http_only_strict_cookie_without_the_token(seeded: Seeded) -> None:
    token = seeded.tokens[Role.VIEWER]
    with httpx.Client(base_url=seeded.server.url, timeout=30) as client:
        form = client.get("/ui/login")
        wrong = client.post("/ui/login", data={"csrf": csrf_of(form.text), "token": "mp_x"})
        assert wrong.status_code == 401 and "Not logged in:" in wrong.text
        assert "(a modelpilot API token)" in wrong.text
        reply = client.post("/ui/login", data={"csrf": csrf_of(form.text), "token": token})
        cookie = reply.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie
        secret = token.split("_", 2)[2]  # mp_<id>_<secret>: the secret may hold "_" itself
        assert secret not in cookie  # the secret part never leaves the form
        assert client.get("/ui/runs").status_code == 200
    forged = httpx.post(seeded.server.url + "/ui/login", data={"token": token})
    assert forged.status_code == 401 and "CSRF" in forged.text


def test_a_deployer_promotes_with_csrf_confirmation_and_reason(seeded: Seeded) -> None:
    name = canary_deployment(seeded.server, "promote-me")
    with logged_in_client(seeded, Role.DEPLOYER) as client:
        url = f"/ui/deployments/{name}/promote"
        page = client.get(f"/ui/deployments/{name}").text
        base = {"csrf": csrf_of(page), "expected_revision": "2", "reason": "canary healthy"}
        forged = client.post(url, data={**base, "csrf": "", "confirm": "yes"})
        assert forged.status_code == 403 and "CSRF token is missing" in forged.text
        unconfirmed = client.post(url, data=base)
        assert unconfirmed.status_code == 422 and "tick the confirmation box" in unconfirmed.text
        no_reason = client.post(url, data={**base, "confirm": "yes", "reason": " "})
        assert no_reason.status_code == 422 and "A reason for promote is required" in no_reason.text
        done = client.post(url, data={**base, "confirm": "yes"})
        assert done.status_code == 303
        assert done.headers["location"] == f"/ui/deployments/{name}?done=promote-3"
        shown = client.get(done.headers["location"]).text
        assert "the deployment is now at revision 3" in shown
    history = _get(seeded, f"/api/v1/deployments/{name}/history").json()["revisions"][0]
    assert (history["action"], history["actor"], history["reason"]) == (
        "promote",
        "token:ui-deployer",
        "canary healthy",
    )


def test_a_form_from_a_stale_page_changes_nothing(seeded: Seeded) -> None:
    name = canary_deployment(seeded.server, "moved-meanwhile")
    with logged_in_client(seeded, Role.DEPLOYER) as client:
        page = client.get(f"/ui/deployments/{name}").text  # shows revision 2
        store = Store.open(seeded.server.store_uri)
        release.set_weight(store, name, 50, actor="token:other", reason="meanwhile")
        store.close()
        data = {"csrf": csrf_of(page), "expected_revision": "2", "reason": "r", "confirm": "yes"}
        stale = client.post(f"/ui/deployments/{name}/promote", data=data)
    assert stale.status_code == 409 and "Not changed:" in stale.text
    assert _get(seeded, f"/api/v1/deployments/{name}").json()["revision"] == 3


def test_a_viewer_cannot_change_a_deployment(seeded: Seeded) -> None:
    name = canary_deployment(seeded.server, "viewer-tries")
    with logged_in_client(seeded, Role.VIEWER) as client:
        csrf = csrf_of(client.get(f"/ui/deployments/{name}").text)  # the logout form's
        data = {"csrf": csrf, "expected_revision": "2", "reason": "r", "confirm": "yes"}
        reply = client.post(f"/ui/deployments/{name}/promote", data=data)
    assert reply.status_code == 403 and "needs deployer or higher" in reply.text
    assert _get(seeded, f"/api/v1/deployments/{name}").json()["revision"] == 2


def test_a_script_with_a_bearer_token_needs_no_csrf(seeded: Seeded) -> None:
    name = canary_deployment(seeded.server, "scripted")
    reply = httpx.post(
        f"{seeded.server.url}/ui/deployments/{name}/rollback",
        headers=seeded.headers(Role.DEPLOYER),
        data={"expected_revision": "2", "reason": "script", "confirm": "yes"},
    )
    assert reply.status_code == 303
    revision = _get(seeded, f"/api/v1/deployments/{name}/history").json()["revisions"][0]
    assert revision["action"] == "rollback" and revision["reason"].startswith("script")


def test_revoking_the_token_ends_its_sessions(seeded: Seeded) -> None:
    token = make_token(seeded.server.store_uri, "revoke-me", Role.VIEWER)
    with httpx.Client(base_url=seeded.server.url, timeout=30) as client:
        form = client.get("/ui/login")
        client.post("/ui/login", data={"csrf": csrf_of(form.text), "token": token})
        assert client.get("/ui/runs").status_code == 200
        store = Store.open(seeded.server.store_uri)
        revoke_token(store, "revoke-me")
        store.close()
        after = client.get("/ui/runs")
    assert after.status_code == 303 and after.headers["location"].startswith("/ui/login")


def test_a_no_auth_server_acts_as_admin_and_still_checks_csrf(tmp_path: Path) -> None:
    server = start_server(tmp_path, f"sqlite:///{tmp_path / 'mp.db'}", auth=False)
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            page = client.get("/ui/deployments")
            forged = client.post("/ui/deployments/x/rollback", data={"reason": "r"})
    finally:
        server.stop()
    assert page.status_code == 200 and 'no-auth <span class="role">(admin)</span>' in page.text
    assert "mp_session" in page.headers["set-cookie"]
    assert forged.status_code == 403 and "CSRF" in forged.text
