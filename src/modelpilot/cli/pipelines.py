"""``modelpilot pipelines``: run a pipeline, list pipeline runs, show one with its steps."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import typer
from rich.table import Table

import modelpilot as mp
from modelpilot.cli.context import console, fmt_ms, get_workspace, print_json

if TYPE_CHECKING:
    from modelpilot.pipelines import PipelineRun, StepRun

pipelines_app = typer.Typer(
    help="Pipelines of steps: run, list, show; triggers and tick.", no_args_is_help=True
)

_COLOURS = {
    "SUCCEEDED": "green",
    "CACHED": "cyan",
    "FAILED": "red",
    "RUNNING": "yellow",
    "SKIPPED": "dim",
    "PENDING": "dim",
}


def _state(state: str) -> str:
    colour = _COLOURS.get(state, "white")
    return f"[{colour}]{state.lower()}[/{colour}]"


def _duration(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.1f} s"


def _print_step(step: StepRun) -> None:
    from modelpilot.pipelines import StepState

    if step.state is StepState.RUNNING:
        detail = f"attempt {step.attempt}/{step.max_attempts}"
        if step.attempt > 1 and step.error:
            detail += f" (attempt {step.attempt - 1} failed: {step.error})"
    elif step.state is StepState.CACHED:
        detail = f"output reused from step run {(step.cached_from or '')[:8]}"
    elif step.state is StepState.FAILED:
        detail = f"{_duration(step.duration_s)}: {step.error}"
    else:
        detail = _duration(step.duration_s)
    console.print(f"  {step.name:<20} {_state(step.state.value)}  {detail}", highlight=False)


_EXECUTORS: dict[str, Literal["subprocess", "inline", "ray"]] = {
    "subprocess": "subprocess",
    "inline": "inline",
    "ray": "ray",
}


@pipelines_app.command("run")
def run(
    target: str = typer.Argument(..., help="FILE.py:NAME or MODULE:NAME of a pipeline."),
    param: list[str] = typer.Option([], "--param", "-p", help="NAME=VALUE; repeat for more."),
    executor: str = typer.Option(
        "subprocess",
        "--executor",
        help="subprocess (a process per step), ray (a Ray task per step) or inline (debug).",
    ),
    experiment: str | None = typer.Option(
        None, "--experiment", "-e", help="Experiment of the runs (default: the pipeline name)."
    ),
    ray_address: str | None = typer.Option(
        None,
        "--ray-address",
        help="Ray cluster for --executor ray (default: MODELPILOT_RAY_ADDRESS, else a local one).",
    ),
) -> None:
    """Run a pipeline; steps whose code and inputs are unchanged are reused (cached)."""
    from modelpilot.pipelines import check_executor_name, load_target, params_from_text

    name = check_executor_name(executor)
    definition = load_target(target)
    params = params_from_text(definition, param)
    workspace = mp.init()  # the SDK's workspace: steps run inline log through it
    try:
        console.print(f"Pipeline [bold]{definition.name}[/bold] ({target})", highlight=False)
        result = mp.run_pipeline(
            definition,
            params,
            executor=_EXECUTORS[name],
            experiment=experiment,
            on_step=_print_step,
            ray_address=ray_address,
        )
    finally:
        workspace.close()
    cached = sum(s.is_cached for s in result.steps)
    console.print(
        f"Pipeline run {result.id} {_state(result.state.value)} in "
        f"{_duration(result.duration_s)} ({len(result.steps)} steps, {cached} cached; "
        f"parent run {(result.run_id or '')[:8]})",
        highlight=False,
    )


@pipelines_app.command("list")
def list_runs(
    pipeline: str | None = typer.Option(None, "--pipeline", help="Only runs of this pipeline."),
    limit: int = typer.Option(50, "--limit", "-n", min=1),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Pipeline runs, newest first."""
    from modelpilot.pipelines import list_pipeline_runs

    found = list_pipeline_runs(get_workspace().store, pipeline=pipeline, limit=limit)
    if as_json:
        print_json([_as_dict(r) for r in found])
        return
    table = Table(title="Pipeline runs")
    for column in ("run", "pipeline", "state", "started", "duration", "steps", "cached"):
        table.add_column(column)
    for r in found:
        table.add_row(
            r.id[:8],
            r.pipeline,
            _state(r.state.value),
            fmt_ms(r.created_ms),
            _duration(r.duration_s),
            str(len(r.steps)),
            str(sum(s.is_cached for s in r.steps)),
        )
    console.print(table)


@pipelines_app.command("show")
def show(
    run_id: str = typer.Argument(..., help="Pipeline run id, or a unique prefix (list shows 8)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """One pipeline run: its steps, states, attempts, durations, cache hits and errors."""
    from modelpilot.pipelines import StepState, get_pipeline_run

    r = get_pipeline_run(get_workspace().store, run_id)
    if as_json:
        print_json(_as_dict(r))
        return
    console.print(
        f"[bold]Pipeline run {r.id}[/bold]  {r.pipeline}  {_state(r.state.value)}", highlight=False
    )
    console.print(
        f"target {r.target}  executor {r.executor}  started {fmt_ms(r.created_ms)}  "
        f"duration {_duration(r.duration_s)}  parent run {r.run_id or '-'}",
        highlight=False,
        soft_wrap=True,
    )
    if r.params:
        console.print(
            "params " + ", ".join(f"{k}={v}" for k, v in r.params.items()), highlight=False
        )
    table = Table(title="Steps")
    for column in ("step", "state", "attempts", "duration", "run", "output / error"):
        table.add_column(column, overflow="fold")
    for s in r.steps:
        table.add_row(
            s.name,
            _state(s.state.value),
            f"{s.attempt}/{s.max_attempts}",
            _duration(s.duration_s),
            (s.run_id or "")[:8] or ("cached" if s.is_cached else "-"),
            _detail(s),
        )
    console.print(table)
    for s in r.steps:
        if s.state is StepState.FAILED and s.log_tail:
            console.print(f"[bold]Log tail of {s.name}[/bold]", highlight=False)
            console.print(s.log_tail, highlight=False, markup=False, soft_wrap=True)


def _detail(step: StepRun) -> str:
    from modelpilot.pipelines import StepState

    if step.error and step.state is StepState.FAILED:
        return step.error
    if step.output is None:
        return ""
    output = step.output
    kind = output.get("kind")
    if kind == "dataset":
        text = f"dataset {output['name']}@{str(output['digest'])[:12]}"
    elif kind == "model":
        text = f"model {output['name']}/{output['version']}"
    else:
        text = str(output.get("value"))[:60]
    return f"{text} (cached from {(step.cached_from or '')[:8]})" if step.is_cached else text


def _as_dict(r: PipelineRun) -> dict[str, object]:
    return {
        "id": r.id,
        "pipeline": r.pipeline,
        "target": r.target,
        "state": r.state.value,
        "params": r.params,
        "run_id": r.run_id,
        "executor": r.executor,
        "error": r.error,
        "created_ms": r.created_ms,
        "ended_ms": r.ended_ms,
        "steps": [
            {
                "name": s.name,
                "step": s.step,
                "state": s.state.value,
                "cached": s.is_cached,
                "attempt": s.attempt,
                "max_attempts": s.max_attempts,
                "duration_s": s.duration_s,
                "run_id": s.run_id,
                "cached_from": s.cached_from,
                "cache_key": s.cache_key,
                "inputs": s.inputs,
                "output": s.output,
                "error": s.error,
                "log_tail": s.log_tail,
            }
            for s in r.steps
        ],
    }


def register(app: typer.Typer) -> None:
    """Attach ``pipelines`` commands."""
    from modelpilot.cli import triggers

    triggers.register(pipelines_app)
    app.add_typer(pipelines_app, name="pipelines")
