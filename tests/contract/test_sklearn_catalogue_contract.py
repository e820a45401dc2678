"""Common scikit-learn estimators save, then load by alias in a fresh process, with no trust flags.

The loading side decides what is safe (skops' list plus the types scikit-learn's own estimators
need), so a standard pipeline a user logs must load back without ``trusted_types`` and predict
exactly as it did before it was saved.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from modelpilot.config import Settings
from modelpilot.workspace import Workspace
from mp_sklearn_catalogue import CATALOGUE, mixed_frame, numeric_frame

LOADER = textwrap.dedent(
    """
    import json, sys
    import pandas as pd
    import modelpilot as mp

    folder = sys.argv[1]
    frames = {k: pd.read_parquet(f"{folder}/{k}.parquet") for k in ("numeric", "mixed")}
    plan = json.loads(open(f"{folder}/plan.json").read())
    out = {}
    for name, frame in plan.items():
        model = mp.load_model(f"{name}@champion")
        x = frames[frame]
        out[name] = {
            "predict": model.predict(x).tolist(),
            "proba": model.predict_proba(x).tolist() if model.classes is not None else None,
        }
    print(json.dumps(out))
    """
)


def test_catalogue_loads_by_alias_in_a_fresh_process_and_predicts_the_same(
    tmp_path: Path,
) -> None:
    frames = {"numeric": numeric_frame(), "mixed": mixed_frame()}
    home = tmp_path / "home"
    ws = Workspace(Settings(home=home))
    fitted: dict[str, Any] = {}
    try:
        for name, (frame, task, make) in CATALOGUE.items():
            x, label, target = frames[frame]
            model = make().fit(x, label if task == "classify" else target)
            mv = ws.log_model(model, name, input_example=x.head(5))
            ws.set_alias(name, "champion", mv.version)
            fitted[name] = model
    finally:
        ws.close()
    for key, (x, _, _) in frames.items():
        x.to_parquet(tmp_path / f"{key}.parquet")
    (tmp_path / "plan.json").write_text(json.dumps({n: c[0] for n, c in CATALOGUE.items()}))

    env = {**os.environ, "MODELPILOT_HOME": str(home)}
    done = subprocess.run(
        [sys.executable, "-c", LOADER, str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = json.loads(done.stdout)

    # The same input the child read (parquet gives column-major blocks; BLAS sums a C- and an
    # F-ordered block in different orders, so the layout must match for bit-equal results).
    inputs = {key: pd.read_parquet(tmp_path / f"{key}.parquet") for key in frames}
    for name, model in fitted.items():
        x = inputs[CATALOGUE[name][0]]
        assert np.array_equal(np.asarray(loaded[name]["predict"]), model.predict(x)), name
        if loaded[name]["proba"] is not None:
            np.testing.assert_allclose(
                loaded[name]["proba"], model.predict_proba(x), rtol=1e-12, err_msg=name
            )
        else:
            assert not hasattr(model, "predict_proba") or CATALOGUE[name][1] == "regress", name
