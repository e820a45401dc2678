"""Races between processes on one database, in threads: each worker gets its own
:class:`~modelpilot.store.Store` on the same URI (its own connections, as another process
would have) and all start together at a barrier, so their transactions overlap."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from modelpilot.store import Store

T = TypeVar("T")


def race_on_stores(
    uri: str, work: Callable[[Store, int], T], *, workers: int = 2, timeout_s: float = 120
) -> list[T]:
    """``work(store, slot)`` for slots 0 to ``workers - 1`` at once; the results by slot.
    The first error a worker raised is raised here (after all of them ended)."""
    barrier = threading.Barrier(workers)
    results: dict[int, T] = {}
    errors: list[BaseException] = []

    def worker(slot: int) -> None:
        store = Store.open(uri)
        try:
            barrier.wait(timeout=30)
            results[slot] = work(store, slot)
        except BaseException as exc:
            errors.append(exc)
        finally:
            store.close()

    threads = [threading.Thread(target=worker, args=(slot,)) for slot in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout_s)
    if errors:
        raise errors[0]
    assert len(results) == workers, f"{workers - len(results)} worker(s) still running"
    return [results[slot] for slot in range(workers)]
