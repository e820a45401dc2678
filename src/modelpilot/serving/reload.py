"""Hot reload: load and unload model versions in a running server without dropping a request.

The data plane's model table is immutable. Loading builds the runtime off the event loop and
then swaps in a new table; unloading swaps the version out first (new requests stop seeing
it) and then drains its batcher, so every request already queued or predicting is answered
by the version it started on. Two ways in:

* aliases are followed: a server started with ``churn@champion`` polls the alias and, when it
  moves, loads the new version, makes it the default and unloads the old one;
* Triton's model repository extension: ``POST /v2/repository/index`` always, and
  ``POST /v2/repository/models/{name}/load`` and ``.../unload`` when the server runs with
  ``--model-control`` (``tritonclient``'s ``load_model``/``unload_model`` speak it).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelpilot.errors import Forbidden, InvalidInput, ModelpilotError, shown
from modelpilot.serving.app import DataPlane
from modelpilot.serving.runtime import ModelRuntime

log = logging.getLogger(__name__)

Resolve = Callable[[str], tuple[str, int]]  # a reference -> (model name, version)
Load = Callable[[str], ModelRuntime]  # "name/version" -> a loaded runtime


class ModelRepository:
    """Loads, unloads and follows model versions for one data plane.

    >>> from modelpilot.serving.settings import ServingSettings
    >>> repo = ModelRepository(DataPlane(ServingSettings()), resolve=lambda r: ("m", 1),
    ...                        load=print, followed={"m@champion": 1, "m/1": 1})
    >>> repo.followed  # only aliases move
    {'m@champion': 1}
    """

    def __init__(
        self,
        plane: DataPlane,
        *,
        resolve: Resolve,
        load: Load,
        followed: dict[str, int] | None = None,
        pinned: frozenset[tuple[str, int]] = frozenset(),
        model_control: bool = False,
    ) -> None:
        self.plane = plane
        self.resolve = resolve
        self.load = load
        self.followed = {ref: v for ref, v in (followed or {}).items() if "@" in ref}
        self.pinned = pinned  # versions asked for by number: never unloaded by an alias move
        self.model_control = model_control
        self._lock = asyncio.Lock()

    async def load_ref(self, ref: str, *, default: bool = True) -> ModelRuntime:
        """Serve the version ``ref`` names (loading it unless it is already loaded)."""
        loop = asyncio.get_running_loop()
        async with self._lock:
            name, version = await loop.run_in_executor(None, self.resolve, ref)
            served = self.plane.models.get(name, {}).get(version)
            if served is not None:
                if default:
                    self.plane.defaults = {**self.plane.defaults, name: version}
                return served.runtime
            runtime = await loop.run_in_executor(None, self.load, f"{name}/{version}")
            self.plane.add_model(runtime, default=default)
            log.info("loaded %s", runtime.key)
            return runtime

    async def unload(self, name: str, version: int | None = None) -> None:
        """Stop serving a model (or one version); its queued and in-flight requests finish."""
        async with self._lock:
            await self.plane.remove_model(name, version)
            log.info("unloaded %s%s", name, "" if version is None else f"/{version}")

    async def refresh_aliases(self) -> list[str]:
        """Move each followed alias to the version it names now; returns the refs that moved."""
        moved = []
        loop = asyncio.get_running_loop()
        for ref, current in list(self.followed.items()):
            name, version = await loop.run_in_executor(None, self.resolve, ref)
            if version == current:
                continue
            await self.load_ref(ref, default=True)
            self.followed = {**self.followed, ref: version}
            moved.append(ref)
            if not self._in_use(name, current):
                await self.unload(name, current)
        return moved

    def _in_use(self, name: str, version: int) -> bool:
        """Whether a pinned reference, another followed alias or a deployment still needs
        ``name/version``."""
        aliased = any(
            ref.split("@", 1)[0] == name and v == version for ref, v in self.followed.items()
        )
        routed = any(
            r.model == name and r.version == version
            for snapshot in self.plane.deployments.values()
            for r in snapshot.routes
        )
        return aliased or routed or (name, version) in self.pinned

    async def follow(self, interval_s: float) -> None:
        """Poll the followed aliases until cancelled (at shutdown)."""
        while True:
            await asyncio.sleep(interval_s)  # a polling period, not synchronisation
            try:
                await self.refresh_aliases()
            except Exception as exc:  # keep serving what is loaded
                log.error("could not refresh model aliases: %s", exc)

    # -- Triton model repository extension ----------------------------------------------------
    def routes(self) -> list[Route]:
        """``/v2/repository/index``, ``.../models/{name}/load`` and ``.../unload``."""
        return [
            Route("/v2/repository/index", self.index, methods=["POST"]),
            Route("/v2/repository/models/{name}/load", self.load_handler, methods=["POST"]),
            Route("/v2/repository/models/{name}/unload", self.unload_handler, methods=["POST"]),
        ]

    async def index(self, request: Request) -> Response:
        """Every loaded version, READY."""
        entries = [
            {"name": name, "version": str(version), "state": "READY"}
            for name, versions in sorted(self.plane.models.items())
            for version in sorted(versions)
        ]
        return _json(entries)

    async def load_handler(self, request: Request) -> Response:
        """Load ``{name}`` (a model, or a ``name@alias`` reference); ``parameters.version``
        picks a version, otherwise the latest is loaded."""
        try:
            self._require_control("load")
            name, params = request.path_params["name"], await _parameters(request)
            version = params.get("version")
            ref = name if "@" in name or version is None else f"{name}/{_number(version)}"
            runtime = await self.load_ref(ref, default=True)
        except ModelpilotError as exc:
            return _json({"error": exc.message}, exc.http_status)
        return _json({"name": runtime.name, "version": str(runtime.version)})

    async def unload_handler(self, request: Request) -> Response:
        """Unload ``{name}``: one version with ``parameters.version``, else every version."""
        try:
            self._require_control("unload")
            params = await _parameters(request)
            version = params.get("version")
            await self.unload(
                request.path_params["name"], None if version is None else _number(version)
            )
        except ModelpilotError as exc:
            return _json({"error": exc.message}, exc.http_status)
        return _json({})

    def _require_control(self, action: str) -> None:
        if not self.model_control:
            raise Forbidden(
                f"Cannot {action} models over HTTP: model control is off on this server. "
                "Start it with: modelpilot serve ... --model-control"
            )


def followed_versions(refs: Sequence[str], runtimes: Sequence[ModelRuntime]) -> dict[str, int]:
    """The version each alias reference was loaded at (for :class:`ModelRepository`).

    >>> followed_versions(["churn@champion"], [type("R", (), {"version": 3})()])
    {'churn@champion': 3}
    """
    return {ref: rt.version for ref, rt in zip(refs, runtimes, strict=True) if "@" in ref}


async def _parameters(request: Request) -> dict[str, Any]:
    body = await request.body()
    if not body.strip():
        return {}
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"The request body is not valid JSON: {exc}.", field="body") from None
    params = doc.get("parameters") if isinstance(doc, dict) else None
    return params if isinstance(params, dict) else {}


def _number(value: Any) -> int:
    text = str(value)
    if not text.isdigit():
        raise InvalidInput(
            f"parameters.version must be a version number; got {shown(value)}.", field="version"
        )
    return int(text)


def _json(payload: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type="application/json")
