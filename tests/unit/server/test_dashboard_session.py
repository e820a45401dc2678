"""Dashboard session cookies and CSRF tokens: signed, tamper-evident, never the token."""

from __future__ import annotations

import stat
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from modelpilot.server.ui.session import SECRET_FILE, Session, SessionSigner, load_secret

SIGNER = SessionSigner(b"k" * 32)
SESSION = Session("0123456789abcdef", "nonce-1", 2**42)


def test_a_cookie_round_trips_and_names_only_the_token_id() -> None:
    cookie = SIGNER.encode(SESSION)
    assert SIGNER.decode(cookie) == SESSION
    assert SessionSigner(b"other" * 8).decode(cookie) is None  # another server's secret


@given(st.integers(min_value=0), st.characters(codec="ascii"))
def test_any_changed_character_voids_the_cookie(position: int, replacement: str) -> None:
    cookie = SIGNER.encode(SESSION)
    i = position % len(cookie)
    forged = cookie[:i] + replacement + cookie[i + 1 :]
    if forged != cookie:
        assert SIGNER.decode(forged) is None


def test_an_expired_or_garbled_cookie_is_no_session() -> None:
    assert SIGNER.decode(SIGNER.encode(Session("a", "n", 1))) is None
    for garbage in (None, "", "no-dot", ".", "x.y"):
        assert SIGNER.decode(garbage) is None


def test_csrf_tokens_belong_to_one_session() -> None:
    other = Session(SESSION.token_id, "nonce-2", SESSION.expires_ms)
    assert SIGNER.csrf_matches(SESSION, SIGNER.csrf(SESSION))
    assert not SIGNER.csrf_matches(other, SIGNER.csrf(SESSION))
    assert not SIGNER.csrf_matches(SESSION, None) and not SIGNER.csrf_matches(SESSION, "")


def test_the_secret_is_created_once_and_readable_by_its_owner_only(tmp_path: Path) -> None:
    first = load_secret(tmp_path)
    assert load_secret(tmp_path) == first and len(first) == 32
    assert stat.S_IMODE((tmp_path / SECRET_FILE).stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == [SECRET_FILE]  # no temp file left
    assert load_secret(None) != load_secret(None)  # no home: one per process
