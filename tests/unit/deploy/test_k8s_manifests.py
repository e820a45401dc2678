"""The Kubernetes manifests in deploy/k8s/ against the code they run.

Every ``modelpilot`` command and flag a container runs must exist in the real Typer CLI;
every probe must name a route of the app that container serves; every environment variable
must be one the code reads; the autoscaler's metric must be one the data plane exports.
A renamed flag or route fails here, not in a cluster.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from modelpilot.cli.main import app as cli_app
from modelpilot.config import Settings
from modelpilot.serving.app import DataPlane
from modelpilot.serving.metrics import ServingMetrics
from modelpilot.serving.settings import ServingSettings

K8S = Path(__file__).resolve().parents[3] / "deploy" / "k8s"
# boto3's own settings for an S3-compatible bucket (docs/storage.md)
BOTO3_ENV = {"AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"}


def _documents() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d and "kind" in d]
    return docs


DOCS = _documents()


def _pod_specs() -> Iterator[tuple[str, dict[str, Any]]]:
    for doc in DOCS:
        template = doc.get("spec", {}).get("template")
        if template is not None:
            yield doc["metadata"]["name"], template["spec"]


def _containers() -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{name}/{c['name']}", c)
        for name, spec in _pod_specs()
        for c in spec.get("initContainers", []) + spec["containers"]
    ]


def _is_group(command: Any) -> bool:
    """Matched by shape, not class: typer vendors its own click (see cli/main.py)."""
    return hasattr(command, "commands")


def _cli_command(argv: list[str]) -> tuple[Any, list[str]]:
    """Walk ``modelpilot a b c ...`` down the CLI's groups; returns the command and the rest."""
    command: Any = typer.main.get_command(cli_app)
    rest = argv[1:]
    while _is_group(command) and rest:
        sub = command.commands.get(rest[0])
        assert sub is not None, f"{argv}: no command {rest[0]!r} under {command.name!r}"
        command, rest = sub, rest[1:]
    return command, rest


def _flags(command: Any) -> dict[str, Any]:
    return {
        flag: param
        for param in command.params
        for flag in (*param.opts, *param.secondary_opts)
        if flag.startswith("-")
    }


def _modelpilot_argv(container: dict[str, Any]) -> list[str]:
    return [str(a) for a in container.get("command", []) + container.get("args", [])]


def test_the_manifests_hold_the_resources_docs_scale_out_describes() -> None:
    kinds = {(d["kind"], d["metadata"]["name"]) for d in DOCS}
    assert {
        ("Deployment", "modelpilot-data-plane"),
        ("Service", "modelpilot-data-plane"),
        ("HorizontalPodAutoscaler", "modelpilot-data-plane"),
        ("Deployment", "modelpilot-server"),
        ("Service", "modelpilot-server"),
        ("Job", "modelpilot-retrain"),
    } <= kinds


@pytest.mark.parametrize("where, container", _containers(), ids=lambda v: str(v)[:40])
def test_every_modelpilot_command_and_flag_exists_in_the_cli(
    where: str, container: dict[str, Any]
) -> None:
    argv = _modelpilot_argv(container)
    assert argv[0] == "modelpilot", f"{where} runs {argv[0]!r}, not the modelpilot CLI"
    command, rest = _cli_command(argv)
    assert not _is_group(command), f"{where}: {argv} names a group, no command"
    flags = _flags(command)
    positional, i = [], 0
    while i < len(rest):
        arg = rest[i]
        if arg.startswith("-"):
            param = flags.get(arg)
            assert param is not None, f"{where}: `{' '.join(argv[:3])}` has no option {arg}"
            i += 1 if getattr(param, "is_flag", False) else 2
        else:
            positional.append(arg)
            i += 1
    arguments = [p for p in command.params if p.param_type_name == "argument"]
    if not any(a.nargs == -1 for a in arguments):
        assert len(positional) == len(arguments), f"{where}: arguments {positional}"


def _routes_of(argv: list[str]) -> set[str]:
    if argv[1] == "serve":
        plane = DataPlane(ServingSettings()).build_app()
        return {route.path for route in plane.app.routes}
    if argv[1] == "server":
        from modelpilot.server.app import create_app
        from modelpilot.store import Store

        store = Store.open("sqlite:///:memory:")
        try:
            return {getattr(route, "path", "") for route in create_app(store).routes}
        finally:
            store.close()
    return set()


def test_every_probe_points_at_a_route_of_the_app_its_container_serves() -> None:
    probed = 0
    for where, container in _containers():
        argv = _modelpilot_argv(container)
        routes = _routes_of(argv)
        for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
            probe = container.get(kind)
            if probe is None:
                continue
            path = probe["httpGet"]["path"]
            assert path in routes, f"{where} {kind} probes {path}; routes: {sorted(routes)}"
            port = probe["httpGet"]["port"]
            names = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
            assert port in names, f"{where} {kind}: no container port named {port!r}"
            served_on = argv[argv.index("--port") + 1]
            assert str(names[port]) == served_on, f"{where} listens on {served_on}"
            probed += 1
    assert probed >= 5  # server: 2, data plane: 3


def _variables_read() -> set[str]:
    """Settings fields (MODELPILOT_<FIELD>) and the CLI options' environment variables."""
    names = {f"MODELPILOT_{field.upper()}" for field in Settings.model_fields}
    stack: list[Any] = [typer.main.get_command(cli_app)]
    while stack:
        command = stack.pop()
        if _is_group(command):
            stack += command.commands.values()
        for param in command.params:
            envvar = getattr(param, "envvar", None)
            names |= {envvar} if isinstance(envvar, str) else set(envvar or ())
    return names


def test_every_environment_variable_is_one_the_code_reads() -> None:
    read = _variables_read() | BOTO3_ENV
    secrets = {d["metadata"]["name"]: d for d in DOCS if d["kind"] == "Secret"}
    for where, container in _containers():
        for variable in container.get("env", []):
            assert variable["name"] in read, f"{where} sets {variable['name']}, read by nothing"
            ref = variable.get("valueFrom", {}).get("secretKeyRef")
            if ref is not None:
                secret = secrets[ref["name"]]
                assert ref["key"] in secret["stringData"], f"{where}: no key {ref['key']}"


def test_the_autoscaler_scales_the_data_plane_on_a_metric_it_exports() -> None:
    hpa = next(d for d in DOCS if d["kind"] == "HorizontalPodAutoscaler")
    target = hpa["spec"]["scaleTargetRef"]["name"]
    assert ("Deployment", target) in {(d["kind"], d["metadata"]["name"]) for d in DOCS}
    exported = ServingMetrics().render().decode()
    for metric in hpa["spec"]["metrics"]:
        if metric["type"] == "Pods":
            name = metric["pods"]["metric"]["name"]
            assert f"# TYPE {name} " in exported, f"the data plane exports no {name}"
    adapter = yaml.safe_load((K8S / "prometheus-adapter-values.yaml").read_text())
    assert any(r["name"]["as"] == name for r in adapter["rules"]["custom"])


def test_services_select_the_pods_of_their_deployments() -> None:
    pods = {
        d["metadata"]["name"]: d["spec"]["template"]["metadata"]["labels"]
        for d in DOCS
        if d["kind"] == "Deployment"
    }
    for service in (d for d in DOCS if d["kind"] == "Service"):
        labels = pods[service["metadata"]["name"]]
        assert service["spec"]["selector"].items() <= labels.items()
