"""Concept drift on error streams: ADWIN and Page-Hinkley."""

from __future__ import annotations

import numpy as np
import pytest

from modelpilot.errors import InvalidInput
from modelpilot.monitoring import ADWIN, PageHinkley, detect_changes


def error_stream(seed: int, before: float, after: float, n: int = 3000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.asarray(np.r_[rng.random(n) < before, rng.random(n) < after], dtype=float)


@pytest.mark.parametrize("seed", range(10))
def test_adwin_flags_an_accuracy_drop_from_90_to_70_percent_within_500_rows(seed: int) -> None:
    found = detect_changes(ADWIN(), error_stream(seed, 0.1, 0.3))
    assert found and all(i >= 3000 for i in found)  # nothing before the drop
    assert found[0] - 3000 < 500


@pytest.mark.parametrize("seed", range(10))
def test_page_hinkley_flags_the_same_drop_within_500_rows(seed: int) -> None:
    found = detect_changes(PageHinkley(), error_stream(seed, 0.1, 0.3))
    assert found and all(i >= 3000 for i in found)
    assert found[0] - 3000 < 500


def test_adwin_raises_no_alarm_on_stable_streams() -> None:
    for seed in range(10):
        assert detect_changes(ADWIN(), error_stream(seed, 0.2, 0.2, n=5000)) == []


def test_page_hinkley_false_alarms_are_rare_at_its_default_threshold() -> None:
    # PH trades false alarms for speed: at a 20 % error rate, lambda = 50 alarms on about one
    # stable 10,000-row stream in five (docs/monitoring.md); raise threshold to alarm less.
    alarmed = [
        bool(detect_changes(PageHinkley(), error_stream(s, 0.2, 0.2, n=5000))) for s in range(10)
    ]
    assert sum(alarmed) <= 3
    quiet = [
        bool(detect_changes(PageHinkley(threshold=100), error_stream(s, 0.2, 0.2, n=5000)))
        for s in range(10)
    ]
    assert sum(quiet) == 0


def test_adwin_forgets_the_old_window_after_a_change() -> None:
    adwin = ADWIN()
    detect_changes(adwin, error_stream(5, 0.1, 0.5))
    assert adwin.estimation == pytest.approx(0.5, abs=0.05)
    assert adwin.width < 3100 and adwin.n_detections >= 1  # ~all of the old 3000 rows dropped


def test_page_hinkley_can_watch_for_a_fall_too() -> None:
    found = detect_changes(PageHinkley(mode="down"), error_stream(6, 0.4, 0.1))
    assert found and found[0] >= 3000


def test_drift_detected_is_read_only_and_resets_on_the_next_update() -> None:
    ph = PageHinkley(threshold=5)
    for value in [0.0] * 50 + [1.0] * 20:
        ph.update(value)
        if ph.drift_detected:
            break
    assert ph.drift_detected, "the shift to 1.0 is detected"
    ph.update(1.0)  # the next value
    assert ph.drift_detected is False
    with pytest.raises(AttributeError):
        ph.drift_detected = False  # type: ignore[misc]


def test_bad_settings_are_refused() -> None:
    with pytest.raises(InvalidInput, match=r"ADWIN delta must be in \(0, 1\); got 2"):
        ADWIN(delta=2)
    with pytest.raises(InvalidInput, match="mode must be 'up', 'down' or 'both'; got 'sideways'"):
        PageHinkley(mode="sideways")  # type: ignore[arg-type]
