"""The dashboard in a real browser: Playwright driving Debian's Chromium (never a downloaded
browser), against a real ``modelpilot server`` process.

Every page (runs, run, compare, models, a model, a version, deployments, monitoring,
datasets, a dataset, audit) is opened at 1280 px and at 390 px (a phone), as an admin: no
console error, no request to anywhere but the server, no page wider than the screen. A
screenshot of each is saved under ``$MODELPILOT_TEST_ARTIFACTS/dashboard`` (or pytest's
temporary folder, printed at the end).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from modelpilot.identity import Role
from mp_dashboard import DEPLOYMENT, Seeded, canary_deployment, deploy_history, seeded_server
from mp_dashboard_browser import WIDTHS, Watched, logged_in

# An end-to-end scenario: `make test-slow` (and .ci/run) runs it, `make test` does not.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    with seeded_server(tmp_path_factory.mktemp("dashboard-browser")) as running:
        yield running


def _pages(seeded: Seeded) -> dict[str, str]:
    ids = seeded.run_ids
    compared = ",".join(ids[n] for n in ("baseline", "tuned", "wide"))
    return {
        "runs": "/ui/runs",
        "run": f"/ui/runs/{ids['baseline']}",
        "run-long": f"/ui/runs/{ids['long']}",
        "compare": f"/ui/compare?runs={compared}",
        "deployments": "/ui/deployments",
        "deployment": f"/ui/deployments/{DEPLOYMENT}",
        "models": "/ui/models",
        "model": "/ui/models/churn",
        "model-version": "/ui/models/churn/versions/1",
        "model-version-retired": "/ui/models/churn/versions/3",
        "monitoring": "/ui/monitoring",
        "monitoring-deployment": f"/ui/monitoring/{DEPLOYMENT}",
        "datasets": "/ui/datasets",
        "dataset": "/ui/datasets/{}/{}".format(*seeded.datasets["train"].split("@")),
        "audit": "/ui/audit",
        "bad-filter": "/ui/runs?filter=metrics.auc+%3E",
    }


@pytest.mark.parametrize("screen", list(WIDTHS))
def test_every_page_opens_clean_offline_and_fits_the_screen(
    browser: Browser, seeded: Seeded, shots: Path, screen: str
) -> None:
    with logged_in(browser, seeded, Role.ADMIN, WIDTHS[screen]) as watched:
        for name, path in _pages(seeded).items():
            reply = watched.open(path)
            assert reply.status == (422 if name == "bad-filter" else 200), name
            if name == "bad-filter":
                watched.errors.clear()  # Chromium logs the 422 itself; the page shows why
                assert "incomplete clause" in watched.page.inner_text("#search-error")
            watched.check_clean()
            overflow = watched.page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, f"{name} is {overflow} px wider than a {screen} screen"
            watched.page.screenshot(path=str(shots / f"{name}-{screen}.png"), full_page=True)
        assert any(u.endswith("/ui/static/dashboard.css") for u in watched.requests)


def test_login_page_opens_clean(browser: Browser, seeded: Seeded, shots: Path) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 700})
    watched = Watched(context.new_page(), seeded.server.url)
    watched.open("/ui/login")
    watched.check_clean()
    watched.page.screenshot(path=str(shots / "login-desktop.png"))
    context.close()


def test_a_deployer_promotes_a_canary_and_deploy_history_has_the_reason(
    browser: Browser, seeded: Seeded, shots: Path
) -> None:
    name = canary_deployment(seeded.server, "browser-promote")
    with logged_in(browser, seeded, Role.DEPLOYER) as watched:
        page = watched.page
        watched.open(f"/ui/deployments/{name}")
        page.fill("#promote-reason", "canary healthy for an hour")
        page.click("#promote-form button[type=submit]")  # the unticked box stops the browser
        assert "/promote" not in page.url
        page.check("#promote-form input[name=confirm]")
        page.click("#promote-form button[type=submit]")
        page.wait_for_url(f"**/ui/deployments/{name}?done=promote-3")
        assert "now at revision 3" in page.inner_text("p.notice")
        page.screenshot(path=str(shots / "deployment-promoted-desktop.png"), full_page=True)
        watched.check_clean()
    history = deploy_history(seeded, name)
    assert (history[0]["action"], history[0]["actor"], history[0]["reason"]) == (
        "promote",
        "token:ui-deployer",
        "canary healthy for an hour",
    )


def test_a_viewer_sees_no_forms_and_a_forged_post_is_refused(
    browser: Browser, seeded: Seeded
) -> None:
    name = canary_deployment(seeded.server, "browser-viewer")
    with logged_in(browser, seeded, Role.VIEWER) as watched:
        watched.open(f"/ui/deployments/{name}")
        assert watched.page.locator("form#promote-form, form#rollback-form").count() == 0
        assert watched.page.get_by_role("button", name="Promote").count() == 0
        statuses = watched.page.evaluate(
            """async (name) => {
                const csrf = document.querySelector("input[name=csrf]").value;
                const post = (body) => fetch(`/ui/deployments/${name}/promote`, {method: "POST",
                    headers: {"Content-Type": "application/x-www-form-urlencoded"}, body});
                const forged = await post("confirm=yes&reason=r&expected_revision=2");
                const own = await post(`csrf=${csrf}&confirm=yes&reason=r&expected_revision=2`);
                return [forged.status, own.status];
            }""",
            name,
        )
        assert statuses == [403, 403]  # no CSRF token; then a viewer's own form post
    assert deploy_history(seeded, name)[0]["action"] == "canary"


def test_compare_from_ticked_runs_shows_exactly_the_differing_params(
    browser: Browser, seeded: Seeded, shots: Path
) -> None:
    with logged_in(browser, seeded, Role.VIEWER) as watched:
        page = watched.page
        watched.open("/ui/runs?experiment=churn")
        for run in ("baseline", "tuned", "wide"):
            page.check(f"input[name=runs][value='{seeded.run_ids[run]}']")
        page.click("text=Compare selected")
        page.wait_for_url("**/ui/compare?**")
        shown = page.eval_on_selector_all(
            "#params tr[data-param]", "rows => rows.map(r => r.dataset.param)"
        )
        assert shown == ["depth", "lr"]
        deltas = page.locator("#metrics .delta").all_inner_texts()  # against the first run
        assert len(deltas) == 2 and all(d.endswith((" higher", " lower")) for d in deltas)
        assert all(d.startswith(("+", "-")) for d in deltas)  # a sign and a word, not colour
        page.click("text=Show all params")
        every = page.eval_on_selector_all(
            "#params tr[data-param]", "rows => rows.map(r => r.dataset.param)"
        )
        assert every == ["depth", "lr", "model", "seed"]
        page.screenshot(path=str(shots / "compare-all-desktop.png"), full_page=True)
        watched.check_clean()


def test_hidden_columns_are_remembered(browser: Browser, seeded: Seeded) -> None:
    with logged_in(browser, seeded, Role.VIEWER) as watched:
        page = watched.page
        watched.open("/ui/runs?experiment=churn")
        page.click("details.columns summary")
        page.uncheck("input[data-toggle='params.seed']")
        assert page.locator("th[data-col='params.seed']").is_hidden()
        watched.open("/ui/runs?experiment=churn")
        assert page.locator("th[data-col='params.seed']").is_hidden()
        assert page.locator("th[data-col='params.lr']").is_visible()
        watched.check_clean()


def test_a_viewer_opens_every_page_but_the_audit_log(browser: Browser, seeded: Seeded) -> None:
    with logged_in(browser, seeded, Role.VIEWER) as watched:
        for name, path in _pages(seeded).items():
            if name in ("audit", "bad-filter"):
                continue
            assert watched.open(path).status == 200, name
            watched.check_clean()
        assert watched.page.locator("nav a[href='/ui/audit']").count() == 0
        assert watched.open("/ui/audit").status == 403  # as GET /api/v1/audit/entries
        assert "needs admin or higher" in watched.page.inner_text("pre.error")


def test_monitoring_page_draws_a_chart_per_figure_and_lists_alerts(
    browser: Browser, seeded: Seeded, shots: Path
) -> None:
    with logged_in(browser, seeded, Role.VIEWER) as watched:
        page = watched.page
        watched.open("/ui/monitoring")
        page.click(f"text={DEPLOYMENT}")
        page.wait_for_url(f"**/ui/monitoring/{DEPLOYMENT}")
        assert page.locator("figure[data-figure] svg polyline").count() == 2
        assert page.locator("#alerts tr[data-state=firing]").count() == 2
        assert "drift (warning)" in page.inner_text("#firing")
        page.click("#decisions summary")
        assert "awaiting_approval" in page.inner_text("#decisions")
        watched.check_clean()
