"""A process killed with SIGKILL in the middle of log_model leaves a readable store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier

from modelpilot import registry
from modelpilot.config import Settings
from modelpilot.errors import NotFound
from modelpilot.workspace import Workspace

_CHILD = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    import numpy as np, pandas as pd
    from sklearn.linear_model import LogisticRegression
    from modelpilot.config import Settings
    from modelpilot.registry import service
    from modelpilot.workspace import Workspace

    ws = Workspace(Settings(home=Path(sys.argv[1])))
    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.normal(size=(200, 3)), columns=list("abc"))
    model = LogisticRegression().fit(x, x["a"] > 0)
    original = service.record_event

    def stop_inside_the_transaction(conn, kind, *args, **kwargs):
        original(conn, kind, *args, **kwargs)
        if kind == "model_version.registered":
            # the version row is written but not committed: tell the parent and wait to die
            sys.stdout.write("inside\\n"); sys.stdout.flush()
            sys.stdin.readline()

    service.record_event = stop_inside_the_transaction
    ws.log_model(model, "churn", input_example=x.head())
    """
)


def test_sigkill_during_log_model_leaves_no_half_registered_version(
    sqlite_settings: Settings,
) -> None:
    home = sqlite_settings.home
    Workspace(sqlite_settings).store  # noqa: B018 - migrate first
    with subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(home)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "inside"
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
    ws = Workspace(Settings(home=home))
    with pytest.raises(NotFound, match="No registered model named 'churn'"):
        ws.get_model_version("churn")
    assert registry.list_models(ws.store) == []
    # The store is writable again straight away.
    x = pd.DataFrame({"a": [0.0, 1.0]})
    mv = ws.log_model(DummyClassifier().fit(x, [0, 1]), "churn", input_example=x)
    assert mv.version == 1
    assert Path(home / "modelpilot.db").exists()
