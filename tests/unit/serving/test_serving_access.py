"""Who may call a model server: the route table's roles, the token cache, and the refusal to
start model control without a token store."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelpilot.errors import InvalidInput, Unauthorized
from modelpilot.identity import CachedAuthenticator, Identity, Role
from modelpilot.predictions.log_policy import PolicySet
from modelpilot.serving.access import required_role
from modelpilot.serving.server import token_guard
from modelpilot.serving.settings import ServingSettings
from modelpilot.serving.sources import ControlPlane


class Tokens:
    """A real token check over a dict: token -> identity; revoking removes it."""

    def __init__(self) -> None:
        self.known = {"Bearer mp_a": Identity("a", Role.DEPLOYER, "token:a")}
        self.calls = 0

    def authenticate(self, header: str | None) -> Identity:
        self.calls += 1
        if header not in self.known:
            raise Unauthorized("unknown token")
        return self.known[header]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_revoked_token_is_refused_once_its_cache_entry_expires() -> None:
    tokens, clock = Tokens(), Clock()
    cached = CachedAuthenticator(tokens, ttl_s=30, clock=clock)
    assert cached.authenticate("Bearer mp_a").name == "a"
    del tokens.known["Bearer mp_a"]  # revoked
    clock.now += 29
    assert cached.authenticate("Bearer mp_a").name == "a"  # within the TTL
    clock.now += 2
    with pytest.raises(Unauthorized, match="unknown token"):
        cached.authenticate("Bearer mp_a")
    assert tokens.calls == 2


def test_refusals_are_not_cached() -> None:
    tokens = Tokens()
    cached = CachedAuthenticator(tokens, ttl_s=30)
    with pytest.raises(Unauthorized):
        cached.authenticate("Bearer mp_b")
    tokens.known["Bearer mp_b"] = Identity("b", Role.VIEWER, "token:b")  # created just now
    assert cached.authenticate("Bearer mp_b").role is Role.VIEWER


@pytest.mark.parametrize(
    ("path", "require_token", "role"),
    [
        ("/v2/repository/index", False, Role.DEPLOYER),
        ("/v2/repository/models/churn/unload", True, Role.DEPLOYER),
        ("/predict/churn", False, None),
        ("/predict/churn", True, Role.VIEWER),
        ("/v2/models/churn/infer", True, Role.VIEWER),
        ("/v2", True, Role.VIEWER),
        ("/metrics", False, None),
        ("/v2/health/live", True, None),
    ],
)
def test_each_route_needs_its_role(path: str, require_token: bool, role: Role | None) -> None:
    assert required_role(path, require_token=require_token) == role


class NoPolicies:
    def set_policy(self, *args: object, **kwargs: object) -> None:
        raise AssertionError("not called")

    def list_policies(self) -> list[object]:
        return []

    def policy_set(self, models: object, deployments: object) -> PolicySet:
        return PolicySet()


def _without_tokens(tmp_path: Path) -> ControlPlane:
    return ControlPlane(
        models=None,  # type: ignore[arg-type]  # never reached: start-up stops first
        deployments=None,  # type: ignore[arg-type]
        policies=NoPolicies(),  # type: ignore[arg-type]
        hash_key=lambda: b"",
        log_folder=tmp_path,
        tokens=None,
        where="a test",
    )


def test_model_control_without_a_token_store_refuses_to_start(tmp_path: Path) -> None:
    settings = ServingSettings(model_control=True, require_token=True)
    with pytest.raises(
        InvalidInput,
        match="--model-control and --require-token need API tokens, but no token store is "
        "reachable from a test",
    ):
        token_guard(_without_tokens(tmp_path), settings)


def test_without_a_token_store_the_admin_routes_stay_closed(tmp_path: Path) -> None:
    guard = token_guard(_without_tokens(tmp_path), ServingSettings())
    with pytest.raises(Unauthorized, match="cannot verify tokens"):
        guard.authenticate("Bearer mp_a")
