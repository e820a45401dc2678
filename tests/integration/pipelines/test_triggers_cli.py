"""``modelpilot pipelines trigger create|list|fire|history|delete`` and ``pipelines tick``
through the installed executable, with their exit codes (0 ok, 2 bad input, 3 not found,
4 a fire held back by a limit). SQLite; the evaluator's own tests cover PostgreSQL."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("project")
    shutil.copy(HERE / "tiny_pipeline.py", folder / "tiny_pipeline.py")
    return folder


def _mp(exe: str, project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MODELPILOT_HOME": str(project / "home"), "COLUMNS": "250"}
    env.pop("MODELPILOT_STORE_URI", None)
    return subprocess.run(
        [exe, "pipelines", *args],
        capture_output=True, text=True, env=env, cwd=project, timeout=120, check=False,
    )  # fmt: skip


def test_create_list_fire_history_tick_delete(exe: str, project: Path) -> None:
    made = _mp(
        exe, project, "trigger", "create", "nightly", "--pipeline", "tiny_pipeline.py:tiny",
        "--schedule", "0 3 * * *", "--cooldown", "1h", "--daily-budget", "1", "--param", "x=4",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert "Created trigger nightly: schedule 0 3 * * * ->" in made.stdout
    bad = _mp(exe, project, "trigger", "create", "b", "--pipeline", "tiny_pipeline.py:tiny",
              "--schedule", "0 25 * * *")  # fmt: skip
    assert bad.returncode == 2
    assert "the hour field '25' is not valid; it accepts 0-23" in bad.stdout + bad.stderr
    for args in (["--cooldown", "soon"], ["--on-dataset", "d", "--on-alert", "r"]):
        refused = _mp(exe, project, "trigger", "create", "b", "--pipeline",
                      "tiny_pipeline.py:tiny", *args)  # fmt: skip
        assert refused.returncode == 2, refused.stdout + refused.stderr
    listed = _mp(exe, project, "trigger", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    [row] = json.loads(listed.stdout)
    assert row["name"] == "nightly" and row["params"] == ["x=4"]
    assert row["target"] == f"{(project / 'tiny_pipeline.py').resolve()}:tiny"
    fired = _mp(exe, project, "trigger", "fire", "nightly")  # subprocess executor
    assert fired.returncode == 0, fired.stdout + fired.stderr
    assert "nightly: fired (fired by local:" in fired.stdout and "pipeline run" in fired.stdout
    held = _mp(exe, project, "trigger", "fire", "nightly")
    assert held.returncode == 4
    assert (
        "did not fire: daily budget: 1 of 1 runs fired in the last 24 h"
        in held.stdout + held.stderr
    )
    history = _mp(exe, project, "trigger", "history", "nightly", "--json")
    assert history.returncode == 0, history.stderr
    decisions = json.loads(history.stdout)
    assert [d["decision"] for d in decisions] == ["skipped", "fired"]
    run_id = decisions[1]["pipeline_run_id"]
    shown = _mp(exe, project, "show", run_id, "--json")
    assert shown.returncode == 0 and json.loads(shown.stdout)["state"] == "SUCCEEDED"
    ticked = _mp(exe, project, "tick", "--json")
    assert ticked.returncode == 0, ticked.stderr
    assert isinstance(json.loads(ticked.stdout), list)
    assert _mp(exe, project, "trigger", "delete", "nightly").returncode == 0
    gone = _mp(exe, project, "trigger", "history", "nightly")
    assert gone.returncode == 3
    assert "No trigger named 'nightly'" in gone.stdout + gone.stderr
