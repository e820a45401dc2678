"""Markdown tables for the cards, with every cell escaped.

A ``|`` inside a cell ends the cell in GitHub-flavoured Markdown: the optimisation table's
"max |Δp|" header split into three cells and shifted every column after it, and a dataset
column named ``a|b`` would do the same to the schema table. Cells are escaped here, once.
"""

from __future__ import annotations

from collections.abc import Sequence


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    """The lines of a Markdown table: header, separator, one line a row.

    >>> markdown_table(["name", "max |Δp|"], [["a|b", 0.5]])
    ['| name | max \\\\|Δp\\\\| |', '|---|---|', '| a\\\\|b | 0.5 |']
    """
    lines = [_line(header), "|" + "---|" * len(header)]
    lines += [_line(row) for row in rows]
    return lines


def _line(cells: Sequence[object]) -> str:
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def _cell(value: object) -> str:
    """One cell: pipes escaped, line breaks as spaces (a break would end the row)."""
    return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")
