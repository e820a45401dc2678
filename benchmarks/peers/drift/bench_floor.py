"""The floor: scipy ks_2samp per numeric column + chi2_contingency per categorical column,
and a numpy-vectorized PSI with fixed reference-quantile bins (deciles) for numeric + category
frequencies for categorical.  usage: python bench_floor.py N"""
# ruff: noqa: E402  (imports come after a timer on purpose: import time is reported)

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_common as bc

t0 = time.perf_counter()
import numpy as np
import scipy
from scipy.stats import chi2_contingency, ks_2samp

t_import = time.perf_counter() - t0

n = int(sys.argv[1])
(rnum, rcat, cnum, ccat), t_load = bc.load_npz(n)
rss_after_load = bc.peak_rss_mb()
NB = 10  # decile bins
EPS = 1e-4


def tests():
    p_num = [ks_2samp(rnum[:, j], cnum[:, j]).pvalue for j in range(rnum.shape[1])]
    p_cat = []
    for j in range(rcat.shape[1]):
        k = int(max(rcat[:, j].max(), ccat[:, j].max())) + 1
        tab = np.vstack(
            [np.bincount(rcat[:, j], minlength=k), np.bincount(ccat[:, j], minlength=k)]
        )
        tab = tab[:, tab.sum(0) > 0]
        p_cat.append(chi2_contingency(tab)[1])
    return np.array(p_num + p_cat)


def psi():
    _, m = rnum.shape
    edges = np.quantile(
        rnum, np.linspace(0, 1, NB + 1)[1:-1], axis=0
    )  # (NB-1, m) fixed ref-quantile bins
    off = np.arange(m) * NB

    def hist(x):
        b = np.empty(x.shape, dtype=np.int64)
        for j in range(m):  # searchsorted is per 1-D array
            b[:, j] = np.searchsorted(edges[:, j], x[:, j], side="right")
        return np.bincount((b + off).ravel(), minlength=m * NB).reshape(m, NB) / x.shape[0]

    pr, pc = np.clip(hist(rnum), EPS, None), np.clip(hist(cnum), EPS, None)
    psi_num = ((pc - pr) * np.log(pc / pr)).sum(1)
    k = int(max(rcat.max(), ccat.max())) + 1
    offc = np.arange(rcat.shape[1]) * k
    qr = (
        np.bincount((rcat + offc).ravel(), minlength=rcat.shape[1] * k).reshape(-1, k)
        / rcat.shape[0]
    )
    qc = (
        np.bincount((ccat + offc).ravel(), minlength=ccat.shape[1] * k).reshape(-1, k)
        / ccat.shape[0]
    )
    mask = (qr + qc) > 0
    qr, qc = np.clip(qr, EPS, None), np.clip(qc, EPS, None)
    psi_cat = np.where(mask, (qc - qr) * np.log(qc / qr), 0).sum(1)
    return np.concatenate([psi_num, psi_cat])


cols = bc.NUM + bc.CAT
med_t, times_t, pv = bc.timed(tests)
med_p, times_p, ps = bc.timed(psi)
med_all, times_all, _ = bc.timed(lambda: (tests(), psi()))
f_raw = [c for c, p in zip(cols, pv, strict=True) if p < 0.05]
f_bonf = [c for c, p in zip(cols, pv, strict=True) if p < 0.05 / len(cols)]
f_psi10 = [c for c, s in zip(cols, ps, strict=True) if s > 0.1]
f_psi02 = [c for c, s in zip(cols, ps, strict=True) if s > 0.02]
bc.emit(
    {
        "tool": "floor (scipy+numpy)",
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "n_rows": n,
        "import_s": round(t_import, 2),
        "load_s": round(t_load, 2),
        "rss_after_load_mb": round(rss_after_load, 1),
        "ks_chi2_median_s": round(med_t, 3),
        "ks_chi2_times_s": [round(x, 3) for x in times_t],
        "psi_median_s": round(med_p, 4),
        "psi_times_s": [round(x, 4) for x in times_p],
        "all_median_s": round(med_all, 3),
        "flagged_p<0.05": f_raw,
        "score_p<0.05": bc.score(f_raw, n),
        "flagged_bonferroni": f_bonf,
        "score_bonferroni": bc.score(f_bonf, n),
        "flagged_psi>0.1": f_psi10,
        "score_psi>0.1": bc.score(f_psi10, n),
        "flagged_psi>0.02": f_psi02,
        "score_psi>0.02": bc.score(f_psi02, n),
        "p_val": {c: float(f"{p:.3g}") for c, p in zip(cols, pv, strict=True)},
        "psi": {c: round(float(s), 5) for c, s in zip(cols, ps, strict=True)},
    }
)
