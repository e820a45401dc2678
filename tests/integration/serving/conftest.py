"""Fixtures: a home with registered models, and real `modelpilot serve` processes on loopback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from modelpilot.config import Settings
from modelpilot.identity import Role, create_token
from modelpilot.workspace import Workspace
from mp_server import copy_home, free_port, wait_ready

HERE = Path(__file__).parent
FEATURES = ["age", "income", "calls"]


def frame(rows: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(
        {
            "age": rng.integers(18, 80, rows),
            "income": rng.normal(50.0, 10.0, rows),
            "calls": rng.integers(0, 5, rows),
        }
    )
    return x


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, module_store_uri: str | None) -> Iterator[Path]:
    """churn/1 (logistic regression), churn/2 (another fit), flaky/1 (raises on negative age).

    On PostgreSQL the metadata lives in the module's schema (``MODELPILOT_STORE_URI``, which
    servers inherit), and artifacts in one folder for the module (``MODELPILOT_ARTIFACT_ROOT``),
    as a team shares them: copies of this home share both, so each test names its own
    deployments."""
    home = tmp_path_factory.mktemp("serving") / "home"
    home.mkdir()  # on PostgreSQL with shared artifacts nothing else creates it
    with pytest.MonkeyPatch.context() as patch:
        if module_store_uri is not None:
            patch.setenv("MODELPILOT_ARTIFACT_ROOT", str(home.parent / "shared-artifacts"))
        _register_models(home)
        yield home


def _register_models(home: Path) -> None:
    ws = Workspace(Settings(home=home))
    x = frame()
    y = (x["calls"] + (x["income"] > 50) > 2).astype(int)
    ws.log_model(LogisticRegression(max_iter=500).fit(x, y), "churn", input_example=x.head())
    ws.log_model(LogisticRegression(C=0.1, max_iter=500).fit(x, y), "churn", input_example=x.head())
    ws.set_alias("churn", "champion", 1)
    sys.path.insert(0, str(HERE))
    try:
        from serving_models import FailsOnNegativeAge

        ws.log_model(FailsOnNegativeAge(), "flaky", input_example=x.head())
    finally:
        sys.path.remove(str(HERE))
    ws.close()


@dataclass
class Server:
    """A running `modelpilot serve` process."""

    process: subprocess.Popen[bytes]
    url: str
    home: Path

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout=60)


@pytest.fixture(scope="module")
def start_server(home: Path) -> Iterator[Callable[..., Server]]:
    started: list[Server] = []

    def start(
        *targets: str, extra: tuple[str, ...] = (), server_home: Path | None = None
    ) -> Server:
        port = free_port()
        env = {
            **os.environ,
            "MODELPILOT_HOME": str(server_home or home),
            "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
        }
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "modelpilot.cli.main",
                "serve",
                *targets,
                "--port",
                str(port),
                *extra,
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        server = Server(process, f"http://127.0.0.1:{port}", server_home or home)
        started.append(server)
        wait_ready(server.url, process)
        return server

    yield start
    for server in started:
        if server.process.poll() is None:
            server.stop(signal.SIGKILL)
        if server.process.stderr is not None:
            server.process.stderr.close()


SERVER_FILE = """
models:
  - churn@champion
  - churn/2
  - ref: flaky
    batching: false
"""


@pytest.fixture(scope="module")
def server(start_server: Callable[..., Server], tmp_path_factory: pytest.TempPathFactory) -> Server:
    """One shared server from a server file: churn@champion, churn/2 and flaky (unbatched)."""
    server_file = tmp_path_factory.mktemp("server-file") / "models.yaml"
    server_file.write_text(SERVER_FILE)
    return start_server(str(server_file), extra=("--max-wait-ms", "20"))


def home_token(home: Path, name: str, role: Role) -> str:
    """A token on the store of ``home`` (its SQLite file, or the module's PostgreSQL schema):
    what ``modelpilot tokens create`` prints, for the data plane's guarded routes."""
    ws = Workspace(Settings(home=home))
    try:
        return create_token(ws.local_store(), name, role).token
    finally:
        ws.close()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def replica_home(home: Path, tmp_path: Path) -> Path:
    """A copy of ``home`` for one test's replicas (their prediction log its own)."""
    copy = tmp_path / "home"
    copy_home(home, copy)
    return copy
