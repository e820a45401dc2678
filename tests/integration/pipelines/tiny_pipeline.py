"""A one-step pipeline for the trigger tests: quick, no data needed."""

from __future__ import annotations

import modelpilot as mp


@mp.step(cache=False)
def double(x: int) -> int:
    return 2 * x


@mp.pipeline
def tiny(x: int = 1) -> object:
    return double(x)


not_a_pipeline = 3
