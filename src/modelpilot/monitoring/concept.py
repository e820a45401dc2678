"""Concept drift on a stream: ADWIN and Page-Hinkley, in streaming form.

Feed one value at a time (typically 1 for a wrong prediction and 0 for a right one, once the
label arrives) with ``update(x)``; read ``drift_detected`` afterwards. It is True only right
after the update that detected a change, like river's detectors; ``n_detections`` counts
them. Both are compact re-implementations, not wrappers:

* ADWIN keeps a window of recent values in exponential-histogram buckets and drops its oldest
  part whenever the means of two sub-windows differ by more than a Hoeffding/Bernstein bound
  at confidence ``delta`` (A. Bifet and R. Gavaldà, "Learning from time-changing data with
  adaptive windowing", SIAM SDM 2007; the bound is the one in MOA and river's ADWIN).
* Page-Hinkley accumulates deviations from the running mean beyond a tolerated magnitude
  ``delta`` and alarms when the accumulated sum rises more than ``threshold`` above its
  minimum (E. S. Page, "Continuous inspection schemes", Biometrika 41, 1954).

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> errors = np.r_[rng.random(1000) < 0.1, rng.random(1000) < 0.4].astype(float)
>>> found = detect_changes(ADWIN(), errors)
>>> len(found) >= 1 and 1000 <= found[0] < 1300
True
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, Protocol

from modelpilot.errors import InvalidInput, shown


class StreamDetector(Protocol):
    """Streaming form of a drift detector."""

    def update(self, x: float) -> None:
        """Add one observation."""
        ...

    @property
    def drift_detected(self) -> bool:
        """Whether the last update detected a change."""
        ...


@dataclass
class _Bucket:
    n: int
    total: float
    m2: float  # sum of squared deviations from the bucket mean

    @property
    def mean(self) -> float:
        return self.total / self.n


def _merge(a: _Bucket, b: _Bucket) -> _Bucket:
    n = a.n + b.n
    gap = a.mean - b.mean
    return _Bucket(n, a.total + b.total, a.m2 + b.m2 + a.n * b.n * gap * gap / n)


class ADWIN:
    """ADaptive WINdowing change detector.

    ``delta`` is the confidence (smaller: fewer false alarms, slower detection); the window is
    checked for a cut every ``clock`` updates once it holds ``grace_period`` values; each side
    of a cut needs ``min_window_length`` values.

    >>> adwin = ADWIN()
    >>> detect_changes(adwin, [0.0] * 500 + [1.0] * 100)[0], adwin.width < 600
    (511, True)
    """

    def __init__(
        self,
        *,
        delta: float = 0.002,
        clock: int = 32,
        max_buckets: int = 5,
        min_window_length: int = 5,
        grace_period: int = 10,
    ) -> None:
        if not 0 < delta < 1:
            raise InvalidInput(f"ADWIN delta must be in (0, 1); got {shown(delta)}.")
        self.delta = delta
        self.clock = clock
        self.max_buckets = max_buckets
        self.min_window_length = min_window_length
        self.grace_period = grace_period
        self._buckets: list[_Bucket] = []  # oldest first; sizes never grow towards the end
        self._width = 0
        self._total = 0.0
        self._m2 = 0.0
        self._seen = 0
        self._drift = False
        self.n_detections = 0

    @property
    def drift_detected(self) -> bool:
        """Whether the last update shrank the window because the mean changed."""
        return self._drift

    @property
    def width(self) -> int:
        """Number of values in the current window."""
        return self._width

    @property
    def estimation(self) -> float:
        """Mean of the current window (0 when empty)."""
        return self._total / self._width if self._width else 0.0

    def update(self, x: float) -> None:
        """Add one value; may drop the window's oldest part if the mean changed."""
        value = float(x)
        self._seen += 1
        old_mean = self.estimation
        self._width += 1
        self._total += value
        self._m2 += (value - old_mean) * (value - self.estimation)
        self._buckets.append(_Bucket(1, value, 0.0))
        self._compress()
        self._drift = False
        if self._seen % self.clock == 0 and self._width > self.grace_period:
            while self._cut_once():
                self._drift = True
            if self._drift:
                self.n_detections += 1

    def _compress(self) -> None:
        # Merge the two oldest buckets of a size once more than max_buckets share it.
        size = 1
        while True:
            same = [i for i, b in enumerate(self._buckets) if b.n == size]
            if len(same) <= self.max_buckets:
                return
            first, second = same[0], same[1]
            self._buckets[first] = _merge(self._buckets[first], self._buckets[second])
            del self._buckets[second]
            size *= 2

    def _cut_once(self) -> bool:
        n0, total0 = 0, 0.0
        for bucket in self._buckets[:-1]:
            n0 += bucket.n
            total0 += bucket.total
            n1 = self._width - n0
            if n0 < self.min_window_length or n1 < self.min_window_length:
                continue
            if self._differs(n0, n1, total0 / n0 - (self._total - total0) / n1):
                self._drop_oldest()
                return True
        return False

    def _differs(self, n0: int, n1: int, mean_gap: float) -> bool:
        variance = self._m2 / self._width
        delta_prime = math.log(2 * math.log(self._width) / self.delta)
        m_recip = 1 / (n0 - self.min_window_length + 1) + 1 / (n1 - self.min_window_length + 1)
        epsilon = math.sqrt(2 * m_recip * variance * delta_prime) + 2 / 3 * delta_prime * m_recip
        return abs(mean_gap) >= epsilon

    def _drop_oldest(self) -> None:
        oldest = self._buckets.pop(0)
        rest_n = self._width - oldest.n
        rest_mean = (self._total - oldest.total) / rest_n
        gap = oldest.mean - rest_mean
        self._m2 = max(self._m2 - oldest.m2 - oldest.n * rest_n * gap * gap / self._width, 0.0)
        self._width = rest_n
        self._total -= oldest.total


class PageHinkley:
    """Page-Hinkley test for a change in the mean of a stream.

    ``mode`` is ``"up"`` (the mean rises: the default, for error streams), ``"down"`` or
    ``"both"``. ``delta`` is the tolerated change, ``threshold`` the alarm level of the
    cumulative sum, ``alpha`` a forgetting factor and ``min_instances`` a warm-up. After an
    alarm the test starts afresh.

    >>> ph = PageHinkley()
    >>> for x in [0.0] * 300 + [1.0] * 100:
    ...     ph.update(x)
    >>> ph.n_detections
    1
    """

    def __init__(
        self,
        *,
        delta: float = 0.005,
        threshold: float = 50.0,
        alpha: float = 0.9999,
        min_instances: int = 30,
        mode: Literal["up", "down", "both"] = "up",
    ) -> None:
        if mode not in ("up", "down", "both"):
            raise InvalidInput(
                f"Page-Hinkley mode must be 'up', 'down' or 'both'; got {shown(mode)}."
            )
        self.delta = delta
        self.threshold = threshold
        self.alpha = alpha
        self.min_instances = min_instances
        self.mode = mode
        self.n_detections = 0
        self._drift = False
        self._reset()

    def _reset(self) -> None:
        self._n = 0
        self._mean = 0.0
        self._sum_up = self._min_up = 0.0
        self._sum_down = self._min_down = 0.0

    @property
    def drift_detected(self) -> bool:
        """Whether the last update raised the alarm."""
        return self._drift

    @property
    def statistic(self) -> float:
        """Current Page-Hinkley statistic (compared with ``threshold``)."""
        up = self._sum_up - self._min_up
        down = self._sum_down - self._min_down
        return {"up": up, "down": down, "both": max(up, down)}[self.mode]

    def update(self, x: float) -> None:
        """Add one value."""
        if self._drift:
            self._reset()
        value = float(x)
        self._n += 1
        self._mean += (value - self._mean) / self._n
        self._sum_up = self.alpha * self._sum_up + (value - self._mean - self.delta)
        self._sum_down = self.alpha * self._sum_down + (self._mean - value - self.delta)
        self._min_up = min(self._min_up, self._sum_up)
        self._min_down = min(self._min_down, self._sum_down)
        self._drift = self._n >= self.min_instances and self.statistic > self.threshold
        if self._drift:
            self.n_detections += 1


def detect_changes(detector: StreamDetector, stream: Iterable[float]) -> list[int]:
    """Feed a whole stream and return the 0-based positions where drift was detected.

    >>> detect_changes(PageHinkley(threshold=5), [0.0] * 50 + [1.0] * 20)
    [55]
    """
    found = []
    for position, value in enumerate(stream):
        detector.update(value)
        if detector.drift_detected:
            found.append(position)
    return found
