"""What `--ray-address` failures say: the token-authentication hint appears only where it can
be the cause (an explicit address, no RAY_AUTH_MODE chosen)."""

from __future__ import annotations

import pytest

from modelpilot.ray_cluster import _host_port, _token_hint


def test_an_explicit_address_without_an_auth_mode_gets_the_token_hint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    assert "set RAY_AUTH_MODE=token" in _token_hint("head:6379")


@pytest.mark.parametrize(("address", "mode"), [(None, None), ("head:6379", "token")])
def test_no_hint_for_a_local_cluster_or_a_chosen_auth_mode(
    monkeypatch: pytest.MonkeyPatch, address: str | None, mode: str | None
) -> None:
    if mode is None:
        monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    else:
        monkeypatch.setenv("RAY_AUTH_MODE", mode)
    assert _token_hint(address) == ""


def test_host_and_port_are_read_from_each_address_form() -> None:
    assert _host_port("ray://head:10001") == ("head", 10001)
    assert _host_port("[::1]:6379") == ("::1", 6379)
    assert _host_port("auto") is None
