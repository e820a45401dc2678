"""Checks on what callers log: names, parameter values, metric values and steps.

Run at the SDK edge, before anything is buffered, so a bad point fails in the caller's
stack frame rather than later in a background flush.
"""

from __future__ import annotations

import math
import numbers
import re

from modelpilot.errors import InvalidInput, shown

MAX_KEY_CHARS = 250
MAX_PARAM_VALUE_CHARS = 6000
_KEY_RE = re.compile(r"^[A-Za-z0-9_\-. /:]+$")


def check_key(key: object, what: str) -> str:
    """A metric, param or tag name: non-empty, at most 250 characters, no odd symbols.

    >>> check_key("val/auc", "metric")
    'val/auc'
    >>> check_key("", "metric")
    Traceback (most recent call last):
    modelpilot.errors.InvalidInput: Invalid metric name '': expected 1-250 characters of letters, digits, '_', '-', '.', ' ', '/' or ':'.
    """  # noqa: E501
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_CHARS or not _KEY_RE.match(key):
        raise InvalidInput(
            f"Invalid {what} name {shown(key)}: expected 1-{MAX_KEY_CHARS} characters of "
            "letters, digits, '_', '-', '.', ' ', '/' or ':'.",
            field=what,
        )
    return key


def check_metric_value(key: str, value: object) -> float:
    """A finite real number (bools are refused: they are almost always a mistake).

    >>> check_metric_value("auc", 0.9)
    0.9
    >>> check_metric_value("loss", float("nan"))
    Traceback (most recent call last):
    modelpilot.errors.InvalidInput: Metric 'loss' must be a finite number; got nan. Log NaN or infinite losses as a tag or skip the step.
    """  # noqa: E501
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidInput(
            f"Metric {key!r} must be a finite number; got {shown(value)} ({type(value).__name__}).",
            field=key,
        )
    number = float(value)
    if not math.isfinite(number):
        raise InvalidInput(
            f"Metric {key!r} must be a finite number; got {number}. Log NaN or infinite "
            "losses as a tag or skip the step.",
            field=key,
        )
    return number


def check_step(key: str, step: object) -> int:
    """A whole number step (numpy integers allowed)."""
    if isinstance(step, bool) or not isinstance(step, numbers.Integral):
        raise InvalidInput(
            f"Step for metric {key!r} must be an integer; got {shown(step)}.", field="step"
        )
    return int(step)


def param_text(key: str, value: object) -> str:
    """Parameters are stored as text, like every tracker does; long values are refused."""
    text = value if isinstance(value, str) else str(value)
    if len(text) > MAX_PARAM_VALUE_CHARS:
        raise InvalidInput(
            f"Param {key!r} is {len(text)} characters long; at most {MAX_PARAM_VALUE_CHARS} "
            "are accepted. Log large values as an artifact instead.",
            field=key,
        )
    return text
