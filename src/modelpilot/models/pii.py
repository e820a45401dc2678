"""Personal data in a model's inputs: found by column name and by the input example's values.

``log_model`` runs this on the input example so the person registering a model learns, before
it serves, which inputs the prediction log would store verbatim, with a suggested logging
policy for each (``modelpilot logs policy set``).

Names are matched as words (``customer_email``, ``phoneNumber``, ``ssn``), never as substrings
(``nin`` is not found in ``dining``). Values are matched on text columns only: a column counts
when at least half of its non-empty values match. Numbers in numeric columns are never taken
for personal data by value (a 16-digit float is a feature far more often than a card number);
such columns are found by their name.

>>> import pandas as pd
>>> frame = pd.DataFrame({"contact": ["ada@example.org"], "age": [36]})
>>> [(f.column, f.kind, f.suggested_action) for f in detect_pii(frame)]
[('contact', 'email', 'hash')]
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import pandas as pd

from modelpilot.models.signature import to_frame

PiiKind = Literal[
    "email", "phone", "national_id", "card_number", "person_name", "address", "ip_address"
]
SuggestedAction = Literal["hash", "redact", "drop"]

# Join keys people group by (hash keeps joins); numbers nobody needs in a log (drop); free text
# that identifies but is rarely joined on (redact keeps "a value was there").
SUGGESTED: dict[PiiKind, SuggestedAction] = {
    "email": "hash",
    "phone": "hash",
    "ip_address": "hash",
    "national_id": "drop",
    "card_number": "drop",
    "person_name": "redact",
    "address": "redact",
}

# Column-name patterns over the name as lower-case words joined by "_"; first match wins, so
# "email_address" and "ip_address" are found before "address".
_NAME_WORDS: list[tuple[PiiKind, str]] = [
    ("email", r"e_?mail(?:_?addr(?:ess)?)?|mail_?addr(?:ess)?"),
    ("ip_address", r"ip|ipv4|ipv6|ip_?addr(?:ess)?|remote_addr|client_ip"),
    ("phone", r"phone(?:_?number)?|telephone|tel|mobile(?:_?number)?|cell_?phone|msisdn|fax"),
    (
        "national_id",
        r"ssn|social_security(?:_number)?|national_id|nin|nino|passport(?:_?number)?"
        r"|tax_?id|tin|aadhaar|drivers?_?licen[cs]e",
    ),
    ("card_number", r"card_?(?:number|num|no)|credit_?card|cc_?(?:number|num)|pan"),
    (
        "person_name",
        r"(?:first|last|full|given|family|middle|maiden|customer|person|contact|user)_?name"
        r"|surname|username",
    ),
    ("address", r"address|addr|street(?:_?address)?|zip(?:_?code)?|post_?code|postal_code"),
]
_NAME_PATTERNS = [(kind, re.compile(rf"(?:^|_)(?:{words})(?:_|$)")) for kind, words in _NAME_WORDS]

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_SSN = re.compile(r"(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}")
_NINO = re.compile(r"[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]")
_PHONE_CHARS = re.compile(r"\+?[\d\s().-]+")
_CARD = re.compile(r"\d(?:[ -]?\d){12,18}")
_STREET = re.compile(
    r"\d{1,6}\s+(?:[A-Za-z0-9.'-]+\s+){1,5}"
    r"(?:street|st|avenue|ave|road|rd|lane|ln|boulevard|blvd|drive|dr|way|court|ct|place|pl"
    r"|terrace|square|sq|highway|hwy)\b.*",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class PiiFinding:
    """One input column that looks like personal data, and what to do about it in the log."""

    column: str
    kind: PiiKind
    found_by: Literal["name", "values"]
    suggested_action: SuggestedAction

    def __str__(self) -> str:
        return (
            f"input {self.column!r} looks like {self.kind.replace('_', ' ')} (by its "
            f"{self.found_by}); suggested log policy: {self.suggested_action}"
        )


def detect_pii(example: object) -> list[PiiFinding]:
    """Columns of an input example (a DataFrame, records, or a dict of columns) that look
    like personal data, one finding per column, in column order. Arrays have no names and
    numeric values are never flagged, so a NumPy example gives none.

    >>> detect_pii(pd.DataFrame({"ssn": ["078-05-1120"], "tenure": [3]}))[0].suggested_action
    'drop'
    """
    if not isinstance(example, pd.DataFrame | list | dict):  # tensors have no column names
        return []
    frame = to_frame(example, [], where="input example")
    findings = []
    for column in frame.columns:
        if pd.api.types.is_bool_dtype(frame[column]):  # "is_mobile": a flag, not a number
            continue
        finding = _by_name(str(column)) or _by_values(str(column), frame[column])
        if finding is not None:
            findings.append(finding)
    return findings


def _by_name(column: str) -> PiiFinding | None:
    words = _words(column)
    if words == "name":  # only alone: "plan_name" or "file_name" name no person
        return PiiFinding(column, "person_name", "name", SUGGESTED["person_name"])
    for kind, pattern in _NAME_PATTERNS:
        if pattern.search(words):
            return PiiFinding(column, kind, "name", SUGGESTED[kind])
    return None


def _words(name: str) -> str:
    """``customerEmail`` and ``Customer-Email`` both as ``customer_email``.

    >>> _words("billingAddressLine1")
    'billing_address_line_1'
    """
    spaced = re.sub(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Za-z])(?=\d)", "_", name)
    return "_".join(w for w in re.split(r"[^a-z0-9]+", spaced.lower()) if w)


def _by_values(column: str, series: pd.Series) -> PiiFinding | None:
    values = [v.strip() for v in series.dropna() if isinstance(v, str) and v.strip()]
    if not values:
        return None
    for kind, matches in _VALUE_TESTS:
        hits = sum(1 for v in values if matches(v))
        if hits * 2 >= len(values):
            return PiiFinding(column, kind, "values", SUGGESTED[kind])
    return None


def is_luhn_valid(digits: str) -> bool:
    """The Luhn checksum that every payment card number satisfies (ISO/IEC 7812-1).

    >>> is_luhn_valid("4111 1111 1111 1111"), is_luhn_valid("4111 1111 1111 1112")
    (True, False)
    """
    numbers = [int(c) for c in digits if c.isdigit()]
    total = 0
    for i, n in enumerate(reversed(numbers)):
        doubled = n * 2 if i % 2 else n
        total += doubled - 9 if doubled > 9 else doubled
    return bool(numbers) and total % 10 == 0


def _is_card(value: str) -> bool:
    return _CARD.fullmatch(value) is not None and is_luhn_valid(value)


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _is_phone(value: str) -> bool:
    """7 to 15 digits (E.164) written as a phone number: a leading ``+``, or an area code in
    brackets, or three groups ending in 3-4 digits (so ``2024-01-15`` and ``1234.5678`` are
    not phones).

    >>> [_is_phone(v) for v in ["+44 20 7946 0958", "(555) 123-4567", "2024-01-15"]]
    [True, True, False]
    """
    digits = sum(c.isdigit() for c in value)
    if not 7 <= digits <= 15 or _PHONE_CHARS.fullmatch(value) is None:
        return False
    if value.startswith("+"):
        return True
    groups = [g for g in re.split(r"[\s.()-]+", value) if g]
    bracketed = value.startswith("(") and len(groups) >= 2
    return bracketed or (len(groups) >= 3 and len(groups[-1]) >= 3)


_VALUE_TESTS: list[tuple[PiiKind, Callable[[str], bool]]] = [
    ("email", lambda v: _EMAIL.fullmatch(v) is not None),
    ("ip_address", _is_ip),
    ("card_number", _is_card),
    ("national_id", lambda v: _SSN.fullmatch(v) is not None or _NINO.fullmatch(v) is not None),
    ("phone", _is_phone),
    ("address", lambda v: _STREET.fullmatch(v) is not None),
]
