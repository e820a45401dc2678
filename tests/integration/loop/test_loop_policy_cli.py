"""``modelpilot deploy policy validate|set|show|history`` through the installed executable,
with their exit codes (0 ok, 2 invalid with FILE:LINE messages, 3 unknown deployment), and
the refusal with a server configured. SQLite; the service tests cover PostgreSQL."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from loop_files import installed_exe
from sklearn.linear_model import LogisticRegression

from modelpilot import release
from modelpilot.config import Settings
from modelpilot.workspace import Workspace

HERE = Path(__file__).parent
POLICY = """\
triggers:
  - schedule: "0 3 * * *"
    cooldown: 1h
training: {pipeline: tiny_pipeline.py:tiny, params: {x: 2}}
evaluation: {dataset: churn-test, target: churned, gate: gate.yaml}
rollout: {steps: [20, 100]}
"""


@pytest.fixture(scope="module")
def exe() -> str:
    return installed_exe()


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("project")
    shutil.copy(HERE.parent / "pipelines" / "tiny_pipeline.py", folder / "tiny_pipeline.py")
    (folder / "gate.yaml").write_text("latency: {max_p99_ms: 5}\n")
    (folder / "loop.yaml").write_text(POLICY)
    (folder / "bad.yaml").write_text(POLICY.replace("cooldown: 1h", "cooldown: later"))
    (folder / "nodata.yaml").write_text(POLICY.replace("churn-test", "churn-tset"))
    ws = Workspace(Settings(home=folder / "home"))
    x = pd.DataFrame(np.random.default_rng(0).normal(size=(40, 2)), columns=["a", "b"])
    ws.log_model(LogisticRegression().fit(x, x["a"] > 0), "churn", input_example=x.head())
    ws.log_dataset(x.assign(churned=x["a"] > 0), name="churn-test")
    release.create_deployment(ws.store, "web", "churn/1", actor="alice")
    ws.close()
    return folder


def _mp(exe: str, project: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "MODELPILOT_HOME": str(project / "home"), "COLUMNS": "250", **env}
    environ.pop("MODELPILOT_STORE_URI", None)
    return subprocess.run(
        [exe, "deploy", "policy", *args],
        capture_output=True, text=True, env=environ, cwd=project, timeout=120, check=False,
    )  # fmt: skip


def test_validate_set_show_history_with_exit_codes(exe: str, project: Path) -> None:
    ok = _mp(exe, project, "validate", "--file", "loop.yaml")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "loop.yaml: valid (schedule 0 3 * * *" in ok.stdout
    bad = _mp(exe, project, "validate", "--file", "bad.yaml")
    assert bad.returncode == 2
    assert "bad.yaml:3: triggers.0.cooldown: not a duration" in bad.stdout + bad.stderr
    assert _mp(exe, project, "set", "web", "--file", "bad.yaml").returncode == 2
    unknown = _mp(exe, project, "set", "nope", "--file", "loop.yaml")
    assert (
        unknown.returncode == 3 and "No deployment named 'nope'" in unknown.stdout + unknown.stderr
    )
    assert _mp(exe, project, "show", "web").returncode == 3  # no policy yet
    nodata = _mp(exe, project, "set", "web", "--file", "nodata.yaml")
    assert nodata.returncode == 3, nodata.stdout + nodata.stderr
    assert "evaluation.dataset: No dataset named 'churn-tset'" in nodata.stdout + nodata.stderr

    made = _mp(exe, project, "set", "web", "--file", "loop.yaml")
    assert made.returncode == 0, made.stdout + made.stderr
    assert "Set policy revision 1 of web; triggers: web.1" in made.stdout
    shown = json.loads(_mp(exe, project, "show", "web", "--json").stdout)
    assert shown["revision"] == 1 and shown["triggers"] == ["web.1"]
    assert shown["policy"]["rollout"]["steps"] == [20, 100]
    text = _mp(exe, project, "show", "web", "--revision", "1")
    assert text.returncode == 0 and "steps:\n  - 20\n  - 100" in text.stdout
    assert _mp(exe, project, "show", "web", "--revision", "4").returncode == 3
    history = _mp(exe, project, "history", "web")
    assert history.returncode == 0 and "web.1" in history.stdout and "local:" in history.stdout

    remote = _mp(exe, project, "show", "web", MODELPILOT_SERVER_URI="http://127.0.0.1:9")
    assert remote.returncode == 2
    assert "not yet available over modelpilot server" in remote.stdout + remote.stderr
