"""Downsampling a metric series for a chart: min/max buckets.

A chart a few hundred pixels wide cannot show more than a few thousand points, and sending a
million points to a browser takes seconds. Min/max buckets keep what the eye looks for in a
training curve (spikes, dips, the range in each stretch) where averaging or striding would
flatten a spike into nothing: the points are split into equal-count buckets and each bucket
keeps its lowest and its highest point, in their original order. The first and last points
are always kept, so the line starts and ends where the data does.

The result is a subsequence of the input: no value is invented, the global minimum and
maximum survive, and a series already small enough comes back unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from modelpilot.errors import InvalidInput

MAX_CHART_POINTS = 2000  # per series; a 1000 px wide chart shows two points per pixel column
_MIN_POINTS = 4  # first, last and one bucket's min and max


def downsample_min_max(
    xs: Sequence[float], ys: Sequence[float], max_points: int = MAX_CHART_POINTS
) -> tuple[list[float], list[float]]:
    """At most ``max_points`` of the points ``(xs[i], ys[i])``, keeping each bucket's min
    and max and the first and last point; ``xs`` are expected in drawing order.

    >>> xs = list(range(10))
    >>> downsample_min_max(xs, [0, 5, 1, 1, 9, 1, 1, -3, 1, 2], max_points=6)
    ([0.0, 2.0, 4.0, 5.0, 7.0, 9.0], [0.0, 1.0, 9.0, 1.0, -3.0, 2.0])
    """
    if len(xs) != len(ys):
        raise InvalidInput(
            f"A series needs one y per x; got {len(xs)} x values and {len(ys)} y values.",
            field="ys",
        )
    if max_points < _MIN_POINTS:
        raise InvalidInput(
            f"max_points must be at least {_MIN_POINTS} (first, last, one min and one max); "
            f"got {max_points}.",
            field="max_points",
        )
    x = np.asarray(xs, dtype=float)
    y = np.asarray(ys, dtype=float)
    if len(x) <= max_points:
        return x.tolist(), y.tolist()
    keep = _bucket_extremes(y, (max_points - 2) // 2)
    return x[keep].tolist(), y[keep].tolist()


def _bucket_extremes(y: np.ndarray, buckets: int) -> np.ndarray:
    """Indices to keep: 0, each interior bucket's argmin and argmax (in index order, once
    when they coincide), and the last index."""
    n = len(y)
    edges = np.linspace(1, n - 1, buckets + 1).astype(np.int64)
    chosen = [np.array([0, n - 1])]
    starts, ends = edges[:-1], edges[1:]
    sizes = ends - starts
    width = int(sizes.max())
    # pad each bucket to the widest with its own first value, then argmin/argmax per row
    last = np.maximum(sizes - 1, 0)[:, None]
    offsets = starts[:, None] + np.minimum(np.arange(width)[None, :], last)
    rows = y[offsets]
    filled = sizes > 0
    chosen.append((offsets[np.arange(buckets), rows.argmin(axis=1)])[filled])
    chosen.append((offsets[np.arange(buckets), rows.argmax(axis=1)])[filled])
    return np.unique(np.concatenate(chosen))
