"""Out-of-domain flagging per predict call (``serving.domain.flag_rows``), in microseconds.

    python benchmarks/domain_flags.py

Runs after every predict call, so it is timed alone: CPU time of this thread (steadier than
wall time on a shared machine), the fastest of 15 repeats of 2,000 calls. Shapes: 20 number
columns (benchmarks/serving.py's model) at 32 rows and 1 row, and a mixed row (two numbers,
two categories); each with the domain of a 500-row training set whose every column is
nullable and never missing (the most null checks), then with no nullable column (no null
checks: also what a domain without ``never_null``, e.g. an old one, costs), each with every
value inside and with one value of the batch outside (the rare naming path).
"""

from __future__ import annotations

import time
import timeit
from collections.abc import Callable

import numpy as np
import pandas as pd

from modelpilot.models.signature import InputDomain, infer_signature
from modelpilot.serving.domain import flag_rows


def _domain(frame: pd.DataFrame, *, null_checks: bool) -> InputDomain:
    domain = infer_signature(frame).domain
    assert domain is not None
    return domain.checking_nulls_of(list(frame.columns) if null_checks else [])


def _us(call: Callable[[], object]) -> float:
    timer = timeit.Timer(call, timer=time.thread_time)
    return min(timer.repeat(15, 2000)) / 2000 * 1e6


def main() -> None:
    rng = np.random.default_rng(0)
    numbers = pd.DataFrame(rng.normal(size=(500, 20)), columns=[f"f{i}" for i in range(20)])
    mixed = pd.DataFrame(
        {
            "age": rng.integers(18, 90, 500),
            "income": rng.normal(50, 10, 500),
            "plan": rng.choice(["a", "b", "c"], 500),
            "city": rng.choice(list("wxyz"), 500),
        }
    )
    number_rows = rng.normal(size=(32, 20)).tolist()
    mixed_rows = [[int(a), float(i), p, c] for a, i, p, c in mixed.head(32).itertuples(False)]
    cases = [("20 numbers", numbers, number_rows, True), ("mixed 4", mixed, mixed_rows, False)]
    for label, frame, rows, all_numeric in cases:
        for null_checks in (True, False):
            domain = _domain(frame, null_checks=null_checks)
            for size in (32, 1):
                inside = _us(_call(domain, rows[:size], all_numeric))
                outside = [list(r) for r in rows[:size]]
                outside[0][0] = 1e12
                flagged = _us(_call(domain, outside, all_numeric))
                checks = "null checks" if null_checks else "no nulls"
                print(
                    f"{label:>10} x {size:>2} rows, {checks:<11}: {inside:6.1f} us, "
                    f"one value outside: {flagged:6.1f} us"
                )


def _call(domain: InputDomain, rows: list[list[object]], all_numeric: bool) -> Callable[[], object]:
    return lambda: flag_rows(domain, rows, all_numeric=all_numeric)


if __name__ == "__main__":
    main()
