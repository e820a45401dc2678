"""One contract for the deployment seam, run against every implementation.

Implementations: local on SQLite, local on PostgreSQL, and HTTP -> a real ``modelpilot server``
process on SQLite and on PostgreSQL (one server per module, a deployer token). Model versions
are registered through the same implementation's registry seam, exactly as the SDK does.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from modelpilot.artifacts import ArtifactStore, LocalArtifactStore
from modelpilot.client import HttpArtifactStore, HttpDeployments, HttpRegistry
from modelpilot.errors import Conflict, Forbidden, InvalidInput, NotFound
from modelpilot.models import build_package
from modelpilot.registry.local import LocalRegistry
from modelpilot.registry.protocol import RegistryService
from modelpilot.release import RolloutPolicy
from modelpilot.release.protocol import DeploymentService, LocalDeployments
from modelpilot.server.auth import Role
from modelpilot.store import Store
from modelpilot.store.events import default_actor
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
    """The seams one implementation provides, and the actor its changes are recorded as."""

    deployments: DeploymentService
    registry: RegistryService
    blobs: ArtifactStore
    actor: str


@pytest.fixture(scope="module")
def backends(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backends]:
    with ExitStack() as stack:
        yield Backends(stack, tmp_path_factory.mktemp("deployment-contract"))


@pytest.fixture(params=IMPLEMENTATIONS)
def services(request: pytest.FixtureRequest, backends: Backends) -> Iterator[Services]:
    mode, kind = str(request.param).split("-")
    if mode == "local":
        store = Store.open(backends.store_uri(kind))
        blobs = LocalArtifactStore(backends.home / f"blobs-{kind}")
        yield Services(LocalDeployments(store), LocalRegistry(store), blobs, default_actor())
        store.close()
        return
    url, uri = backends.server(kind).url, backends.store_uri(kind)
    name = f"deployer-{uuid.uuid4().hex[:6]}"
    token = make_token(uri, name, Role.DEPLOYER)
    clients = (
        HttpDeployments(url, token=token),
        HttpRegistry(url, token=token),
        HttpArtifactStore(url, token=token),
    )
    yield Services(*clients, actor=f"token:{name}")
    for client in clients:
        client.close()


def _model_with_versions(services: Services, count: int) -> str:
    """A new registered model with ``count`` versions of one package (same signature)."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(40, 2)), columns=["a", "b"])
    model = LogisticRegression().fit(frame, (frame["a"] > 0).astype(int))
    package = build_package(model, services.blobs, input_example=frame.head())
    name = f"model-{uuid.uuid4().hex[:8]}"
    for _ in range(count):
        services.registry.register_version(
            name,
            package_digest=package.digest,
            flavor=package.flavor,
            signature=package.signature.to_dict(),
        )
    return name


def _dep() -> str:
    return f"dep-{uuid.uuid4().hex[:8]}"


def _traffic(services: Services, name: str) -> dict[str, tuple[str, str, int]]:
    config = services.deployments.get_deployment(name).config
    return {v.name: (v.ref, v.role, v.weight) for v in config.variants}


def test_create_canary_weight_promote_and_history(services: Services) -> None:
    model, name = _model_with_versions(services, 2), _dep()
    created = services.deployments.create_deployment(name, f"{model}/1", reason="first")
    assert (created.name, created.revision) == (name, 1)
    canary = services.deployments.set_canary(name, f"{model}/2", 10, expected_revision=1)
    assert canary.revision == 2
    assert _traffic(services, name) == {
        "stable": (f"{model}/1", "stable", 90),
        "canary": (f"{model}/2", "canary", 10),
    }
    services.deployments.set_weight(name, 50, reason="looks good", expected_revision=2)
    promoted = services.deployments.promote(name, reason="ship it")
    assert _traffic(services, name) == {"stable": (f"{model}/2", "stable", 100)}
    assert services.deployments.get_deployment(name) == promoted
    revisions = services.deployments.history(name)
    assert [(r.revision, r.action, r.reason) for r in revisions] == [
        (4, "promote", "ship it"),
        (3, "set_weight", "looks good"),
        (2, "canary", f"canary {model}/2 at 10%"),
        (1, "create", "first"),
    ]
    assert {r.actor for r in revisions} == {services.actor}
    assert [r.is_stable for r in revisions] == [True, False, False, True]
    assert name in {d.name for d in services.deployments.list_deployments()}


def test_canary_under_a_policy_keeps_the_policy(services: Services) -> None:
    model, name = _model_with_versions(services, 2), _dep()
    services.deployments.create_deployment(name, f"{model}/1")
    policy = RolloutPolicy(steps=(10, 50, 100), min_requests_per_step=5)
    changed = services.deployments.set_canary(name, f"{model}/2", 10, policy=policy)
    assert (changed.config.rollout, changed.config.rollout_step) == (policy, 0)


def test_the_rollout_controllers_advance_promote_and_automatic_rollback(
    services: Services,
) -> None:
    """What ``tick`` calls: locally recorded as ``controller``, over HTTP as the token."""
    controller = "controller" if isinstance(services.deployments, LocalDeployments) else None
    actor = controller or services.actor
    model, name = _model_with_versions(services, 2), _dep()
    services.deployments.create_deployment(name, f"{model}/1")
    with pytest.raises(InvalidInput, match=f"Deployment '{name}' has no canary or challenger"):
        services.deployments.advance_step(name, reason="step passed")
    policy = RolloutPolicy(steps=(10, 50, 100), min_requests_per_step=5)
    services.deployments.set_canary(name, f"{model}/2", 10, policy=policy)
    with pytest.raises(Conflict, match="based on revision 1"):
        services.deployments.advance_step(name, reason="stale", expected_revision=1)
    moved = services.deployments.advance_step(name, reason="step 1 passed", expected_revision=2)
    assert (moved.revision, moved.config.rollout_step) == (3, 1)
    assert _traffic(services, name)["canary"] == (f"{model}/2", "canary", 50)
    services.deployments.promote(name, reason="all steps passed", automatic=True)
    services.deployments.set_canary(name, f"{model}/1", 10, policy=policy)
    back = services.deployments.rollback(name, reason="guard failed: errors", automatic=True)
    assert _traffic(services, name) == {"stable": (f"{model}/2", "stable", 100)}
    revisions = services.deployments.history(name)
    assert [(r.revision, r.action, r.actor) for r in revisions[:4]] == [
        (back.revision, "auto_rollback", actor),
        (5, "canary", services.actor),
        (4, "promote", actor),
        (3, "advance", actor),
    ]
    assert revisions[0].reason == "guard failed: errors (back to revision 4)"
    assert revisions[0].is_stable and revisions[2].is_stable


def test_shadow_ab_and_rollback(services: Services) -> None:
    model, name = _model_with_versions(services, 3), _dep()
    services.deployments.create_deployment(name, f"{model}/1")
    services.deployments.set_shadow(name, f"{model}/3")
    ab = services.deployments.set_ab(name, f"{model}/2", 30, "user_id")
    assert ab.config.routing_key == "user_id"
    assert _traffic(services, name) == {
        "stable": (f"{model}/1", "stable", 70),
        "challenger": (f"{model}/2", "challenger", 30),
        "shadow": (f"{model}/3", "shadow", 0),
    }
    back = services.deployments.rollback(name, reason="bad latency")
    assert _traffic(services, name) == {"stable": (f"{model}/1", "stable", 100)}
    newest = services.deployments.history(name)[0]
    assert (newest.revision, newest.action) == (back.revision, "rollback")
    assert newest.reason == "bad latency (back to revision 1)"


def test_a_stale_revision_is_a_conflict_and_changes_nothing(services: Services) -> None:
    model, name = _model_with_versions(services, 2), _dep()
    services.deployments.create_deployment(name, f"{model}/1")
    services.deployments.set_canary(name, f"{model}/2", 10, expected_revision=1)
    stale = f"Deployment '{name}' changed .* based on revision 1, the deployment is now at 2"
    with pytest.raises(Conflict, match=stale.replace("at 2", "at revision 2")):
        services.deployments.set_weight(name, 50, expected_revision=1)
    with pytest.raises(Conflict, match="based on revision 1"):
        services.deployments.promote(name, expected_revision=1)
    with pytest.raises(Conflict, match="based on revision 1"):
        services.deployments.rollback(name, expected_revision=1)
    current = services.deployments.get_deployment(name)
    assert current.revision == 2
    assert len(services.deployments.history(name)) == 2


def test_errors_name_what_is_wrong_and_how_to_fix_it(services: Services) -> None:
    model, name = _model_with_versions(services, 1), _dep()
    with pytest.raises(NotFound, match="No deployment named 'nope-dep'. Deployments: "):
        services.deployments.get_deployment("nope-dep")
    with pytest.raises(NotFound, match="No deployment named 'nope-dep'"):
        services.deployments.history("nope-dep")
    with pytest.raises(InvalidInput, match="Invalid deployment name 'Bad Name'"):
        services.deployments.create_deployment("Bad Name", f"{model}/1")
    services.deployments.create_deployment(name, f"{model}/1")
    with pytest.raises(Conflict, match=f"Deployment '{name}' already exists"):
        services.deployments.create_deployment(name, f"{model}/1")
    with pytest.raises(InvalidInput, match="canary weight must be a whole number .* got 150"):
        services.deployments.set_canary(name, f"{model}/1", 150)
    with pytest.raises(InvalidInput, match="has no canary or challenger to promote"):
        services.deployments.promote(name)
    with pytest.raises(InvalidInput, match="already runs its last stable configuration"):
        services.deployments.rollback(name)
    assert services.deployments.get_deployment(name).revision == 1


@pytest.mark.parametrize("kind", SERVERS)
def test_a_viewer_reads_but_is_refused_every_change(kind: str, backends: Backends) -> None:
    url, uri = backends.server(kind).url, backends.store_uri(kind)
    deployer = make_token(uri, f"d-{uuid.uuid4().hex[:6]}", Role.DEPLOYER)
    viewer = make_token(uri, f"v-{uuid.uuid4().hex[:6]}", Role.VIEWER)
    editor = make_token(uri, f"e-{uuid.uuid4().hex[:6]}", Role.EDITOR)
    blobs, registry = HttpArtifactStore(url, token=deployer), HttpRegistry(url, token=deployer)
    own = Services(HttpDeployments(url, token=deployer), registry, blobs, "")
    as_viewer, as_editor = HttpDeployments(url, token=viewer), HttpDeployments(url, token=editor)
    try:
        model, name = _model_with_versions(own, 2), _dep()
        own.deployments.create_deployment(name, f"{model}/1")
        assert as_viewer.get_deployment(name).revision == 1
        assert [r.action for r in as_viewer.history(name)] == ["create"]
        needs = "has role viewer; .* needs deployer or higher"
        with pytest.raises(Forbidden, match=needs):
            as_viewer.create_deployment(_dep(), f"{model}/1")
        with pytest.raises(Forbidden, match=needs):
            as_viewer.set_canary(name, f"{model}/2", 10)
        with pytest.raises(Forbidden, match=needs):
            as_viewer.promote(name)
        with pytest.raises(Forbidden, match=needs):
            as_viewer.rollback(name, automatic=True)
        with pytest.raises(Forbidden, match=needs):
            as_viewer.advance_step(name, reason="controller without the role")
        with pytest.raises(Forbidden, match="has role editor; .* needs deployer or higher"):
            as_editor.set_weight(name, 20)
        assert own.deployments.get_deployment(name).revision == 1  # nothing changed
    finally:
        for client in (blobs, registry, own.deployments, as_viewer, as_editor):
            client.close()
