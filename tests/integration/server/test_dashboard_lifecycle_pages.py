"""The dashboard's Models, Monitoring, Datasets and Audit pages over HTTP, against a real
``modelpilot server`` process on SQLite with the seeded registry, data and monitoring records.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from modelpilot.identity import Role
from modelpilot.registry.service import set_alias
from modelpilot.server.ui.audit import AUDIT_PAGE
from modelpilot.store import Store
from mp_dashboard import DECISION_ID, DEPLOYMENT, Seeded, seeded_server


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    with seeded_server(tmp_path_factory.mktemp("dashboard-lifecycle")) as running:
        yield running


def _cells(page: str, row_attr: str) -> list[list[str]]:
    """The text of each cell of the rows carrying ``row_attr`` (tags stripped)."""
    rows = re.findall(rf"<tr {row_attr}[^>]*>(.*?)</tr>", page, re.S)
    return [
        [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", r, re.S)]
        for r in rows
    ]


def test_nav_links_every_page_and_audit_only_for_an_admin(seeded: Seeded) -> None:
    viewer = seeded.get("/ui/runs").text
    for path in ("/ui/runs", "/ui/models", "/ui/deployments", "/ui/monitoring", "/ui/datasets"):
        assert f'<a href="{path}"' in viewer
    assert 'href="/ui/audit"' not in viewer
    assert 'href="/ui/audit"' in seeded.get("/ui/runs", Role.ADMIN).text


def test_models_list_shows_aliases_and_latest_version(seeded: Seeded) -> None:
    page = seeded.get("/ui/models").text
    assert 'href="/ui/models/churn/versions/3">v3</a>' in page
    assert "champion → v1" in page and "challenger → v2" in page


def test_a_models_versions_show_status_gate_serving_and_alias_history(seeded: Seeded) -> None:
    page = seeded.get("/ui/models/churn").text
    rows = {r[0]: r for r in _cells(page, "data-version")}
    assert rows["v3"][1] == "retired" and rows["v1"][1] == "live"
    assert rows["v1"][2] == "champion" and rows["v2"][2] == "challenger"
    assert rows["v1"][3] == "PASSED prod-gate"  # the newest of its two verdicts
    assert rows["v2"][3] == "not judged"
    assert "churn-prod stable 90%" in rows["v1"][4] and "churn-prod canary 10%" in rows["v2"][4]
    history = re.search(r'<table class="kv" id="alias-history">(.*?)</table>', page, re.S)
    assert history is not None and "challenger</span> → v2" in history.group(1)
    assert seeded.get("/ui/models/nope").status_code == 404


def test_a_version_page_shows_lineage_card_evaluation_and_gates(seeded: Seeded) -> None:
    page = seeded.get("/ui/models/churn/versions/1").text
    lineage = re.search(r'<ol class="lineage" id="lineage">(.*?)</ol>', page, re.S)
    assert lineage is not None
    train, test = seeded.datasets["train"], seeded.datasets["test"]
    for ref in (train, test):
        name, version = ref.split("@")
        assert f'href="/ui/datasets/{name}/{version}">{ref}</a>' in lineage.group(1)
    assert f'href="/ui/runs/{seeded.run_ids["baseline"]}">baseline</a>' in lineage.group(1)
    assert f'href="/ui/deployments/{DEPLOYMENT}">{DEPLOYMENT}</a>' in lineage.group(1)
    assert '<th scope="row">Intended use</th><td>Retention calls</td>' in page
    assert re.search(r"<td>auc</td><td class=\"num\">0.84</td><td class=\"num\">0.8 – 0.88", page)
    verdicts = re.findall(r'class="verdict verdict-(pass|fail)">', page)
    assert verdicts == ["pass", "fail"]  # newest first
    assert "auc 0.74 against 0.8" in page
    assert 'id="retired"' not in page


def test_a_retired_version_says_when_why_and_who(seeded: Seeded) -> None:
    page = seeded.get("/ui/models/churn/versions/3").text
    assert 'id="retired"' in page
    assert "by token:seed: superseded by churn/2" in page
    assert "registered outside a run" in page and "not serving" in page


def test_monitoring_charts_each_figure_and_names_the_drift_rule(seeded: Seeded) -> None:
    index = seeded.get("/ui/monitoring").text
    assert f'href="/ui/monitoring/{DEPLOYMENT}">{DEPLOYMENT}</a>' in index
    page = seeded.get(f"/ui/monitoring/{DEPLOYMENT}").text
    figures = re.findall(r'<figure data-figure="([^"]+)">', page)
    assert figures == ["drift.share", "ops.requests"]
    charts = re.findall(r'<figure data-figure="[^"]+">(.*?)</figure>', page, re.S)
    polylines = [re.findall(r'<polyline points="([^"]*)"', c) for c in charts]
    assert [len(p[0].split()) for p in polylines] == [3, 3]  # one point per report
    assert "11-30 11:53" in page and "11-30 13:53" in page  # the first and last window's end
    reports = _cells(page, "data-report")
    assert [r[4] for r in reports] == ["drift", "no drift", "no drift"]  # newest first
    assert reports[0][5] != "—" and reports[0][6] == "x"  # the rule that decided; columns
    verdict = re.search(r'<p id="dataset-drift">(.*?)</p>', page, re.S)
    assert verdict is not None and f"decided by {reports[0][5]}" in verdict.group(1)
    columns = {r[0]: r[-1] for r in _cells(page, "data-column")}
    assert columns == {"x": "drifted", "y": "no drift"}


def test_monitoring_shows_alerts_and_loop_decisions(seeded: Seeded) -> None:
    page = seeded.get(f"/ui/monitoring/{DEPLOYMENT}").text
    states = re.findall(r'<tr data-state="(\w+)">', page)
    assert states == ["firing", "resolved", "firing"]  # newest first
    firing = re.search(r'<p class="error" role="status" id="firing">(.*?)</p>', page, re.S)
    assert firing is not None and "drift (warning)" in firing.group(1)
    assert "latency" not in firing.group(1)  # resolved since
    decisions = _cells(page, "data-decision")
    assert decisions[0][:6] == [
        DECISION_ID[:8],
        "2025-11-30 13:53:20 UTC",
        "churn-prod.drift",
        "awaiting_approval",
        "churn/2",
        "churn/1",
    ]
    assert seeded.get("/ui/monitoring/nope").status_code == 404
    bad = seeded.get(f"/ui/monitoring/{DEPLOYMENT}?limit=7")
    assert bad.status_code == 422 and "choose one of 20, 50, 100, 200" in bad.text


def test_datasets_show_profile_risks_and_the_versions_that_use_them(seeded: Seeded) -> None:
    listing = seeded.get("/ui/datasets").text
    train, test = seeded.datasets["train"], seeded.datasets["test"]
    assert "assessed" in listing and "not assessed" in listing
    name, version = train.split("@")
    page = seeded.get(f"/ui/datasets/{name}/{version}").text
    risks = re.search(r'<ul id="risks">(.*?)</ul>', page, re.S)
    assert risks is not None and "duplicate rows inside the dataset: 10" in risks.group(1)
    assert re.search(r"<td>x</td><td>numeric</td>.*?<td>min -?[\d.]+ · mean", page)
    assert re.search(r"<td>plan</td><td>categorical</td>.*?<td>[ab] \(\d+\), [ab] \(\d+\)", page)
    used = re.search(r'<ul id="used-by-models">(.*?)</ul>', page, re.S)
    assert used is not None and 'href="/ui/models/churn/versions/1">churn/1</a>' in used.group(1)
    name, version = test.split("@")
    other = seeded.get(f"/ui/datasets/{name}/{version}").text
    assert "No data-risk assessment is stored with this version." in other
    assert seeded.get(f"/ui/datasets/{name}/ffff").status_code == 404


def test_audit_shows_pages_of_entries_and_the_chain_status_to_an_admin(seeded: Seeded) -> None:
    store = Store.open(seeded.server.store_uri)
    try:
        for _ in range(AUDIT_PAGE):  # more entries than a page holds
            set_alias(store, "churn", "champion", 1, actor="token:seed")
    finally:
        store.close()
    page = seeded.get("/ui/audit", Role.ADMIN).text
    assert "Chain intact:" in page and "entries checked" in page
    ids = [int(i) for i in re.findall(r'<tr data-entry="(\d+)">', page)]
    assert len(ids) == AUDIT_PAGE and ids == sorted(ids, reverse=True)  # newest first
    older = re.search(r'<a href="([^"]+)" id="older">', page)
    assert older is not None
    previous = seeded.get(older.group(1).replace("&amp;", "&"), Role.ADMIN).text
    before = [int(i) for i in re.findall(r'<tr data-entry="(\d+)">', previous)]
    assert before and max(before) == min(ids) - 1
    models = seeded.get("/ui/audit?subject=model%3Achurn", Role.ADMIN).text
    subjects = {row[3] for row in _cells(models, "data-entry")}
    assert subjects == {"model:churn"}


def test_audit_is_refused_below_admin_as_on_the_api(seeded: Seeded) -> None:
    for role in (Role.VIEWER, Role.DEPLOYER):
        reply = seeded.get("/ui/audit", role)
        assert reply.status_code == 403 and "needs admin or higher" in reply.text
