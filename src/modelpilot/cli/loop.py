"""``modelpilot loop history|show`` and ``modelpilot approve``: the continuous-training
decisions the agent makes, and a person's approval where a policy requires one; on the local
store, or on ``modelpilot server`` with ``MODELPILOT_SERVER_URI`` (approving needs deployer)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from modelpilot.cli.context import console, fmt_ms, get_workspace, print_json

if TYPE_CHECKING:
    from modelpilot.loop.decisions import LoopDecision

loop_app = typer.Typer(
    help="The continuous-training loop's decisions: trigger -> training -> gate -> canary.",
    no_args_is_help=True,
)


@loop_app.command("history")
def history(
    deployment: str,
    limit: int = typer.Option(20, "--limit", help="How many decisions, newest first."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """The deployment's decisions, newest first, each with the states it passed and why."""
    from modelpilot.loop.decisions import decision_to_json
    from modelpilot.loop.protocol import loop_service

    found = loop_service(get_workspace()).list_decisions(deployment, limit=limit)
    if as_json:
        print_json([decision_to_json(d) for d in found])
        return
    if not found:
        console.print(
            f"{deployment} has no continuous-training decisions yet (they start when a trigger "
            "of its policy fires and `modelpilot agent` runs)."
        )
        return
    for decision in found:
        _print(decision)


@loop_app.command("show")
def show(decision_id: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """One decision (id or a unique prefix) with every step's evidence."""
    from modelpilot.loop.decisions import decision_to_json
    from modelpilot.loop.protocol import loop_service

    decision = loop_service(get_workspace()).get_decision(decision_id)
    if as_json:
        print_json(decision_to_json(decision))
        return
    _print(decision, evidence=True)


def approve(
    decision_id: str,
    reject: bool = typer.Option(False, "--reject", help="Refuse: the candidate never serves."),
    reason: str = typer.Option("", "--reason", help="Why (recorded with the approval)."),
) -> None:
    """Approve a decision that is awaiting approval (the agent then starts its canary), or
    reject it. Exit 3 for an unknown id, 4 when it is not awaiting approval."""
    from modelpilot.loop.protocol import loop_service

    decision = loop_service(get_workspace()).approve(decision_id, reject=reject, reason=reason)
    console.print(
        f"decision {decision.short_id} ({decision.deployment}, {decision.candidate}): "
        f"{decision.state.value}: {decision.reason}",
        highlight=False,
    )


def _print(decision: LoopDecision, *, evidence: bool = False) -> None:
    console.print(
        f"[bold]decision {decision.short_id}[/bold] {decision.deployment} "
        f"{decision.candidate or '(no candidate yet)'} [bold]{decision.state.value}[/bold] "
        f"(trigger {decision.trigger_name}, policy revision {decision.policy_revision})",
        highlight=False,
    )
    table = Table(show_header=True, box=None, padding=(0, 1))
    for col in ("time", "state", "actor", "why"):
        table.add_column(col, overflow="fold")
    if evidence:
        table.add_column("evidence", overflow="fold")
    for step in decision.steps:
        row = [fmt_ms(step.at_ms), step.state.value, step.actor, step.reason]
        if evidence:
            row.append(", ".join(f"{k}={_short(v)}" for k, v in step.evidence.items()))
        table.add_row(*row)
    console.print(table)


def _short(value: Any) -> str:
    if isinstance(value, dict) and "passed" in value and "checks" in value:  # a gate verdict
        checks = value["checks"]
        failed = [c["name"] for c in checks if not c.get("passed")]
        return f"{'passed' if value['passed'] else 'failed'} {len(checks)} checks" + (
            f" (failed: {', '.join(failed)})" if failed else ""
        )
    return str(value)


def register(app: typer.Typer) -> None:
    """Attach ``loop`` and ``approve``."""
    app.add_typer(loop_app, name="loop")
    app.command("approve")(approve)
