"""Find a record by its id or a unique prefix of it, as the CLI accepts short ids.

>>> import sqlalchemy as sa
>>> engine = sa.create_engine("sqlite://")
>>> table = sa.Table("t", sa.MetaData(), sa.Column("id", sa.String, primary_key=True))
>>> table.metadata.create_all(engine)
>>> with engine.begin() as conn:
...     _ = conn.execute(table.insert(), [{"id": "ab12"}, {"id": "ab34"}])
...     resolve_prefix(conn, table.c.id, "ab3", what="run", hint="runs list")
'ab34'
"""

from __future__ import annotations

from sqlalchemy import Column, Connection, func, select

from modelpilot.errors import InvalidInput, NotFound, shown

_SHOWN_MATCHES = 5


def resolve_prefix(
    conn: Connection,
    id_column: Column[str],
    key: str,
    *,
    what: str,
    hint: str,
    field: str = "id",
) -> str:
    """The full id whose prefix is ``key`` (or ``key`` itself); NotFound pointing at
    ``hint`` (where the ids are listed) when none, InvalidInput listing a few when several."""
    matches = (
        list(
            conn.execute(
                select(id_column)
                .where(func.substr(id_column, 1, len(key)) == key)
                .limit(_SHOWN_MATCHES + 1)
            ).scalars()
        )
        if key
        else []
    )
    if not matches:
        raise NotFound(f"No {what} with id {shown(key)}; `modelpilot {hint}` shows them.",
                       field=field)  # fmt: skip
    if key in matches or len(matches) == 1:
        return key if key in matches else str(matches[0])
    listed = ", ".join(str(m)[:12] for m in matches[:_SHOWN_MATCHES])
    raise InvalidInput(
        f"The {what} id prefix {shown(key)} matches several: {listed}; give more characters.",
        field=field,
    )


__all__ = ["resolve_prefix"]
