"""modelpilot's side of benchmarks/drift.py: fit a reference profile, score a window.

usage: python benchmarks/drift_modelpilot.py N     (data from DRIFT_DATA, see drift.py)

The reference is loaded, profiled (timed), then dropped before the current window is loaded
and scored against the kept profile (timed): the way a monitor runs, and what bounds memory.
Prints one ``RESULT_JSON {...}`` line like the peers' scripts.
"""

from __future__ import annotations

import functools
import gc
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "peers" / "drift"))

import bench_common as bc  # the peers' shared harness: timing, truth, scoring

t0 = time.perf_counter()
import pandas as pd  # noqa: E402

import modelpilot  # noqa: E402
from modelpilot.monitoring import detect_drift, fit_profile  # noqa: E402

import_s = time.perf_counter() - t0


def load(path: Path, columns: list[str]) -> pd.DataFrame:
    """Read a Parquet file one column at a time into an unconsolidated frame.

    pd.read_parquet holds the Arrow table and the converted frame at once (about twice the
    data); column by column the peak is the data plus one column.
    """
    import pyarrow.parquet as pq

    handle = pq.ParquetFile(path)
    data = {name: handle.read(columns=[name]).column(0).to_pandas() for name in columns}
    return pd.DataFrame(data, copy=False)


def main() -> None:
    n = int(sys.argv[1])
    cols = bc.NUM + bc.CAT
    t = time.perf_counter()
    reference = load(bc.DATA / f"ref_{n}.parquet", cols)
    load_ref_s = time.perf_counter() - t
    rss_after_ref = bc.peak_rss_mb()
    fit_s, fit_times, profile = bc.timed(functools.partial(fit_profile, reference))
    del reference
    gc.collect()
    t = time.perf_counter()
    current = load(bc.DATA / f"cur_{n}.parquet", cols)
    load_cur_s = time.perf_counter() - t
    score_s, score_times, report = bc.timed(lambda: detect_drift(profile, current))
    path = Path(tempfile.gettempdir()) / f"modelpilot_drift_{n}.html"
    t = time.perf_counter()
    report.save_html(path)
    html_s = time.perf_counter() - t
    flagged = report.drifted_columns
    bc.emit(
        {
            "tool": "modelpilot",
            "version": modelpilot.__version__ if hasattr(modelpilot, "__version__") else "dev",
            "n_rows": n,
            "threads": os.cpu_count(),
            "import_s": round(import_s, 2),
            "load_s": round(load_ref_s + load_cur_s, 2),
            "rss_after_reference_load_mb": round(rss_after_ref, 1),
            "fit_median_s": round(fit_s, 3),
            "fit_times_s": [round(x, 3) for x in fit_times],
            "score_median_s": round(score_s, 3),
            "score_times_s": [round(x, 3) for x in score_times],
            "fit_plus_score_s": round(fit_s + score_s, 3),
            "html_save_s": round(html_s, 3),
            "html_size_kb": round(path.stat().st_size / 1024, 1),
            "profile_json_kb": round(len(profile.to_json()) / 1024, 1),
            "dataset_drift": report.dataset_drift,
            "flagged": flagged,
            "score": bc.score(flagged, n),
            "methods": sorted({row.method for row in report.columns}),
            "statistic": {row.column: row.statistic for row in report.columns},
            "p_value_adjusted": {row.column: row.p_value_adjusted for row in report.columns},
        }
    )


if __name__ == "__main__":
    main()
