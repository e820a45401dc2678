"""``modelpilot profile`` through the installed executable: the table it prints (edge in a
pinned, capped fresh process; cloud behind a real ``modelpilot serve``), the record the model
card shows, and bad input (exit 2). No timing is asserted: figures depend on the machine."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from modelpilot.config import Settings
from modelpilot.workspace import Workspace

# Starts interpreters and a server: `make test-slow` (and .ci/run) runs it, `make test` does not.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """churn/1: a logistic regression with its training data."""
    home = tmp_path_factory.mktemp("profile") / "home"
    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.normal(size=(200, 2)), columns=["a", "b"])
    ws = Workspace(Settings(home=home))
    train = ws.log_dataset(x.assign(y=(x["a"] > 0).astype(int)), "customers")
    model = LogisticRegression().fit(x, (x["a"] > 0).astype(int))
    ws.log_model(model, "churn", input_example=x.head(), datasets=[train])
    ws.close()
    return home


def _run(
    exe: str, home: Path, *args: str, columns: str = "200"
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MODELPILOT_HOME": str(home), "COLUMNS": columns}
    return subprocess.run(
        [exe, *args], capture_output=True, text=True, env=env, timeout=300, check=False
    )


def test_profile_prints_edge_and_cloud_rows_and_the_card_shows_them(exe: str, home: Path) -> None:
    result = _run(exe, home, "profile", "churn/1", "--core-hour-price", "0.1", columns="80")
    assert result.returncode == 0, result.stderr
    assert "Profile of churn/1 (cost per 1M predictions at 0.1 per core-hour)" in result.stdout
    assert "…" not in result.stdout, result.stdout  # every header and cell whole at 80 columns
    rows = {line.split()[1]: line for line in result.stdout.splitlines() if "│" in line}
    for target in ("edge", "cloud"):
        cells = [c.strip() for c in rows[target].split("│")[1:-1]]
        assert len(cells) == 8 and all(c != "-" for c in cells[2:6]), rows[target]
        assert float(cells[7]) > 0  # the cost column is priced
    assert rows["edge"].split("│")[2].strip() == "1"  # edge: one core
    card = _run(exe, home, "models", "card", "churn/1")
    assert card.returncode == 0 and "## Deployment profile" in card.stdout
    assert "| edge | 1 |" in card.stdout and "| cloud |" in card.stdout


def test_edge_under_a_too_small_memory_cap_reports_it_instead_of_figures(
    exe: str, home: Path
) -> None:
    result = _run(exe, home, "profile", "churn/1", "--target", "edge", "--memory-mb", "64")
    assert result.returncode == 0, result.stderr
    assert "edge: failed under the cap" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--target", "phone"), "Unknown profile target 'phone'. Available: edge, cloud."),
        (("--core-hour-price", "-1"), "--core-hour-price must be >= 0"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    exe: str, home: Path, args: tuple[str, ...], message: str
) -> None:
    result = _run(exe, home, "profile", "churn/1", *args)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_in_a_terminal_a_status_line_names_the_target_being_measured(exe: str, home: Path) -> None:
    """A profile takes seconds per target (a fresh process, a server): in a terminal the
    status line says which one is running; piped output (the tests above) has none."""
    import pty

    leader, follower = pty.openpty()
    env = {**os.environ, "MODELPILOT_HOME": str(home), "COLUMNS": "120", "TERM": "xterm"}
    process = subprocess.Popen(
        [exe, "profile", "churn/1", "--target", "edge"],
        stdin=subprocess.DEVNULL, stdout=follower, stderr=follower, env=env,
    )  # fmt: skip
    os.close(follower)
    shown = b""
    while True:  # until the command exits and the terminal closes (EIO), bounded by its run
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
    os.close(leader)
    assert process.wait(timeout=300) == 0
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", shown.decode(errors="replace"))  # colours
    assert "Edge: churn/1 on one pinned core under the memory cap" in text
    assert "Stored on churn/1" in text
