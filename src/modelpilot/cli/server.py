"""``modelpilot server``: the control-plane REST API (tracking, registry, datasets, artifacts,
tokens) over uvicorn."""

from __future__ import annotations

import gc
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING

import typer

from modelpilot.cli.agent import workspace_agent
from modelpilot.cli.context import console, err_console
from modelpilot.config import Settings
from modelpilot.errors import said
from modelpilot.loop.options import DEFAULT_INTERVAL_S, DEFAULT_LEASE_S, check_agent_options

if TYPE_CHECKING:
    from modelpilot.loop.agent import AgentIteration

_NO_AUTH_WARNING = (
    "[bold red]WARNING: --no-auth: every request is accepted as admin, without a token.[/bold red]"
    "\n[red]Anyone who can reach {url} can read and change runs, models and aliases. Use it "
    "only on a laptop, bound to 127.0.0.1.[/red]"
)


def server_command(
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to bind (loopback default)."),
    port: int = typer.Option(5000, "--port", "-p", min=1, max=65535),
    store_uri: str | None = typer.Option(
        None,
        "--store-uri",
        help="Metadata store (postgresql://… for a team); default: the SDK's SQLite in "
        "MODELPILOT_HOME.",
    ),
    no_auth: bool = typer.Option(
        False, "--no-auth", help="Accept requests without a token (a laptop only; says so loudly)."
    ),
    agent: bool = typer.Option(
        False,
        "--agent",
        help="Also run the agent in the server: triggers, pipelines and the continuous-training "
        "loop (what `modelpilot agent` does), on this store.",
    ),
    agent_interval_s: float = typer.Option(
        DEFAULT_INTERVAL_S, "--agent-interval-s", help="With --agent: seconds between iterations."
    ),
    agent_lease_s: float = typer.Option(
        DEFAULT_LEASE_S, "--agent-lease-s", help="With --agent: as `modelpilot agent --lease-s`."
    ),
) -> None:
    """Serve the control-plane REST API (/api/v1, OpenAPI at /api/openapi.json), and with
    --agent the continuous-training loop beside it."""
    import uvicorn

    from modelpilot.artifacts import open_artifact_store, remove_stale_temp_files
    from modelpilot.server.app import create_app
    from modelpilot.store import Store

    if agent:  # before anything starts: a bad option is exit 2 naming it
        check_agent_options(
            interval_s=agent_interval_s, lease_s=agent_lease_s, max_iterations=None,
            prefix="--agent-",
        )  # fmt: skip
    settings = Settings(store_uri=store_uri) if store_uri else Settings()
    store = Store.open(
        settings.resolved_store_uri(), busy_timeout_ms=settings.sqlite_busy_timeout_ms
    )
    url = f"http://{host}:{port}"
    artifacts = open_artifact_store(settings)
    # what a killed server left: temp files and resumable uploads idle for a day
    remove_stale_temp_files(artifacts.staging_root)
    if no_auth:
        err_console.print(_NO_AUTH_WARNING.format(url=url), highlight=False)
    console.print(
        f"modelpilot server on {url} (API {url}/api/v1, OpenAPI {url}/api/openapi.json; "
        f"auth {'OFF' if no_auth else 'on: tokens required'}). Ctrl-C to stop."
    )
    try:
        with store.held_open():
            app = create_app(
                store,
                auth=not no_auth,
                artifacts=artifacts,
                max_upload_bytes=settings.max_upload_bytes,
                home=settings.home,
            )
            if agent:
                app.router.lifespan_context = _agent_lifespan(
                    settings, agent_interval_s, agent_lease_s
                )
            _freeze_startup_objects()
            uvicorn.run(
                app,
                host=host,
                port=port,
                log_level="warning",
                timeout_graceful_shutdown=10,
            )
    finally:
        store.close()


def _agent_lifespan(
    settings: Settings, interval_s: float, lease_s: float
) -> Callable[[object], AbstractAsyncContextManager[None]]:
    """The app's lifespan with the agent in a thread: started with the app, stopped (after
    the iteration in progress) when the app shuts down, before uvicorn exits. An iteration
    that fails is printed and the next one comes as usual."""

    def report(done: AgentIteration) -> None:
        for line in done.lines():  # quiet when nothing happened
            console.print(f"agent: {line}", highlight=False, soft_wrap=True, markup=False)

    def failed(exc: Exception) -> None:
        err_console.print(f"agent: iteration failed: {said(exc)}", highlight=False, markup=False)

    @asynccontextmanager
    async def lifespan(_app: object) -> AsyncIterator[None]:
        from modelpilot.workspace import Workspace  # the store (SQLAlchemy): not at CLI start

        ws = Workspace(settings)
        agent = workspace_agent(ws, lease_s=lease_s)
        stop = threading.Event()
        thread = threading.Thread(
            target=agent.run, name="modelpilot-agent", daemon=True,
            kwargs={"interval_s": interval_s, "stop": stop, "on_iteration": report,
                    "on_error": failed},
        )  # fmt: skip
        console.print(f"agent {agent.agent_id}: every {interval_s:g} s, lease {lease_s:g} s",
                      highlight=False)  # fmt: skip
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
            ws.close()
            console.print(f"agent {agent.agent_id}: stopped", highlight=False)

    return lifespan


def _freeze_startup_objects() -> None:
    """Leave the objects made while starting (modules, the app, its schemas: about 150,000)
    out of every later garbage collection.

    A metric batch allocates tens of thousands of small containers that live until its
    request ends, so full collections come every few batches, and each walked every object
    of the process: half of the server's CPU time on 10,000-point batches, twice the store
    write itself (benchmarks/tracking.py --server, measured with py-spy --gil)."""
    gc.collect()
    gc.freeze()


def register(app: typer.Typer) -> None:
    """Attach ``server``."""
    app.command("server")(server_command)
