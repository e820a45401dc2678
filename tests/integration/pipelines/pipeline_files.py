"""Shared data for the pipeline tests: small seeded frames and copies of the pipeline files."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).parent


def churn_frame(rows: int, seed: int) -> pd.DataFrame:
    """Two features and a label that depends on the first."""
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(rng.normal(size=(rows, 2)), columns=["a", "b"])
    return x.assign(y=(x["a"] + 0.3 * rng.normal(size=rows) > 0).astype(int))


def copy_pipelines(folder: Path) -> Path:
    """The example pipeline files, copied where a test may edit them."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("churn_pipeline.py", "faulty_pipeline.py"):
        shutil.copy(HERE / name, folder / name)
    return folder
