"""The audit log's hash chain on real SQLite and PostgreSQL: edits made directly in the
database (UPDATE, DELETE, moved rows) are detected at the first entry they touch."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st
from sqlalchemy import delete, insert, select, update

from modelpilot.audit import list_entries, verify_chain
from modelpilot.store import Store
from modelpilot.store.audit import GENESIS_HASH, entry_hash, seal
from modelpilot.store.events import record_event
from modelpilot.store.schema import events
from modelpilot.workspace import Workspace


def _append(store: Store, count: int, *, tag: str = "t") -> list[int]:
    """``count`` events, one transaction each, as services write them; their ids."""
    for i in range(count):
        with store.write() as conn:
            record_event(
                conn,
                "alias.set",
                f"model:{tag}{i % 3}",
                "local:tester",
                {"alias": "champion", "before": i, "after": i + 1, "score": i / 7, "n": [i, tag]},
            )
    return _ids(store)


def _ids(store: Store) -> list[int]:
    with store.read() as conn:
        return list(conn.execute(select(events.c.id).order_by(events.c.id)).scalars())


def _edit(store: Store, entry_id: int, **values: Any) -> None:
    """Change a row behind the services' back, as someone with database access would."""
    with store.write() as conn:
        conn.execute(update(events).where(events.c.id == entry_id).values(**values))


def _row(store: Store, entry_id: int) -> Any:
    with store.read() as conn:
        return conn.execute(select(events).where(events.c.id == entry_id)).one()


def test_an_intact_chain_verifies_every_entry(ws: Workspace) -> None:
    ids = _append(ws.store, 6)
    result = verify_chain(ws.store)
    assert result.ok and result.entries_checked == 6 and result.pre_chain == 0
    assert result.first_bad_id is None and result.problem is None
    first = _row(ws.store, ids[0])
    assert first.prev_hash == GENESIS_HASH
    assert _row(ws.store, ids[1]).prev_hash == first.entry_hash
    assert result.head_hash == _row(ws.store, ids[-1]).entry_hash
    assert "6 entries checked" in result.message


def test_each_entry_seals_exactly_what_reads_back(ws: Workspace) -> None:
    """Floats, tuples and non-string keys go through the JSON column; the hash must match."""
    payload: dict[Any, Any] = {"f": 0.1 + 0.2, "big": 10**18, 3: (1, 2.0), "u": "é"}
    with ws.store.write() as conn:
        record_event(conn, "k", "s", "a", payload)
    row = _row(ws.store, _ids(ws.store)[0])
    assert row.payload == {"f": 0.30000000000000004, "big": 10**18, "3": [1, 2.0], "u": "é"}
    assert row.entry_hash == entry_hash(
        row.prev_hash, row.id, row.time_ms, row.kind, row.subject, row.actor, row.payload
    )
    assert verify_chain(ws.store).ok


def test_a_payload_edited_with_sql_is_detected_at_that_entry(ws: Workspace) -> None:
    ids = _append(ws.store, 5)
    _edit(ws.store, ids[2], payload={"alias": "champion", "before": 2, "after": 99})
    result = verify_chain(ws.store)
    assert not result.ok
    assert (result.first_bad_id, result.problem, result.entries_checked) == (ids[2], "edited", 2)
    assert f"Audit chain broken at entry {ids[2]}: edited" in result.message


@pytest.mark.parametrize("column", ["actor", "kind", "subject", "time_ms"])
def test_any_edited_column_is_detected(ws: Workspace, column: str) -> None:
    ids = _append(ws.store, 3)
    old = getattr(_row(ws.store, ids[1]), column)
    _edit(ws.store, ids[1], **{column: old + 1 if column == "time_ms" else old + "x"})
    result = verify_chain(ws.store)
    assert (result.first_bad_id, result.problem) == (ids[1], "edited")


def test_a_deleted_entry_is_detected_at_the_next_one(ws: Workspace) -> None:
    ids = _append(ws.store, 5)
    with ws.store.write() as conn:
        conn.execute(delete(events).where(events.c.id == ids[2]))
    result = verify_chain(ws.store)
    assert (result.first_bad_id, result.problem) == (ids[3], "deleted")
    assert f"after entry {ids[1]}" in result.message


def test_deleting_the_first_entry_is_detected(ws: Workspace) -> None:
    ids = _append(ws.store, 3)
    with ws.store.write() as conn:
        conn.execute(delete(events).where(events.c.id == ids[0]))
    result = verify_chain(ws.store)
    assert (result.first_bad_id, result.problem) == (ids[1], "deleted")


def test_two_rows_contents_swapped_are_reported_as_reordered(ws: Workspace) -> None:
    ids = _append(ws.store, 5)
    a, b = _row(ws.store, ids[1]), _row(ws.store, ids[3])
    content = ("time_ms", "kind", "subject", "actor", "payload")
    _edit(ws.store, ids[1], **{c: getattr(b, c) for c in content})
    _edit(ws.store, ids[3], **{c: getattr(a, c) for c in content})
    result = verify_chain(ws.store)
    assert (result.first_bad_id, result.problem) == (ids[1], "reordered")
    assert f"belongs at entry {ids[3]}" in result.message


def test_rows_swapped_with_their_seals_are_reported_as_reordered(ws: Workspace) -> None:
    ids = _append(ws.store, 5)
    a, b = _row(ws.store, ids[1]), _row(ws.store, ids[2])
    columns = ("time_ms", "kind", "subject", "actor", "payload", "prev_hash", "entry_hash")
    _edit(ws.store, ids[1], **{c: getattr(b, c) for c in columns})
    _edit(ws.store, ids[2], **{c: getattr(a, c) for c in columns})
    result = verify_chain(ws.store)
    assert (result.first_bad_id, result.problem) == (ids[1], "reordered")


def test_a_row_inserted_without_a_seal_is_detected(ws: Workspace) -> None:
    ids = _append(ws.store, 3)
    with ws.store.write() as conn:
        conn.execute(
            insert(events).values(time_ms=1, kind="alias.set", subject="x", actor="a", payload={})
        )
    result = verify_chain(ws.store)
    assert result.problem == "inserted" and result.first_bad_id is not None
    assert result.first_bad_id > ids[-1]


def test_a_sealed_row_slipped_into_an_id_gap_is_detected_as_inserted(ws: Workspace) -> None:
    """Ids have gaps (a rolled-back change on PostgreSQL); a forged row sealed onto its
    predecessor fits the gap, but the next real entry still links past it."""

    def write(entry_id: int, prev: str, n: int) -> str:
        stamp, payload = 1_000 + n, {"n": n}
        with ws.store.write() as conn:
            conn.execute(
                insert(events).values(
                    id=entry_id, time_ms=stamp, kind="k", subject="s", actor="a", payload=payload
                )
            )
            return seal(conn, entry_id, prev, stamp, "k", "s", "a", payload)

    first = write(1, GENESIS_HASH, 1)
    write(4, write(3, first, 3), 4)  # id 2 was never committed
    assert verify_chain(ws.store).ok
    write(2, first, 2)
    result = verify_chain(ws.store)
    assert (result.first_bad_id, result.problem, result.entries_checked) == (2, "inserted", 1)


def test_pre_chain_rows_are_counted_and_the_chain_starts_at_genesis(ws: Workspace) -> None:
    with ws.store.write() as conn:
        for i in range(2):  # as rows written before the chain existed look
            conn.execute(
                insert(events).values(time_ms=i, kind="old", subject="s", actor="a", payload={})
            )
    ids = _append(ws.store, 3)
    assert _row(ws.store, ids[2]).prev_hash == GENESIS_HASH
    result = verify_chain(ws.store)
    assert result.ok and (result.pre_chain, result.entries_checked) == (2, 3)
    assert "2 pre-chain" in result.message


def test_deleting_the_newest_entries_is_detected_against_a_recorded_head(ws: Workspace) -> None:
    ids = _append(ws.store, 4)
    head = verify_chain(ws.store).head_hash
    assert verify_chain(ws.store, expected_head=head).ok
    with ws.store.write() as conn:
        conn.execute(delete(events).where(events.c.id == ids[-1]))
    assert verify_chain(ws.store).ok  # a shorter chain is still a chain...
    result = verify_chain(ws.store, expected_head=head)  # ...but the recorded head is gone
    assert (result.first_bad_id, result.problem) == (ids[-2], "truncated")


def _concurrent_appends(open_store: Callable[[], Store], workers: int, each: int) -> None:
    """``workers`` threads, each with its own engine and connections, append at once."""
    start = threading.Barrier(workers)

    def work(worker: int) -> None:
        store = open_store()
        try:
            start.wait()
            _append(store, each, tag=f"w{worker}-")
        finally:
            store.close()

    with ThreadPoolExecutor(workers) as pool:
        for future in [pool.submit(work, w) for w in range(workers)]:
            future.result()


@pytest.mark.postgres
def test_concurrent_appends_on_postgresql_leave_one_chain(pg_schema_uri: str) -> None:
    Store.open(pg_schema_uri).close()  # migrate once, before the writers race
    _concurrent_appends(lambda: Store.open(pg_schema_uri, upgrade=False), workers=4, each=25)
    store = Store.open(pg_schema_uri, upgrade=False)
    try:
        result = verify_chain(store)
        assert result.ok, result.message
        assert result.entries_checked == 100
    finally:
        store.close()


def test_concurrent_appends_on_sqlite_leave_one_chain(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mp.db'}"
    Store.open(uri).close()
    _concurrent_appends(lambda: Store.open(uri, upgrade=False), workers=4, each=25)
    store = Store.open(uri, upgrade=False)
    try:
        result = verify_chain(store)
        assert result.ok and result.entries_checked == 100, result.message
    finally:
        store.close()


def test_a_rolled_back_change_leaves_no_gap_in_the_chain(ws: Workspace) -> None:
    _append(ws.store, 2)
    with pytest.raises(RuntimeError), ws.store.write() as conn:
        record_event(conn, "k", "s", "a", {})
        raise RuntimeError("the change failed after its event was written")
    _append(ws.store, 2)
    result = verify_chain(ws.store)
    assert result.ok and result.entries_checked == 4


def test_list_entries_filters_by_subject_and_time_and_marks_local_actors(ws: Workspace) -> None:
    _append(ws.store, 6, tag="churn")
    entries = list_entries(ws.store, subject_prefix="model:churn1", limit=None)
    assert [e.subject for e in entries] == ["model:churn1", "model:churn1"]
    assert entries[0].id < entries[1].id
    assert entries[0].to_dict()["authenticated"] is False
    assert len(list_entries(ws.store, limit=4)) == 4
    assert list_entries(ws.store, since_ms=entries[-1].time_ms + 60_000) == []
    assert list_entries(ws.store, subject_prefix="model:%") == []  # a prefix, not a pattern


def test_service_changes_carry_before_after_and_reason(ws: Workspace) -> None:
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LinearRegression

    from modelpilot import release

    x = pd.DataFrame(np.random.default_rng(0).normal(size=(20, 2)), columns=["a", "b"])
    model = LinearRegression().fit(x, x["a"])
    for _ in range(2):
        ws.log_model(model, "reg", input_example=x.head())
    ws.set_alias("reg", "champion", 1)
    ws.set_alias("reg", "champion", 2)
    release.create_deployment(ws.store, "reg-prod", "reg/1")
    release.set_canary(ws.store, "reg-prod", "reg/2", 10, reason="try v2")
    entries = list_entries(ws.store, limit=None)
    moves = [e.payload for e in entries if e.kind == "alias.set"]
    assert moves[-1] == {"alias": "champion", "before": 1, "after": 2}
    canary = [e.payload for e in entries if e.subject == "deployment:reg-prod"][-1]
    assert canary["reason"] == "try v2"
    assert canary["before"] == {"stable": "reg/1 stable 100%"}
    assert set(canary["after"]) == {"stable", "canary"} and "reg/2" in canary["after"]["canary"]
    assert verify_chain(ws.store).ok


_MUTATIONS = ["payload", "actor", "kind", "subject", "time_ms", "prev_hash", "entry_hash"]


def test_any_single_row_mutation_of_a_random_chain_is_detected(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'prop.db'}")

    @hyp_settings(max_examples=60, deadline=None)
    @given(
        payloads=st.lists(
            st.dictionaries(
                st.text(max_size=5),
                st.one_of(st.integers(), st.floats(allow_nan=False), st.text(max_size=8)),
                max_size=3,
            ),
            min_size=2,
            max_size=8,
        ),
        mutation=st.sampled_from([*_MUTATIONS, "delete", "swap"]),
        data=st.data(),
    )
    def check(payloads: list[dict[str, Any]], mutation: str, data: st.DataObject) -> None:
        with store.write() as conn:
            conn.execute(delete(events))
            for n, payload in enumerate(payloads):
                record_event(conn, "k", f"s{n}", "local:p", {**payload, "n": n})
        head = verify_chain(store).head_hash
        ids = _ids(store)
        i = data.draw(st.integers(0, len(ids) - 1), label="row")
        expected = _mutate(store, ids, i, mutation, data)
        result = verify_chain(store, expected_head=head)
        assert not result.ok, (mutation, i)
        assert result.first_bad_id == expected, (mutation, i, result)

    try:
        check()
    finally:
        store.close()


def _mutate(store: Store, ids: list[int], i: int, mutation: str, data: st.DataObject) -> int:
    """Apply one mutation to row ``i``; the id verification must name."""
    row = _row(store, ids[i])
    if mutation == "delete":
        with store.write() as conn:
            conn.execute(delete(events).where(events.c.id == ids[i]))
        return ids[i + 1] if i + 1 < len(ids) else ids[i - 1]  # the last: against the head
    if mutation == "swap":
        j = data.draw(st.sampled_from([k for k in range(len(ids)) if k != i]), label="other")
        other = _row(store, ids[j])
        content = ("time_ms", "kind", "subject", "actor", "payload")
        _edit(store, ids[i], **{c: getattr(other, c) for c in content})
        _edit(store, ids[j], **{c: getattr(row, c) for c in content})
        return ids[min(i, j)]
    old = getattr(row, mutation)
    if mutation == "payload":
        new: Any = {**old, "edited": True}
    elif mutation == "time_ms":
        new = old + 1
    elif mutation.endswith("hash"):
        new = ("1" if old[0] == "0" else "0") + old[1:]
    else:
        new = old + "x"
    _edit(store, ids[i], **{mutation: new})
    return ids[i]
