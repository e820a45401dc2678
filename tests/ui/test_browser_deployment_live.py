"""A deployment's page in a real browser (Playwright driving Debian's Chromium) against a
real ``modelpilot server``: a deployer moves the canary's weight from the form and
``modelpilot deploy history --json`` lists it with the token and the reason; the live guard
metrics fetch their fragment again and show traffic logged after the page opened, with no
console error, at 1280 and 390 px.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from modelpilot.identity import Role
from mp_dashboard import (
    Seeded,
    canary_deployment,
    deploy_history,
    log_traffic,
    traffic_server,
)
from mp_dashboard_browser import logged_in

# An end-to-end scenario (a refresh comes every 10 s): `make test-slow` runs it.
pytestmark = pytest.mark.slow

CANARY_REQUESTS = "#live tr[data-variant=canary] [data-field=requests]"


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    with traffic_server(tmp_path_factory.mktemp("dashboard-live-browser")) as running:
        yield running


def test_a_deployer_sets_the_canary_weight_and_deploy_history_has_it(
    browser: Browser, seeded: Seeded, shots: Path
) -> None:
    name = canary_deployment(seeded.server, "browser-weight")
    with logged_in(browser, seeded, Role.DEPLOYER) as watched:
        page = watched.page
        watched.open(f"/ui/deployments/{name}")
        assert page.input_value("#weight-value") == "10"
        page.fill("#weight-value", "25")
        page.fill("#weight-reason", "error rate flat for an hour")
        page.click("#weight-form button[type=submit]")  # the unticked box stops the browser
        assert "/weight" not in page.url
        page.check("#weight-form input[name=confirm]")
        page.click("#weight-form button[type=submit]")
        page.wait_for_url(f"**/ui/deployments/{name}?done=weight-3")
        assert "weight changed" in page.inner_text("p.notice")
        assert "canary churn v2 25%" in page.inner_text("#history")
        page.screenshot(path=str(shots / "deployment-weight-desktop.png"), full_page=True)
        watched.check_clean()
    newest = deploy_history(seeded, name)[0]
    assert (newest["action"], newest["actor"], newest["reason"]) == (
        "set_weight",
        "token:ui-deployer",
        "error rate flat for an hour",
    )


@pytest.mark.parametrize("width", [1280, 390])
def test_the_live_section_refreshes_itself_with_new_traffic(
    browser: Browser, seeded: Seeded, shots: Path, width: int
) -> None:
    name = canary_deployment(seeded.server, f"browser-live-{width}")
    with logged_in(browser, seeded, Role.VIEWER, width) as watched:
        page = watched.page
        watched.open(f"/ui/deployments/{name}")
        assert page.inner_text(CANARY_REQUESTS) == "0"
        assert page.locator("#live-guards tr[data-status=waiting]").count() == 3
        log_traffic(seeded.server.home, name, "stable", 1, 60, seed=1)
        log_traffic(seeded.server.home, name, "canary", 2, 40, errors=10, seed=2)
        # the page's script fetches /ui/deployments/NAME/live again within 10 s
        # (a locator assertion: the CSP forbids the eval that wait_for_function needs)
        expect(page.locator(CANARY_REQUESTS)).to_have_text("40", timeout=30_000)
        error_guard = page.locator("#live-guards tr[data-guard='error rate']")
        assert error_guard.get_attribute("data-status") == "breached"
        assert "breached" in error_guard.inner_text()  # a word, not colour alone
        assert any(
            u.endswith(f"/ui/deployments/{name}/live?window=revision") for u in watched.requests
        )
        watched.check_clean()
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"the page is {overflow} px wider than {width} px"
        page.screenshot(path=str(shots / f"deployment-live-{width}.png"), full_page=True)
