"""Checks on what callers log: names, parameter values, metric values, steps and free text.

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
# Names are checked with fullmatch: a pattern ending in '$' also accepts a trailing newline.
_KEY_RE = re.compile(r"[A-Za-z0-9_\-. /:]+")
# Control characters (C0, DEL, C1). NUL is refused by PostgreSQL and silently kept by SQLite;
# the others make names and values that cannot be typed or shown. Checked at the edge so every
# backend gives the same answer.
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_LAYOUT_CHARS = frozenset("\t\n\r")


def check_key(key: object, what: str) -> str:
    """A metric, param or tag name: non-empty, at most 250 characters, no odd symbols.

    >>> check_key("val/auc", "metric")
    'val/auc'
    >>> check_key("", "metric")
    Traceback (most recent call last):
    modelpilot.errors.InvalidInput: Invalid metric name '': expected 1-250 characters of letters, digits, '_', '-', '.', ' ', '/' or ':'.
    """  # noqa: E501
    if not isinstance(key, str) or len(key) > MAX_KEY_CHARS or not _KEY_RE.fullmatch(key):
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


def check_text(value: str, what: str, field: str, *, multiline: bool = False) -> str:
    """Text stored as given: no NUL or other control characters (tabs and newlines are kept
    when ``multiline``, for descriptions).

    >>> check_text("first line\\nsecond", "description", "description", multiline=True)
    'first line\\nsecond'
    >>> check_text("a\\x00b", "value of tag 'team'", "team")
    Traceback (most recent call last):
    modelpilot.errors.InvalidInput: Invalid value of tag 'team': 'a\\x00b' has control character U+0000 at position 1. Remove NUL and other control characters (descriptions may hold tabs and newlines).
    """  # noqa: E501
    for found in _CONTROL_RE.finditer(value):
        if multiline and found.group() in _LAYOUT_CHARS:
            continue
        raise InvalidInput(
            f"Invalid {what}: {shown(value)} has control character U+{ord(found.group()):04X} "
            f"at position {found.start()}. Remove NUL and other control characters "
            "(descriptions may hold tabs and newlines).",
            field=field,
        )
    return value


def param_text(key: str, value: object, what: str = "param") -> str:
    """Parameters are stored as text, like every tracker does; long values are refused."""
    text = value if isinstance(value, str) else str(value)
    check_text(text, f"value of {what} {key!r}", key)
    if len(text) > MAX_PARAM_VALUE_CHARS:
        raise InvalidInput(
            f"{what.capitalize()} {key!r} is {len(text)} characters long; at most "
            f"{MAX_PARAM_VALUE_CHARS} are accepted. Log large values as an artifact instead.",
            field=key,
        )
    return text


def check_artifact_path(path: object) -> str:
    """A run artifact path stays inside its run: relative, '/'-separated, no empty, '.' or
    '..' segments (``../x``, ``/etc/x`` and ``a//b`` are refused, not silently rewritten).

    >>> check_artifact_path("plots/roc.png")
    'plots/roc.png'
    >>> check_artifact_path("../x")
    Traceback (most recent call last):
    modelpilot.errors.InvalidInput: Invalid artifact path '../x': segment '..' would leave the run's artifacts. Use a relative path like 'plots/roc.png' with no empty, '.' or '..' segments.
    """  # noqa: E501
    if not isinstance(path, str) or not path:
        raise InvalidInput(
            f"Invalid artifact path {shown(path)}: expected a relative path like 'plots/roc.png'.",
            field="artifact_path",
        )
    check_text(path, "artifact path", "artifact_path")
    segments = path.split("/")
    problem = None
    if path.startswith("/") or "\\" in path or re.match(r"[A-Za-z]:", path):
        problem = "it is absolute or uses '\\' (paths are relative and use '/')"
    elif ".." in segments:
        problem = "segment '..' would leave the run's artifacts"
    elif "" in segments or "." in segments:
        problem = "it has an empty or '.' segment"
    if problem is not None:
        raise InvalidInput(
            f"Invalid artifact path {shown(path)}: {problem}. Use a relative path like "
            "'plots/roc.png' with no empty, '.' or '..' segments.",
            field="artifact_path",
        )
    return path


def check_run_prefix(prefix: str) -> str:
    """A run id or a prefix of one: not empty.

    >>> check_run_prefix("3f2a")
    '3f2a'
    """
    if not prefix:
        raise InvalidInput(
            "Run id is empty; give a run id or its first characters (modelpilot runs list "
            "shows the first 8 of each id).",
            field="run_id",
        )
    return prefix
