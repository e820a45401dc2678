"""NannyML speed/correctness baseline: UnivariateDriftCalculator fit + calculate.

Continuous: kolmogorov_smirnov + jensen_shannon; categorical: chi2 + jensen_shannon.
usage: python bench_nannyml.py N [chunking]
  chunking: default (DefaultChunker = 10 chunks) | single (chunk_size=N)
"""
# ruff: noqa: E402  (imports come after a timer on purpose: import time is reported)

import os
import sys
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_common as bc

warnings.filterwarnings("ignore")

t0 = time.perf_counter()
import nannyml as nml
import pandas as pd

t_import = time.perf_counter() - t0

n = int(sys.argv[1])
chunking = sys.argv[2] if len(sys.argv) > 2 else "default"
ref, cur, t_load = bc.load_parquet(n)
rss_after_load = bc.peak_rss_mb()
cols = bc.NUM + bc.CAT
kw = {} if chunking == "default" else {"chunk_size": n}


def run():
    calc = nml.UnivariateDriftCalculator(
        column_names=cols,
        treat_as_categorical=bc.CAT,
        continuous_methods=["kolmogorov_smirnov", "jensen_shannon"],
        categorical_methods=["chi2", "jensen_shannon"],
        **kw,
    )
    calc.fit(ref)
    res = calc.calculate(cur)
    return res.filter(period="analysis").to_df(multilevel=False)


med, times, df = bc.timed(run)
alerts = {}
for c in cols:
    for m in ("kolmogorov_smirnov", "jensen_shannon", "chi2"):
        k = f"{c}_{m}_alert"
        if k in df.columns:
            alerts.setdefault(m, {})[c] = int(df[k].astype(bool).sum())
n_chunks = len(df)
flag_by_method = {m: sorted(c for c, k in d.items() if k > 0) for m, d in alerts.items()}
# the tool's combined verdict for a column: alert by any of its methods in any analysis chunk
flag_any = sorted({c for d in alerts.values() for c, k in d.items() if k > 0})
# per-method scoring: KS/chi2 ("statistical" pair as asked) and JS alone
stat_pair = sorted(
    set(flag_by_method.get("kolmogorov_smirnov", [])) | set(flag_by_method.get("chi2", []))
)
out = {
    "tool": "nannyml",
    "version": nml.__version__,
    "pandas": pd.__version__,
    "n_rows": n,
    "chunking": chunking,
    "n_analysis_chunks": n_chunks,
    "import_s": round(t_import, 2),
    "load_s": round(t_load, 2),
    "rss_after_load_mb": round(rss_after_load, 1),
    "fit_calculate_median_s": round(med, 3),
    "fit_calculate_times_s": [round(x, 3) for x in times],
    "flagged_any_method": flag_any,
    "score_any_method": bc.score(flag_any, n),
    "flagged_ks_chi2": stat_pair,
    "score_ks_chi2": bc.score(stat_pair, n),
    "flagged_js": flag_by_method.get("jensen_shannon", []),
    "score_js": bc.score(flag_by_method.get("jensen_shannon", []), n),
    "alert_chunks_per_column": alerts,
}
bc.emit(out)
