"""Types of the compiled records decoder (``_records.cpp``)."""

from typing import NewType

Columns = NewType("Columns", object)

def make(names: list[str]) -> Columns: ...
def decode(columns: Columns, body: bytes, max_rows: int) -> list[bytes] | None: ...
