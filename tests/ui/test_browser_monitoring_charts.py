"""The monitoring page's charts over time and loop approvals, and the run page's lineage, in
Chromium (Playwright, Debian's browser; never a downloaded one) against a real
``modelpilot server`` process.

At 1280 px and at 390 px the page draws a chart per feature (drifted windows marked) and the
metric's estimate with its interval band next to its realised value, with no console error,
no request beyond the server and nothing wider than the screen; a deployer approves a loop
decision from the page and its state changes. Screenshots go where tests/ui/test_dashboard.py
puts its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser

from modelpilot.identity import Role
from mp_dashboard import Monitored, Seeded, monitored_deployment, seeded_server
from mp_dashboard_browser import WIDTHS, logged_in

# An end-to-end scenario: `make test-slow` (and .ci/run) runs it, `make test` does not.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    with seeded_server(tmp_path_factory.mktemp("dashboard-monitoring-browser")) as running:
        yield running


@pytest.fixture(scope="module")
def monitored(seeded: Seeded) -> Monitored:
    return monitored_deployment(seeded.server, "churn-watch", "a" * 32)


@pytest.mark.parametrize("screen", list(WIDTHS))
def test_monitoring_draws_feature_and_performance_charts_cleanly(
    browser: Browser, seeded: Seeded, monitored: Monitored, shots: Path, screen: str
) -> None:
    with logged_in(browser, seeded, Role.VIEWER, WIDTHS[screen]) as watched:
        page = watched.page
        assert watched.open(f"/ui/monitoring/{monitored.name}").status == 200
        features = page.eval_on_selector_all(
            "figure[data-feature]", "figures => figures.map(f => f.dataset.feature)"
        )
        assert features == ["x", "y"]
        assert page.locator("figure[data-feature='x'] svg polyline").count() == 2  # + minimum
        assert page.locator("figure[data-feature='x'] svg polygon title").count() >= 1
        metric = page.locator("figure[data-metric='roc_auc'] svg")
        assert metric.locator("polyline").count() == 2  # estimated and realised
        assert metric.locator("polygon").count() == 1  # the estimate's interval
        assert metric.locator("polyline").first.get_attribute("stroke-dasharray") == "6 3"
        assert metric.bounding_box() is not None and metric.bounding_box()["width"] > 200
        assert "x" in page.inner_text("#domain")
        watched.check_clean()
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"the page is {overflow} px wider than a {screen} screen"
        page.screenshot(path=str(shots / f"monitoring-charts-{screen}.png"), full_page=True)
        assert watched.open(f"/ui/runs/{seeded.run_ids['baseline']}").status == 200
        assert page.locator("#lineage a[href='/ui/models/churn/versions/1']").count() == 1
        watched.check_clean()
        page.screenshot(path=str(shots / f"run-lineage-{screen}.png"), full_page=True)


def test_a_deployer_approves_a_decision_from_the_page(
    browser: Browser, seeded: Seeded, shots: Path
) -> None:
    watched_deployment = monitored_deployment(seeded.server, "browser-approve", "e" * 32)
    form = f"#approve-{'e' * 8}"
    with logged_in(browser, seeded, Role.DEPLOYER) as watched:
        page = watched.page
        watched.open(f"/ui/monitoring/{watched_deployment.name}")
        page.fill(f"{form} textarea[name=reason]", "candidate passed its gate")
        page.click(f"{form} button[value=approve]")  # the unticked box stops the browser
        assert "done=" not in page.url
        page.check(f"{form} input[name=confirm]")
        page.click(f"{form} button[value=approve]")
        page.wait_for_url(f"**/ui/monitoring/{watched_deployment.name}?done=eeeeeeee-ready")
        assert "is now ready" in page.inner_text("#done")
        row = page.locator(f"#decisions tr[data-decision='{'e' * 8}']")
        assert "ready" in row.inner_text()
        assert page.locator(form).count() == 0  # nothing left to approve
        page.screenshot(path=str(shots / "monitoring-approved-desktop.png"), full_page=True)
        watched.check_clean()
    reply = httpx.get(
        f"{seeded.server.url}/api/v1/loop/decisions/{'e' * 32}",
        headers=seeded.headers(Role.VIEWER),
        timeout=30,
    )
    assert reply.json()["state"] == "ready"
    assert reply.json()["steps"][-1]["actor"] == "token:ui-deployer"
