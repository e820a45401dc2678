"""The monitoring page's charts over time (drift per feature, estimated vs realised
performance), its domain flags and loop approvals, and the run page's lineage, over HTTP
against a real ``modelpilot server`` process.

A value charted is checked against the report the API serves: read back from the table under
each chart and from the chart's own pixels (the plot box and the series' range give the
scale).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from modelpilot.identity import Role
from mp_dashboard import (
    DEPLOYMENT,
    Monitored,
    Seeded,
    csrf_of,
    logged_in_client,
    monitored_deployment,
    seeded_server,
)

WATCHED = "churn-watch"


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    with seeded_server(tmp_path_factory.mktemp("dashboard-monitoring")) as running:
        yield running


@pytest.fixture(scope="module")
def monitored(seeded: Seeded) -> Monitored:
    return monitored_deployment(seeded.server, WATCHED, "a" * 32)


def _reports(seeded: Seeded, name: str) -> list[dict[str, Any]]:
    """The kept reports as ``GET /api/v1/monitoring/{name}/reports`` sends them, oldest first."""
    reply = seeded.get(f"/api/v1/monitoring/{name}/reports?limit=50")
    assert reply.status_code == 200
    return sorted(reply.json()["reports"], key=lambda r: r["window_end_ms"])


def _figure(page: str, attribute: str, key: str) -> str:
    found = re.search(rf'<figure {attribute}="{re.escape(key)}">(.*?)</figure>', page, re.S)
    assert found is not None, f"no figure {attribute}={key}"
    return found.group(1)


def _table(figure: str) -> dict[int, list[str]]:
    """The values table under a chart: window end (ms) -> its cells' text."""
    rows = re.findall(r'<tr data-window="(\d+)">(.*?)</tr>', figure, re.S)
    return {
        int(end): [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", r)]
        for end, r in rows
    }


def _number(text: str) -> float | None:
    return None if text == "—" else float(text)


def _plotted(figure: str, title: str, lo: float, hi: float) -> list[float]:
    """The y values of the line titled ``title``, read back from its pixels: the plot box
    spans ``lo`` (bottom) to ``hi`` (top)."""
    box = re.search(r'<rect x="[\d.]+" y="([\d.]+)" width="[\d.]+" height="([\d.]+)"', figure)
    assert box is not None
    top, height = float(box.group(1)), float(box.group(2))
    line = re.search(rf'<polyline points="([^"]*)"[^>]*><title>{re.escape(title)}</title>', figure)
    assert line is not None, f"no line {title!r}"
    ys = [float(point.split(",")[1]) for point in line.group(1).split()]
    return [lo + (hi - lo) * (1 - (y - top) / height) for y in ys]


def test_each_feature_is_charted_most_important_first_with_the_reports_effect_sizes(
    seeded: Seeded, monitored: Monitored
) -> None:
    page = seeded.get(f"/ui/monitoring/{WATCHED}").text
    assert re.findall(r'<figure data-feature="([^"]+)">', page) == ["x", "y"]  # 0.8 before 0.2
    reports = _reports(seeded, WATCHED)
    for feature in ("x", "y"):
        figure = _figure(page, "data-feature", feature)
        columns = [
            next(c for c in r["drift"]["columns"] if c["column"] == feature) for r in reports
        ]
        table = _table(figure)
        assert sorted(table) == [r["window_end_ms"] for r in reports]
        for report, column in zip(reports, columns, strict=True):
            cells = table[report["window_end_ms"]]
            assert _number(cells[1]) == pytest.approx(column["effect_size"], rel=1e-5)
            assert cells[2] == ("drifted" if column["drifted"] else "no drift")
        sizes = [c["effect_size"] for c in columns]
        lo = min([*sizes, columns[-1]["min_effect_size"]])
        hi = max([*sizes, columns[-1]["min_effect_size"]])
        drawn = _plotted(figure, f"effect size ({columns[-1]['effect']})", lo, hi)
        assert drawn == pytest.approx(sizes, abs=(hi - lo) / 500)
        drifted = sum(c["drifted"] for c in columns)
        assert figure.count("<title>drifted</title>") == drifted  # one triangle per window
        assert f"drifted in {drifted} of 4 window(s)" in figure
    assert sum(c["drifted"] for r in reports for c in r["drift"]["columns"]) > 0


def test_a_metric_is_charted_estimated_with_its_interval_and_realised_told_apart(
    seeded: Seeded, monitored: Monitored
) -> None:
    page = seeded.get(f"/ui/monitoring/{WATCHED}").text
    assert re.findall(r'<figure data-metric="([^"]+)">', page) == ["roc_auc"]
    figure = _figure(page, "data-metric", "roc_auc")
    reports = _reports(seeded, WATCHED)
    table = _table(figure)
    estimated, realised = [], []
    for report in reports:
        overall = report["slices"]["overall"]
        cells = table[report["window_end_ms"]]
        is_estimate = overall["source"] == "estimated"
        assert _number(cells[1]) == (overall["value"] if is_estimate else None)
        interval = f"{overall['lower']:.6g} – {overall['upper']:.6g}" if is_estimate else "—"
        assert cells[2] == interval
        realised_value = report["figures"].get("performance.roc_auc")
        assert _number(cells[3]) == realised_value
        estimated += [overall["value"]] if is_estimate else []
        realised += [] if realised_value is None else [realised_value]
    assert len(estimated) == 3 and len(realised) == 2
    bounds = [b for r in reports for b in (r["slices"]["overall"]["lower"],) if b is not None]
    uppers = [b for r in reports for b in (r["slices"]["overall"]["upper"],) if b is not None]
    lo, hi = min(bounds + realised), max(uppers + realised)
    assert _plotted(figure, "estimated (no labels)", lo, hi) == pytest.approx(
        estimated, abs=(hi - lo) / 500
    )
    assert _plotted(figure, "realised (labels)", lo, hi) == pytest.approx(
        realised, abs=(hi - lo) / 500
    )
    lines = re.findall(r"<polyline [^>]*>", figure)
    assert ['stroke-dasharray="6 3"' in line for line in lines] == [True, False]  # dash apart
    band = re.search(
        r'<polygon points="([^"]*)"[^>]*><title>interval of the estimate</title>', figure
    )
    assert band is not None and len(band.group(1).split()) == 2 * 3  # upper and lower edges
    for word in ("estimated (no labels)", "realised (labels)", "interval of the estimate"):
        assert f'font-size="11">{word}</text>' in figure  # named in the legend


def test_values_outside_the_domain_are_counted_in_the_newest_window(
    seeded: Seeded, monitored: Monitored
) -> None:
    page = seeded.get(f"/ui/monitoring/{WATCHED}").text
    section = re.search(r'<section id="data-quality">(.*?)</section>', page, re.S)
    assert section is not None
    rows = re.findall(r'<tr data-flag="([^:]+):(\w+)">.*?<td class="num">([\d,]+)</td>', page)
    assert {(c, k): int(n) for c, k, n in rows} == monitored.domain
    other = seeded.get(f"/ui/monitoring/{DEPLOYMENT}").text  # nothing logged for it
    assert 'id="domain-none"' in other


def _decision(seeded: Seeded, key: str) -> dict[str, Any]:
    reply = seeded.get(f"/api/v1/loop/decisions/{key}")
    assert reply.status_code == 200
    found: dict[str, Any] = reply.json()
    return found


def _approval(client: httpx.Client, name: str, decision: str, **fields: str) -> httpx.Response:
    return client.post(f"/ui/monitoring/{name}/decisions/{decision}/approval", data=fields)


def test_a_deployer_approves_from_the_page_with_a_reason_recorded_as_the_token(
    seeded: Seeded,
) -> None:
    watched = monitored_deployment(seeded.server, "churn-approve", "b" * 32)
    with logged_in_client(seeded, Role.DEPLOYER) as client:
        page = client.get(f"/ui/monitoring/{watched.name}").text
        assert f'id="approve-{"b" * 8}"' in page
        csrf = csrf_of(page)
        unconfirmed = _approval(
            client, watched.name, watched.decision_id, csrf=csrf, verdict="approve", reason="ok"
        )
        assert unconfirmed.status_code == 422 and "tick the confirmation box" in unconfirmed.text
        no_reason = _approval(
            client, watched.name, watched.decision_id, csrf=csrf, verdict="approve", confirm="yes"
        )
        assert no_reason.status_code == 422 and "A reason for approve is required" in no_reason.text
        assert _decision(seeded, watched.decision_id)["state"] == "awaiting_approval"
        fields = {"csrf": csrf, "verdict": "approve", "confirm": "yes", "reason": "eval passed"}
        done = _approval(client, watched.name, watched.decision_id, **fields)
        assert done.status_code == 303
        assert done.headers["location"] == f"/ui/monitoring/{watched.name}?done=bbbbbbbb-ready"
        assert "is now ready" in client.get(done.headers["location"]).text
        again = _approval(client, watched.name, watched.decision_id, **fields)
        assert again.status_code == 409 and "not awaiting_approval" in again.text
    decision = _decision(seeded, watched.decision_id)
    step = decision["steps"][-1]
    assert decision["state"] == "ready"
    assert (step["state"], step["actor"], step["reason"]) == (
        "ready",
        "token:ui-deployer",
        "approved by token:ui-deployer: eval passed",  # as `modelpilot loop approve` records it
    )


def test_a_viewer_sees_no_approval_form_and_forged_or_viewer_posts_are_refused(
    seeded: Seeded,
) -> None:
    watched = monitored_deployment(seeded.server, "churn-refuse", "c" * 32)
    fields = {"verdict": "reject", "confirm": "yes", "reason": "no"}
    with logged_in_client(seeded, Role.VIEWER) as client:
        page = client.get(f"/ui/monitoring/{watched.name}").text
        assert 'id="approvals"' not in page and "awaiting_approval" in page
        own = _approval(client, watched.name, watched.decision_id, csrf=csrf_of(page), **fields)
        assert own.status_code == 403 and "needs deployer or higher" in own.text
    with logged_in_client(seeded, Role.DEPLOYER) as client:
        forged = _approval(client, watched.name, watched.decision_id, **fields)  # no CSRF token
        assert forged.status_code == 403 and "CSRF token" in forged.text
        page = client.get(f"/ui/monitoring/{DEPLOYMENT}").text
        elsewhere = _approval(  # another deployment's page cannot decide this one
            client, DEPLOYMENT, watched.decision_id, csrf=csrf_of(page), **fields
        )
        assert elsewhere.status_code == 404
    assert _decision(seeded, watched.decision_id)["state"] == "awaiting_approval"


def test_run_page_lineage_links_data_versions_and_deployments(seeded: Seeded) -> None:
    page = seeded.get(f"/ui/runs/{seeded.run_ids['baseline']}").text
    lineage = re.search(r'<ol class="lineage" id="lineage">(.*?)</ol>', page, re.S)
    assert lineage is not None
    for ref in (seeded.datasets["train"], seeded.datasets["test"]):
        name, version = ref.split("@")
        assert f'href="/ui/datasets/{name}/{version}">{ref}</a>' in lineage.group(1)
    assert 'href="/ui/models/churn/versions/1">churn/1</a>' in lineage.group(1)
    assert f'href="/ui/deployments/{DEPLOYMENT}">{DEPLOYMENT}</a>' in lineage.group(1)
    assert "churn/1, stable, 90%" in lineage.group(1)
    other = seeded.get(f"/ui/runs/{seeded.run_ids['tuned']}").text
    assert "no model version registered from this run" in other
