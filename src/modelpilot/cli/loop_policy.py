"""``modelpilot deploy policy ...``: a deployment's continuous-training policy (set, show,
history, validate). Local store only for now."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
import yaml
from rich.table import Table

from modelpilot.cli.context import console, fmt_ms, get_workspace, print_json
from modelpilot.clock import now_ms

if TYPE_CHECKING:
    # the policy store (SQLAlchemy): imported by each command, so the CLI starts without it
    from modelpilot.loop import PolicyRevision
    from modelpilot.loop.policy import TriggerSpec

policy_app = typer.Typer(
    help="A deployment's continuous-training policy: triggers, training, evaluation, rollout.",
    no_args_is_help=True,
)
_FILE = typer.Option(..., "--file", "-f", help="The policy, a YAML file.")


@policy_app.command("validate")
def validate(file: Path = _FILE) -> None:
    """Check a policy file (keys, cron, durations, pipeline and params, gate policy) without
    storing anything: exit 0 when valid, 2 with FILE:LINE: KEY: message when not."""
    from modelpilot.loop import load_loop_policy

    loaded = load_loop_policy(file)
    names = ", ".join(_condition(t) for t in loaded.policy.triggers)
    console.print(f"{file}: valid ({names} -> {loaded.policy.training.pipeline})")


@policy_app.command("set")
def set_policy(deployment: str, file: Path = _FILE) -> None:
    """Store the policy as the deployment's next revision and create, update or delete the
    triggers it owns (named DEPLOYMENT.1, DEPLOYMENT.2, ...)."""
    from modelpilot.loop import load_loop_policy, set_loop_policy
    from modelpilot.store.events import default_actor

    store = get_workspace().store  # refused with a clear error when a server is configured
    loaded = load_loop_policy(file)
    stored = set_loop_policy(store, deployment, loaded, actor=default_actor(), now_ms=now_ms())
    console.print(
        f"Set policy revision {stored.revision} of {deployment}; triggers: "
        f"{', '.join(stored.triggers)}"
    )


@policy_app.command("show")
def show(
    deployment: str,
    revision: int | None = typer.Option(None, "--revision", help="An earlier revision."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """The deployment's policy (newest revision unless --revision), as stored (paths made
    absolute, defaults filled in)."""
    from modelpilot.loop import get_loop_policy

    found = get_loop_policy(get_workspace().store, deployment, revision)
    if as_json:
        print_json(_as_dict(found))
        return
    console.print(
        f"# {deployment} policy revision {found.revision}, set {fmt_ms(found.created_ms)} by "
        f"{found.actor} from {found.source_path}; triggers: {', '.join(found.triggers)}",
        markup=False,
    )
    console.print(yaml.safe_dump(found.policy.to_dict(), sort_keys=False).rstrip(), markup=False)


@policy_app.command("history")
def history(deployment: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """Every revision of the deployment's policy, newest first."""
    from modelpilot.loop import loop_policy_history

    revisions = loop_policy_history(get_workspace().store, deployment)
    if as_json:
        print_json([_as_dict(r) for r in revisions])
        return
    if not revisions:
        console.print(f"{deployment} has no continuous-training policy yet.")
        return
    table = Table(title=f"{deployment}: continuous-training policy")
    for col in ("revision", "time", "actor", "triggers", "pipeline", "from"):
        table.add_column(col)
    for r in revisions:
        table.add_row(
            str(r.revision), fmt_ms(r.created_ms), r.actor, ", ".join(r.triggers),
            r.policy.training.pipeline, r.source_path,
        )  # fmt: skip
    console.print(table)


def _condition(spec: TriggerSpec) -> str:
    kind, detail = spec.condition()
    return f"{kind.value} {' '.join(str(v) for v in detail.values() if v)}".strip()


def _as_dict(found: PolicyRevision) -> dict[str, object]:
    return {
        "deployment": found.deployment,
        "revision": found.revision,
        "created_ms": found.created_ms,
        "actor": found.actor,
        "source_path": found.source_path,
        "triggers": list(found.triggers),
        "policy": found.policy.to_dict(),
    }
