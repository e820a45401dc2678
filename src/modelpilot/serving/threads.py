"""How many native (OpenMP/BLAS) threads a model's predict call may use.

A module of its own so that the batch scorers (threads here, actors on Ray) cap their threads
without importing the data plane's HTTP stack (~0.5 s of every Ray actor's start).
"""

from __future__ import annotations


def limit_native_threads(threads: int) -> None:
    """Cap OpenMP/BLAS threads for the calling thread's predict calls (a thread initializer).

    Each scoring thread is one core's worth of work; a model that also spread over every
    core from each thread would oversubscribe the machine.
    """
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads)


__all__ = ["limit_native_threads"]
