"""Adaptive batching: requests queue per model; a batch closes at ``max_batch_size`` rows or
``max_wait_ms`` after its first request, whichever comes first; one predict serves them all.

Before closing a batch the collector lets the event loop run a few more ticks (SETTLE_TICKS):
requests whose bytes were read in the same tick reach the queue one or two ticks later, and
would otherwise start a second, half-sized batch. The collector waits on the queue with a
deadline (an event, never a sleep). A batch whose predict is known to be quick (recent average
under ``inline_below_ms``) runs on the event loop itself; a slower one runs in the worker
thread so the loop keeps parsing requests meanwhile, and is timed on the loop again now and
then (``Batcher._inline``). Results fan back out through futures. A
full queue refuses new work with 503 at once.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import operator
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

from modelpilot.errors import Unavailable
from modelpilot.serving.runtime import BatchOutput, ModelRuntime
from modelpilot.serving.validation import Row

# Why 3: uvicorn reads a request in one tick and its ASGI task queues the rows in the next;
# one more tick covers a request whose body came in a second packet. Measured with
# benchmarks/serving.py at c=32 on one core: batches of ~32 rows instead of two alternating
# halves of ~16, 8.1k -> 11.3k req/s; a lone request pays three ticks (microseconds).
SETTLE_TICKS = 3

# How fast the average predict time follows the latest batch.
_EWMA_WEIGHT = 0.2

# A model whose batches run in the worker thread predicts one batch on the event loop again
# after this long, doubling each time it is still slow, up to REPROBE_MAX_S (see _inline).
REPROBE_FIRST_S = 1.0
REPROBE_MAX_S = 60.0

Outcome = tuple[BatchOutput, int, int] | BaseException
AfterBatch = Callable[
    [ModelRuntime, list["Pending"], BatchOutput | None, BaseException | None, float], None
]
# Fans a batch's output (or its requests' outcomes, one each) out to their futures.
Resolve = Callable[[list["Pending"], BatchOutput | list[Outcome]], None]


class Pending(NamedTuple):
    """One request's rows waiting for their batch.

    A tuple, made on the hot path with ``_new_pending((rows, future, context, enqueued,
    opening))``: ``tuple.__new__`` called from C, without the Python-level ``__new__`` (or a
    dataclass's ``__init__``) that a call to the class runs, once per request.

    ``opening``: for a request queued whole, the first bytes of its answer; its future then
    resolves to the whole answer, made by the batcher's ``resolve`` (see
    :meth:`Batcher.submit`). None: it resolves to (output, offset, count)."""

    rows: list[Row]
    future: asyncio.Future[Any]
    context: Any
    enqueued: float
    opening: bytes | None = None


_new_pending = functools.partial(tuple.__new__, Pending)
_rows_of = operator.attrgetter("rows")  # (in C: the batch loops below run per request)


class Batcher:
    """Batches requests for one model runtime."""

    def __init__(
        self,
        runtime: ModelRuntime,
        *,
        max_batch_size: int,
        max_wait_ms: float,
        queue_limit: int,
        executor: ThreadPoolExecutor,
        after_batch: AfterBatch,
        inline_below_ms: float = 0.0,
        failed: Callable[[ModelRuntime, BaseException, Any], BaseException] = lambda r, e, c: e,
        resolve: Resolve | None = None,
    ) -> None:
        self.runtime = runtime
        self.inline_below_s = inline_below_ms / 1000
        # Moving average of one batch's predict time, measured on the event loop (see _inline).
        self.predict_s: float | None = None
        self._reprobe_at = 0.0  # perf_counter time after which a worker-thread batch re-probes
        self._reprobe_wait_s = REPROBE_FIRST_S
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_ms / 1000
        self.queue_limit = queue_limit
        self.executor = executor
        self.after_batch = after_batch
        self.failed = failed  # what a request whose predict raised gets (by the default resolve)
        self.resolve = resolve or self._resolve
        # A deque and one wake-up future instead of asyncio.Queue: the queue's Python-level
        # put/get and getter bookkeeping cost ~1.5 us a request on the hot path, and only the
        # collector ever waits here.
        self.queue: deque[Pending | None] = deque()  # None: stop marker
        self._wakeup: asyncio.Future[None] | None = None
        self.queued_rows = 0
        self.closing = False
        self.task: asyncio.Task[None] | None = None
        # The serving loop, kept at start: on Python 3.11 every asyncio.get_running_loop()
        # makes a getpid() system call (a fork check), once per request here otherwise.
        self.loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        """Start the collector task on the running loop."""
        self.loop = asyncio.get_running_loop()
        self.task = self.loop.create_task(self._collect(), name=f"batcher {self.runtime.key}")

    def submit(
        self,
        rows: list[Row],
        context: Any,
        enqueued: float | None = None,
        opening: bytes | None = None,
    ) -> asyncio.Future[Any]:
        """Queue rows; the future resolves to (batch output, start offset, row count), or,
        given the ``opening`` of its answer, to what ``resolve`` answers the request with (the
        data plane's whole answer: made in the batch's one fan-out loop, the request resumes
        with nothing left to do).
        ``enqueued``: when the request started, if before now.

        A plain function returning the future, not a coroutine: the caller awaits the future
        itself, one coroutine level fewer to create and resume per request (~1 us).
        """
        count = len(rows)
        if self.closing or self.queued_rows + count > self.queue_limit:
            raise self._refusal()
        future = (self.loop or asyncio.get_running_loop()).create_future()
        started = time.perf_counter() if enqueued is None else enqueued
        # _put, inlined: this runs once per request
        self.queue.append(_new_pending((rows, future, context, started, opening)))
        self.queued_rows += count
        wakeup = self._wakeup
        if wakeup is not None and not wakeup.done():
            wakeup.set_result(None)
        return future

    def _refusal(self) -> Unavailable:
        if self.closing:
            return Unavailable(
                f"Model {self.runtime.key} is shutting down or being unloaded. Retry: another "
                "version or replica answers."
            )
        return Unavailable(
            f"Model {self.runtime.key} is overloaded: {self.queued_rows} rows are already "
            "queued. Retry shortly, or add replicas."
        )

    def _put(self, item: Pending | None) -> None:
        self.queue.append(item)
        wakeup = self._wakeup
        if wakeup is not None and not wakeup.done():
            wakeup.set_result(None)

    async def _wait(self) -> None:
        """Until something is queued (the caller checked that nothing is)."""
        self._wakeup = (self.loop or asyncio.get_running_loop()).create_future()
        try:
            await self._wakeup
        finally:
            self._wakeup = None

    async def drain(self) -> None:
        """Refuse new work, answer everything queued or predicting, then stop the collector.

        The collector is never cancelled mid-batch (that would strand the batch's requests):
        it sees the stop marker after the last queued request and returns.
        """
        self.closing = True
        if self.task is None:
            while self.queue:
                item = self.queue.popleft()
                if item is not None:
                    await self._serve_one_batch(item)
            return
        self._put(None)
        await asyncio.shield(self.task)

    async def _collect(self) -> None:
        while True:
            if not self.queue:
                await self._wait()
            first = self.queue.popleft()
            if first is None or await self._serve_one_batch(first):
                return

    async def _serve_one_batch(self, first: Pending) -> bool:
        """Collect a batch starting with ``first`` and answer it; True once the stop marker
        has been seen (the batch is still answered)."""
        batch = [first]
        size = len(first.rows)
        deadline = first.enqueued + self.max_wait_s
        stopping = False
        while size < self.max_batch_size:
            if not self.queue:
                await self._settle()
            if not self.queue:
                remaining = deadline - time.perf_counter()
                if remaining <= 0 or self.closing:
                    break
                try:
                    await asyncio.wait_for(self._wait(), remaining)
                except TimeoutError:
                    break
            if self.queued_rows <= self.max_batch_size and not self.closing:
                # Everything queued fits (queued_rows counts this batch's rows too, and no stop
                # marker is queued before closing): take it at once, not request by request.
                batch.extend(self.queue)  # type: ignore[arg-type]
                self.queue.clear()
                size = self.queued_rows
                continue
            item = self.queue.popleft()
            if item is None:
                stopping = True
                break
            batch.append(item)
            size += len(item.rows)
        self.queued_rows -= size
        loop = self.loop or asyncio.get_running_loop()
        outcome: BatchOutput | list[Outcome]
        try:
            if self._inline():
                outcome = self._predict_and_log(batch, on_loop=True)
            else:
                outcome = await loop.run_in_executor(self.executor, self._predict_and_log, batch)
        except Exception as exc:  # predict errors are outcomes; this is the log or metrics
            failure = Unavailable(
                f"Model {self.runtime.key}: the batch was predicted but could not be recorded "
                f"({type(exc).__name__}: {exc}); nothing in it is acknowledged. Retry shortly."
            )
            outcome = [failure] * len(batch)
        try:
            self.resolve(batch, outcome)
        except Exception as exc:  # a bug in resolve: no request may be left waiting
            for item in batch:
                if not item.future.done():
                    item.future.set_exception(exc)
        return stopping

    def _resolve(self, batch: list[Pending], outcome: BatchOutput | list[Outcome]) -> None:
        """Each request its slice of the batch's output, or its own outcome."""
        if isinstance(outcome, BatchOutput):  # the whole batch predicted: each its own slice
            counts = list(map(len, map(_rows_of, batch)))
            offsets = itertools.accumulate(counts, initial=0)
            for item, offset, count in zip(batch, offsets, counts, strict=False):  # offsets: +1
                future = item.future
                if not future.done():  # (a request whose client left is cancelled)
                    future.set_result((outcome, offset, count))
            return
        for item, result in zip(batch, outcome, strict=True):
            if item.future.done():
                continue
            if isinstance(result, BaseException):
                item.future.set_exception(self.failed(self.runtime, result, item.context))
            else:
                item.future.set_result(result)

    def _inline(self) -> bool:
        """Whether this batch predicts on the event loop: when the model's batches are known
        to be quick (``predict_s`` under ``inline_below_s``), and now and then for a model
        known to be slow, to measure it again.

        Only a batch predicted on the loop measures what matters here (how long it holds the
        loop): in the worker thread the wall time includes the waits for the GIL while the
        loop runs (up to its 5 ms switch interval each), so a model whose first batch was slow
        (a runtime warming up) used to stay in the worker thread for good, its times inflated
        by the very hand-off it was measured in. A slow model is re-measured after 1 s, then
        after twice as long each time it is still slow (at most every 60 s): a 50 ms model
        then holds the loop 50 ms once a minute.
        """
        if self.predict_s is None or not self.inline_below_s:  # 0: always the worker thread
            return False
        if self.predict_s < self.inline_below_s:
            return True
        now = time.perf_counter()
        if now < self._reprobe_at:
            return False
        if self._reprobe_at:  # a re-probe: the next one waits twice as long if it is slow
            self._reprobe_wait_s = min(self._reprobe_wait_s * 2, REPROBE_MAX_S)
        self._reprobe_at = now + self._reprobe_wait_s
        self.predict_s = None  # the probe's own time replaces the stale average
        return True

    async def _settle(self) -> None:
        """Yield up to SETTLE_TICKS loop ticks, stopping as soon as something is queued."""
        for _ in range(SETTLE_TICKS):
            await asyncio.sleep(0)  # one event-loop tick, not a timed wait
            if self.queue:
                return

    def _predict_and_log(
        self, batch: list[Pending], on_loop: bool = False
    ) -> BatchOutput | list[Outcome]:
        """Worker thread (or the loop, ``on_loop``): one predict for the batch (its output); if
        it fails, each request alone (an outcome each).

        Retrying one by one keeps a single bad request from failing the others that happened
        to share its batch. Results and errors are logged (and fsynced in sync mode) here,
        before any future resolves. The predict time feeds ``predict_s`` when measured on the
        loop, or when nothing is known yet (see _inline).
        """
        started = time.perf_counter()
        rows = list(itertools.chain.from_iterable(map(_rows_of, batch)))
        try:
            output = self.runtime.predict_rows(rows)
        except Exception as exc:
            if len(batch) == 1:
                self.after_batch(self.runtime, batch, None, exc, time.perf_counter() - started)
                return [exc]
            return [self._alone(item) for item in batch]
        seconds = time.perf_counter() - started
        if self.predict_s is None:
            self.predict_s = seconds
        elif on_loop:
            self.predict_s += _EWMA_WEIGHT * (seconds - self.predict_s)
        if on_loop and self.predict_s < self.inline_below_s:
            self._reprobe_at, self._reprobe_wait_s = 0.0, REPROBE_FIRST_S  # quick again
        self.after_batch(self.runtime, batch, output, None, seconds)
        return output

    def _alone(self, item: Pending) -> Outcome:
        """One request of a failed batch, predicted (and logged) on its own."""
        outcome = self._predict_and_log([item])
        return (outcome, 0, len(item.rows)) if isinstance(outcome, BatchOutput) else outcome[0]
