"""Wall-clock time in integer milliseconds, the unit every stored timestamp uses."""

from __future__ import annotations

import contextlib
import re
import time


def now_ms() -> int:
    """Milliseconds since the Unix epoch.

    >>> now_ms() > 1_600_000_000_000
    True
    """
    return time.time_ns() // 1_000_000


_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?)\s*([smhdw])\s*$")
SINCE_FORMS = (
    "an ISO 8601 time such as 2026-05-01 or 2026-05-01T12:00:00+02:00 (UTC when no zone is "
    "given), a datetime, or a duration back from now such as 30m, 2h, 1d or 1w"
)


def parse_duration_s(text: str) -> float | None:
    """``30m``, ``2h``, ``1d``, ``1w``, ``45s`` as seconds; None when ``text`` is no duration.

    >>> parse_duration_s("30m"), parse_duration_s("1.5h"), parse_duration_s("yesterday")
    (1800.0, 5400.0, None)
    """
    match = _DURATION.match(text.lower())
    if match is None:
        return None
    return float(match.group(1)) * _UNIT_S[match.group(2)]


def since_ms(since: object, *, now: int | None = None, field: str = "since") -> int:
    """A ``since`` argument (ISO time, datetime, or duration back from ``now``) as epoch ms.

    One parser for every ``since=``, so each accepts the same forms and a bad value is an
    InvalidInput naming the field and those forms, not a pandas error.

    >>> since_ms("1h", now=7_200_000), since_ms("1970-01-01T00:00:01")
    (3600000, 1000)
    """
    import datetime as dt

    from modelpilot.errors import InvalidInput, shown

    reference = now_ms() if now is None else now
    if isinstance(since, dt.timedelta):
        return reference - int(since.total_seconds() * 1000)
    stamp: dt.datetime | None = None
    if isinstance(since, str):
        seconds = parse_duration_s(since)
        if seconds is not None:
            return reference - int(seconds * 1000)
        with contextlib.suppress(ValueError):  # strict ISO 8601: pandas read "-3h" as year 1
            stamp = dt.datetime.fromisoformat(since.strip())
    elif isinstance(since, dt.datetime):
        stamp = since
    elif isinstance(since, dt.date):
        stamp = dt.datetime(since.year, since.month, since.day)
    if stamp is not None:
        stamp = stamp.replace(tzinfo=dt.UTC) if stamp.tzinfo is None else stamp
        return int(stamp.timestamp() * 1000)
    raise InvalidInput(
        f"{field}={shown(since)} is not a time: expected {SINCE_FORMS}.", field=field
    )
