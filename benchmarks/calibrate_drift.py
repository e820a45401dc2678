"""Calibrate the drift minimum effects (src/modelpilot/monitoring/drift/minimum.py).

    python benchmarks/calibrate_drift.py --seed 20261123 --pairs 300 --false-alarm 0.05 --columns 30

A monitor that alarms on every window is switched off. The minimum effect for each check is
therefore the effect size that pairs of windows drawn from one population exceed only at the
stated false-alarm rate: ``--false-alarm`` for the whole table, split evenly over
``--columns`` columns, so the quantile is ``1 - false_alarm / columns`` per check.

The population (seeded by ``--seed``): 30 columns of mixed types (see ``COLUMNS``): continuous
numbers of five shapes, integer columns with few values (counts, codes, a zero-inflated
count), one integer column with many values, categoricals with 3-12 levels, binary flags and
two high-cardinality codes. Each window is one "year": its parameters wobble around the
population's by small real amounts, as production data does when nothing that matters
changed: means by N(0, 0.015) sd (Poisson rates likewise), spreads by a factor
exp(N(0, 0.015)), category shares by a factor exp(N(0, 0.03)) (renormalised), binary logits
by N(0, 0.042) (two shares wobbling like that). At 100,000 rows such differences are
significant (a 0.02 sd shift is, at any level one would use): exactly what a p-value alone
alarms on.
Window sizes: 10,000, 30,000 and 100,000 rows, two independent years per pair. Each check's
minimum is the largest of the sizes' quantiles (the smallest windows are the noisiest),
rounded up to two significant digits. Prints the quantiles and the dict to paste.
"""

from __future__ import annotations

import argparse
import math
import time
from collections import defaultdict
from collections.abc import Callable

import numpy as np
import pandas as pd

from modelpilot.monitoring import detect_drift
from modelpilot.monitoring.report import ColumnDrift

Year = Callable[[np.random.Generator, int], np.ndarray]
SIZES = (10_000, 30_000, 100_000)
MEAN_SD, SCALE_SD, SHARE_SD = 0.015, 0.015, 0.03
LOGIT_SD = SHARE_SD * math.sqrt(2)  # a flag's two shares wobble like any two categories'


def continuous(shape: str, pop: np.random.Generator) -> Callable[[np.random.Generator], Year]:
    """A numeric column of one shape; each year moves its mean and spread a little."""
    loc, scale = pop.normal(0, 10), pop.uniform(0.5, 5)
    base: dict[str, Callable[[np.random.Generator, int], np.ndarray]] = {
        "normal": lambda r, n: r.normal(size=n),
        "lognormal": lambda r, n: (r.lognormal(0, 0.6, n) - 1.2) / 0.8,
        "uniform": lambda r, n: r.uniform(-1.7, 1.7, n),
        "gamma": lambda r, n: (r.gamma(2.0, 1.0, n) - 2) / 1.41,
        "bimodal": lambda r, n: r.normal(np.where(r.random(n) < 0.3, -1.5, 0.6), 0.5),
    }
    draw = base[shape]

    def year(y: np.random.Generator) -> Year:
        shift, factor = y.normal(0, MEAN_SD), math.exp(y.normal(0, SCALE_SD))
        return lambda r, n: loc + scale * (draw(r, n) * factor + shift)

    return year


def poisson(rate: float) -> Callable[[np.random.Generator], Year]:
    def year(y: np.random.Generator) -> Year:
        lam = rate * math.exp(y.normal(0, MEAN_SD / math.sqrt(rate)))  # mean moves ~MEAN_SD sd
        return lambda r, n: r.poisson(lam, n).astype(np.float64)

    return year


def zero_inflated(rate: float, zeros: float) -> Callable[[np.random.Generator], Year]:
    def year(y: np.random.Generator) -> Year:
        lam = rate * math.exp(y.normal(0, MEAN_SD / math.sqrt(rate)))
        p0 = _wobble_share(zeros, y, LOGIT_SD)
        return lambda r, n: np.where(r.random(n) < p0, 0, r.poisson(lam, n)).astype(np.float64)

    return year


def coded(levels: list[object], pop: np.random.Generator, *, text: bool) -> Callable[..., Year]:
    """Codes (integers or text) with shares from the population, wobbling per year."""
    base = pop.dirichlet(np.full(len(levels), 3.0))
    values = np.array(levels, dtype=object if text else np.float64)

    def year(y: np.random.Generator) -> Year:
        p = base * np.exp(y.normal(0, SHARE_SD, base.size))
        p /= p.sum()
        return lambda r, n: values[r.choice(values.size, n, p=p)]

    return year


def zipf_codes(levels: int) -> Callable[[np.random.Generator], Year]:
    base = 1 / np.arange(1, levels + 1) ** 1.1
    base /= base.sum()
    values = np.array([f"z{i:04d}" for i in range(levels)], dtype=object)

    def year(y: np.random.Generator) -> Year:
        p = base * np.exp(y.normal(0, SHARE_SD, levels))
        p /= p.sum()
        return lambda r, n: values[r.choice(levels, n, p=p)]

    return year


def binary(share: float) -> Callable[[np.random.Generator], Year]:
    def year(y: np.random.Generator) -> Year:
        p = _wobble_share(share, y, LOGIT_SD)
        return lambda r, n: np.where(r.random(n) < p, "yes", "no").astype(object)

    return year


def _wobble_share(share: float, y: np.random.Generator, sd: float) -> float:
    logit = math.log(share / (1 - share)) + y.normal(0, sd)
    return 1 / (1 + math.exp(-logit))


def columns(seed: int) -> dict[str, Callable[[np.random.Generator], Year]]:
    """The 30 columns of the population; their fixed parameters come from ``seed``."""
    pop = np.random.default_rng(seed)
    shapes = ["normal"] * 3 + ["lognormal"] * 3 + ["uniform"] * 2 + ["gamma"] * 2
    shapes += ["bimodal"] * 2
    spec: dict[str, Callable[[np.random.Generator], Year]] = {
        f"num_{i:02d}": continuous(shape, pop) for i, shape in enumerate(shapes)
    }
    spec |= {f"count_{i}": poisson(rate) for i, rate in enumerate((1.5, 4.0, 9.0))}
    spec["code_int"] = coded(list(range(1, 31)), pop, text=False)
    spec["grade"] = coded(list(range(0, 11)), pop, text=False)
    spec["claims"] = zero_inflated(2.0, 0.6)
    spec["age"] = coded(list(range(18, 91)), pop, text=False)  # 73 values: KS only
    spec |= {
        f"cat_{i}": coded([f"l{j}" for j in range(k)], pop, text=True)
        for i, k in enumerate((3, 4, 6, 8, 10, 12))
    }
    spec |= {f"flag_{i}": binary(s) for i, s in enumerate((0.5, 0.2, 0.05))}
    spec |= {f"code_{i}": zipf_codes(levels) for i, levels in enumerate((300, 1200))}
    return spec


def window(spec: dict[str, Callable[..., Year]], rng: np.random.Generator, n: int) -> pd.DataFrame:
    """One year's window of ``n`` rows: draw the year's parameters, then the rows."""
    return pd.DataFrame({name: make(rng)(rng, n) for name, make in spec.items()})


def check_of(row: ColumnDrift) -> str:
    """The minimum-effect key a row's main test is decided by."""
    if row.check:
        return row.check
    if row.method == "ks":
        return "ks"
    return "chi2_binary" if row.effect == "share_difference" else "chi2"


def effects(report_rows: list[ColumnDrift]) -> dict[str, list[float]]:
    """Every check's effect sizes in one report."""
    found: dict[str, list[float]] = defaultdict(list)
    for row in report_rows:
        if row.effect_size is not None:
            found[check_of(row)].append(row.effect_size)
        if row.exact_values is not None:
            found["exact_values"].append(row.exact_values.effect_size)
    return found


def round_up(x: float, digits: int = 2) -> float:
    if x <= 0:
        return 0.0
    scale = 10 ** (digits - 1 - math.floor(math.log10(x)))
    return math.ceil(x * scale) / scale


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=20261123)
    parser.add_argument("--pairs", type=int, default=300)
    parser.add_argument("--false-alarm", type=float, default=0.05)
    parser.add_argument("--columns", type=int, default=30)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    args = parser.parse_args()
    q = 1 - args.false_alarm / args.columns
    spec = columns(args.seed)
    rng = np.random.default_rng(args.seed + 1)
    quantiles: dict[str, dict[int, float]] = defaultdict(dict)
    for n in args.sizes:
        started, pooled = time.perf_counter(), defaultdict(list)
        for _ in range(args.pairs):
            report = detect_drift(window(spec, rng, n), window(spec, rng, n), min_effect_size=0)
            for check, values in effects(report.columns).items():
                pooled[check].extend(values)
        for check, values in sorted(pooled.items()):
            quantiles[check][n] = float(np.quantile(values, q))
            print(
                f"n={n:>7,} {check:<13} samples={len(values):>6} median={np.median(values):.4f} "
                f"q{q:.5f}={quantiles[check][n]:.4f}"
            )
        print(f"  ({time.perf_counter() - started:.0f} s)", flush=True)
    minimum = {check: round_up(max(by_size.values())) for check, by_size in quantiles.items()}
    print(f"\nquantile {q:.5f}; largest over sizes {args.sizes}, rounded up to 2 digits:")
    print("MIN_EFFECT: dict[str, float] = {")
    for check in ("ks", "chi2", "chi2_binary", "chi2_many", "exact_values"):
        print(f'    "{check}": {minimum.get(check)},')
    print("}")


if __name__ == "__main__":
    main()
