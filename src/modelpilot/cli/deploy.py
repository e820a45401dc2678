"""``modelpilot deploy``: deployments, canaries, A/B tests, shadows, promote and rollback."""

from __future__ import annotations

import typer
from rich.table import Table

from modelpilot.cli.context import console, fmt_ms, get_workspace, print_json
from modelpilot.errors import InvalidInput
from modelpilot.release import Deployment
from modelpilot.release.config import make_policy

deploy_app = typer.Typer(help="Deployments and safe releases.", no_args_is_help=True)

_REASON = typer.Option("", "--reason", "-r", help="Why (kept in the deployment history).")
_EXPECT = typer.Option(
    None, "--expect-revision", help="Refuse if the deployment moved past this revision."
)


@deploy_app.command("create")
def create(
    name: str,
    model: str = typer.Option(..., "--model", "-m", help="e.g. churn@champion"),
    reason: str = _REASON,
) -> None:
    """Create a deployment serving one model version at 100%."""
    _show(get_workspace().deployments.create_deployment(name, model, reason=reason or "created"))


@deploy_app.command("canary")
def canary(
    name: str,
    model: str = typer.Option(..., "--model", "-m"),
    weight: int | None = typer.Option(None, "--weight", "-w", help="Percent of traffic, 0-100."),
    steps: str = typer.Option(
        "", "--steps", help="Rollout steps, e.g. 5,25,50,100 (enables the controller)."
    ),
    min_requests: int = typer.Option(200, "--min-requests", help="Requests each step needs."),
    min_seconds: float = typer.Option(
        60.0, "--min-seconds", help="Seconds each step lasts at least."
    ),
    reason: str = _REASON,
    expect_revision: int | None = _EXPECT,
) -> None:
    """Send part of the traffic to a new version (optionally under a rollout policy)."""
    policy = make_policy(
        steps, min_requests_per_step=min_requests, min_seconds_per_step=min_seconds
    )
    if policy is not None and weight is None:
        weight = policy.steps[0]
    if weight is None:
        raise InvalidInput(
            "Give --weight (percent of traffic) or --steps (a rollout policy).", field="weight"
        )
    _show(
        get_workspace().deployments.set_canary(
            name,
            model,
            weight,
            policy=policy,
            reason=reason,
            expected_revision=expect_revision,
        )
    )


@deploy_app.command("shadow")
def shadow(
    name: str,
    model: str = typer.Option(..., "--model", "-m"),
    reason: str = _REASON,
    expect_revision: int | None = _EXPECT,
) -> None:
    """Mirror traffic to a version whose answers are logged, never returned."""
    _show(
        get_workspace().deployments.set_shadow(
            name, model, reason=reason, expected_revision=expect_revision
        )
    )


@deploy_app.command("ab")
def ab(
    name: str,
    model: str = typer.Option(..., "--model", "-m"),
    split: int = typer.Option(..., "--split", help="Percent to the challenger."),
    key: str = typer.Option(
        ..., "--key", help="Request field for sticky assignment, e.g. user_id."
    ),
    reason: str = _REASON,
    expect_revision: int | None = _EXPECT,
) -> None:
    """Start an A/B test with sticky assignment by a routing key."""
    _show(
        get_workspace().deployments.set_ab(
            name,
            model,
            split,
            key,
            reason=reason,
            expected_revision=expect_revision,
        )
    )


@deploy_app.command("weight")
def weight(
    name: str,
    percent: int = typer.Argument(..., help="Percent of traffic to the canary/challenger."),
    reason: str = _REASON,
    expect_revision: int | None = _EXPECT,
) -> None:
    """Move the canary/challenger to PERCENT of traffic, the stable version to the rest."""
    _show(
        get_workspace().deployments.set_weight(
            name, percent, reason=reason, expected_revision=expect_revision
        )
    )


@deploy_app.command("promote")
def promote(name: str, reason: str = _REASON, expect_revision: int | None = _EXPECT) -> None:
    """Make the canary/challenger the stable version at 100%."""
    _show(
        get_workspace().deployments.promote(name, reason=reason, expected_revision=expect_revision)
    )


@deploy_app.command("rollback")
def rollback(
    name: str,
    reason: str = typer.Option("manual rollback", "--reason", "-r"),
    expect_revision: int | None = _EXPECT,
) -> None:
    """Go back to the last stable configuration at once."""
    _show(
        get_workspace().deployments.rollback(name, reason=reason, expected_revision=expect_revision)
    )


@deploy_app.command("status")
def status(name: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """Current variants, weights and rollout step."""
    deployment = get_workspace().deployments.get_deployment(name)
    if as_json:
        print_json(
            {
                "name": deployment.name,
                "revision": deployment.revision,
                "config": deployment.config.model_dump(mode="json"),
            }
        )
        return
    _show(deployment)


@deploy_app.command("history")
def history(name: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """Every configuration the deployment ever had: who, when, why."""
    revisions = get_workspace().deployments.history(name)
    if as_json:
        print_json(
            [
                {
                    "revision": r.revision,
                    "time_ms": r.created_ms,
                    "actor": r.actor,
                    "action": r.action,
                    "reason": r.reason,
                    "config": r.config.model_dump(mode="json"),
                }
                for r in revisions
            ]
        )
        return
    table = Table(title=f"History of {name}")
    for col in ("rev", "when", "who", "action", "variants", "why"):
        table.add_column(col)
    for r in revisions:
        variants = ", ".join(f"{v.role} {v.ref} {v.weight}%" for v in r.config.variants)
        table.add_row(str(r.revision), fmt_ms(r.created_ms), r.actor, r.action, variants, r.reason)
    console.print(table)


@deploy_app.command("watch")
def watch(
    name: str,
    interval: float = typer.Option(5.0, "--interval", help="Seconds between controller decisions."),
    max_ticks: int = typer.Option(100_000, "--max-ticks", help="Stop after this many decisions."),
) -> None:
    """Run the rollout controller: advance, promote or roll back the canary from live evidence.

    The evidence is the prediction log in this MODELPILOT_HOME (where `modelpilot serve`
    logs); the deployment is changed where it lives: the local store, or the server named by
    MODELPILOT_SERVER_URI (as the token's identity; deployer)."""
    import time

    from modelpilot.predictions import log_folder
    from modelpilot.release.evidence import PredictionLogStats
    from modelpilot.release.rollout import tick

    ws = get_workspace()
    source = PredictionLogStats(log_folder(ws.settings.home))
    for done in range(1, max_ticks + 1):
        decision = tick(ws.deployments, name, source)
        console.print(f"{fmt_ms(int(time.time() * 1000))} {decision.action}: {decision.reason}")
        if decision.action in ("promote", "rollback") or decision.reason.startswith("no canary"):
            return
        if done < max_ticks:
            time.sleep(interval)  # the controller's cadence


@deploy_app.command("report")
def report(
    name: str,
    as_json: bool = typer.Option(False, "--json"),
    alpha: float = typer.Option(0.05, "--alpha", help="False-positive rate of the comparison."),
) -> None:
    """Per-variant traffic, latency, errors, quality against the labels (metric named), the
    mean label, and whether there is a winner yet: from the prediction log and labels in this
    MODELPILOT_HOME, for the deployment as the store or the server has it."""
    from modelpilot.release.report import ab_report

    ws = get_workspace()
    result = ab_report(ws.deployments, ws.settings.home, name, alpha=alpha)
    if as_json:
        print_json(result.to_dict())
        return
    table = Table(title=f"{name}: variants")
    for col in (
        "variant",
        "model",
        "requests",
        "share",
        "errors",
        "p50 ms",
        "p99 ms",
        "quality vs labels",
        "mean label (95% CI)",
    ):
        table.add_column(col)
    for v in result.variants:
        outcome = (
            "-"
            if v.outcome_mean is None
            else (
                f"{v.outcome_mean:.4g} ({v.outcome_lower:.4g} – {v.outcome_upper:.4g}), "
                f"n={v.outcome_n}"
            )
        )
        table.add_row(
            v.variant,
            v.model,
            str(v.requests),
            f"{v.share:.1%}",
            f"{v.error_rate:.2%}",
            "-" if v.p50_ms is None else f"{v.p50_ms:.1f}",
            "-" if v.p99_ms is None else f"{v.p99_ms:.1f}",
            _quality(v.quality, v.quality_n),
            outcome,
        )
    console.print(table)
    console.print(result.verdict)


_METRIC_NAMES = {"roc_auc": "AUC", "accuracy": "accuracy", "mae": "MAE", "rmse": "RMSE"}


def _quality(figures: dict[str, float], n: int) -> str:
    """``AUC 0.912, accuracy 0.850 (n=400)``: each figure with its metric's name."""
    if not figures:
        return "-"
    shown = ", ".join(f"{_METRIC_NAMES.get(k, k)} {v:.3f}" for k, v in figures.items())
    return f"{shown} (n={n})"


@deploy_app.command("list")
def list_all() -> None:
    """Every deployment."""
    for deployment in get_workspace().deployments.list_deployments():
        _show(deployment)


def _show(deployment: Deployment) -> None:
    config = deployment.config
    table = Table(
        title=f"{deployment.name} (revision {deployment.revision}, {fmt_ms(deployment.updated_ms)})"
    )
    for col in ("variant", "role", "model", "weight"):
        table.add_column(col)
    for v in config.variants:
        table.add_row(v.name, v.role, v.ref, f"{v.weight}%" if v.role != "shadow" else "mirror")
    console.print(table)
    if config.rollout is not None and config.rollout_step is not None:
        steps = " → ".join(
            f"[bold]{s}%[/bold]" if i == config.rollout_step else f"{s}%"
            for i, s in enumerate(config.rollout.steps)
        )
        console.print(f"rollout: {steps}")
    if config.routing_key:
        console.print(f"sticky by request field {config.routing_key!r}")


def register(app: typer.Typer) -> None:
    """Attach ``deploy`` commands."""
    from modelpilot.cli.loop_policy import policy_app

    deploy_app.add_typer(policy_app, name="policy")
    app.add_typer(deploy_app, name="deploy")
