"""The minimum effect sizes: how large a change must be before a column counts as drifted.

With tens of thousands of rows per window every column differs "significantly" from the
reference, year after year; a p-value only says the difference is not chance. A column is
therefore called drifted only when its change is significant (after the multiple-testing
correction) **and** its effect size reaches the minimum below for its check.

The numbers are not chosen by hand. They are the quantile of each effect size between pairs
of windows drawn from the same population, at the stated false-alarm rate, with small real
differences between the "years" built in (means move by N(0, 0.015) sd, spreads by about
1.5 %, category shares by about 3 % of themselves), at 10,000, 30,000 and 100,000 rows:

    python benchmarks/calibrate_drift.py --seed 20261123 --pairs 300 --false-alarm 0.05 --columns 30

Quantile: 1 - 0.05 / 30 = 0.99833 per check (a 5 % dataset-level false-alarm rate split
evenly over a 30-column table); the largest of the three window sizes' quantiles (the
smallest windows are the noisiest), rounded up to two significant digits. Rerun the command
and paste its output here when the generator or an effect size changes.

Keys are the checks: ``ks`` (numeric, effect: Wasserstein-1 over the reference standard
deviation), ``chi2`` (3 to 51 categories, effect: Jensen-Shannon distance, base 2),
``chi2_many`` (more than 51 categories, compared on the 50 largest plus "(other)", which
leaves a comparison noisier than a few categories' at the same rows: its own minimum),
``chi2_binary`` (two categories, effect: the difference in shares), ``exact_values``
(integer-valued column with few distinct values, compared value by value, effect:
Jensen-Shannon distance).

>>> sorted(MIN_EFFECT)
['chi2', 'chi2_binary', 'chi2_many', 'exact_values', 'ks']
"""

from __future__ import annotations

from collections.abc import Mapping

from modelpilot.errors import InvalidInput, shown

# Produced by benchmarks/calibrate_drift.py (command, seed and quantile in the docstring above).
# Quantiles at 10k / 30k / 100k rows: ks 0.0803 / 0.0744 / 0.0731, chi2 0.0439 / 0.0358 /
# 0.0337, chi2_many 0.0659 / 0.0400 / 0.0295, chi2_binary 0.0458 / 0.0417 / 0.0451,
# exact_values 0.0486 / 0.0361 / 0.0346. (Before chi2_many had its own key, the two
# many-category codes set chi2's minimum: 0.057.)
MIN_EFFECT: dict[str, float] = {
    "ks": 0.081,
    "chi2": 0.044,
    "chi2_many": 0.066,
    "chi2_binary": 0.046,
    "exact_values": 0.049,
}

MinEffect = float | Mapping[str, float] | None


def minimum_for(min_effect_size: MinEffect, check: str) -> float:
    """The minimum effect for ``check``: a number applies to every check, a mapping overrides
    the calibrated value for the checks it names, ``None`` is the calibrated value.

    >>> minimum_for(None, "ks") == MIN_EFFECT["ks"], minimum_for(0.0, "chi2")
    (True, 0.0)
    >>> minimum_for({"chi2": 0.2}, "chi2"), minimum_for({"chi2": 0.2}, "ks") == MIN_EFFECT["ks"]
    (0.2, True)
    """
    if min_effect_size is None:
        return MIN_EFFECT[check]
    if isinstance(min_effect_size, Mapping):
        return float(min_effect_size.get(check, MIN_EFFECT[check]))
    return float(min_effect_size)


def check_min_effect(min_effect_size: MinEffect) -> None:
    """InvalidInput unless ``min_effect_size`` is None, a number >= 0, or such a mapping.

    >>> check_min_effect({"kss": 0.1})
    Traceback (most recent call last):
    ...
    modelpilot.errors.InvalidInput: min_effect_size names unknown check(s) ['kss']; ...
    """
    if min_effect_size is None:
        return
    given = min_effect_size if isinstance(min_effect_size, Mapping) else {"*": min_effect_size}
    unknown = sorted(k for k in given if k != "*" and k not in MIN_EFFECT)
    if unknown:
        raise InvalidInput(
            f"min_effect_size names unknown check(s) {shown(unknown)}; expected some of "
            f"{', '.join(sorted(MIN_EFFECT))}.",
            field="min_effect_size",
        )
    bad = {k: v for k, v in given.items() if not (isinstance(v, int | float) and 0 <= v < 1e9)}
    if bad:
        raise InvalidInput(
            f"min_effect_size must be a number >= 0 (or a mapping of check to such a number); "
            f"got {shown(bad.get('*', bad))}.",
            field="min_effect_size",
        )
