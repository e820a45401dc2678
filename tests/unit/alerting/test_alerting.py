"""Alert rules, de-duplication, for-how-long, hooks and real sinks (a loopback webhook)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from modelpilot.alerting import (
    Alert,
    AlertManager,
    AlertRule,
    EventSink,
    LogFileSink,
    WebhookSink,
    load_rules,
)
from modelpilot.errors import InvalidInput
from modelpilot.store.events import list_events
from modelpilot.workspace import Workspace

RULE = AlertRule(
    name="drift",
    metric="drift.share_drifted",
    op=">=",
    threshold=0.3,
    for_s=60,
    severity="critical",
    subject="churn-*",
    actions=("retrain",),
)


class Recorder:
    def __init__(self) -> None:
        self.alerts: list[Alert] = []

    def send(self, alert: Alert) -> None:
        self.alerts.append(alert)


def test_alert_fires_only_after_holding_for_its_duration_and_once() -> None:
    sink = Recorder()
    manager = AlertManager([RULE], [sink])
    assert manager.observe("churn-prod", "drift.share_drifted", 0.5, at_ms=0) == []  # pending
    assert manager.observe("churn-prod", "drift.share_drifted", 0.5, at_ms=30_000) == []
    fired = manager.observe("churn-prod", "drift.share_drifted", 0.6, at_ms=61_000)
    assert [a.state for a in fired] == ["firing"]
    assert (
        manager.observe("churn-prod", "drift.share_drifted", 0.7, at_ms=90_000) == []
    )  # de-duplicated
    resolved = manager.observe("churn-prod", "drift.share_drifted", 0.1, at_ms=120_000)
    assert [a.state for a in resolved] == ["resolved"]
    assert [a.state for a in sink.alerts] == ["firing", "resolved"]
    assert "critical" in sink.alerts[0].message and "churn-prod" in sink.alerts[0].message


def test_a_blip_shorter_than_for_s_never_fires() -> None:
    sink = Recorder()
    manager = AlertManager([RULE], [sink])
    manager.observe("churn-prod", "drift.share_drifted", 0.9, at_ms=0)
    manager.observe("churn-prod", "drift.share_drifted", 0.0, at_ms=10_000)
    manager.observe("churn-prod", "drift.share_drifted", 0.9, at_ms=20_000)
    manager.observe("churn-prod", "drift.share_drifted", 0.9, at_ms=70_000)
    assert sink.alerts == []


def test_subjects_are_matched_by_glob_and_tracked_separately() -> None:
    sink = Recorder()
    manager = AlertManager([RULE.model_copy(update={"for_s": 0})], [sink])
    manager.observe("churn-prod", "drift.share_drifted", 0.9)
    manager.observe("churn-eu", "drift.share_drifted", 0.9)
    manager.observe("fraud-prod", "drift.share_drifted", 0.9)
    assert sorted(a.subject for a in sink.alerts) == ["churn-eu", "churn-prod"]


def test_hooks_run_when_a_rule_naming_them_fires_and_failures_do_not_stop_others() -> None:
    called: list[str] = []
    manager = AlertManager([RULE.model_copy(update={"for_s": 0, "actions": ("broken", "retrain")})])
    manager.register_hook("broken", lambda alert: (_ for _ in ()).throw(RuntimeError("boom")))
    manager.register_hook("retrain", lambda alert: called.append(alert.subject))
    manager.observe("churn-prod", "drift.share_drifted", 0.9)
    assert called == ["churn-prod"]


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, object]]]]:
    received: list[dict[str, object]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(json.loads(body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/alerts", received
    finally:
        server.shutdown()
        server.server_close()


def test_webhook_log_file_and_event_sinks_receive_the_alert(
    webhook: tuple[str, list[dict[str, object]]], tmp_path: Path, ws: Workspace
) -> None:
    url, received = webhook
    log_path = tmp_path / "alerts.jsonl"
    manager = AlertManager(
        [RULE.model_copy(update={"for_s": 0})],
        [WebhookSink(url), LogFileSink(log_path), EventSink(ws.store)],
    )
    manager.observe("churn-prod", "drift.share_drifted", 0.42)
    assert received[0]["rule"] == "drift" and received[0]["value"] == 0.42
    assert json.loads(log_path.read_text().splitlines()[0])["state"] == "firing"
    with ws.store.read() as conn:
        assert [e.kind for e in list_events(conn, "alert:churn-prod")] == ["alert.firing"]


def test_an_unreachable_webhook_is_reported_not_fatal(tmp_path: Path) -> None:
    log_path = tmp_path / "alerts.jsonl"
    manager = AlertManager(
        [RULE.model_copy(update={"for_s": 0})],
        [WebhookSink("http://127.0.0.1:9/none", timeout_s=0.5, attempts=2), LogFileSink(log_path)],
    )
    assert len(manager.observe("churn-prod", "drift.share_drifted", 0.9)) == 1
    assert log_path.exists()  # the second sink still got it


def test_bad_rules_are_clear_errors() -> None:
    with pytest.raises(
        InvalidInput, match=r"Alert rule 1 \(x\): Input should be '>', '>=', '<' or '<='"
    ):
        load_rules([{"name": "x", "metric": "m", "op": "==", "threshold": 1}])
    with pytest.raises(InvalidInput, match="repeated: a"):
        load_rules([{"name": "a", "metric": "m", "op": ">", "threshold": 1}] * 2)
