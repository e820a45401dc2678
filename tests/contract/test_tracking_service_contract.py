"""One contract for :class:`TrackingService`, run against every implementation.

Implementations: local on SQLite, local on PostgreSQL, and HTTP -> a real ``modelpilot server``
process on SQLite and on PostgreSQL (one server per module, an editor token).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from modelpilot.client import HttpTracking
from modelpilot.errors import Conflict, InvalidInput, NotFound
from modelpilot.server.auth import Role
from modelpilot.store import Store
from modelpilot.tracking.entities import Run, RunStatus
from modelpilot.tracking.local import LocalTracking
from modelpilot.tracking.protocol import TrackingService
from mp_server import make_token, pg_schema, start_server

IMPLEMENTATIONS = [
    "local-sqlite",
    pytest.param("local-postgresql", marks=pytest.mark.postgres),
    "http-sqlite",
    pytest.param("http-postgresql", marks=pytest.mark.postgres),
]


@pytest.fixture(scope="module")
def backends(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    """Lazily built stores and servers, shared by the module's tests and closed at its end."""
    made: dict[str, object] = {}
    with ExitStack() as stack:
        made["_stack"] = stack
        made["_home"] = tmp_path_factory.mktemp("contract")
        yield made


def _store_uri(backends: dict[str, object], kind: str) -> str:
    key = f"uri-{kind}"
    if key not in backends:
        stack = backends["_stack"]
        assert isinstance(stack, ExitStack)
        home = backends["_home"]
        assert isinstance(home, Path)
        backends[key] = (
            f"sqlite:///{home / f'{uuid.uuid4().hex}.db'}"
            if kind == "sqlite"
            else stack.enter_context(pg_schema())
        )
    uri = backends[key]
    assert isinstance(uri, str)
    return uri


@pytest.fixture(params=IMPLEMENTATIONS)
def tracking(
    request: pytest.FixtureRequest, backends: dict[str, object]
) -> Iterator[TrackingService]:
    mode, kind = str(request.param).split("-")
    uri = _store_uri(backends, kind)
    if mode == "local":
        store = Store.open(uri)
        yield LocalTracking(store)
        store.close()
        return
    key = f"server-{kind}"
    if key not in backends:
        stack = backends["_stack"]
        assert isinstance(stack, ExitStack)
        home = backends["_home"]
        assert isinstance(home, Path)
        server = start_server(home / key, uri)
        stack.callback(server.stop)
        backends[key] = (server.url, make_token(uri, f"contract-{kind}", Role.EDITOR))
    url, token = backends[key]  # type: ignore[misc]
    client = HttpTracking(url, token=token)
    yield client
    client.close()


def _experiment() -> str:
    return f"exp-{uuid.uuid4().hex[:10]}"


def test_get_or_create_experiment_returns_the_same_experiment_twice(
    tracking: TrackingService,
) -> None:
    name = _experiment()
    first = tracking.get_or_create_experiment(name)
    assert tracking.get_or_create_experiment(name) == first
    assert first.name == name


def test_created_run_reads_back_running_with_its_name_and_tags(tracking: TrackingService) -> None:
    exp = _experiment()
    run = tracking.create_run(exp, name="r1", tags={"team": "churn"}, environment={"python": "3"})
    got = tracking.get_run(run.id)
    assert (got.experiment, got.name, got.status) == (exp, "r1", RunStatus.RUNNING)
    assert got.tags == {"team": "churn"}
    assert got.environment == {"python": "3"}
    assert got.end_ms is None


def test_child_run_records_its_parent(tracking: TrackingService) -> None:
    exp = _experiment()
    parent = tracking.create_run(exp)
    child = tracking.create_run(exp, parent_run_id=parent.id)
    assert tracking.get_run(child.id).parent_run_id == parent.id


def test_set_status_ends_the_run(tracking: TrackingService) -> None:
    run = tracking.create_run(_experiment())
    tracking.set_status(run.id, RunStatus.FAILED)
    got = tracking.get_run(run.id)
    assert got.status == RunStatus.FAILED
    assert got.end_ms is not None and got.end_ms >= got.start_ms


def test_params_are_text_and_immutable(tracking: TrackingService) -> None:
    run = tracking.create_run(_experiment())
    tracking.log_params(run.id, {"depth": 6, "lr": 0.1, "kind": "gbm"})
    tracking.log_params(run.id, {"depth": 6})  # the same value again is fine
    assert tracking.get_run(run.id).params == {"depth": "6", "lr": "0.1", "kind": "gbm"}
    with pytest.raises(Conflict, match="Param 'depth' .* is already '6'; cannot change it to '7'"):
        tracking.log_params(run.id, {"depth": 7})


def test_tags_are_overwritten(tracking: TrackingService) -> None:
    run = tracking.create_run(_experiment(), tags={"stage": "dev"})
    tracking.set_tags(run.id, {"stage": "prod", "owner": "ana"})
    assert tracking.get_run(run.id).tags == {"stage": "prod", "owner": "ana"}


def test_every_metric_point_of_a_batch_reads_back_in_step_order(tracking: TrackingService) -> None:
    run = tracking.create_run(_experiment())
    rows = [("loss", 1.0 / (i + 1), i, 1_700_000_000_000 + i) for i in range(2500)]
    tracking.log_metrics(run.id, rows[1000:])
    tracking.log_metrics(run.id, rows[:1000])
    history = tracking.get_metric_history(run.id, "loss")
    assert [(p.key, p.value, p.step, p.timestamp_ms) for p in history] == rows
    assert tracking.get_run(run.id).metrics == {"loss": rows[-1][1]}


def test_a_non_finite_metric_is_refused(tracking: TrackingService) -> None:
    run = tracking.create_run(_experiment())
    with pytest.raises(InvalidInput, match="Metric 'loss' must be a finite number; got nan"):
        tracking.log_metrics(run.id, [("loss", math.nan, 0, 1)])


def test_unknown_run_is_not_found(tracking: TrackingService) -> None:
    with pytest.raises(NotFound, match="No run with id 'nope'"):
        tracking.get_run("nope")
    with pytest.raises(NotFound, match="No run with id 'nope'"):
        tracking.log_metrics("nope", [("loss", 1.0, 0, 1)])
    with pytest.raises(NotFound, match="No run with id 'nope'"):
        tracking.set_status("nope", RunStatus.FINISHED)


def test_an_empty_write_to_an_unknown_run_is_not_found(tracking: TrackingService) -> None:
    """Nothing to write is no excuse: schemathesis found empty params and metric batches for
    a run that does not exist answered 200, while tags answered 404."""
    with pytest.raises(NotFound, match="No run with id 'nope'"):
        tracking.log_params("nope", {})
    with pytest.raises(NotFound, match="No run with id 'nope'"):
        tracking.log_metrics("nope", [])


def test_unknown_metric_lists_the_logged_ones(tracking: TrackingService) -> None:
    run = tracking.create_run(_experiment())
    tracking.log_metrics(run.id, [("acc", 0.5, 0, 1)])
    with pytest.raises(NotFound, match="has no metric 'loss'. Logged metrics: acc"):
        tracking.get_metric_history(run.id, "loss")


def test_search_pages_through_filtered_ordered_runs(tracking: TrackingService) -> None:
    exp = _experiment()
    for i in range(7):
        run = tracking.create_run(exp, name=f"r{i}")
        tracking.log_metrics(run.id, [("auc", i / 10, 0, 1)])
    seen: list[str] = []
    token: str | None = None
    pages = 0
    while True:
        page = tracking.search_runs(
            exp, "metrics.auc > 0.15", ["metrics.auc DESC"], page_token=token, max_results=2
        )
        seen.extend(r.name for r in page.runs)
        pages += 1
        token = page.next_page_token
        if token is None:
            break
    assert seen == ["r6", "r5", "r4", "r3", "r2"]
    assert pages == 3


def test_search_refuses_unbounded_pages_and_foreign_tokens(tracking: TrackingService) -> None:
    exp = _experiment()
    tracking.get_or_create_experiment(exp)
    with pytest.raises(InvalidInput, match="max_results"):
        tracking.search_runs(exp, max_results=100_000)
    with pytest.raises(InvalidInput, match="page_token 'garbage' is not a token"):
        tracking.search_runs(exp, page_token="garbage")


def test_search_errors_name_the_problem(tracking: TrackingService) -> None:
    with pytest.raises(InvalidInput, match="Invalid run filter at character 14: expected a number"):
        tracking.search_runs(None, "metrics.auc >> 1")
    with pytest.raises(NotFound, match="No experiment named 'no-such-exp'"):
        tracking.search_runs("no-such-exp")


def _all_pages(
    tracking: TrackingService, exp: str, filter: str, order_by: list[str], size: int
) -> list[Run]:
    found: list[Run] = []
    token: str | None = None
    while True:
        page = tracking.search_runs(exp, filter, order_by, page_token=token, max_results=size)
        assert len(page.runs) <= size
        found.extend(page.runs)
        token = page.next_page_token
        if token is None:
            return found


def test_paging_through_ties_returns_every_run_exactly_once_in_a_total_order(
    tracking: TrackingService,
) -> None:
    exp = _experiment()
    for i in range(9):
        run = tracking.create_run(exp, name=f"r{i}")
        tracking.log_metrics(run.id, [("auc", [0.5, 0.9, 0.95][i % 3], 0, 1)])
    found = _all_pages(tracking, exp, "metrics.auc >= 0.9", ["metrics.auc DESC"], 2)
    assert len(found) == len({r.id for r in found}) == 6
    expected = sorted(found, key=lambda r: (-r.metrics["auc"], -r.start_ms, r.id))
    assert [r.id for r in found] == [r.id for r in expected]
    assert _all_pages(tracking, exp, "", ["metrics.auc DESC"], 4) == _all_pages(
        tracking, exp, "", ["metrics.auc DESC"], 1000
    )


def test_filter_and_order_use_each_runs_latest_metric_value(tracking: TrackingService) -> None:
    exp = _experiment()
    early = tracking.create_run(exp, name="early")
    tracking.log_metrics(early.id, [("auc", 0.99, 0, 1), ("auc", 0.2, 1, 2)])
    late = tracking.create_run(exp, name="late")
    tracking.log_metrics(late.id, [("auc", 0.95, 5, 1), ("auc", 0.1, 4, 9)])
    found = _all_pages(tracking, exp, "metrics.auc > 0.5", [], 10)
    assert [r.name for r in found] == ["late"]


def test_runs_missing_the_order_field_come_last_in_both_directions(
    tracking: TrackingService,
) -> None:
    exp = _experiment()
    for name, loss in [("a", 0.3), ("b", None), ("c", 0.1)]:
        run = tracking.create_run(exp, name=name)
        if loss is not None:
            tracking.log_metrics(run.id, [("loss", loss, 0, 1)])
    up = _all_pages(tracking, exp, "", ["metrics.loss ASC"], 1)
    down = _all_pages(tracking, exp, "", ["metrics.loss DESC"], 1)
    assert ([r.name for r in up], [r.name for r in down]) == (["c", "a", "b"], ["a", "c", "b"])


def test_params_compare_as_numbers_with_numbers_and_as_text_with_text(
    tracking: TrackingService,
) -> None:
    exp = _experiment()
    for name, depth in [("d2", "2"), ("d10", "10"), ("dx", "deep"), ("none", None)]:
        run = tracking.create_run(exp, name=name, tags={"team": name[:2]})
        if depth is not None:
            tracking.log_params(run.id, {"depth": depth})

    def names(filter: str, order_by: list[str] | None = None) -> list[str]:
        return [r.name for r in _all_pages(tracking, exp, filter, order_by or ["name"], 10)]

    assert names("params.depth > 3") == ["d10"]  # numerically; 'deep' never matches a number
    assert names("params.depth > '3'") == ["dx"]  # as text: '10' < '3' < 'deep'
    assert names("params.depth != 'deep'") == ["d10", "d2"]  # a missing param never matches
    assert names("", ["params.depth DESC"]) == ["dx", "d2", "d10", "none"]
    assert names("tags.team = 'd1' and attributes.status = 'RUNNING'") == ["d10"]
    assert names("name < 'd2'") == ["d10"]


def test_a_search_without_matches_is_one_empty_last_page(tracking: TrackingService) -> None:
    exp = _experiment()
    tracking.create_run(exp)
    page = tracking.search_runs(exp, "metrics.auc > 0.5")
    assert (page.runs, page.next_page_token) == ([], None)


def test_only_text_that_reads_as_a_number_compares_with_a_number(
    tracking: TrackingService,
) -> None:
    exp = _experiment()
    texts = ["1.5", "-1e-3", "+2", ".5", "5.", "1E3", "1.2.3", "1e", "e5", "1-2", "+-1", ".e5"]
    for i, value in enumerate(texts):
        tracking.log_params(tracking.create_run(exp, name=f"r{i:02d}").id, {"v": value})
    found = _all_pages(tracking, exp, "params.v > -1000", ["name"], 100)
    assert [r.params["v"] for r in found] == ["1.5", "-1e-3", "+2", ".5", "5.", "1E3"]


def test_a_run_id_prefix_resolves_to_the_one_run_it_names(tracking: TrackingService) -> None:
    run = tracking.create_run(_experiment())
    assert tracking.resolve_run_id(run.id[:16]) == run.id
    assert tracking.resolve_run_id(run.id) == run.id
    assert tracking.resolve_run_id("zzzzzzzz") == "zzzzzzzz"  # the lookup then says NotFound
    with pytest.raises(NotFound, match="No run with id 'zzzzzzzz'"):
        tracking.get_run(tracking.resolve_run_id("zzzzzzzz"))


def test_an_ambiguous_or_empty_run_id_prefix_is_refused_listing_matches(
    tracking: TrackingService,
) -> None:
    exp = _experiment()
    ids = [tracking.create_run(exp).id for _ in range(17)]  # two share a first character
    prefix = next(c for c in "0123456789abcdef" if sum(i.startswith(c) for i in ids) >= 2)
    with pytest.raises(InvalidInput, match=rf"Run id prefix '{prefix}' matches \d+ runs: ") as e:
        tracking.resolve_run_id(prefix)
    assert e.value.field == "run_id" and "give more characters" in e.value.message
    with pytest.raises(InvalidInput, match="Run id is empty") as empty:
        tracking.resolve_run_id("")
    assert empty.value.field == "run_id"


def test_list_experiments_includes_a_new_one_oldest_first(tracking: TrackingService) -> None:
    first, second = _experiment(), _experiment()
    tracking.get_or_create_experiment(first)
    tracking.get_or_create_experiment(second)
    names = [e.name for e in tracking.list_experiments()]
    assert names.index(first) < names.index(second)
