"""A deployment's page over HTTP, against a real ``modelpilot server`` process with logged
predictions and labels in its home: the live guard metrics equal what the rollout
controller's own functions compute on that log, the A/B result is ``ab_report``'s, and a
weight change from the form lands in ``modelpilot deploy history`` with its token and reason.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

import httpx
import numpy as np
import pytest

from modelpilot import release
from modelpilot.clock import now_ms
from modelpilot.identity import Role
from modelpilot.predictions import log_folder, log_labels
from modelpilot.release.config import RolloutPolicy
from modelpilot.release.evidence import PredictionLogStats
from modelpilot.release.protocol import LocalDeployments
from modelpilot.release.report import ab_report
from modelpilot.release.rollout import VariantStats, decide, guard_checks
from modelpilot.store import Store
from mp_dashboard import (
    Seeded,
    canary_deployment,
    csrf_of,
    deploy_history,
    log_traffic,
    login_client,
    traffic_server,
)

GUARDED = "live-guarded"  # a canary under a policy, failing its error guard, with labels
UNLABELLED = "live-unlabelled"
POLICY = RolloutPolicy(steps=(50, 100), min_requests_per_step=30, min_seconds_per_step=0)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    with traffic_server(tmp_path_factory.mktemp("dashboard-live")) as running:
        home, store = running.server.home, Store.open(running.server.store_uri)
        try:
            for name in (GUARDED, UNLABELLED):
                release.create_deployment(store, name, "churn/1", actor="token:seed")
            release.set_canary(store, GUARDED, "churn/2", 50, policy=POLICY, actor="token:seed")
            release.set_canary(store, UNLABELLED, "churn/2", 10, actor="token:seed")
        finally:
            store.close()
        stable = log_traffic(home, GUARDED, "stable", 1, 200, seed=1)
        canary = log_traffic(home, GUARDED, "canary", 2, 100, errors=20, seed=2)
        rng = np.random.default_rng(3)
        labels = [*rng.binomial(1, 0.1, len(stable)), *rng.binomial(1, 0.4, len(canary))]
        log_labels(home, GUARDED, stable + canary, [int(x) for x in labels])
        log_traffic(home, UNLABELLED, "stable", 1, 40, seed=4)
        yield running


def _evidence(seeded: Seeded, name: str) -> tuple[release.Deployment, dict[str, VariantStats]]:
    """The deployment and each variant's evidence as the controller reads it, now."""
    store = Store.open(seeded.server.store_uri)
    try:
        deployment = release.get_deployment(store, name)
    finally:
        store.close()
    source = PredictionLogStats(log_folder(seeded.server.home))
    until = now_ms()
    return deployment, {
        v.name: source.variant_stats(name, v.name, deployment.updated_ms, until)
        for v in deployment.config.variants
    }


def _row(page: str, attribute: str, value: str) -> str:
    found = re.search(rf'<tr {attribute}="{re.escape(value)}"[^>]*>(.*?)</tr>', page, re.S)
    assert found is not None, f"no row {attribute}={value}"
    return found.group(1)


def _field(row: str, field: str) -> str:
    found = re.search(rf'data-field="{field}">([^<]*)<', row)
    assert found is not None, f"no {field}"
    return html.unescape(found.group(1))


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} ms"


def _check_live_section(page: str, seeded: Seeded) -> None:
    deployment, stats = _evidence(seeded, GUARDED)
    for variant, evidence in stats.items():
        row = _row(page, "data-variant", variant)
        assert _field(row, "requests") == str(evidence.requests)
        assert _field(row, "errors") == str(evidence.errors)
        assert _field(row, "error_rate") == f"{evidence.error_rate:.1%}"
        assert (_field(row, "p50"), _field(row, "p99")) == (
            _ms(evidence.p50_latency_ms),
            _ms(evidence.p99_latency_ms),
        )
    assert (stats["stable"].requests, stats["canary"].errors) == (200, 20)
    checks = guard_checks(POLICY.guards, stats["stable"], stats["canary"])
    for check in checks:
        row = _row(page, "data-guard", check.guard)
        assert f'<span class="status status-{check.status}">{check.status}</span>' in row
        assert html.escape(check.value) in row and html.escape(check.limit) in row
    assert [c.status for c in checks] == ["breached", "ok", "ok", "off"]
    decision = decide(POLICY, 0, 1.0, stats["stable"], stats["canary"])
    assert decision.action == "rollback"
    assert f"would <strong>rollback</strong>: {html.escape(decision.reason)}." in page
    assert "since revision 2 began" in html.unescape(page).lower()
    assert deployment.revision == 2


def test_live_guard_metrics_are_what_the_controller_computes(seeded: Seeded) -> None:
    page = seeded.get(f"/ui/deployments/{GUARDED}").text
    _check_live_section(page, seeded)
    assert f'data-live-src="/ui/deployments/{GUARDED}/live?window=revision"' in page


def test_the_live_fragment_carries_the_same_figures_under_the_same_auth(seeded: Seeded) -> None:
    fragment = seeded.get(f"/ui/deployments/{GUARDED}/live")
    assert fragment.status_code == 200 and "<nav" not in fragment.text  # a fragment, no page
    assert fragment.headers["content-security-policy"].startswith("default-src 'self'")
    _check_live_section(fragment.text, seeded)
    anonymous = httpx.get(f"{seeded.server.url}/ui/deployments/{GUARDED}/live", timeout=30)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/ui/login")
    wider = seeded.get(f"/ui/deployments/{GUARDED}/live?window=15m").text
    assert "The last 15m" in wider and "would <strong>" not in wider  # not the controller's
    bad = seeded.get(f"/ui/deployments/{GUARDED}/live?window=2d")
    assert bad.status_code == 422 and "choose one of revision, 15m, 1h, 24h" in bad.text


def test_the_ab_result_is_the_always_valid_report(seeded: Seeded) -> None:
    page = seeded.get(f"/ui/deployments/{GUARDED}").text
    store = Store.open(seeded.server.store_uri)
    try:
        report = ab_report(LocalDeployments(store), seeded.server.home, GUARDED)
    finally:
        store.close()
    comparison = report.comparison
    assert comparison is not None and (comparison.n_a, comparison.n_b) == (200, 100)
    assert _field(page, "difference") == f"{comparison.difference:.6g}"
    assert _field(page, "interval") == f"{comparison.lower:.6g} to {comparison.upper:.6g}"
    assert _field(page, "p_value") == f"{comparison.p_value:.6g}"
    assert f"<strong>{html.escape(report.verdict)}</strong>" in page
    unlabelled = seeded.get(f"/ui/deployments/{UNLABELLED}").text
    assert '<p id="ab-verdict">No labels yet:' in unlabelled


def test_a_deployer_sets_the_weight_and_deploy_history_lists_it(seeded: Seeded) -> None:
    name = canary_deployment(seeded.server, "live-weight")
    url = f"/ui/deployments/{name}/weight"
    with login_client(seeded.server.url, seeded.tokens[Role.DEPLOYER]) as client:
        page = client.get(f"/ui/deployments/{name}").text
        assert re.search(r'id="weight-value" name="weight"[^>]* value="10"', page)
        form = {"csrf": csrf_of(page), "expected_revision": "2", "reason": "canary looks fine"}
        forged = client.post(url, data={**form, "csrf": "", "confirm": "yes", "weight": "30"})
        assert forged.status_code == 403 and "CSRF token is missing" in forged.text
        wrong = client.post(url, data={**form, "confirm": "yes", "weight": "150"})
        assert wrong.status_code == 422 and "150" in wrong.text and "Not changed:" in wrong.text
        done = client.post(url, data={**form, "confirm": "yes", "weight": "30"})
        assert done.headers["location"] == f"/ui/deployments/{name}?done=weight-3"
        assert (
            "Done: weight changed; the deployment is now at revision 3"
            in client.get(done.headers["location"]).text
        )
        stale = client.post(url, data={**form, "confirm": "yes", "weight": "50"})
        assert stale.status_code == 409 and "Not changed:" in stale.text
    newest = deploy_history(seeded, name)[0]
    assert (newest["action"], newest["actor"], newest["reason"]) == (
        "set_weight",
        "token:ui-deployer",
        "canary looks fine",
    )
    config = newest["config"]
    assert isinstance(config, dict)
    assert [v["weight"] for v in config["variants"]] == [70, 30]


def test_a_viewer_sees_no_weight_form_and_its_post_is_refused(seeded: Seeded) -> None:
    name = canary_deployment(seeded.server, "live-viewer")
    with login_client(seeded.server.url, seeded.tokens[Role.VIEWER]) as client:
        page = client.get(f"/ui/deployments/{name}").text
        assert "weight-form" not in page and "Live guard metrics" in page
        data = {"csrf": csrf_of(page), "expected_revision": "2", "reason": "r", "confirm": "yes"}
        reply = client.post(f"/ui/deployments/{name}/weight", data={**data, "weight": "50"})
    assert reply.status_code == 403 and "needs deployer or higher" in reply.text
    history = seeded.get(f"/api/v1/deployments/{name}/history").json()["revisions"]
    assert history[0]["action"] == "canary"  # nothing changed


def test_a_deployment_without_traffic_shows_its_guards_waiting(seeded: Seeded) -> None:
    name = canary_deployment(seeded.server, "live-quiet")
    page = seeded.get(f"/ui/deployments/{name}").text
    assert _field(_row(page, "data-variant", "canary"), "requests") == "0"
    error = _row(page, "data-guard", "error rate")
    assert 'data-status="waiting"' in page and "0 of the 30 requests it needs" in error
    assert "No rollout policy: the default guards are shown" in page
