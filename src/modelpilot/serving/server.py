"""Running a model server: load references, follow deployments, serve with uvicorn.

``modelpilot serve churn@champion`` and ``modelpilot serve churn-prod`` (a deployment) both
land here, with a :class:`~modelpilot.serving.sources.ControlPlane` built by the CLI: the
local home's services, or a remote ``modelpilot server``'s over HTTP. Deployments are followed
by polling their revision (one cheap read every ``deployment_poll_s``); a new revision's models
are loaded before the routing snapshot is swapped, so a change reaches the server within a
second and no request fails during it. Logging policies
(:mod:`modelpilot.predictions.log_policy`) of the served models and deployments are read at
start and polled at the same period; a change applies from the next logged batch.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from modelpilot.errors import InvalidInput, NotFound, Unauthorized
from modelpilot.identity.cache import CachedAuthenticator
from modelpilot.identity.entities import Identity
from modelpilot.predictions import PredictionLog
from modelpilot.predictions.log_policy import LogPrivacy, PolicySet
from modelpilot.release.entities import Deployment
from modelpilot.serving.access import TokenGuard
from modelpilot.serving.app import DataPlane
from modelpilot.serving.config import read_server_file, with_model_batching
from modelpilot.serving.reload import ModelRepository, followed_versions
from modelpilot.serving.replicas import bound_socket
from modelpilot.serving.routing import Route, RoutingSnapshot
from modelpilot.serving.runtime import ModelRuntime
from modelpilot.serving.settings import ServingSettings
from modelpilot.serving.sources import ControlPlane, DeploymentFeed, ModelSource

log = logging.getLogger(__name__)


@dataclass
class ServerPlan:
    """What to serve: model references and deployment names."""

    models: list[str] = field(default_factory=list)
    deployments: list[str] = field(default_factory=list)
    batching: dict[str, Mapping[str, Any]] = field(default_factory=dict)  # by model name


def plan_from_targets(feed: DeploymentFeed, targets: list[str]) -> ServerPlan:
    """Split CLI targets into model references and deployments (a YAML file may list both)."""
    plan = ServerPlan()
    for target in targets:
        if target.endswith((".yaml", ".yml")):
            server_file = read_server_file(Path(target))
            plan.models += server_file.models
            plan.deployments += server_file.deployments
            plan.batching.update(server_file.batching)
            continue
        if "@" in target or "/" in target:
            plan.models.append(target)
            continue
        try:
            feed.get_deployment(target)
            plan.deployments.append(target)
        except NotFound:
            plan.models.append(target)
    if not plan.models and not plan.deployments:
        raise InvalidInput(
            "Nothing to serve: give model references (churn@champion) or deployment names."
        )
    return plan


def load_runtime(models: ModelSource, ref: str) -> ModelRuntime:
    """Load one registered version for serving."""
    name, version = models.resolve(ref)
    return ModelRuntime(name, version, models.load(f"{name}/{version}"))


def snapshot_of(deployment: Deployment) -> RoutingSnapshot:
    """The routing snapshot of a deployment revision."""
    routes = tuple(
        Route(v.name, v.role, v.model, v.version, v.weight) for v in deployment.config.variants
    )
    return RoutingSnapshot(
        deployment.name, deployment.revision, routes, deployment.config.routing_key
    )


class DeploymentFollower:
    """Keeps the data plane's routing in step with the feed's deployment revisions."""

    def __init__(self, source: ControlPlane, plane: DataPlane, names: list[str]) -> None:
        self.source = source
        self.plane = plane
        self.names = names

    def prepare(self) -> list[tuple[RoutingSnapshot, list[ModelRuntime]]]:
        """Read new revisions and load the models they need (slow; runs off the event loop)."""
        updates = []
        for name in self.names:
            deployment = self.source.deployments.get_deployment(name)
            current = self.plane.deployments.get(name)
            if current is not None and current.revision == deployment.revision:
                continue
            snapshot = snapshot_of(deployment)
            needed = [
                r for r in snapshot.routes if r.version not in self.plane.models.get(r.model, {})
            ]
            runtimes = [load_runtime(self.source.models, f"{r.model}/{r.version}") for r in needed]
            updates.append((snapshot, runtimes))
        return updates

    def apply(self, updates: list[tuple[RoutingSnapshot, list[ModelRuntime]]]) -> None:
        """Add the loaded models, then swap the snapshots (on the event loop, atomically)."""
        for snapshot, runtimes in updates:
            for runtime in runtimes:
                if runtime.version not in self.plane.models.get(runtime.name, {}):
                    self.plane.add_model(runtime, default=False)
            self.plane.set_deployment(snapshot)

    def sync(self) -> None:
        """Prepare and apply in one go (start-up, before the event loop runs)."""
        self.apply(self.prepare())

    async def run(self, interval_s: float) -> None:
        """Poll until cancelled at shutdown."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(interval_s)  # a polling period, not synchronisation
            try:
                self.apply(await loop.run_in_executor(None, self.prepare))
            except Exception as exc:  # keep serving the last good snapshot
                log.error("could not refresh deployments: %s", exc)


class PolicyFollower:
    """Keeps the prediction log's column policies in step with the control plane's."""

    def __init__(self, source: ControlPlane, plane: DataPlane, deployments: list[str]) -> None:
        self.source = source
        self.plane = plane
        self.deployments = deployments
        self.current = PolicySet()
        self._key: bytes | None = None

    def sync(self) -> None:
        """Read the policies of what is served now; swap them in if they changed."""
        predlog = self.plane.predlog
        if predlog is None:
            return
        policies = self.source.policies.policy_set(list(self.plane.models), self.deployments)
        if policies == self.current:
            return
        if policies and self._key is None:  # the key file is made on first use only
            self._key = self.source.hash_key()
        predlog.set_privacy(LogPrivacy(self._key or b"", policies) if policies else None)
        self.current = policies
        log.info("prediction log policies now cover %s", sorted(policies.models) or "no model")

    async def run(self, interval_s: float) -> None:
        """Poll until cancelled at shutdown."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(interval_s)  # a polling period, not synchronisation
            try:
                await loop.run_in_executor(None, self.sync)
            except Exception as exc:  # keep logging with the last good policies
                log.error("could not refresh logging policies: %s", exc)


def build_plane(
    source: ControlPlane, plan: ServerPlan, settings: ServingSettings
) -> tuple[DataPlane, DeploymentFollower, ModelRepository]:
    """Load everything the plan names into a new data plane."""
    predlog = (
        PredictionLog(
            source.log_folder,
            durability=settings.durability,
            flush_interval_s=settings.flush_interval_s,
            bucket=source.log_bucket,
        )
        if settings.log_predictions
        else None
    )
    plane = DataPlane(settings, predlog)
    runtimes = [load_runtime(source.models, ref) for ref in plan.models]
    for runtime in runtimes:
        plane.add_model(runtime, default=runtime.name not in plane.defaults)  # the first ref wins
    follower = DeploymentFollower(source, plane, plan.deployments)
    follower.sync()
    repository = ModelRepository(
        plane,
        resolve=source.models.resolve,
        load=lambda ref: load_runtime(source.models, ref),
        followed=followed_versions(plan.models, runtimes),
        pinned=frozenset(
            (rt.name, rt.version)
            for ref, rt in zip(plan.models, runtimes, strict=True)
            if "@" not in ref
        ),
        model_control=settings.model_control,
    )
    return plane, follower, repository


def token_guard(source: ControlPlane, settings: ServingSettings) -> CachedAuthenticator:
    """The cached token check of the guarded routes; refuses to start without a token store
    when model control or ``--require-token`` would need one."""
    if source.tokens is None:
        wanted = [
            flag
            for flag, on in (
                ("--model-control", settings.model_control),
                ("--require-token", settings.require_token),
            )
            if on
        ]
        if wanted:
            raise InvalidInput(
                f"{' and '.join(wanted)} need API tokens, but no token store is reachable from "
                f"{source.where}. Serve from a home with a metadata store, or follow a control "
                "plane with --server URI --token T.",
                field="tokens",
            )
        return CachedAuthenticator(_NoTokens(source.where), ttl_s=settings.token_cache_s)
    return CachedAuthenticator(source.tokens, ttl_s=settings.token_cache_s)


class _NoTokens:
    """Refuses every token: admin routes stay closed when nothing can verify one."""

    def __init__(self, where: str) -> None:
        self.where = where

    def authenticate(self, header: str | None) -> Identity:
        raise Unauthorized(
            f"This model server cannot verify tokens (no token store at {self.where}); its "
            "admin routes are closed."
        )


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a read deadline per request and a cap on its head.

    uvicorn (0.54, httptools) has no timeout while a request's head or body arrives: its
    keep-alive timer runs only between requests, and any byte cancels it. A client trickling
    a byte at a time held a connection, and a task waiting for the body, forever. Here the
    head and body must arrive within ``read_timeout_s`` of the connection opening (or of the
    previous response); otherwise the connection is closed, with a 408 if no request is being
    answered. A head past ``max_head_bytes`` is refused with uvicorn's 400.
    """

    read_timeout_s: ClassVar[float] = 30.0
    max_head_bytes: ClassVar[int] = 64 * 1024
    # The deadline is a time, checked by one timer per connection that re-arms itself for a
    # moved deadline, rather than a timer made and cancelled per request (call_later + cancel
    # cost ~2.4 us a request, measured with uvloop; a busy connection now makes one timer
    # per read_timeout_s).
    _deadline: float | None = None  # loop time by which the current request must be in
    _timer: asyncio.TimerHandle | None = None
    _head_bytes = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._deadline = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0

    def on_url(self, url: bytes) -> None:
        self._count_head(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_head(len(name) + len(value))
        super().on_header(name, value)

    def on_message_complete(self) -> None:
        self._disarm()  # the whole request is in
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.pipeline and not self.transport.is_closing():
            self._arm()  # waiting for the next request on this connection

    def _count_head(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > self.max_head_bytes:
            raise ValueError(f"request head over {self.max_head_bytes} bytes")

    def _arm(self) -> None:
        self._deadline = self.loop.time() + self.read_timeout_s
        if self._timer is None:
            self._timer = self.loop.call_at(self._deadline, self._check_deadline)

    def _disarm(self) -> None:
        self._deadline = None

    def _check_deadline(self) -> None:
        """The timer fired: time out, wait for a later deadline, or stop (not reading)."""
        self._timer = None
        if self._deadline is None:
            return  # a later _arm starts a new timer
        if self.loop.time() < self._deadline:
            self._timer = self.loop.call_at(self._deadline, self._check_deadline)
            return
        self._timed_out()

    def _timed_out(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        log.info(
            "closing a connection from %s: no full request in %ss", self.client, self.read_timeout_s
        )
        if self.cycle is None or self.cycle.response_complete:  # nobody is answering it
            self.transport.write(_REQUEST_TIMEOUT)
        self.transport.close()


_TIMEOUT_BODY = (
    b'{"error":{"type":"RequestTimeout","message":"The request did not arrive in time; '
    b'the server closes slow connections.","field":"body"}}'
)
_REQUEST_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
    b"content-length: "
    + str(len(_TIMEOUT_BODY)).encode()
    + b"\r\nconnection: close\r\n\r\n"
    + _TIMEOUT_BODY
)


def guarded_protocol(read_timeout_s: float) -> type[GuardedHttpProtocol]:
    """The protocol class uvicorn should use, with this server's read deadline."""
    return type("GuardedHttpProtocol", (GuardedHttpProtocol,), {"read_timeout_s": read_timeout_s})


def serve(
    source: ControlPlane,
    targets: list[str],
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    settings: ServingSettings | None = None,
    log_level: str = "warning",
    on_loaded: Callable[[], None] | None = None,
    replica_port: int | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM; on shutdown queued requests are answered and the log flushed.

    Every target is resolved and loaded first (a missing alias fails here, before anything
    says it is serving); ``on_loaded`` then runs, just before the server starts listening.
    As a replica (``settings.replica`` set; see :mod:`modelpilot.serving.replicas`) the port
    is bound with ``SO_REUSEPORT`` and shared with the other replicas, and ``replica_port``,
    if given, is this replica's own port (every route, for scraping its ``/metrics``).
    """
    settings = settings or ServingSettings()
    tokens = token_guard(source, settings)
    plan = plan_from_targets(source.deployments, targets)
    settings = with_model_batching(settings, plan.batching)
    plane, follower, repository = build_plane(source, plan, settings)
    policies = PolicyFollower(source, plane, plan.deployments)
    policies.sync()  # before the first request: nothing is ever logged unprotected
    plane.loops.append(lambda: policies.run(plane.settings.deployment_poll_s))
    if on_loaded is not None:
        on_loaded()
    if follower.names:
        plane.loops.append(lambda: follower.run(plane.settings.deployment_poll_s))
    if repository.followed:
        plane.loops.append(lambda: repository.follow(plane.settings.deployment_poll_s))
    app = TokenGuard(
        plane.build_app(repository.routes()), tokens, require_token=settings.require_token
    )
    config = http_config(app, settings, host=host, port=port, log_level=log_level)
    sockets = None
    if settings.replica is not None:
        sockets = [replica_socket(host, port, reuse_port=True)]
        if replica_port is not None:
            sockets.append(replica_socket(host, replica_port, reuse_port=False))
    uvicorn.Server(config).run(sockets=sockets)


def http_config(
    app: Any, settings: ServingSettings, *, host: str, port: int, log_level: str = "warning"
) -> uvicorn.Config:
    """The HTTP stack every model server runs on: uvloop, the guarded httptools protocol,
    keep-alive and connection limits from ``settings``. benchmarks/serving.py's no-op ceiling
    runs on this same stack, so the ceiling differs from a server only in the model's work."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        loop="uvloop",
        http=guarded_protocol(settings.read_timeout_s),
        timeout_keep_alive=settings.keep_alive_s,
        limit_concurrency=settings.max_connections,
        lifespan="on",
        timeout_graceful_shutdown=30,
        # The apps' __call__ returns an awaitable without being a coroutine function (one
        # coroutine level fewer per request, see TokenGuard), which uvicorn's guess would take
        # for ASGI 2.
        interface="asgi3",
        # No X-Forwarded-* rewriting: nothing on the data plane reads the client's address,
        # and the middleware would be one more coroutine level on every request.
        proxy_headers=False,
    )


def replica_socket(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    """A replica's socket, or an error naming the address that could not be bound."""
    try:
        return bound_socket(host, port, reuse_port=reuse_port)
    except OSError as exc:
        shared = " (shared with the other replicas)" if reuse_port else ""
        raise InvalidInput(
            f"Cannot listen on {host}:{port}{shared}: {exc.strerror or exc}. Choose a free "
            "port with --port (or --replica-ports for the replicas' own ports).",
            field="port",
        ) from exc
