"""One contract for the audit and alert seams, run against every implementation.

Implementations: local on SQLite, local on PostgreSQL, and HTTP -> a real ``modelpilot server``
process on SQLite and on PostgreSQL (one server per module, an admin token). Alerts are raised
by a real :class:`AlertManager` whose sink records them through the implementation, exactly as
``modelpilot monitor run`` does.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass

import pytest

from modelpilot.alerting import AlertManager, AlertRule, LocalAlerts, ServiceSink
from modelpilot.alerting.protocol import AlertService
from modelpilot.audit import MAX_AUDIT_PAGE, AuditService, LocalAudit
from modelpilot.client import HttpAlerts, HttpAudit
from modelpilot.errors import Forbidden, InvalidInput
from modelpilot.server.auth import Role
from modelpilot.store import Store
from mp_server import Backends, make_token

IMPLEMENTATIONS = [
    "local-sqlite",
    pytest.param("local-postgresql", marks=pytest.mark.postgres),
    "http-sqlite",
    pytest.param("http-postgresql", marks=pytest.mark.postgres),
]
SERVERS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@dataclass
class Services:
    """The seams one implementation provides, and the actor its alerts are recorded as."""

    audit: AuditService
    alerts: AlertService
    actor: str


@pytest.fixture(scope="module")
def backends(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backends]:
    with ExitStack() as stack:
        yield Backends(stack, tmp_path_factory.mktemp("audit-contract"))


@pytest.fixture(params=IMPLEMENTATIONS)
def services(request: pytest.FixtureRequest, backends: Backends) -> Iterator[Services]:
    mode, kind = str(request.param).split("-")
    if mode == "local":
        store = Store.open(backends.store_uri(kind))
        yield Services(LocalAudit(store), LocalAlerts(store), "alert-manager")
        store.close()
        return
    url, uri = backends.server(kind).url, backends.store_uri(kind)
    name = f"admin-{uuid.uuid4().hex[:6]}"
    token = make_token(uri, name, Role.ADMIN)
    audit, alerts = HttpAudit(url, token=token), HttpAlerts(url, token=token)
    yield Services(audit, alerts, f"token:{name}")
    audit.close()
    alerts.close()


def _raise_alerts(services: Services, subject: str) -> None:
    """A rule fires on ``subject`` and resolves again: two alerts recorded."""
    rule = AlertRule(name="errors", metric="ops.error_rate", op=">", threshold=0.05)
    manager = AlertManager([rule], [ServiceSink(services.alerts)])
    manager.observe(subject, "ops.error_rate", 0.2, at_ms=1_000)
    manager.observe(subject, "ops.error_rate", 0.01, at_ms=2_000)


def test_raised_alerts_are_recorded_and_listed_newest_first(services: Services) -> None:
    subject = f"dep-{uuid.uuid4().hex[:8]}"
    _raise_alerts(services, subject)
    found = services.alerts.list_alerts(subject=subject)
    assert [r.alert.state for r in found] == ["resolved", "firing"]
    assert {r.actor for r in found} == {services.actor}
    assert found[1].alert.value == 0.2 and found[1].alert.message.startswith("[warning] errors")
    assert found[0].id > found[1].id
    firing = services.alerts.list_alerts(subject=subject, state="firing")
    assert [r.id for r in firing] == [found[1].id]
    assert len(services.alerts.list_alerts(limit=1)) == 1


def test_alert_queries_refuse_an_unknown_state_and_a_bad_limit(services: Services) -> None:
    with pytest.raises(InvalidInput, match="state") as bad_state:
        services.alerts.list_alerts(state="burning")
    assert bad_state.value.field == "state"
    with pytest.raises(InvalidInput, match="limit") as bad_limit:
        services.alerts.list_alerts(limit=0)
    assert bad_limit.value.field == "limit"


def test_alerts_are_audit_entries_and_the_chain_verifies(services: Services) -> None:
    subject = f"dep-{uuid.uuid4().hex[:8]}"
    _raise_alerts(services, subject)
    page = services.audit.list_entries(subject_prefix=f"alert:{subject}")
    assert [e.kind for e in page.entries] == ["alert.firing", "alert.resolved"]
    assert page.next_before_id is None
    assert page.entries[0].actor == services.actor and page.entries[0].is_authenticated
    assert page.entries[0].payload["subject"] == subject
    result = services.audit.verify()
    assert result.ok, result.message
    assert services.audit.verify(expected_head=result.head_hash).ok


def test_a_head_no_longer_on_the_chain_is_reported_as_truncated(services: Services) -> None:
    result = services.audit.verify(expected_head="f" * 64)
    assert not result.ok and result.problem == "truncated"
    assert "no longer on the chain" in result.message


def test_pages_going_back_and_the_export_return_every_entry_once(services: Services) -> None:
    prefix = f"alert:paged-{uuid.uuid4().hex[:8]}"
    for n in range(5):
        _raise_alerts(services, f"{prefix[6:]}-{n}")
    exported = list(services.audit.export(subject_prefix=prefix))
    assert len(exported) == 10
    assert [e.id for e in exported] == sorted(e.id for e in exported)
    seen, before = [], None
    while True:
        page = services.audit.list_entries(subject_prefix=prefix, limit=3, before_id=before)
        seen = page.entries + seen
        before = page.next_before_id
        if before is None:
            break
    assert seen == exported
    newest = list(services.audit.export(subject_prefix=prefix, limit=4))
    assert newest == exported[-4:]
    assert list(services.audit.export(subject_prefix="nothing-like-this")) == []


def test_audit_queries_refuse_oversized_pages(services: Services) -> None:
    with pytest.raises(InvalidInput, match="limit") as error:
        services.audit.list_entries(limit=MAX_AUDIT_PAGE + 1)
    assert error.value.field == "limit"
    with pytest.raises(InvalidInput, match="limit"):
        list(services.audit.export(limit=0))


@pytest.mark.parametrize("kind", SERVERS)
def test_the_audit_log_needs_admin_and_alerts_need_editor_to_record(
    kind: str, backends: Backends
) -> None:
    url, uri = backends.server(kind).url, backends.store_uri(kind)
    names = {r: f"{r.label}-{uuid.uuid4().hex[:6]}" for r in Role}
    tokens = {r: make_token(uri, names[r], r) for r in Role}
    deployer_audit = HttpAudit(url, token=tokens[Role.DEPLOYER])
    with pytest.raises(Forbidden, match="GET /api/v1/audit/verify needs admin or higher"):
        deployer_audit.verify()
    with pytest.raises(Forbidden, match="needs admin or higher"):
        list(deployer_audit.export())
    with pytest.raises(Forbidden, match="needs admin or higher"):
        deployer_audit.list_entries()
    deployer_audit.close()
    viewer = HttpAlerts(url, token=tokens[Role.VIEWER])
    editor = HttpAlerts(url, token=tokens[Role.EDITOR])
    subject = f"dep-{uuid.uuid4().hex[:8]}"
    rule = AlertRule(name="drift", metric="drift.share_drifted", op=">=", threshold=0.3)
    (alert,) = AlertManager([rule]).observe(subject, "drift.share_drifted", 0.5)
    with pytest.raises(Forbidden, match="POST /api/v1/alerts needs editor or higher"):
        viewer.record_alert(alert)
    record = editor.record_alert(alert)
    assert record.actor == f"token:{names[Role.EDITOR]}" and record.alert == alert
    assert [r.id for r in viewer.list_alerts(subject=subject)] == [record.id]
    viewer.close()
    editor.close()
