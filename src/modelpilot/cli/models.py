"""``modelpilot models``: registered models, versions and aliases."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from modelpilot.cli.context import console, fmt_ms, get_workspace, print_json

models_app = typer.Typer(help="Registered models, versions and aliases.", no_args_is_help=True)
alias_app = typer.Typer(help="Move or remove aliases such as champion.", no_args_is_help=True)
models_app.add_typer(alias_app, name="alias")
risk_app = typer.Typer(
    help="A model's risk register: intended use, affected groups, risks.", no_args_is_help=True
)
models_app.add_typer(risk_app, name="risk")


@models_app.command("list")
def list_models(as_json: bool = typer.Option(False, "--json")) -> None:
    """Every registered model with its newest version and aliases."""
    models = get_workspace().list_models()
    if as_json:
        print_json([m.__dict__ for m in models])
        return
    table = Table(title="Registered models")
    for col in ("name", "latest", "aliases", "created"):
        table.add_column(col)
    for m in models:
        aliases = ", ".join(f"{a}→{v}" for a, v in sorted(m.aliases.items())) or "-"
        table.add_row(m.name, str(m.latest_version or "-"), aliases, fmt_ms(m.created_ms))
    console.print(table)


@models_app.command("show")
def show(
    ref: str = typer.Argument(..., help="churn, churn/3 or churn@champion"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Show a model's versions, or one version with its lineage."""
    ws = get_workspace()
    if "/" not in ref and "@" not in ref:
        versions = ws.registry.list_versions(ref)
        if as_json:
            print_json([v.__dict__ for v in versions])
            return
        table = Table(title=f"Model {ref}")
        for col in ("version", "aliases", "flavor", "run", "created", "metrics"):
            table.add_column(col)
        for v in versions:
            metrics = ", ".join(f"{k}={val:.4g}" for k, val in sorted(v.metrics.items())[:3])
            table.add_row(
                str(v.version),
                ", ".join(v.aliases) or "-",
                v.flavor,
                (v.run_id or "-")[:8],
                fmt_ms(v.created_ms),
                metrics or "-",
            )
        console.print(table)
        return
    lineage = ws.lineage(ref)
    if as_json:
        print_json(lineage.to_dict())
        return
    console.print(str(lineage), highlight=False)


@models_app.command("card")
def card(
    ref: str = typer.Argument(..., help="churn/4 or churn@champion"),
    output: Path | None = typer.Option(
        None, "-o", "--output", help="card.html, card.md or card.json"
    ),
) -> None:
    """Write (or print as Markdown) the model card of a version (built by the server when
    one is configured)."""
    model_card = get_workspace().cards.model_card(ref)
    if output is None:
        console.print(model_card.to_markdown(), highlight=False, markup=False)
        return
    model_card.save(output)
    console.print(f"Wrote the model card of {model_card.data['model']['ref']} to {output}")


@alias_app.command("set")
def alias_set(
    name: str = typer.Argument(..., help="Model name"),
    alias: str = typer.Argument(..., help="Alias, e.g. champion"),
    version: int = typer.Argument(..., help="Version number"),
) -> None:
    """Point an alias at a version (atomic; recorded as an event)."""
    mv = get_workspace().set_alias(name, alias, version)
    console.print(f"{name}@{alias} → version {mv.version}")


@alias_app.command("delete")
def alias_delete(name: str = typer.Argument(...), alias: str = typer.Argument(...)) -> None:
    """Remove an alias."""
    get_workspace().delete_alias(name, alias)
    console.print(f"Removed alias {alias!r} from {name}.")


@models_app.command("retire")
def retire(
    ref: str = typer.Argument(..., help="churn/3"),
    reason: str = typer.Option(..., "--reason", help="Why, e.g. 'superseded by churn/4'"),
) -> None:
    """Take a version out of service for good; its records and lineage are kept.

    Deployments trying it as canary, challenger or shadow are rolled back first; a version
    served as stable or named by an alias is refused until traffic or the alias moves."""
    from modelpilot import governance

    done = governance.retire(get_workspace().store, ref, reason=reason)
    for use in done.rolled_back:
        console.print(
            f"Rolled back {use}: it no longer serves {done.version.ref}.", highlight=False
        )
    mv = done.version
    console.print(
        f"Retired {mv.ref} ({mv.tags['retired.reason']}); it can no longer be deployed or aliased.",
        highlight=False,
    )


@risk_app.command("edit")
def risk_edit(
    name: str = typer.Argument(..., help="Model name"),
    file: Path = typer.Option(..., "--file", "-f", help="risk.yaml (see docs/governance.md)"),
) -> None:
    """Store a new revision of the model's risk register from a YAML file (checked first)."""
    from modelpilot import governance

    register = governance.load_risk_register(file)
    revision = governance.save_risk_register(get_workspace().store, name, register)
    console.print(
        f"Stored revision {revision.revision} of the risk register of {name} "
        f"({len(register.risks)} risk(s)).",
        highlight=False,
    )


@risk_app.command("show")
def risk_show(
    name: str = typer.Argument(..., help="Model name"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Show the newest revision of the model's risk register."""
    from modelpilot.governance.risk import require_risk_register

    revision = require_risk_register(get_workspace().store, name)
    if as_json:
        print_json(revision.to_dict())
        return
    r = revision.register
    console.print(
        f"Risk register of {name}, revision {revision.revision} ({fmt_ms(revision.created_ms)}, "
        f"{revision.actor})\nIntended use: {r.intended_use}\nOut of scope: "
        f"{'; '.join(r.out_of_scope_uses) or '-'}\nAffected groups: "
        f"{'; '.join(r.affected_groups) or '-'}",
        highlight=False,
        markup=False,
    )
    table = Table(title="Risks")
    for col in ("risk", "likelihood", "impact", "mitigation", "owner"):
        table.add_column(col)
    for risk in r.risks:
        table.add_row(*map(escape, (risk.risk, risk.likelihood, risk.impact, risk.mitigation,
                                    risk.owner)))  # fmt: skip
    console.print(table)


def register(app: typer.Typer) -> None:
    """Attach ``models`` commands."""
    app.add_typer(models_app, name="models")
