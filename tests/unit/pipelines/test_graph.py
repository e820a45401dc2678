"""Steps and pipeline graphs: tracing, explicit wiring, cycles and the errors a user can hit."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import modelpilot as mp
from modelpilot.pipelines.graph import Constant, Upstream
from modelpilot.pipelines.values import output_ref


@mp.step
def source(n: int) -> list[int]:
    return list(range(n))


@mp.step(retries=2, timeout_s=5)
def total(source: list[int], scale: float = 1.0) -> float:
    return sum(source) * scale


@mp.pipeline
def summed(n: int, scale: float = 2.0) -> object:
    return total(source(n), scale=scale)


def test_a_step_called_outside_a_pipeline_is_the_plain_function() -> None:
    assert total(source(4), scale=0.5) == 3.0
    assert (total.name, total.retries, total.timeout_s, total.cache) == ("total", 2, 5, True)


def test_tracing_records_each_call_with_its_inputs_in_call_order() -> None:
    graph = summed.build({"n": 3, "scale": 2.0})
    assert [n.name for n in graph.nodes] == ["source", "total"]
    assert graph.nodes[0].args == {"n": Constant(3)}
    assert graph.nodes[1].args == {"source": Upstream("source"), "scale": Constant(2.0)}


def test_a_step_called_twice_gets_a_numbered_node() -> None:
    @mp.pipeline
    def twice() -> object:
        return total(source(2)), total(source(3))

    assert [n.name for n in twice.build({}).nodes] == ["source", "total", "source-2", "total-2"]


def test_using_a_step_output_in_pipeline_code_is_refused() -> None:
    @mp.pipeline
    def branchy(n: int) -> object:
        values = source(n)
        if values:  # only known when the pipeline runs
            return total(values)
        return None

    with pytest.raises(mp.InvalidInput, match=r"output of step 'source' is not known while"):
        branchy.build({"n": 2})


def test_wrong_arguments_name_the_step_and_its_signature() -> None:
    @mp.pipeline
    def bad() -> object:
        return total(source(2), nope=1)

    with pytest.raises(mp.InvalidInput, match=r"Step 'total' in pipeline 'bad' .*total\(source"):
        bad.build({})


def test_a_constant_no_step_could_receive_is_refused_while_tracing() -> None:
    @mp.pipeline
    def odd() -> object:
        return source(object())

    with pytest.raises(mp.InvalidInput, match=r"step 'source' argument 'n': object is not a JSON"):
        odd.build({})


def test_explicit_pipeline_wires_parameters_named_after_steps_in_any_order() -> None:
    graph = mp.Pipeline("p", total, source).build({"n": 2, "scale": 1.0})
    assert [n.name for n in graph.nodes] == ["source", "total"]
    params = mp.Pipeline("p", total, source).signature.parameters
    assert list(params) == ["n", "scale"]


def test_explicit_pipeline_cycle_is_an_error_naming_the_cycle() -> None:
    @mp.step
    def first(second: int) -> int:
        return second

    @mp.step
    def second(first: int) -> int:
        return first

    with pytest.raises(mp.InvalidInput, match=r"cycle: first -> second -> first"):
        mp.Pipeline("loop", first, second).build({})


def test_explicit_pipeline_refuses_duplicate_step_names_and_non_steps() -> None:
    with pytest.raises(mp.InvalidInput, match="two steps named 'source'"):
        mp.Pipeline("p", source, source).validate()
    with pytest.raises(mp.InvalidInput, match="is not a step; decorate the function with @mp"):
        mp.Pipeline("p", source, len).validate()  # type: ignore[arg-type]
    with pytest.raises(mp.InvalidInput, match="Invalid pipeline name 'a b'"):
        mp.Pipeline("a b", source).validate()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"retries": -1}, "retries must be an int from 0 to 100; got -1"),
        ({"timeout_s": 0}, "timeout_s must be a positive number of seconds or None; got 0"),
        ({"cache": "yes"}, "cache must be True or False; got 'yes'"),
    ],
)
def test_bad_step_options_are_refused_where_given(options: dict[str, object], message: str) -> None:
    with pytest.raises(mp.InvalidInput, match=message):
        mp.step(**options)  # type: ignore[call-overload]


def test_calling_a_pipeline_directly_says_how_to_run_it() -> None:
    with pytest.raises(mp.InvalidInput, match=r"mp.run_pipeline\(summed"):
        summed(n=1)


class _Datasets:
    """Only ``log_dataset`` is reached by output_ref; anything else is a test failure."""

    def log_dataset(self, data: object, name: str, *, source: str | None = None) -> object:
        raise AssertionError("not reached")


@pytest.mark.parametrize(
    ("value", "type_name"),
    [({1, 2}, "a set"), (Path("x"), "a pathlib.PosixPath"), (float("nan"), "a float")],
)
def test_a_wrong_return_type_names_the_step_and_the_type(value: object, type_name: str) -> None:
    with pytest.raises(
        mp.InvalidInput, match=rf"Step 'train' returned {type_name}: a step returns"
    ):
        output_ref(value, "train", datasets=_Datasets(), dataset_name="p.train")  # type: ignore[arg-type]


def test_frames_are_accepted_as_constants() -> None:
    @mp.pipeline
    def framed() -> object:
        return source(pd.DataFrame({"a": [1]}))

    assert isinstance(framed.build({}).nodes[0].args["n"], Constant)


def test_an_interrupted_run_fails_its_running_step_and_skips_the_rest(tmp_path: Path) -> None:
    """The records' own transitions, on a real SQLite store: what an engine stopped by
    Ctrl-C (or any error of its own) leaves behind."""
    from modelpilot.pipelines import records
    from modelpilot.pipelines.entities import PipelineState, StepState
    from modelpilot.store import Store

    store = Store.open(f"sqlite:///{tmp_path / 'mp.db'}")
    try:
        planned = [records.PlannedStep(n, n, (), 1) for n in ("a", "b", "c")]
        run = records.create_pipeline_run(
            store, pipeline="p", target="t.py:p", params={}, run_id=None, executor="inline",
            steps=planned, owner="host:1",
        )  # fmt: skip
        a, b, _ = run.steps
        records.update_step(store, a.id, [StepState.PENDING], state=StepState.SUCCEEDED)
        records.update_step(store, b.id, [StepState.PENDING], state=StepState.RUNNING)
        with pytest.raises(mp.Conflict, match=r"Step run 'b' .* is RUNNING, expected PENDING"):
            records.update_step(store, b.id, [StepState.PENDING], state=StepState.RUNNING)
        ended = records.finish_pipeline_run(store, run.id, PipelineState.FAILED, "interrupted")
        assert [s.state for s in ended.steps] == [
            StepState.SUCCEEDED, StepState.FAILED, StepState.SKIPPED,
        ]  # fmt: skip
        assert ended.step("b").error == (
            "The pipeline run ended while this step was running: interrupted"
        )
        with pytest.raises(mp.Conflict, match="is not RUNNING; it was ended elsewhere"):
            records.finish_pipeline_run(store, run.id, PipelineState.SUCCEEDED)
        with pytest.raises(mp.NotFound, match="No step 'z' in pipeline run"):
            ended.step("z")
    finally:
        store.close()
