"""Evidently speed/correctness baseline.

Report([DataDriftPreset()], include_tests=True), result dict + HTML.
usage: python bench_evidently.py N [--no-html]
"""
# ruff: noqa: E402  (imports come after a timer on purpose: import time is reported)

import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_common as bc

t0 = time.perf_counter()
import evidently
import pandas as pd
from evidently import Report
from evidently.presets import DataDriftPreset

t_import = time.perf_counter() - t0

n = int(sys.argv[1])
do_html = "--no-html" not in sys.argv
ref, cur, t_load = bc.load_parquet(n)
rss_after_load = bc.peak_rss_mb()


def run():
    snap = Report([DataDriftPreset()], include_tests=True).run(current_data=cur, reference_data=ref)
    d = snap.dict()
    return snap, d


med, times, (snap, d) = bc.timed(run)
flagged, scores = [], {}
for m in d["metrics"]:
    cfg = m.get("config", {})
    if cfg.get("type", "").endswith("ValueDrift"):
        scores[cfg["column"]] = (cfg["method"], cfg["threshold"], m["value"])
for t in d["tests"]:
    if t["name"].startswith("Value Drift for column ") and t["status"] == "FAIL":
        flagged.append(t["name"].rsplit(" ", 1)[-1])
dataset_level = [t for t in d["tests"] if t["name"].startswith("Share of Drifted Columns")]

out = {
    "tool": "evidently",
    "version": evidently.__version__,
    "pandas": pd.__version__,
    "n_rows": n,
    "import_s": round(t_import, 2),
    "load_s": round(t_load, 2),
    "rss_after_load_mb": round(rss_after_load, 1),
    "run_plus_dict_median_s": round(med, 3),
    "run_plus_dict_times_s": [round(x, 3) for x in times],
    "flagged": sorted(flagged),
    "score": bc.score(flagged, n),
    "dataset_level": [(t["description"], t["status"]) for t in dataset_level],
    "methods": sorted({(v[0], v[1]) for v in scores.values()}),
    "per_column_scores": {k: round(v[2], 5) for k, v in sorted(scores.items())},
}
if do_html:
    path = os.path.join(tempfile.gettempdir(), f"ev_report_{n}.html")
    hmed, htimes, _ = bc.timed(lambda: snap.save_html(path))
    out.update(
        html_save_median_s=round(hmed, 3),
        html_save_times_s=[round(x, 3) for x in htimes],
        html_size_mb=round(os.path.getsize(path) / 2**20, 2),
    )
bc.emit(out)
