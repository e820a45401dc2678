"""Adaptive batching: batches close at size or wait, fail alone, drain, and refuse when full."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
from serving_stubs import Doubler, runtime

from modelpilot.errors import Unavailable
from modelpilot.serving import batching
from modelpilot.serving.batching import Batcher, Pending
from modelpilot.serving.runtime import BatchOutput, ModelRuntime


class Logged:
    """An after_batch hook that records what it saw, and whether answers were still pending."""

    def __init__(self) -> None:
        self.sizes: list[int] = []
        self.errors: list[BaseException | None] = []
        self.answered_early = False

    def __call__(
        self,
        rt: ModelRuntime,
        batch: list[Pending],
        output: BatchOutput | None,
        error: BaseException | None,
        seconds: float,
    ) -> None:
        self.sizes.append(sum(len(p.rows) for p in batch))
        self.errors.append(error)
        self.answered_early |= any(p.future.done() for p in batch)


def _batcher(doubler: Doubler, hook: Logged, **options: Any) -> Batcher:
    settings = {"max_batch_size": 64, "max_wait_ms": 0.0, "queue_limit": 1000, **options}
    return Batcher(
        runtime(doubler),
        executor=ThreadPoolExecutor(1),
        after_batch=hook,
        **settings,
    )


async def _ask(batcher: Batcher, age: int) -> float:
    output, offset, count = await batcher.submit([[age, 1.0]], None)
    assert count == 1
    return float(output.predictions[offset])


def test_concurrent_requests_share_one_predict_call() -> None:
    doubler, hook = Doubler(), Logged()

    async def main() -> list[float]:
        batcher = _batcher(doubler, hook, max_batch_size=10, max_wait_ms=10_000)
        batcher.start()
        started = time.perf_counter()
        answers = await asyncio.gather(*(_ask(batcher, age) for age in range(10)))
        assert time.perf_counter() - started < 5  # closed by size, not by the long wait
        await batcher.drain()
        return answers

    assert asyncio.run(main()) == [2.0 * age for age in range(10)]
    assert doubler.batch_sizes == [10]
    assert hook.sizes == [10] and not hook.answered_early  # logged before anyone is answered


def test_batches_never_exceed_max_batch_size_and_greedy_batching_takes_what_is_queued() -> None:
    doubler, hook = Doubler(), Logged()

    async def main() -> None:
        batcher = _batcher(doubler, hook, max_batch_size=4, max_wait_ms=0)
        batcher.start()
        await asyncio.gather(*(_ask(batcher, age) for age in range(10)))
        await batcher.drain()

    asyncio.run(main())
    assert doubler.batch_sizes == [4, 4, 2]


def test_a_lone_request_waits_at_most_max_wait_ms() -> None:
    doubler, hook = Doubler(), Logged()

    async def main() -> float:
        batcher = _batcher(doubler, hook, max_batch_size=100, max_wait_ms=200)
        batcher.start()
        started = time.perf_counter()
        await _ask(batcher, 1)
        elapsed = time.perf_counter() - started
        await batcher.drain()
        return elapsed

    # The batch closes at its deadline: not before, and not much after (one trivial predict
    # and an event-loop turn; 250 ms of slack for a busy machine, about the claim itself).
    assert 0.2 <= asyncio.run(main()) < 0.2 + 0.25
    assert doubler.batch_sizes == [1]


def test_a_failing_request_fails_alone_and_its_neighbours_are_answered() -> None:
    doubler, hook = Doubler(), Logged()

    async def main() -> list[float | BaseException]:
        batcher = _batcher(doubler, hook, max_batch_size=3, max_wait_ms=10_000)
        batcher.start()
        results = await asyncio.gather(
            _ask(batcher, 1), _ask(batcher, -1), _ask(batcher, 3), return_exceptions=True
        )
        await batcher.drain()
        return list(results)

    first, failed, third = asyncio.run(main())
    assert (first, third) == (2.0, 6.0)
    assert isinstance(failed, RuntimeError) and str(failed) == "negative age"
    assert doubler.batch_sizes == [3, 1, 1, 1]  # the batch, then each request alone
    assert [e is not None for e in hook.errors] == [False, True, False]


def test_a_full_queue_answers_unavailable_at_once() -> None:
    doubler, hook = Doubler(), Logged()

    async def main() -> list[float]:
        batcher = _batcher(doubler, hook, queue_limit=2)  # collector not started yet
        waiting = [asyncio.create_task(_ask(batcher, age)) for age in (1, 2)]
        await asyncio.sleep(0)  # let both tasks enqueue (a scheduling step, not a wait)
        assert batcher.queued_rows == 2
        with pytest.raises(Unavailable, match=r"Model m/1 is overloaded: 2 rows are already"):
            await _ask(batcher, 3)
        await batcher.drain()  # answers what was queued
        return [await task for task in waiting]

    assert asyncio.run(main()) == [2.0, 4.0]
    assert Unavailable.http_status == 503


class Gate(Doubler):
    """A Doubler whose predict blocks until released, so a batch can be caught mid-flight."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        self.entered.set()
        assert self.release.wait(30)
        return super().predict(frame)


def test_drain_while_a_batch_is_predicting_answers_it_and_everything_queued() -> None:
    gate, hook = Gate(), Logged()

    async def main() -> list[float]:
        batcher = _batcher(gate, hook, max_batch_size=2)
        batcher.start()
        loop = asyncio.get_running_loop()
        in_flight = [asyncio.create_task(_ask(batcher, age)) for age in (1, 2)]
        await loop.run_in_executor(None, gate.entered.wait, 30)  # the batch is predicting
        queued = [asyncio.create_task(_ask(batcher, age)) for age in (3, 4, 5)]
        draining = asyncio.create_task(batcher.drain())
        await asyncio.sleep(0)  # drain has started (a scheduling step, not a wait)
        with pytest.raises(Unavailable, match="is shutting down"):
            await _ask(batcher, 6)  # nothing new is accepted once draining
        gate.release.set()
        await asyncio.wait_for(draining, 30)
        return [await asyncio.wait_for(task, 30) for task in in_flight + queued]

    assert asyncio.run(main()) == [2.0, 4.0, 6.0, 8.0, 10.0]
    assert sum(gate.batch_sizes) == 5


def test_a_log_that_cannot_be_written_fails_the_batch_with_503_and_the_batcher_lives_on() -> None:
    doubler = Doubler()
    calls: list[int] = []

    def broken_log(*args: Any) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise OSError("disk full")

    async def main() -> tuple[BaseException | float, float]:
        batcher = Batcher(
            runtime(doubler),
            max_batch_size=8,
            max_wait_ms=0,
            queue_limit=100,
            executor=ThreadPoolExecutor(1),
            after_batch=broken_log,
        )
        batcher.start()
        (first,) = await asyncio.gather(_ask(batcher, 1), return_exceptions=True)
        second = await _ask(batcher, 2)
        await batcher.drain()
        return first, second

    first, second = asyncio.run(main())
    assert isinstance(first, Unavailable)
    assert "could not be recorded (OSError: disk full); nothing in it is acknowledged" in str(first)
    assert second == 4.0


def test_requests_queued_a_few_loop_ticks_apart_share_a_batch_without_any_wait() -> None:
    # HTTP requests read together reach the queue one or two event-loop ticks apart; with
    # max_wait_ms=0 they must still form one batch, not one batch each.
    doubler, hook = Doubler(), Logged()

    async def after_ticks(batcher: Batcher, ticks: int, age: int) -> float:
        for _ in range(ticks):
            await asyncio.sleep(0)
        return await _ask(batcher, age)

    async def main() -> list[float]:
        batcher = _batcher(doubler, hook, max_batch_size=64, max_wait_ms=0)
        batcher.start()
        answers = await asyncio.gather(*(after_ticks(batcher, t, t) for t in range(3)))
        await batcher.drain()
        return answers

    assert asyncio.run(main()) == [0.0, 2.0, 4.0]
    assert doubler.batch_sizes == [3]


class ThreadRecorder(Doubler):
    """A Doubler that records which thread ran each predict."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: list[str] = []

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        self.threads.append(threading.current_thread().name)
        return super().predict(frame)


def _one_batch_each(recorder: ThreadRecorder, batches: int, inline_below_ms: float) -> str:
    """Ask ``batches`` requests one after the other (a batch each); the loop thread's name."""

    async def main() -> str:
        batcher = _batcher(recorder, Logged(), inline_below_ms=inline_below_ms)
        batcher.start()
        for age in range(batches):
            assert await _ask(batcher, age) == 2.0 * age
        await batcher.drain()
        return threading.current_thread().name

    return asyncio.run(main())


@pytest.mark.parametrize(("inline_below_ms", "on_loop"), [(60_000.0, True), (0.0, False)])
def test_quick_models_predict_on_the_event_loop_once_timed_and_others_in_the_worker(
    inline_below_ms: float, on_loop: bool
) -> None:
    recorder = ThreadRecorder()
    loop_thread = _one_batch_each(recorder, 3, inline_below_ms)
    first, *later = recorder.threads
    assert first != loop_thread  # the first batch has no timing yet: the worker thread
    assert later == [loop_thread if on_loop else first] * 2


class WarmingUp(ThreadRecorder):
    """Slow on its first batch only, as a runtime that compiles or allocates on first use."""

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        if not self.threads:
            time.sleep(0.05)  # the model's own cost, not a wait for anything
        return super().predict(frame)


def test_a_model_slow_only_at_first_predicts_on_the_event_loop_from_its_second_batch() -> None:
    """The first batch (50 ms, no timing yet) runs in the worker; the next is timed on the loop
    (a worker-thread time would include the waits for the GIL) and, quick, stays there."""
    recorder = WarmingUp()
    loop_thread = _one_batch_each(recorder, 4, inline_below_ms=20.0)
    assert recorder.threads[0] != loop_thread
    assert recorder.threads[1:] == [loop_thread] * 3


def test_a_slow_model_is_timed_on_the_loop_again_after_a_wait_that_doubles(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [100.0]
    monkeypatch.setattr(batching, "time", SimpleNamespace(perf_counter=lambda: clock[0]))
    batcher = _batcher(Doubler(), Logged(), inline_below_ms=2.0)
    batcher.predict_s = 0.010  # 10 ms a batch: the worker thread's
    decisions = []
    for now in (100.0, 100.5, 101.0, 102.0, 103.0, 105.0, 200.0):
        clock[0] = now
        probe = batcher._inline()
        decisions.append(probe)
        if probe:
            batcher.predict_s = 0.010  # the probe measured it slow again
    # at once, then after 1 s, 2 s, 4 s ... each probe finding it slow
    assert decisions == [True, False, True, False, True, False, True]
    assert batcher._reprobe_wait_s == 8.0


def test_worker_thread_only_never_predicts_on_the_loop_even_to_re_time_a_model() -> None:
    batcher = _batcher(Doubler(), Logged(), inline_below_ms=0.0)  # `--inline-predict-ms 0`
    batcher.predict_s = 0.010
    assert [batcher._inline() for _ in range(3)] == [False] * 3
