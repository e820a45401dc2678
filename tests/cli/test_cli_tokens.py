"""``modelpilot tokens``: create prints the token once, list never shows secrets, revoke."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelpilot.cli.main import app
from modelpilot.config import Settings
from modelpilot.server.auth import Authenticator
from modelpilot.store import Store


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MODELPILOT_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MODELPILOT_SERVER_URI", raising=False)
    return tmp_path / "home"


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout


def test_created_token_is_printed_once_and_only_its_hash_is_stored(home: Path) -> None:
    code, out = _run("tokens", "create", "ci-bot", "--role", "editor", "--expires-in", "30d")
    assert code == 0, out
    token = out.strip().splitlines()[-1]
    assert token.startswith("mp_")
    store = Store.open(Settings(home=home).resolved_store_uri())
    try:
        identity = Authenticator(store).authenticate(f"Bearer {token}")
        with store.read() as conn:
            dump = json.dumps([list(r) for r in conn.exec_driver_sql("SELECT * FROM api_tokens")])
    finally:
        store.close()
    assert (identity.name, identity.role.label, identity.actor) == (
        "ci-bot",
        "editor",
        "token:ci-bot",
    )
    assert token.split("_", 2)[2] not in dump  # the secret is nowhere in the table
    code, listed = _run("tokens", "list", "--json")
    assert code == 0
    (entry,) = json.loads(listed)
    assert (entry["name"], entry["role"], entry["revoked_ms"]) == ("ci-bot", "editor", None)
    assert "token" not in entry and "token_hash" not in entry


def test_revoked_token_lists_as_revoked_and_a_second_revoke_is_not_found(home: Path) -> None:
    _run("tokens", "create", "old", "--role", "viewer")
    code, out = _run("tokens", "revoke", "old")
    assert code == 0 and "Revoked token 'old'" in out
    _, listed = _run("tokens", "list")
    assert "revoked" in listed
    result = CliRunner().invoke(app, ["tokens", "revoke", "old"])
    assert result.exception is not None
    assert "No active token named 'old'. Active tokens: none" in str(result.exception)


def test_unknown_role_exits_2_naming_the_roles(home: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "modelpilot.cli.main", "tokens", "create", "x", "--role", "root"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "Unknown role 'root'; expected one of viewer, editor, deployer, admin" in proc.stderr
