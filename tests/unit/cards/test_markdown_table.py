"""The cards' Markdown tables keep every cell in its column, whatever the cell holds.

The optimisation table's "max |Δp|" header split into three cells in a Markdown viewer and
shifted every column after it; a dataset column named ``a|b`` did the same to the schema.
"""

from __future__ import annotations

import re

import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from modelpilot.cards import build_dataset_card
from modelpilot.cards.markdown import markdown_table
from modelpilot.workspace import Workspace

# A GFM cell boundary: a pipe not escaped by an odd number of backslashes.
_BOUNDARY = re.compile(r"(?<!\\)(?:\\\\)*\|")


def _cells(line: str) -> list[str]:
    parts, start = [], 0
    for match in _BOUNDARY.finditer(line):
        end = match.end() - 1
        parts.append(line[start:end])
        start = match.end()
    parts.append(line[start:])
    return [p.strip() for p in parts[1:-1]]  # the line starts and ends with a boundary


def _unescaped(cell: str) -> str:
    return re.sub(r"\\(.)", r"\1", cell)


texts = st.text(alphabet=st.sampled_from("ab |\\Δ-"), max_size=12)


@given(st.lists(texts, min_size=1, max_size=4).flatmap(
    lambda header: st.tuples(
        st.just(header),
        st.lists(st.lists(texts, min_size=len(header), max_size=len(header)), max_size=3),
    )
))  # fmt: skip
def test_every_line_has_one_cell_per_column_and_reads_back_as_given(
    table: tuple[list[str], list[list[str]]],
) -> None:
    header, rows = table
    lines = markdown_table(header, rows)
    assert len(lines) == 2 + len(rows)
    for line, given_cells in zip([lines[0], *lines[2:]], [header, *rows], strict=True):
        cells = _cells(line)
        assert len(cells) == len(header)
        assert [_unescaped(c) for c in cells] == [g.strip() for g in given_cells]


def test_a_dataset_card_with_a_pipe_in_a_column_name_keeps_its_schema_table(ws: Workspace) -> None:
    ws.log_dataset(pd.DataFrame({"a|b": [1, 2], "c": [0.5, 1.5]}), "piped")
    card = build_dataset_card(ws.store, "piped").to_markdown()
    rows = [line for line in card.splitlines() if line.startswith("| a")]
    assert rows == ["| a\\|b | int64 | False |"]
    assert all(len(_cells(line)) == 3 for line in card.splitlines() if line.startswith("| "))
