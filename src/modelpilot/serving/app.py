"""The data plane's ASGI app: Open Inference Protocol v2, plain JSON, metrics, hot reload.

Request path: parse (orjson) -> validate against the signature (a 4xx never reaches a model)
-> route (deployments) -> batch -> one predict per batch -> respond; the prediction log and
metrics are updated off the event loop, in the batch's worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import itertools
import logging
import operator
import random
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route as HttpRoute

from modelpilot.errors import (
    InvalidInput,
    MalformedRequest,
    ModelFailed,
    ModelpilotError,
    NotFound,
    PayloadTooLarge,
    Unavailable,
    shown,
)
from modelpilot.predictions.batch_log import log_batch
from modelpilot.predictions.writer import PredictionLog
from modelpilot.serving import protocol_v2
from modelpilot.serving.batching import Batcher, Outcome, Pending
from modelpilot.serving.domain import flag_batch
from modelpilot.serving.metrics import FOLD_EVERY, ServingMetrics
from modelpilot.serving.routing import Route, RoutingSnapshot
from modelpilot.serving.runtime import BatchOutput, ModelRuntime
from modelpilot.serving.settings import ServingSettings
from modelpilot.serving.threads import limit_native_threads
from modelpilot.serving.validation import Row
from modelpilot.serving.wire import write_whole
from modelpilot.version import __version__

log = logging.getLogger(__name__)
_JSON = "application/json"
# Random, not the process id: two containers' servers are both PID 1 (and may start together).
_ID_PREFIX = f"{secrets.token_hex(4)}-{int(time.time()):x}-"
# Request ids are made a block at a time: the prefix, the block's number and a position in it
# ("3f2a9c1e-6b10ee10-7-211"), each with the opening of its answer (``{"request_id":"..."``).
# A request takes the next pair from a prepared list in C (~100 instructions, callgrind in
# process); converting a counter to text and joining it per request cost ~2,000, and
# serialising the id into the answer ~600 more.
_ID_BLOCK = 4096
_POSITION_TEXTS = [str(i) for i in range(_ID_BLOCK)]
_POSITION_QUOTED = [b'%d"' % i for i in range(_ID_BLOCK)]


def _id_block(block: int) -> Iterator[tuple[str, bytes]]:
    """The ``_ID_BLOCK`` ids of block ``block``, each with its answer's opening bytes (made
    by C loops: a comprehension cost ~1,600 instructions an id)."""
    prefix = f"{_ID_PREFIX}{block}-"
    opening = _ANSWER_OPEN + b'"' + prefix.encode()
    ids = list(map(operator.add, itertools.repeat(prefix), _POSITION_TEXTS))
    openings = list(map(operator.add, itertools.repeat(opening), _POSITION_QUOTED))
    return zip(ids, openings, strict=True)


_ANSWER_OPEN = b'{"request_id":'
_next_id: Callable[[], tuple[str, bytes]] = itertools.chain.from_iterable(
    map(_id_block, itertools.count())
).__next__


def _new_id() -> str:
    """This process's next request id."""
    return _next_id()[0]


@dataclass(frozen=True)
class Served:
    """A runtime with its batcher (None when batching is off)."""

    runtime: ModelRuntime
    batcher: Batcher | None
    # Durations of this version's 200s not yet folded into /metrics (ServingMetrics.ok_durations):
    # the hot path appends to it without a call.
    ok_durations: list[float]


class RequestContext(NamedTuple):
    """What the log needs to know about a request besides its rows (a tuple: built per
    request, and a frozen dataclass costs three times as much to make)."""

    request_id: str
    deployment: str | None
    variant: str | None


# RequestContext(request_id, None, None) on the hot path, without the Python-level __new__
# (see batching.Pending).
_new_context = functools.partial(tuple.__new__, RequestContext)


class DataPlane:
    """Holds the served models and deployment snapshots, and builds the ASGI app."""

    def __init__(self, settings: ServingSettings, predlog: PredictionLog | None = None) -> None:
        self.settings = settings
        self.predlog = predlog
        self.metrics = ServingMetrics(log=predlog, replica=settings.replica)
        self.executor = ThreadPoolExecutor(
            max_workers=1,
            thread_name_prefix="modelpilot-predict",
            initializer=limit_native_threads,
            initargs=(settings.model_threads,),
        )
        self.models: dict[str, dict[int, Served]] = {}
        self.defaults: dict[str, int] = {}
        self.deployments: dict[str, RoutingSnapshot] = {}
        # The default version of each model name that is not a deployment: the hot path's one
        # lookup (see _index).
        self.plain: dict[str, Served] = {}
        self.rng = random.Random()
        self.started = False
        # The serving loop, kept at startup: on Python 3.11 asyncio.get_running_loop() makes
        # a getpid() system call (a fork check), which the per-request path avoids.
        self.loop: asyncio.AbstractEventLoop | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self.loops: list[Callable[[], Coroutine[Any, Any, None]]] = []  # run while serving
        self._loop_tasks: list[asyncio.Task[None]] = []

    # -- model table (hot reload) -----------------------------------------------------------
    def add_model(self, runtime: ModelRuntime, *, default: bool = True) -> None:
        """Serve a runtime; swaps in a new table so in-flight requests keep the old one."""
        served = Served(runtime, self._batcher(runtime), self.metrics.ok_durations(runtime.labels))
        if served.batcher is not None and self.started:
            served.batcher.start()
        versions = dict(self.models.get(runtime.name, {}))
        versions[runtime.version] = served
        table = dict(self.models)
        table[runtime.name] = versions
        self.models = table
        if default or runtime.name not in self.defaults:
            self.defaults = {**self.defaults, runtime.name: runtime.version}
        self._index()

    async def remove_model(self, name: str, version: int | None = None) -> None:
        """Stop serving a model (or one version); queued requests are answered first."""
        versions = dict(self.models.get(name, {}))
        removed = (
            list(versions.values())
            if version is None
            else [versions[version]]
            if version in versions
            else []
        )
        if not removed:
            raise NotFound(
                f"Model {name!r}{f' version {version}' if version else ''} is not loaded.",
                field="model",
            )
        for served in removed:
            versions.pop(served.runtime.version)
        table = dict(self.models)
        defaults = dict(self.defaults)
        if versions:
            table[name] = versions
            defaults[name] = max(versions)
        else:
            table.pop(name)
            defaults.pop(name, None)
        self.models, self.defaults = table, defaults
        self._index()
        for served in removed:
            if served.batcher is not None:
                await served.batcher.drain()

    def set_deployment(self, snapshot: RoutingSnapshot) -> None:
        """Swap a deployment's routing snapshot (its models must already be loaded)."""
        self.deployments = {**self.deployments, snapshot.deployment: snapshot}
        self._index()

    def _index(self) -> None:
        """Rebuild ``plain`` after the model table or the deployments changed (a new dict,
        swapped in whole: a request in flight keeps the one it read)."""
        self.plain = {
            name: versions[self.defaults[name]]
            for name, versions in self.models.items()
            if name not in self.deployments and self.defaults.get(name) in versions
        }

    def _batcher(self, runtime: ModelRuntime) -> Batcher | None:
        options = self.settings.batching_for(runtime.name)
        if not options.enabled:
            return None
        return Batcher(
            runtime,
            max_batch_size=options.max_batch_size,
            max_wait_ms=options.max_wait_ms,
            queue_limit=options.queue_limit,
            executor=self.executor,
            after_batch=self._after_batch,
            inline_below_ms=self._inline_predict_ms(),
            resolve=functools.partial(
                self._resolve, runtime, self.metrics.ok_durations(runtime.labels)
            ),
        )

    def _inline_predict_ms(self) -> float:
        """No predict on the loop when each batch waits for an fsync of the log."""
        sync_log = (
            self.predlog is not None
            and self.settings.log_predictions
            and self.settings.durability == "sync"
        )
        return 0.0 if sync_log else self.settings.inline_predict_ms

    def served(self, name: str, version: int | None) -> Served:
        """The served runtime for a model name (default version unless one is given)."""
        versions = self.models.get(name)
        if versions is None:
            loaded = ", ".join(sorted(self.models)) or "none"
            raise NotFound(
                f"Model {name!r} is not served here. Served models: {loaded}.", field="model"
            )
        chosen = self.defaults[name] if version is None else version
        served = versions.get(chosen)
        if served is None:
            raise NotFound(
                f"Model {name!r} has no loaded version {chosen}. Loaded versions: "
                f"{', '.join(map(str, sorted(versions)))}.",
                field="version",
            )
        return served

    # -- the predict path ---------------------------------------------------------------------
    async def predict(
        self, served: Served, rows: list[Row], context: RequestContext
    ) -> tuple[BatchOutput, int, int]:
        """Predict rows through the batcher (or directly when batching is off)."""
        if served.batcher is not None:
            answer: tuple[BatchOutput, int, int] = await served.batcher.submit(rows, context)
            return answer
        loop = self.loop or asyncio.get_running_loop()
        pending = Pending(rows, loop.create_future(), context, time.perf_counter())
        batch = [pending]
        started = time.perf_counter()

        def work() -> BatchOutput:
            try:
                out = served.runtime.predict_rows(rows)
            except Exception as exc:
                self._after_batch(served.runtime, batch, None, exc, time.perf_counter() - started)
                raise
            self._after_batch(served.runtime, batch, out, None, time.perf_counter() - started)
            return out

        try:
            output = await loop.run_in_executor(self.executor, work)
        except Exception as exc:
            failure = self._model_failed(served.runtime, exc, context)
            if failure is exc:
                raise
            raise failure from exc
        return output, 0, len(rows)

    def _after_batch(
        self,
        runtime: ModelRuntime,
        batch: list[Pending],
        output: BatchOutput | None,
        error: BaseException | None,
        seconds: float,
    ) -> None:
        """Worker thread: metrics, then the prediction log (fsynced in sync mode before answers)."""
        matrix = output.matrix if output is not None else None
        size = len(matrix) if matrix is not None else sum(len(p.rows) for p in batch)
        self.metrics.predicted(*runtime.labels, size, seconds)
        flags = flag_batch(runtime, batch, matrix)  # None without a recorded input domain
        if flags is not None and flags.count:
            self.metrics.out_of_domain(*runtime.labels, flags.count, flags.values)
        if self.predlog is None or not self.settings.log_predictions:
            return
        self.predlog.append(log_batch(runtime, batch, output, error, flags))

    # -- HTTP handlers -------------------------------------------------------------------------
    async def infer_payload(
        self, name: str, version_text: str | None, body: bytes, headers: dict[bytes, bytes]
    ) -> tuple[int, bytes, str]:
        """Named tensors in, output tensors out: (status, JSON body, request id)."""
        started = time.perf_counter()
        request_id = ""
        labels = (name, version_text or "")
        try:
            version = _version(version_text)
            parsed = protocol_v2.parse_infer(
                body, _text(headers, b"inference-header-content-length"), self.settings.max_rows
            )
            request_id = parsed.id or _new_id()
            served, context, route = self._target(name, version, request_id, None)
            labels = served.runtime.labels
            rows = protocol_v2.rows_from_tensors(parsed, served.runtime.validator)
            output, offset, count = await self._prediction(served, rows, context)
            if route is not None:
                self._shadow(route, rows, context, name)
            probabilities = (
                output.probabilities[offset : offset + count]
                if output.probabilities is not None
                else None
            )
            payload = {
                "model_name": served.runtime.name,
                "model_version": labels[1],
                "id": request_id,
                "outputs": protocol_v2.output_tensors(
                    output.predictions[offset : offset + count], probabilities
                ),
            }
            self.metrics.answered_ok(labels, time.perf_counter() - started)
            return 200, orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY), request_id
        except Exception as exc:
            request_id = request_id or _new_id()
            failure = _failure(exc, request_id)
            self._count(labels, str(failure.http_status), started, type(failure).__name__)
            error = {"error": failure.message, "request_id": request_id}
            return failure.http_status, orjson.dumps(error), request_id

    def predict_payload(
        self, name: str, body: bytes, headers: dict[bytes, bytes]
    ) -> Awaitable[tuple[int, bytes, str]]:
        """Records or columns in, predictions out: (status, JSON body, request id).

        The usual request (a served model's records, no request id of its own, batching on)
        is decoded here and queued as a whole: the batch's fan-out (:meth:`_resolve`) makes
        its answer and the awaiting request resumes with it, without a coroutine of its own
        to create, suspend and resume, or code of its own to run after the batch (~3,800
        instructions a request less, callgrind in process). Everything else (and a request
        the batcher refuses, to be told why) takes :meth:`_predict_payload`.
        """
        served = self.plain.get(name)
        if served is not None and b"x-request-id" not in headers:
            decode, batcher = served.runtime.decode_records, served.batcher
            if decode is not None and batcher is not None:
                started = time.perf_counter()
                rows = decode(body, self.settings.max_rows)
                if rows is not None:
                    request_id, opening = _next_id()
                    context = _new_context((request_id, None, None))
                    try:
                        return batcher.submit(rows, context, started, opening)
                    except Unavailable:  # closing or full: the checked path says which
                        pass
        return self._predict_payload(name, body, headers)

    async def _predict_payload(
        self, name: str, body: bytes, headers: dict[bytes, bytes]
    ) -> tuple[int, bytes, str]:
        started = time.perf_counter()
        given_id = headers.get(b"x-request-id")
        request_id = _new_id() if not given_id else ""
        labels = (name, "")
        try:
            if given_id:
                request_id = _header_id(given_id)
            served = self.plain.get(name)
            decode = None if served is None else served.runtime.decode_records
            rows = None if decode is None else decode(body, self.settings.max_rows)
            if rows is not None:  # the usual body of a served model, checked as parsed
                assert served is not None
                context, route = _new_context((request_id, None, None)), None
                labels = served.runtime.labels
            else:
                doc = _json(body)
                if served is not None:  # a model, not a deployment: no routing
                    context, route, key_field = RequestContext(request_id, None, None), None, None
                else:
                    snapshot = self.deployments.get(name)
                    key = _routing_key(doc, headers, snapshot) if snapshot is not None else None
                    served, context, route = self._target(name, None, request_id, key)
                    key_field = None if snapshot is None or route is None else snapshot.routing_key
                labels = served.runtime.labels
                rows = _rows_from_json(doc, served, key_field, self.settings.max_rows)
            batcher = served.batcher  # (the batcher's own future: one coroutine level fewer)
            waiting = (
                self.predict(served, rows, context)
                if batcher is None
                else batcher.submit(rows, context)
            )
            output, offset, count = await waiting
            if route is not None:
                self._shadow(route, rows, context, name)
            row_json = output.row_json if count == 1 and route is None else None
            if row_json is not None:  # the usual answer, joined from the batch's JSON
                opening = _ANSWER_OPEN + orjson.dumps(request_id)
                answer = _joined_answer(served.runtime, row_json, offset, opening)
            else:
                answer = _dict_answer(served.runtime, output, offset, count, request_id, context)
            durations = served.ok_durations
            durations.append(time.perf_counter() - started)
            if len(durations) >= FOLD_EVERY:
                self.metrics.fold_ok(labels)
            return 200, answer, request_id
        except Exception as exc:
            request_id = request_id or _new_id()
            failure = _failure(exc, request_id)
            self._count(labels, str(failure.http_status), started, type(failure).__name__)
            return (
                failure.http_status,
                orjson.dumps({**failure.to_dict(), "request_id": request_id}),
                request_id,
            )

    def _resolve(
        self,
        runtime: ModelRuntime,
        durations: list[float],
        batch: list[Pending],
        outcome: BatchOutput | list[Outcome],
    ) -> None:
        """A batch's fan-out: a request queued whole gets its answer, made here in one loop
        for the batch (its status, JSON and id, as :meth:`_predict_payload` would answer);
        any other its slice of the output, or its own outcome."""
        if not isinstance(outcome, BatchOutput):  # predicted one by one after a failure
            for item, result in zip(batch, outcome, strict=True):
                if not item.future.done():
                    self._resolve_one(runtime, durations, item, result)
            return
        now = time.perf_counter()
        offset = 0
        row_json = outcome.row_json if batch[0].opening is not None else None
        for item in batch:
            rows, future, context, enqueued, opening = item
            count = len(rows)
            if future.done():  # (a request whose client left is cancelled)
                pass
            elif opening is None:
                future.set_result((outcome, offset, count))
            elif row_json is not None and count == 1:  # the usual: joined from the batch's JSON
                labels, probabilities = row_json
                head = runtime.answer_head
                if probabilities is None:
                    answer = b"".join((opening, head, labels[offset], b"]}"))
                else:  # (_joined_answer, inline: this runs once per request)
                    tail = runtime.answer_tail
                    answer = b"".join(
                        (opening, head, labels[offset], _PROBABILITIES, probabilities[offset], tail)
                    )
                future.set_result((200, answer, context[0]))
                durations.append(now - enqueued)
            else:
                self._resolve_one(runtime, durations, item, (outcome, offset, count))
            offset += count
        if len(durations) >= FOLD_EVERY:
            self.metrics.fold_ok(runtime.labels)

    def _resolve_one(
        self, runtime: ModelRuntime, durations: list[float], item: Pending, result: Outcome
    ) -> None:
        """One request's outcome to its future: the answer (or the error's) when queued
        whole, else as it is."""
        if item.opening is None:
            if isinstance(result, BaseException):
                item.future.set_exception(self._model_failed(runtime, result, item.context))
            else:
                item.future.set_result(result)
            return
        request_id = item.context.request_id
        try:
            if isinstance(result, BaseException):
                raise self._model_failed(runtime, result, item.context)
            output, offset, count = result
            answer = _dict_answer(runtime, output, offset, count, request_id, item.context)
            durations.append(time.perf_counter() - item.enqueued)
            item.future.set_result((200, answer, request_id))
        except Exception as exc:
            failure = _failure(exc, request_id)
            status = failure.http_status
            self._count(runtime.labels, str(status), item.enqueued, type(failure).__name__)
            error = orjson.dumps({**failure.to_dict(), "request_id": request_id})
            item.future.set_result((status, error, request_id))

    def _count(
        self, labels: tuple[str, str], code: str, started: float, error: str | None = None
    ) -> None:
        if labels[0] not in self.models:  # unknown names would grow the series without bound
            labels = ("", "")
        self.metrics.answered(*labels, code, time.perf_counter() - started, error)

    def _target(
        self, name: str, version: int | None, request_id: str, key: str | None
    ) -> tuple[Served, RequestContext, Route | None]:
        snapshot = self.deployments.get(name)
        if snapshot is not None and version is None:
            route = snapshot.pick(key, self.rng)
            return (
                self.served(route.model, route.version),
                RequestContext(request_id, snapshot.deployment, route.variant),
                route,
            )
        return self.served(name, version), RequestContext(request_id, None, None), None

    def _prediction(
        self, served: Served, rows: list[Row], context: RequestContext
    ) -> Awaitable[tuple[BatchOutput, int, int]]:
        """The request's prediction to await: the batcher's future itself on the hot path.

        Not a coroutine: each coroutine level between a request and its batch costs ~0.5-1 us
        to create and resume. A model's own failure arrives as ModelFailed either way."""
        if served.batcher is not None:
            return served.batcher.submit(rows, context)
        return self.predict(served, rows, context)

    @staticmethod
    def _model_failed(
        runtime: ModelRuntime, exc: BaseException, context: RequestContext
    ) -> BaseException:
        """A model's exception as the request's ModelFailed (500, logged); ours unchanged."""
        if isinstance(exc, ModelpilotError) or not isinstance(exc, Exception):
            return exc
        log.error("model %s failed on request %s", runtime.key, context.request_id, exc_info=exc)
        failed = ModelFailed(
            f"Model {runtime.key} failed on request {context.request_id}: "
            f"{type(exc).__name__}: {str(exc)[:200]}"
        )
        failed.__cause__ = exc
        return failed

    def _shadow(
        self, route: Route | None, rows: list[Row], context: RequestContext, deployment: str
    ) -> None:
        snapshot = self.deployments.get(deployment) if route is not None else None
        if snapshot is None:
            return
        for shadow in snapshot.shadows:
            try:
                served = self.served(shadow.model, shadow.version)
            except NotFound:
                continue
            ctx = RequestContext(context.request_id, deployment, shadow.variant)
            task = asyncio.get_running_loop().create_task(
                self._quiet(self.predict(served, rows, ctx))
            )
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    @staticmethod
    async def _quiet(work: Any) -> None:
        try:
            await work
        except Exception as exc:  # a shadow never affects the caller
            log.warning("shadow prediction failed: %s", exc)

    async def live(self, request: Request) -> Response:
        """Liveness: the process answers."""
        return Response(b'{"live":true}', media_type=_JSON)

    async def ready(self, request: Request) -> Response:
        """Readiness: models are loaded and batchers run."""
        ok = self.started and bool(self.models)
        return Response(
            orjson.dumps({"ready": ok}), status_code=200 if ok else 503, media_type=_JSON
        )

    async def server_metadata(self, request: Request) -> Response:
        """``GET /v2``."""
        return Response(
            orjson.dumps(
                {
                    "name": "modelpilot",
                    "version": __version__,
                    "extensions": ["binary_tensor_data", "model_repository"],
                }
            ),
            media_type=_JSON,
        )

    async def model_metadata(self, request: Request) -> Response:
        """``GET /v2/models/{name}[/versions/{version}]``."""
        try:
            served = self.served(
                request.path_params["name"], _version(request.path_params.get("version"))
            )
        except ModelpilotError as exc:
            return Response(
                orjson.dumps({"error": exc.message}), status_code=exc.http_status, media_type=_JSON
            )
        runtime = served.runtime
        signature = runtime.model.signature
        outputs = [
            {
                "name": "predict",
                "datatype": "BYTES"
                if runtime.classes and isinstance(runtime.classes[0], str)
                else "FP64"
                if signature.output_dtype and "float" in signature.output_dtype
                else "INT64",
                "shape": [-1],
            }
        ]
        if signature.is_classifier:
            outputs.append(
                {
                    "name": "predict_proba",
                    "datatype": "FP64",
                    "shape": [-1, len(runtime.classes or [])],
                }
            )
        return Response(
            orjson.dumps(
                {
                    "name": runtime.name,
                    "versions": [str(v) for v in sorted(self.models[runtime.name])],
                    "platform": f"modelpilot_{runtime.model.flavor}",
                    "inputs": [
                        {
                            "name": s.name,
                            "datatype": protocol_v2.SIGNATURE_DATATYPES[s.dtype],
                            "shape": [-1],
                        }
                        for s in signature.inputs
                    ],
                    "outputs": outputs,
                }
            ),
            media_type=_JSON,
        )

    async def model_ready(self, request: Request) -> Response:
        """``GET /v2/models/{name}[/versions/{version}]/ready``."""
        try:
            self.served(request.path_params["name"], _version(request.path_params.get("version")))
        except ModelpilotError as exc:
            return Response(
                orjson.dumps({"error": exc.message}), status_code=exc.http_status, media_type=_JSON
            )
        return Response(
            orjson.dumps({"name": request.path_params["name"], "ready": True}), media_type=_JSON
        )

    async def prometheus(self, request: Request) -> Response:
        """``GET /metrics``."""
        for name, versions in self.models.items():
            for version, served in versions.items():
                depth = served.batcher.queued_rows if served.batcher is not None else 0
                self.metrics.queue_depth.labels(name, str(version)).set(depth)
        return Response(
            self.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8"
        )

    async def deployment_status(self, request: Request) -> Response:
        """``GET /deployments/{name}``: the routing snapshot this server uses now."""
        snapshot = self.deployments.get(request.path_params["name"])
        if snapshot is None:
            return Response(
                orjson.dumps({"error": "deployment not served here"}),
                status_code=404,
                media_type=_JSON,
            )
        routes = [
            {
                "variant": r.variant,
                "role": r.role,
                "model": r.model,
                "version": r.version,
                "weight": r.weight,
            }
            for r in snapshot.routes
        ]
        return Response(
            orjson.dumps(
                {
                    "deployment": snapshot.deployment,
                    "revision": snapshot.revision,
                    "routing_key": snapshot.routing_key,
                    "routes": routes,
                }
            ),
            media_type=_JSON,
        )

    async def flush_log(self, request: Request) -> Response:
        """``POST /admin/flush``: write the prediction log's pending rows now."""
        written = (
            await asyncio.get_running_loop().run_in_executor(None, self.predlog.flush)
            if self.predlog
            else 0
        )
        return Response(orjson.dumps({"rows_written": written}), media_type=_JSON)

    # -- lifecycle ----------------------------------------------------------------------------
    async def startup(self) -> None:
        """Start batchers and the prediction log."""
        self.loop = asyncio.get_running_loop()
        if self.predlog is not None:
            self.predlog.start()
        for versions in self.models.values():
            for served in versions.values():
                if served.batcher is not None:
                    served.batcher.start()
        self._loop_tasks = [asyncio.get_running_loop().create_task(make()) for make in self.loops]
        limit_native_threads(self.settings.model_threads)  # quick batches predict on this thread
        # Everything loaded so far (models, libraries) lives as long as the server: move it out
        # of the collector's reach, so full collections stop scanning it. Without this, gen-2
        # collections every few thousand requests pause the loop for ~100 ms (the p99 at c=32).
        gc.collect()
        gc.freeze()
        self.started = True

    async def shutdown(self) -> None:
        """Answer everything queued, then flush the log."""
        self.started = False
        self.loop = None
        for task in self._loop_tasks:
            task.cancel()
        for versions in self.models.values():
            for served in versions.values():
                if served.batcher is not None:
                    await served.batcher.drain()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        if self.predlog is not None:
            self.predlog.close()
        self.executor.shutdown(wait=True)

    def build_app(self, extra_routes: list[HttpRoute] | None = None) -> FastPredictPath:
        """The ASGI application: the inference routes in front of a Starlette app for the rest."""
        routes = [
            HttpRoute("/v2/health/live", self.live),
            HttpRoute("/v2/health/ready", self.ready),
            HttpRoute("/v2", self.server_metadata),
            HttpRoute("/v2/models/{name}", self.model_metadata),
            HttpRoute("/v2/models/{name}/versions/{version}", self.model_metadata),
            HttpRoute("/v2/models/{name}/ready", self.model_ready),
            HttpRoute("/v2/models/{name}/versions/{version}/ready", self.model_ready),
            HttpRoute("/metrics", self.prometheus),
            HttpRoute("/admin/flush", self.flush_log, methods=["POST"]),
            HttpRoute("/deployments/{name}", self.deployment_status),
            *(extra_routes or []),
        ]

        @contextlib.asynccontextmanager  # Starlette deprecates bare async-generator lifespans
        async def lifespan(app: Starlette) -> AsyncIterator[None]:
            await self.startup()
            yield
            await self.shutdown()

        handlers = {HTTPException: _http_error, Exception: _unexpected_error}
        app = Starlette(routes=routes, lifespan=lifespan, exception_handlers=handlers)
        return FastPredictPath(self, app)


class FastPredictPath:
    """ASGI wrapper answering the two inference routes without Starlette's router and objects.

    ``POST /predict/{name}`` and ``POST /v2/models/{name}[/versions/{v}]/infer`` are the hot
    paths; skipping route matching and the Request/Response wrappers saves tens of
    microseconds per request (benchmarks/serving.py). Everything else goes to the Starlette
    app unchanged.
    """

    def __init__(self, plane: DataPlane, app: Any) -> None:
        self.plane = plane
        self.app = app

    def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Awaitable[None]:
        """The awaitable that answers: a plain function, not a coroutine, so that a request
        waiting for its batch suspends and resumes through one coroutine level fewer (see
        TokenGuard.__call__)."""
        route = _inference_route(scope["path"]) if scope["type"] == "http" else None
        if route is None:
            return self.app(scope, receive, send)  # type: ignore[no-any-return]
        if scope["method"] != "POST":
            wrong = MalformedRequest(
                f"{scope['method']} is not allowed here; send POST.", field="method"
            )
            error = {"error": wrong.message} if route[2] else wrong.to_dict()  # each route's style
            return _send(send, 405, orjson.dumps(error), b"")
        return self._answer(scope, receive, send, *route)

    async def _answer(
        self,
        scope: dict[str, Any],
        receive: Any,
        send: Any,
        name: str,
        version: str | None,
        oip: bool,
    ) -> None:
        headers = dict(scope["headers"])
        try:
            body = await _receive_body(
                receive, headers.get(b"content-length"), self.plane.settings.max_body_bytes
            )
        except ModelpilotError as exc:
            error = {"error": exc.message} if oip else exc.to_dict()
            await _send(send, exc.http_status, orjson.dumps(error), b"")
            return
        if body is None:  # the client left (or was cut off mid-body): nobody to answer
            return
        if oip:
            answer = await self.plane.infer_payload(name, version, body, headers)
        else:
            answer = await self.plane.predict_payload(name, body, headers)
        status, payload, request_id = answer
        await _send(send, status, payload, request_id.encode())


def _joined_answer(
    runtime: ModelRuntime,
    row_json: tuple[list[bytes], list[bytes] | None],
    offset: int,
    opening: bytes,
) -> bytes:
    """A one-row answer of a model (not a deployment) from the batch's JSON of each row
    (:attr:`BatchOutput.row_json`) and its ``opening`` (``{"request_id":"..."``): the bytes
    that :func:`_dict_answer` makes, without a dict to build and serialise (~1,500
    instructions a request instead of ~5,000, callgrind). ``DataPlane._resolve`` joins the
    same parts inline."""
    labels, probabilities = row_json
    if probabilities is None:
        return b"".join((opening, runtime.answer_head, labels[offset], b"]}"))
    return b"".join(
        (
            opening,
            runtime.answer_head,
            labels[offset],
            _PROBABILITIES,
            probabilities[offset],
            runtime.answer_tail,
        )
    )


_PROBABILITIES = b'],"probabilities":[['


def _dict_answer(
    runtime: ModelRuntime,
    output: BatchOutput,
    offset: int,
    count: int,
    request_id: str,
    context: RequestContext,
) -> bytes:
    """The answer to a request for ``count`` rows from ``offset`` of the batch's output."""
    payload: dict[str, Any] = {
        "request_id": request_id,
        "model": runtime.name,
        "version": runtime.version,
        "predictions": output.prediction_list[offset : offset + count],
    }
    probabilities = output.probability_list
    if probabilities is not None:
        payload["probabilities"] = probabilities[offset : offset + count]
        payload["classes"] = runtime.classes
    if context.deployment is not None:
        payload["deployment"], payload["variant"] = context.deployment, context.variant
    return orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)


def _inference_route(path: str) -> tuple[str, str | None, bool] | None:
    """(model, version text, OIP?) for ``/predict/{name}`` and
    ``/v2/models/{name}[/versions/{version}]/infer``; None for any other path."""
    if path.startswith("/predict/"):
        name = path[9:]
        return (name, None, False) if name and "/" not in name else None
    if path.startswith("/v2/models/") and path.endswith("/infer"):
        parts = path[11:-6].split("/")
        if len(parts) == 1 and parts[0]:
            return parts[0], None, True
        if len(parts) == 3 and parts[0] and parts[1] == "versions" and parts[2]:
            return parts[0], parts[2], True
    return None


async def _receive_body(receive: Any, declared: bytes | None, limit: int) -> bytes | None:
    """The request body, a 413 past ``limit`` bytes, or None if the client disconnected.

    A client that sends its body too slowly is cut off by the protocol (see
    :mod:`modelpilot.serving.server`); this then sees the disconnect.
    """
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(
            f"The request body is {int(declared):,} bytes; at most {limit:,} are accepted. "
            "Split the batch into smaller requests.",
            field="body",
        )
    chunks, size, more = [], 0, True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(
                f"The request body exceeds {limit:,} bytes. Split the batch into smaller requests.",
                field="body",
            )
        chunks.append(chunk)
        more = message.get("more_body", False)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _send(send: Any, status: int, payload: bytes, request_id: bytes) -> None:
    head = [_JSON_HEAD, b"x-request-id: " + request_id + b"\r\n"] if request_id else [_JSON_HEAD]
    if write_whole(send, status, head, payload):
        return
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
    ]
    if request_id:
        headers.append((b"x-request-id", request_id))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


_JSON_HEAD = b"content-type: application/json\r\n"


class InternalError(ModelpilotError):
    """An unexpected failure in the server itself (500 with the request id; traceback logged)."""


def _failure(exc: Exception, request_id: str) -> ModelpilotError:
    """The error to answer with: ours as raised, anything else as a logged InternalError."""
    if isinstance(exc, ModelpilotError):
        return exc
    log.error("unexpected error on request %s", request_id, exc_info=exc)
    return InternalError(
        f"Unexpected server error on request {request_id} ({type(exc).__name__}). The server "
        "log has the details under this request id; please report it."
    )


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    """Starlette's catch-all (metadata, metrics, repository routes): JSON 500, never text."""
    given = request.headers.get("x-request-id", "")
    request_id = given if _is_printable_id(given) else _new_id()
    failure = _failure(exc, request_id)
    body = error_body(request.url.path, failure, request_id)
    return Response(body, status_code=500, media_type=_JSON, headers={"x-request-id": request_id})


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 for paths and methods it does not serve, as JSON."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    detail = exc.detail if isinstance(exc, HTTPException) else "Error"
    failure = (NotFound if status == 404 else MalformedRequest)(
        f"{request.method} {request.url.path}: {detail}.",
        field="path" if status == 404 else "method",
    )
    return Response(
        error_body(request.url.path, failure, None), status_code=status, media_type=_JSON
    )


def error_body(path: str, error: ModelpilotError, request_id: str | None) -> bytes:
    """Each route's error style: OIP's ``{"error": message}`` under /v2, ours elsewhere."""
    body: dict[str, Any] = (
        {"error": error.message} if path.startswith("/v2") else dict(error.to_dict())
    )
    if request_id is not None:
        body["request_id"] = request_id
    return orjson.dumps(body)


def _is_printable_id(value: str) -> bool:
    return 0 < len(value) <= protocol_v2.MAX_ID_CHARS and value.isascii() and value.isprintable()


def _header_id(raw: bytes) -> str:
    """The X-Request-Id header's id: printable ASCII, at most 128 characters, or a 400."""
    return protocol_v2.checked_id(raw.decode("latin-1"), "X-Request-Id")


def _version(raw: str | None) -> int | None:
    if raw is None:
        return None
    if not raw.isdigit():
        raise NotFound(f"Model version {shown(raw)} is not a number.", field="version")
    return int(raw)


def _text(headers: dict[bytes, bytes], name: bytes) -> str | None:
    value = headers.get(name)
    return None if value is None else value.decode("latin-1")


def _json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedRequest(
            f"The request body is not valid JSON: {exc}.", field="body"
        ) from None


def _routing_key(doc: Any, headers: dict[bytes, bytes], snapshot: RoutingSnapshot) -> str | None:
    if snapshot.routing_key is None:
        return None
    header = headers.get(b"x-routing-key")
    if header:
        return header.decode("latin-1")  # any bytes route; UTF-8 was a 500 on others
    field = snapshot.routing_key
    records = doc.get("records", doc.get("dataframe_records")) if isinstance(doc, dict) else doc
    if (
        isinstance(records, list)
        and records
        and isinstance(records[0], dict)
        and field in records[0]
    ):
        return str(records[0][field])
    if isinstance(doc, dict) and field in doc:
        return str(doc[field])
    return None


def _rows_from_json(doc: Any, served: Served, key_field: str | None, max_rows: int) -> list[Row]:
    """The rows of a /predict body (parsed by orjson)."""
    validator = served.runtime.validator
    if type(doc) is list and key_field is None and len(doc) <= max_rows:
        return validator.from_records(doc, from_json=True)  # the usual body, checked at once
    shape, payload, field = _body_shape(doc)
    _check_rows(payload, max_rows, field)
    if shape == "records":
        records = _strip_key(payload, validator.names, key_field)
        return validator.from_records(records, from_json=True)
    if shape == "columns":
        return validator.from_columns(payload)
    if shape == "split":
        return validator.from_columns(_split_columns(payload))
    return validator.from_matrix(payload, [len(payload), len(validator.names)], field)


PLAIN_BODIES = (
    'Send a list of records ([{"age": 31, ...}]), {"records": [...]}, '
    '{"columns": {"age": [31, ...], ...}} or {"inputs": [[...], ...]} (MLflow\'s '
    '"dataframe_records" and "dataframe_split" and KServe v1\'s "instances" are read too).'
)


def _body_shape(doc: Any) -> tuple[str, Any, str]:
    """(shape, payload, field) of a /predict body: records (a list of objects), columns
    (``{name: [values]}``), split (MLflow's ``{"columns": [...], "data": [[...]]}``) or
    matrix (rows of values in the signature's order).

    Besides modelpilot's own shapes, MLflow's scoring server bodies (``dataframe_records``,
    ``dataframe_split``) and KServe v1's / TF Serving's ``instances`` are read, so clients
    written for those servers work unchanged.

    >>> _body_shape({"instances": [{"age": 31}]})[0], _body_shape({"instances": [[31]]})[0]
    ('records', 'matrix')
    """
    if isinstance(doc, list):
        return "records", doc, "records"
    if isinstance(doc, dict):
        for key in ("records", "dataframe_records"):
            if isinstance(doc.get(key), list):
                return "records", doc[key], key
        if isinstance(doc.get("columns"), dict):
            return "columns", doc["columns"], "columns"
        if isinstance(doc.get("dataframe_split"), dict):
            return "split", doc["dataframe_split"], "dataframe_split"
        for key in ("inputs", "instances"):
            rows = doc.get(key)
            if isinstance(rows, list):
                as_records = bool(rows) and all(isinstance(row, dict) for row in rows)
                return ("records" if as_records else "matrix"), rows, key
    raise InvalidInput(PLAIN_BODIES, field="body")


def _split_columns(split: dict[str, Any]) -> dict[str, list[Any]]:
    """MLflow's ``{"columns": [names], "data": [[row], ...]}`` as ``{name: [values]}``."""
    names, data = split.get("columns"), split.get("data")
    if not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
        raise InvalidInput(
            'dataframe_split needs "columns": a list of column names.', field="dataframe_split"
        )
    if not isinstance(data, list):
        raise InvalidInput(
            'dataframe_split needs "data": a list of rows.', field="dataframe_split.data"
        )
    for index, row in enumerate(data):
        if not isinstance(row, list) or len(row) != len(names):
            raise InvalidInput(
                f"dataframe_split row {index}: expected a list of {len(names)} values (one per "
                f"column); got {orjson.dumps(row).decode()[:200]}.",
                field=f"dataframe_split.data[{index}]",
            )
    if len(set(names)) != len(names):
        raise InvalidInput(
            f"dataframe_split names a column twice: {shown(names)}.",
            field="dataframe_split.columns",
        )
    return {name: [row[i] for row in data] for i, name in enumerate(names)}


def _check_rows(payload: Any, max_rows: int, field: str) -> None:
    """413 for more rows than ``max_rows``, counted from list lengths before any validation."""
    if field == "columns":
        first = next(iter(payload.values()), None)
        rows = len(first) if isinstance(first, list) else 0
    elif field == "dataframe_split":
        data = payload.get("data")
        rows = len(data) if isinstance(data, list) else 0
    else:
        rows = len(payload)
    if rows > max_rows:
        raise PayloadTooLarge(
            f"The request has {rows:,} rows; at most {max_rows:,} are accepted per request "
            "(--max-rows). Split the batch into smaller requests.",
            field=field,
        )


def _strip_key(records: list[Any], names: list[str], key_field: str | None) -> list[Any]:
    """Drop a deployment's routing field from records when the model does not take it."""
    if key_field is None or key_field in names:
        return records
    return [
        {k: v for k, v in r.items() if k != key_field} if isinstance(r, dict) else r
        for r in records
    ]
