"""``modelpilot serve`` and ``modelpilot logs``: the model server and its prediction log."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import typer
from rich.table import Table

from modelpilot.cli.context import console, get_workspace
from modelpilot.cli.log_policy import logs_purge, policy_app
from modelpilot.serving.autoscale import ReplicaRange, ScalingRule, parse_replica_range

if TYPE_CHECKING:
    from modelpilot.predictions import PredictionReader
    from modelpilot.predictions.bucket import LogBucket
    from modelpilot.serving.replicas import ReplicaLauncher
    from modelpilot.serving.settings import ServingSettings
    from modelpilot.serving.sources import ControlPlane
    from modelpilot.workspace import Workspace

logs_app = typer.Typer(help="The prediction log.", no_args_is_help=True)


def serve_command(
    ctx: typer.Context,
    targets: list[str] = typer.Argument(
        ..., help="Model refs (churn@champion), deployments, or a YAML file."
    ),
    host: str = typer.Option(
        "127.0.0.1",
        "--host",
        help="Interface to bind (loopback by default).",
        envvar="MODELPILOT_SERVE_HOST",
    ),
    port: int = typer.Option(8080, "--port", "-p", envvar="MODELPILOT_SERVE_PORT"),
    max_batch_size: int = typer.Option(
        64, "--max-batch-size", min=1, envvar="MODELPILOT_SERVE_MAX_BATCH_SIZE"
    ),
    max_wait_ms: float = typer.Option(
        0.0,
        "--max-wait-ms",
        min=0.0,
        help="Longest wait for a fuller batch.",
        envvar="MODELPILOT_SERVE_MAX_WAIT_MS",
    ),
    no_batching: bool = typer.Option(
        False,
        "--no-batching",
        help="One predict call per request.",
        envvar="MODELPILOT_SERVE_NO_BATCHING",
    ),
    inline_predict_ms: float = typer.Option(
        2.0,
        "--inline-predict-ms",
        min=0.0,
        help="Batches of a model that predicts faster than this run on the event loop, the "
        "rest in a worker thread; 0 = always the worker thread.",
        envvar="MODELPILOT_SERVE_INLINE_PREDICT_MS",
    ),
    durability: str = typer.Option(
        "async",
        "--durability",
        help="Prediction log: async or sync.",
        envvar="MODELPILOT_SERVE_DURABILITY",
    ),
    no_log: bool = typer.Option(
        False, "--no-log", help="Do not log predictions.", envvar="MODELPILOT_SERVE_NO_LOG"
    ),
    max_body_bytes: int = typer.Option(
        8 * 1024 * 1024,
        "--max-body-bytes",
        min=1024,
        help="Largest request body (413 above).",
        envvar="MODELPILOT_SERVE_MAX_BODY_BYTES",
    ),
    max_rows: int = typer.Option(
        4096,
        "--max-rows",
        min=1,
        help="Most rows in one request, counted before validation.",
        envvar="MODELPILOT_SERVE_MAX_ROWS",
    ),
    read_timeout_s: float = typer.Option(
        30.0,
        "--read-timeout-s",
        min=0.1,
        help="A request's headers and body must arrive within this time, else the connection "
        "is closed.",
        envvar="MODELPILOT_SERVE_READ_TIMEOUT_S",
    ),
    keep_alive_s: int = typer.Option(
        5,
        "--keep-alive-s",
        min=1,
        help="Idle keep-alive connections close after this.",
        envvar="MODELPILOT_SERVE_KEEP_ALIVE_S",
    ),
    max_connections: int = typer.Option(
        1000,
        "--max-connections",
        min=1,
        help="Past this many connections, requests get 503.",
        envvar="MODELPILOT_SERVE_MAX_CONNECTIONS",
    ),
    model_control: bool = typer.Option(
        False,
        "--model-control",
        help="Allow loading/unloading models over HTTP (/v2/repository; deployer token).",
    ),
    require_token: bool = typer.Option(
        False,
        "--require-token",
        help="Inference, metadata and metrics need an API token (viewer or higher); the "
        "health probes stay open.",
        envvar="MODELPILOT_SERVE_REQUIRE_TOKEN",
    ),
    token_cache_s: float = typer.Option(
        30.0,
        "--token-cache-s",
        min=0.0,
        help="Remember a verified token this long; a revoked token is refused within it.",
        envvar="MODELPILOT_SERVE_TOKEN_CACHE_S",
    ),
    server: str | None = typer.Option(
        None,
        "--server",
        help="Follow this modelpilot server (models, deployments, logging policies, tokens) "
        "instead of the local home; default MODELPILOT_SERVER_URI.",
    ),
    bundle: Path | None = typer.Option(
        None,
        "--bundle",
        envvar="MODELPILOT_SERVE_BUNDLE",
        help="Serve the model bundle in this folder (written by 'modelpilot package image') "
        "instead of a home or a server; the container images' entry point.",
    ),
    check: bool = typer.Option(
        False,
        "--check",
        help="With --bundle: load each target, predict its input example, import the data "
        "plane and exit without serving (the images' build-time smoke test).",
    ),
    token: str | None = typer.Option(
        None,
        "--token",
        envvar="MODELPILOT_TOKEN",
        show_envvar=False,
        help="This server's own API token for --server (viewer is enough); default "
        "MODELPILOT_TOKEN.",
    ),
    replicas: ReplicaRange = typer.Option(
        "1",
        "--replicas",
        parser=parse_replica_range,
        metavar="N|MIN:MAX",
        help="Serve from this many processes sharing the port (SO_REUSEPORT); a supervisor "
        "restarts one that dies. About one per core. MIN:MAX scales between MIN and MAX on "
        "the queue depth per replica (needs --replica-ports).",
        envvar="MODELPILOT_SERVE_REPLICAS",
    ),
    target_queue: float = typer.Option(
        32.0,
        "--target-queue",
        min=0.0,
        help="With --replicas MIN:MAX: add a replica when the mean rows queued per replica "
        "stay above this for --scale-up-delay-s; remove one when below half of it for "
        "--scale-down-delay-s.",
        envvar="MODELPILOT_SERVE_TARGET_QUEUE",
    ),
    scale_up_delay_s: float = typer.Option(
        10.0,
        "--scale-up-delay-s",
        min=0.0,
        help="With --replicas MIN:MAX: how long the queue must stay high before a replica is "
        "added (and between two additions).",
        envvar="MODELPILOT_SERVE_SCALE_UP_DELAY_S",
    ),
    scale_down_delay_s: float = typer.Option(
        60.0,
        "--scale-down-delay-s",
        min=0.0,
        help="With --replicas MIN:MAX: how long the queue must stay low before a replica is "
        "drained and removed.",
        envvar="MODELPILOT_SERVE_SCALE_DOWN_DELAY_S",
    ),
    replica_ports: int | None = typer.Option(
        None,
        "--replica-ports",
        min=1,
        help="With --replicas: replica i also listens on this port + i, every route, so "
        "Prometheus can scrape each replica's /metrics.",
        envvar="MODELPILOT_SERVE_REPLICA_PORTS",
    ),
    executor: str = typer.Option(
        "local",
        "--executor",
        help="Where the replicas run: local (processes of this machine) or ray (one Ray "
        "actor per replica, each running this data plane on its node).",
        envvar="MODELPILOT_SERVE_EXECUTOR",
    ),
    ray_address: str | None = typer.Option(
        None,
        "--ray-address",
        help="Ray cluster for --executor ray (default: MODELPILOT_RAY_ADDRESS, else a local one).",
    ),
    replica_index: int | None = typer.Option(None, "--replica-index", hidden=True, min=0),
) -> None:
    """Serve models over HTTP (Open Inference Protocol v2 and /predict)."""
    from modelpilot.config import Settings
    from modelpilot.errors import InvalidInput
    from modelpilot.serving.settings import ServingSettings

    if durability not in ("async", "sync"):
        raise InvalidInput(
            f"--durability must be async or sync; got {durability!r}.", field="durability"
        )
    if executor not in ("local", "ray"):
        raise InvalidInput(f"Unknown --executor {executor!r}; use local or ray.", field="executor")
    supervised = replicas.max_replicas > 1 or executor == "ray"
    if supervised and replica_index is None:
        rule = ScalingRule(
            replicas.min_replicas,
            replicas.max_replicas,
            target_queue_rows=target_queue,
            scale_up_delay_s=scale_up_delay_s,
            scale_down_delay_s=scale_down_delay_s,
        )
        supervise_replicas(ctx, rule, token, replica_ports, ray_address)
        return
    mode: Literal["async", "sync"] = "sync" if durability == "sync" else "async"
    settings = ServingSettings(
        max_batch_size=max_batch_size,
        max_wait_ms=max_wait_ms,
        batching=not no_batching,
        inline_predict_ms=inline_predict_ms,
        durability=mode,
        log_predictions=not no_log,
        max_body_bytes=max_body_bytes,
        max_rows=max_rows,
        read_timeout_s=read_timeout_s,
        keep_alive_s=keep_alive_s,
        max_connections=max_connections,
        model_control=model_control,
        require_token=require_token,
        token_cache_s=token_cache_s,
        replica=replica_index,
    )
    own_port = (
        None if replica_ports is None or replica_index is None else replica_ports + replica_index
    )
    if check:
        check_bundle_targets(bundle, targets)
        return
    if bundle is not None:
        serve_bundle(
            bundle, targets, host=host, port=port, settings=settings, replica_port=own_port
        )
        return
    from modelpilot.workspace import Workspace  # the store (SQLAlchemy): not for a bundle

    overrides: dict[str, Any] = {"server_uri": server} if server else {}
    overrides |= {"token": token} if token else {}
    if replica_index is not None:  # on a Ray node, perhaps another machine
        from modelpilot.ray_cluster import refuse_unshared_state

        refuse_unshared_state(Settings(**overrides))
    ws = Workspace(Settings(**overrides)) if overrides else get_workspace()
    try:
        serve_announced(
            control_plane(ws), targets, host=host, port=port, settings=settings, own_port=own_port
        )
    finally:
        if ws is not get_workspace():
            ws.close()


def check_bundle_targets(bundle: Path | None, targets: list[str]) -> None:
    """``serve --check``: what the image would serve loads and predicts here, and the data
    plane imports (every library the server needs is installed)."""
    from modelpilot.config import Settings
    from modelpilot.errors import InvalidInput
    from modelpilot.serving import server  # noqa: F401  (the import is the check)
    from modelpilot.serving.bundle import check_bundle

    if bundle is None:
        raise InvalidInput(
            "--check checks a model bundle: give --bundle DIR (or MODELPILOT_SERVE_BUNDLE).",
            field="check",
        )
    cache = Settings().home / "cache" / "packages"
    for target in targets:
        console.print(check_bundle(bundle, target, cache), highlight=False)


def serve_announced(
    source: ControlPlane,
    targets: list[str],
    *,
    host: str,
    port: int,
    settings: ServingSettings,
    own_port: int | None,
) -> None:
    """Serve, saying so once every target is loaded (a missing alias fails first)."""
    from modelpilot.serving.server import serve

    replica = settings.replica
    who = "Serving" if replica is None else f"Replica {replica} serving"
    if replica is not None and own_port is not None:
        who = f"Replica {replica} (own port {own_port}) serving"

    def announce() -> None:
        console.print(
            f"{who} {', '.join(targets)} on http://{host}:{port} from {source.where} "
            "(Ctrl-C to stop)",
            highlight=False,
        )

    serve(
        source,
        targets,
        host=host,
        port=port,
        settings=settings,
        on_loaded=announce,
        replica_port=own_port,
    )


def supervise_replicas(
    ctx: typer.Context,
    rule: ScalingRule,
    token: str | None,
    replica_ports: int | None,
    ray_address: str | None = None,
) -> None:
    """``--replicas N``: run N replica processes of this very command until SIGTERM/SIGINT;
    ``--replicas MIN:MAX``: start MIN and scale on the queue depth read from each replica's
    own port (``--replica-ports``). With ``--executor ray`` each replica is a Ray actor
    running the same process on a node of the cluster.

    Each replica gets the options given on this command line (the environment it inherits
    carries the rest), plus its index; the token travels in the environment, never in a
    process's arguments, where any local user could read it.
    """
    from modelpilot.errors import Unavailable
    from modelpilot.serving.replicas import ReplicasFailed, Supervisor

    base = replica_arguments(ctx, skip=_SUPERVISOR_ONLY)
    on_ray = ctx.params["executor"] == "ray"
    launcher = replica_launcher(rule, base, token, ray_address if on_ray else None, on_ray)
    scaling = autoscaling(rule, token, replica_ports, ctx.params["host"])
    where = " on Ray" if on_ray else ""
    console.print(
        f"Starting {rule.min_replicas} replica{'s' if rule.min_replicas > 1 else ''}{where} "
        "sharing the port"
        + (f", scaling up to {rule.max_replicas}" if scaling else "")
        + " (Ctrl-C to stop)"
    )
    supervisor = Supervisor(launcher, rule.min_replicas, **scaling)
    try:
        supervisor.run()
    except ReplicasFailed as exc:
        if exc.exit_code != Unavailable.exit_code:
            raise SystemExit(exc.exit_code) from None  # the replica printed the reason
        raise Unavailable(f"{exc} Its output above says why.") from None


def replica_launcher(
    rule: ScalingRule, base: list[str], token: str | None, ray_address: str | None, on_ray: bool
) -> ReplicaLauncher:
    """Child processes of this one, or (``--executor ray``) Ray actors that each start the
    same command on a node; Ray missing is said before anything starts."""
    from modelpilot.serving.replicas import LocalProcesses

    env = {"MODELPILOT_TOKEN": token} if token else {}
    if not on_ray:
        command = [sys.executable, "-m", "modelpilot.cli.main", "serve", *base]
        return LocalProcesses(lambda index: [*command, "--replica-index", str(index)], env=env)
    import os

    from modelpilot.config import Settings
    from modelpilot.ray_cluster import import_ray
    from modelpilot.serving.ray_replicas import OPTION, RayActors, forwarded_environment

    import_ray(OPTION)
    return RayActors(
        lambda index: [*base, "--replica-index", str(index)],
        env={**forwarded_environment(os.environ), **env},
        address=ray_address or Settings().ray_address,
        num_cpus=max(rule.max_replicas, os.cpu_count() or 1),  # a local cluster: a CPU each
    )


_SUPERVISOR_ONLY = {
    "executor",
    "ray_address",
    "replicas",
    "replica_index",
    "token",
    "target_queue",
    "scale_up_delay_s",
    "scale_down_delay_s",
}


def autoscaling(
    rule: ScalingRule, token: str | None, replica_ports: int | None, host: str
) -> dict[str, Any]:
    """The supervisor's autoscaler and queue reader for ``--replicas MIN:MAX`` (empty for
    a fixed count). The queues are read over HTTP from each replica's own port: the
    ``/metrics`` Prometheus scrapes, once per poll (about 1 ms per replica per second), so
    the replicas need no second channel and the supervisor sees what the HPA would."""
    from modelpilot.errors import InvalidInput
    from modelpilot.serving.autoscale import Autoscaler, read_queue_depth

    if rule.max_replicas == rule.min_replicas:
        return {}
    if replica_ports is None:
        raise InvalidInput(
            f"--replicas {rule.min_replicas}:{rule.max_replicas} scales on each replica's "
            "queue depth, read from its own port: give --replica-ports BASE too (replica i "
            "listens on BASE + i).",
            field="replica_ports",
        )
    where = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host

    def queue_depth(index: int, node_ip: str | None) -> float | None:
        # a replica on another node (Ray) is read at that node's address when it listens on
        # every interface; a specific --host is the address on whichever node serves it
        at = node_ip if node_ip is not None and where != host else where
        return read_queue_depth(f"http://{at}:{replica_ports + index}/metrics", token=token)

    return {
        "autoscaler": Autoscaler(rule, replicas=rule.min_replicas),
        "queue_depth": queue_depth,
    }


def replica_arguments(ctx: typer.Context, *, skip: set[str]) -> list[str]:
    """This command's arguments as given on the command line (defaults and environment
    variables left out: the replicas inherit the environment), minus ``skip``.

    >>> import typer
    >>> from typer.testing import CliRunner
    >>> app = typer.Typer()
    >>> @app.command()
    ... def cmd(
    ...     ctx: typer.Context,
    ...     targets: list[str],
    ...     port: int = typer.Option(8080, "--port", "-p"),
    ...     quiet: bool = typer.Option(False, "--quiet"),
    ...     n: int = typer.Option(1, "--n"),
    ... ) -> None:
    ...     print(replica_arguments(ctx, skip={"n"}))
    >>> print(CliRunner().invoke(app, ["a@b", "c", "-p", "9", "--quiet", "--n", "2"]).output)
    ['a@b', 'c', '--port', '9', '--quiet']
    <BLANKLINE>
    """
    args: list[str] = []
    for param in ctx.command.params:
        name = param.name
        source = ctx.get_parameter_source(name) if name else None
        if name is None or name in skip or source is None or source.name != "COMMANDLINE":
            continue
        value = ctx.params[name]
        if param.param_type_name == "argument":
            args += [str(v) for v in value] if isinstance(value, list | tuple) else [str(value)]
        elif getattr(param, "is_flag", False):
            args += [param.opts[0]] if value else list(param.secondary_opts[:1])
        else:
            for item in value if isinstance(value, list | tuple) else [value]:
                args += [param.opts[0], str(item)]
    return args


def serve_bundle(
    folder: Path,
    targets: list[str],
    *,
    host: str,
    port: int,
    settings: ServingSettings,
    replica_port: int | None = None,
) -> None:
    """Serve a model bundle: no metadata store, no control plane; the home (MODELPILOT_HOME)
    keeps only the package cache, the prediction log and the hashing key."""
    from modelpilot.config import Settings
    from modelpilot.serving.bundle import bundle_control_plane

    home_settings = Settings()
    secret = home_settings.predlog_hash_key
    source = bundle_control_plane(
        folder, home_settings.home, secret.get_secret_value() if secret else None
    )
    serve_announced(source, targets, host=host, port=port, settings=settings, own_port=replica_port)


def control_plane(ws: Workspace) -> ControlPlane:
    """What ``modelpilot serve`` follows: the workspace's services, local or remote.

    Local: the home's store and artifact folder; tokens are checked against its
    ``api_tokens``. Remote (``--server``/``MODELPILOT_SERVER_URI``): the server's registry,
    artifacts, deployments and logging policies, read with this server's own token; callers'
    tokens are checked with the server's ``/api/v1/whoami``. Either way the package cache, the
    prediction log and the HMAC key of hashed columns stay in this server's own home.
    """
    from modelpilot.client import HttpWhoami
    from modelpilot.identity import Authenticator, TokenAuthenticator
    from modelpilot.predictions import log_folder
    from modelpilot.predictions.bucket import log_bucket
    from modelpilot.predictions.log_policy import load_hash_key
    from modelpilot.serving.sources import ControlPlane, RegistryModels

    settings = ws.settings
    secret = settings.predlog_hash_key

    def hash_key() -> bytes:
        return load_hash_key(settings.home, secret.get_secret_value() if secret else None)

    tokens: TokenAuthenticator
    if ws.is_remote:
        # a caller waits on this check: give up after a few seconds rather than the SDK's 30
        tokens = HttpWhoami(str(settings.server_uri), retry_for_s=3.0, timeout_s=5.0)
        where = f"modelpilot server at {settings.server_uri}"
    else:
        tokens = Authenticator(ws.local_store(), record_use=False)
        where = f"the local home {settings.home}"
    return ControlPlane(
        models=RegistryModels(
            ws.registry, ws.artifacts, cache_dir=settings.home / "cache" / "packages"
        ),
        deployments=ws.deployments,
        policies=ws.log_policies,
        hash_key=hash_key,
        log_folder=log_folder(settings.home),
        tokens=tokens,
        where=where,
        log_bucket=log_bucket(settings),
    )


@logs_app.command("query")
def logs_query(sql: str = typer.Argument(..., help="SQL over the view `predictions`.")) -> None:
    """Query the prediction log with DuckDB, e.g. "SELECT count(*) FROM predictions"."""
    frame = _pulled_reader().query(sql)
    table = Table()
    for column in frame.columns:
        table.add_column(str(column))
    for row in frame.head(200).itertuples(index=False):
        table.add_row(*[str(v) for v in row])
    console.print(table)


@logs_app.command("domain")
def logs_domain(
    model: str | None = typer.Argument(None, help="One model's rows (default: every model)."),
    since: str = typer.Option("1h", help="How far back: 30m, 2h, 1d, or an ISO time."),
) -> None:
    """Values served outside the training domain, by model, column and kind."""
    frame = _pulled_reader().out_of_domain(model=model, since=since)
    if frame.empty:
        console.print(f"No value outside the input domain since {since}.")
        return
    table = Table("model", "column", "kind", "values")
    for row in frame.itertuples(index=False):
        table.add_row(*[str(v) for v in row])
    console.print(table)


@logs_app.command("ship")
def logs_ship() -> None:
    """Upload this home's new log segments to MODELPILOT_PREDICTIONS_URI (the data plane
    does it by itself every 10 s and at shutdown; this is for a log written without one)."""
    bucket = _configured_bucket()
    result = bucket.ship(_log_folder())
    console.print(
        f"Shipped {result.copied} segment(s) to {bucket.uri}; {result.present} were there."
    )


@logs_app.command("pull")
def logs_pull() -> None:
    """Download the segments other machines shipped to MODELPILOT_PREDICTIONS_URI (every
    reader of the log does it first by itself)."""
    bucket = _configured_bucket()
    result = bucket.pull(_log_folder())
    console.print(
        f"Pulled {result.copied} segment(s) from {bucket.uri}; {result.present} were here."
    )


def _log_folder() -> Path:
    from modelpilot.predictions import log_folder

    return log_folder(get_workspace().settings.home)


def _configured_bucket() -> LogBucket:
    from modelpilot.errors import InvalidInput
    from modelpilot.predictions.bucket import SETTING, log_bucket

    bucket = log_bucket(get_workspace().settings)
    if bucket is None:
        raise InvalidInput(
            f"No bucket for the prediction log: set {SETTING}=s3://bucket/prefix (and the "
            "AWS_* variables of the S3 server). See docs/storage.md.",
            field="predictions_uri",
        )
    return bucket


def _pulled_reader() -> PredictionReader:
    """The home's log reader, after pulling the bucket's new segments (when one is set)."""
    from modelpilot.predictions import PredictionReader
    from modelpilot.predictions.bucket import log_bucket, pull_log

    settings = get_workspace().settings
    pull_log(settings.home, log_bucket(settings))
    return PredictionReader.of_home(settings.home)


logs_app.add_typer(policy_app, name="policy")
logs_app.command("purge")(logs_purge)


def register(app: typer.Typer) -> None:
    """Attach ``serve`` and ``logs``."""
    app.command("serve")(serve_command)
    app.add_typer(logs_app, name="logs")
