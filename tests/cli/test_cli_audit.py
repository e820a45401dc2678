"""``modelpilot audit``: verify exits 0 on an intact chain and 10 on a tampered one; log lists
and exports JSON lines. Run through the installed executable, as an operator's cron would."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelpilot.cli.main import app, main
from modelpilot.config import Settings
from modelpilot.errors import AuditChainBroken
from modelpilot.store.events import record_event
from modelpilot.workspace import Workspace


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home whose audit log holds three alias moves on two models; the CLI points at it."""
    home = tmp_path / "home"
    ws = Workspace(Settings(home=home))
    try:
        for n, subject in enumerate(["model:churn", "model:churn", "model:fraud"]):
            with ws.store.write() as conn:
                payload = {"alias": "champion", "before": n, "after": n + 1}
                record_event(conn, "alias.set", subject, "local:ana", payload)
    finally:
        ws.close()
    monkeypatch.setenv("MODELPILOT_HOME", str(home))
    return home


def _modelpilot(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    executable = shutil.which("modelpilot")
    assert executable is not None, "the modelpilot console script must be installed"
    env = {**os.environ, "MODELPILOT_HOME": str(home), "COLUMNS": "200"}
    return subprocess.run([executable, *args], env=env, capture_output=True, text=True)


def _sql(home: Path, statement: str) -> None:
    """Edit the database directly, bypassing modelpilot entirely."""
    uri = Settings(home=home).resolved_store_uri()
    with sqlite3.connect(uri.split(":///", 1)[1]) as db:
        db.execute(statement)


def test_verify_exits_0_on_an_intact_chain(home: Path) -> None:
    process = _modelpilot(home, "audit", "verify")
    assert process.returncode == 0, process.stderr
    assert "Audit chain intact: 3 entries checked, 0 pre-chain" in process.stdout


def test_verify_exits_10_naming_an_entry_edited_in_the_database(home: Path) -> None:
    _sql(home, """UPDATE events SET payload = '{"alias": "champion", "after": 9}' WHERE id = 2""")
    process = _modelpilot(home, "audit", "verify")
    assert process.returncode == AuditChainBroken.exit_code == 10
    lines = process.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: Audit chain broken at entry 2: edited")
    assert "Traceback" not in process.stderr


def test_verify_exits_10_naming_the_entry_after_a_deleted_one(home: Path) -> None:
    _sql(home, "DELETE FROM events WHERE id = 2")
    process = _modelpilot(home, "audit", "verify")
    assert process.returncode == 10
    assert "Audit chain broken at entry 3: deleted" in process.stderr


def test_verify_with_a_recorded_head_detects_the_newest_entry_deleted(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    intact = CliRunner().invoke(app, ["audit", "verify"])
    head = intact.stdout.split("Head: ", 1)[1].split()[0]
    _sql(home, "DELETE FROM events WHERE id = 3")
    assert CliRunner().invoke(app, ["audit", "verify"]).exit_code == 0
    with pytest.raises(SystemExit) as exit_info:
        main(["audit", "verify", "--head", head])
    assert exit_info.value.code == 10
    assert "Audit chain broken at entry 2: truncated" in capsys.readouterr().err


def test_log_exports_json_lines_filtered_by_subject(home: Path) -> None:
    process = _modelpilot(home, "audit", "log", "--subject", "model:churn", "--json")
    assert process.returncode == 0, process.stderr
    entries = [json.loads(line) for line in process.stdout.splitlines()]
    assert [e["id"] for e in entries] == [1, 2]
    assert entries[1]["payload"] == {"alias": "champion", "before": 1, "after": 2}
    assert entries[1]["prev_hash"] == entries[0]["entry_hash"]
    assert entries[0]["actor"] == "local:ana" and entries[0]["authenticated"] is False


def test_log_writes_a_jsonl_file_and_lists_a_table(home: Path, tmp_path: Path) -> None:
    target = tmp_path / "audit.jsonl"
    exported = CliRunner().invoke(app, ["audit", "log", "-o", str(target), "--limit", "2"])
    assert exported.exit_code == 0 and "Wrote 2 audit entries" in exported.stdout
    assert [json.loads(line)["id"] for line in target.read_text().splitlines()] == [2, 3]
    table = _modelpilot(home, "audit", "log", "--since", "1d")
    assert table.returncode == 0 and "local:ana (unauthenticated)" in table.stdout
    assert "model:fraud" in table.stdout


def test_log_rejects_a_bad_since_and_limit(home: Path) -> None:
    process = _modelpilot(home, "audit", "log", "--since", "yesterday")
    assert process.returncode == 2 and "since='yesterday' is not a time" in process.stderr
    process = _modelpilot(home, "audit", "log", "--limit", "0")
    assert process.returncode == 2 and "--limit must be a positive integer; got 0" in process.stderr
