"""The ``out_of_domain_fields`` column of the prediction log: which fields of a row were
outside the model's input domain, and how.

Written as ``column:kind`` pairs joined by commas (``age:out_of_range,plan:unseen_category``).
Rows logged before the kind was kept hold the bare names (``age,plan``); they read back with
kind None.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

DomainFlagKind = Literal["unseen_category", "out_of_range", "unexpected_null"]
DOMAIN_FLAG_KINDS: tuple[DomainFlagKind, ...] = (
    "unseen_category",  # a string not in the training data's set of values
    "out_of_range",  # a number beyond the training min/max by more than the range
    "unexpected_null",  # missing in a column that had no missing value in training
)


def format_domain_fields(flags: Iterable[tuple[str, str]]) -> str:
    """The column's text for one row's ``(column, kind)`` flags.

    >>> format_domain_fields([("age", "out_of_range"), ("plan", "unseen_category")])
    'age:out_of_range,plan:unseen_category'
    """
    return ",".join(f"{column}:{kind}" for column, kind in flags)


def parse_domain_fields(text: str | None) -> list[tuple[str, str | None]]:
    """``(column, kind)`` per flagged field; kind is None in rows logged before kinds were.

    >>> parse_domain_fields("age:out_of_range,plan:unseen_category")
    [('age', 'out_of_range'), ('plan', 'unseen_category')]
    >>> parse_domain_fields("age,plan"), parse_domain_fields(None)
    ([('age', None), ('plan', None)], [])
    """
    if not text:
        return []
    flags: list[tuple[str, str | None]] = []
    for item in text.split(","):
        column, _, kind = item.rpartition(":")
        if column and kind in DOMAIN_FLAG_KINDS:
            flags.append((column, kind))
        else:  # an old row's bare name (which may itself hold a colon)
            flags.append((item, None))
    return flags
