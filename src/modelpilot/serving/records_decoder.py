"""The usual ``/predict`` body of an all-float model, parsed and checked in one pass.

Most requests to a tabular model are a list of records with exactly the signature's columns,
every value a JSON number: ``[{"f0": 0.12, "f1": 3, ...}]``. For those, a decoder built from
the signature turns the bytes straight into rows in signature order, checking the columns and
the value types as it parses. Two stand in line:

- the compiled one (``_records.cpp``, built at install where a C++17 compiler is found) reads
  each record into its packed doubles, a row as ``bytes`` that the batch's matrix is joined
  from: no Python object per value (a one-record body of 20 columns ~9,100 instructions with
  the call against msgspec's ~14,200, and a 32-row batch's matrix joined in ~1.7 us against
  ~6.3 us packing tuples; the data plane ~9,400 instructions a request less in all, callgrind,
  benchmarks/serving_plane_instructions.py). It takes no key with an escape, no repeated key
  and no number that underflows to zero: those go on to
- msgspec's typed decoder, which makes rows of floats (~0.8 us for one record of 20 columns,
  against ~2.3 us for ``orjson.loads`` and the per-record checks).

Both only ever accept: anything they do not take (another body shape, a missing or extra
column, a string, a bool, a null, a number beyond float64, malformed JSON) returns None and
the request goes through ``orjson`` and :class:`RequestValidator`, which accept or reject it
and name what is wrong. What they accept, that path accepts too, with the same values
(tests/unit/serving/test_records_decoder.py checks this on generated bodies).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence

import msgspec

from modelpilot.serving.validation import Row

try:  # built at install where a C++17 compiler was found (setup.py); msgspec alone otherwise
    from modelpilot.serving import _records
except ImportError:  # pragma: no cover - an install without a compiler
    _records = None  # type: ignore[assignment]

RecordsDecoder = Callable[[bytes, int], list[Row] | None]
_ESCAPED = re.compile(r'["\\\x00-\x1f]')  # what JSON writes escaped in a key


def records_decoder(names: Sequence[str]) -> RecordsDecoder | None:
    """A decoder for bodies that are a list of records with exactly ``names``, all numbers.

    The decoder returns the rows (in ``names`` order: packed doubles from the compiled
    decoder, tuples of floats from msgspec's; :func:`row_values` reads either), or None for
    anything else, including an empty list and more than ``max_rows`` records. None when a
    column's name has a quote, a backslash or a control character, which JSON writes escaped:
    those models' bodies all take the checked path.

    >>> from modelpilot.matrix import row_values
    >>> decode = records_decoder(["age", "income"])
    >>> assert decode is not None
    >>> [row_values(row) for row in decode(b'[{"income": 5.5, "age": 31}]', 100)]
    [(31.0, 5.5)]
    >>> decode(b'[{"age": true, "income": 5.5}]', 100) is None  # the checked path names it
    True
    """
    typed = msgspec_decoder(names)
    compiled = compiled_decoder(names)
    if compiled is None or typed is None:
        return typed

    def decode(body: bytes, max_rows: int) -> list[Row] | None:
        rows = compiled(body, max_rows)
        return typed(body, max_rows) if rows is None else rows

    return decode


def compiled_decoder(names: Sequence[str]) -> RecordsDecoder | None:
    """The compiled decoder of ``names`` (rows of packed doubles), or None where the install
    found no C++17 compiler to build it."""
    if _records is None:
        return None
    try:
        columns = _records.make(list(names))
    except ValueError:  # a name JSON writes escaped (a quote, a backslash): msgspec reads those
        return None
    return functools.partial(_records.decode, columns)  # type: ignore[return-value]


def msgspec_decoder(names: Sequence[str]) -> RecordsDecoder | None:
    """msgspec's typed decoder of ``names``: rows as tuples of floats (None for a name with a
    quote, a backslash or a control character, which msgspec cannot rename a field to)."""
    if any(_ESCAPED.search(name) for name in names):
        return None
    # Struct fields are Python identifiers; the JSON keys are the columns, whatever they are.
    fields = [f"c{i}" for i in range(len(names))]
    record = msgspec.defstruct(
        "Record",
        [(f, float) for f in fields],
        rename=dict(zip(fields, names, strict=True)),
        forbid_unknown_fields=True,
        gc=False,  # holds only floats: nothing for the cycle collector to track
    )
    decoder = msgspec.json.Decoder(list[record])  # type: ignore[valid-type]
    astuple = msgspec.structs.astuple

    def decode(body: bytes, max_rows: int) -> list[Row] | None:
        try:
            records = decoder.decode(body)
        except msgspec.MsgspecError:  # not this shape: the checked path decides
            return None
        if not records or len(records) > max_rows:  # the checked path's 422 / 413
            return None
        # Every value is finite: JSON has no NaN or Infinity, and msgspec refuses a number
        # beyond float64 ("1e999") instead of reading it as inf.
        if len(records) == 1:  # the usual request: no list comprehension to run
            return [astuple(records[0])]
        return [astuple(r) for r in records]  # rows as tuples: read, never changed

    return decode
