"""Pipelines that go wrong on purpose: a step that raises, one that fails once, one that
hangs, one that returns what no step may return."""

from __future__ import annotations

import time
from pathlib import Path

import modelpilot as mp


@mp.step
def prepare(x: int) -> int:
    return x + 1


@mp.step
def explode(value: int) -> int:
    print(f"about to divide {value} by zero")
    return value // 0


@mp.step
def never(value: int) -> int:
    raise AssertionError("a step after a failed one must not run")


@mp.pipeline
def failing(x: int = 1) -> object:
    return never(explode(prepare(x)))


@mp.step(retries=1)
def flaky(counter: str) -> int:
    path = Path(counter)
    seen = int(path.read_text()) if path.exists() else 0
    path.write_text(str(seen + 1))
    if seen == 0:
        raise RuntimeError("the first attempt fails on purpose")
    return seen + 1


@mp.pipeline
def retrying(counter: str) -> object:
    return flaky(counter)


@mp.step(timeout_s=0.5)
def hang() -> int:
    print("hanging", flush=True)
    time.sleep(600)
    return 1


@mp.pipeline
def hanging() -> object:
    return hang()


@mp.step(retries=2)
def wrong() -> object:
    return {1, 2}


@mp.pipeline
def wrong_type() -> object:
    return wrong()
