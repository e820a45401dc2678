"""Generate the synthetic reference/current frames for the drift speed baseline.

20 numeric columns num_00..num_19, 5 categorical cat_0..cat_4.
Known truth:
  * num_00..num_04: mean shift of +0.2 std in current (all other numeric unchanged)
  * cat_0: category frequencies changed in current (others unchanged)
Numeric columns mix distributions (normal, lognormal, uniform, gamma, t) so that
tests are not only exercised on Gaussians; the 0.2-std shift is applied as
x + 0.2*std(reference distribution).

usage: python gen_data.py N OUTDIR [REPLICATE]   (writes ref_N.parquet, cur_N.parquet, truth.json)
"""

import json
import pathlib
import sys

import numpy as np
import pandas as pd

N = int(sys.argv[1])
out = pathlib.Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
SEED = (
    int(sys.argv[3]) if len(sys.argv) > 3 else 0
)  # replicate r uses seeds (2r+1, 2r+2); r=0 is the main run
N_NUM, N_CAT, SHIFTED_NUM, SHIFT = 20, 5, 5, 0.2

CAT_LEVELS = {
    "cat_0": (["a", "b", "c", "d", "e", "f"], [0.40, 0.25, 0.15, 0.10, 0.05, 0.05]),
    "cat_1": (["x", "y", "z"], [0.5, 0.3, 0.2]),
    "cat_2": ([f"k{i}" for i in range(10)], [0.1] * 10),
    "cat_3": (["lo", "mid", "hi", "vhi"], [0.4, 0.3, 0.2, 0.1]),
    "cat_4": (
        [f"s{i}" for i in range(20)],
        list(np.linspace(2, 0.2, 20) / np.linspace(2, 0.2, 20).sum()),
    ),
}
CAT0_CURRENT = [0.30, 0.25, 0.15, 0.10, 0.10, 0.10]  # changed frequencies for cat_0


def num_col(rng, j, n):
    kind = j % 5
    if kind == 0:
        x, sd = rng.normal(0, 1, n), 1.0
    elif kind == 1:
        x, sd = rng.lognormal(0, 0.5, n), float(np.sqrt((np.exp(0.25) - 1) * np.exp(0.25)))
    elif kind == 2:
        x, sd = rng.uniform(0, 10, n), 10 / np.sqrt(12)
    elif kind == 3:
        x, sd = rng.gamma(2.0, 3.0, n), float(np.sqrt(2.0) * 3.0)
    else:
        x, sd = rng.standard_t(5, n), float(np.sqrt(5 / 3))
    return x, sd


def frame(seed, current):
    rng = np.random.default_rng(seed)
    cols = {}
    for j in range(N_NUM):
        x, sd = num_col(rng, j, N)
        if current and j < SHIFTED_NUM:
            x = x + SHIFT * sd
        cols[f"num_{j:02d}"] = x
    for name, (levels, p) in CAT_LEVELS.items():
        pp = CAT0_CURRENT if (current and name == "cat_0") else p
        cols[name] = pd.Categorical(rng.choice(levels, size=N, p=pp), categories=levels)
    return pd.DataFrame(cols)


ref = frame(2 * SEED + 1, False)
cur = frame(2 * SEED + 2, True)
ref.to_parquet(out / f"ref_{N}.parquet")
cur.to_parquet(out / f"cur_{N}.parquet")
# Also plain numpy copies (for venvs without pyarrow): numeric float64 + categorical int codes
np.savez(
    out / f"ref_{N}.npz",
    num=ref.iloc[:, :N_NUM].to_numpy(),
    cat=np.stack([ref[c].cat.codes.to_numpy() for c in CAT_LEVELS], 1),
)
np.savez(
    out / f"cur_{N}.npz",
    num=cur.iloc[:, :N_NUM].to_numpy(),
    cat=np.stack([cur[c].cat.codes.to_numpy() for c in CAT_LEVELS], 1),
)

# magnitude of the categorical change, for the record
p, q = np.array(CAT_LEVELS["cat_0"][1]), np.array(CAT0_CURRENT)
m = (p + q) / 2
js_dist_e = float(np.sqrt(0.5 * (p * np.log(p / m)).sum() + 0.5 * (q * np.log(q / m)).sum()))
psi = float(((q - p) * np.log(q / p)).sum())
truth = {
    "n_rows": N,
    "drifted": [f"num_{j:02d}" for j in range(SHIFTED_NUM)] + ["cat_0"],
    "not_drifted": [f"num_{j:02d}" for j in range(SHIFTED_NUM, N_NUM)]
    + [c for c in CAT_LEVELS if c != "cat_0"],
    "numeric_kinds": {
        f"num_{j:02d}": ["normal", "lognormal", "uniform", "gamma", "t5"][j % 5]
        for j in range(N_NUM)
    },
    "numeric_shift": f"+{SHIFT} * population std on num_00..num_04",
    "cat_0_reference_p": CAT_LEVELS["cat_0"][1],
    "cat_0_current_p": CAT0_CURRENT,
    "cat_0_population_jensen_shannon_distance_natural_log": js_dist_e,
    "cat_0_population_jensen_shannon_distance_base2": js_dist_e / np.sqrt(np.log(2)),
    "cat_0_population_psi": psi,
}
(out / f"truth_{N}.json").write_text(json.dumps(truth, indent=1))
print(json.dumps(truth, indent=1))
