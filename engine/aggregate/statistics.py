"""Statistics behind the sample's figures, from scipy.stats and statsmodels (never hand-typed
formulas): the Wilson interval of a proportion, a cluster bootstrap interval for proportions pooling
several judgements of the same cases, Fisher's exact test of two groups' proportions, and
the adjustment of a run's p-values for the number of comparisons.

Percentages and their bounds are rounded to one decimal place, p-values to four, so that the
same inputs give byte-identical reports; decisions (``p < level``) use the unrounded p-value.
"""

from __future__ import annotations

import functools

import numpy as np

from engine.base import lazy

stats = lazy.Module("scipy.stats")
multitest = lazy.Module("statsmodels.stats.multitest")

#: How each adjustment is named to readers.
ADJUSTMENTS = {"holm": "Holm-Bonferroni", "fdr_bh": "Benjamini-Hochberg"}


def wilson(successes: int, trials: int, confidence: float) -> list[float] | None:
    """The Wilson interval of ``successes`` of ``trials``, in percent, ``[low, high]``; ``None``
    when there are no trials (no proportion, so no interval)."""
    if trials <= 0:
        return None
    return list(_wilson(int(successes), int(trials), float(confidence)))


@functools.lru_cache(maxsize=4096)
def _wilson(successes: int, trials: int, confidence: float) -> tuple[float, float]:
    """:func:`wilson`, once per (successes, trials, confidence): a sample's many groups repeat the
    same counts, and scipy's interval is a search."""
    found = stats.binomtest(successes, trials).proportion_ci(confidence_level=confidence, method="wilson")
    return (round(100 * float(found.low), 1), round(100 * float(found.high), 1))  # plain floats, not numpy's


#: Resamples of the cluster bootstrap, and its fixed seed: the same cases give the same interval.
RESAMPLES = 999
SEED = 20160504


def clustered(per_case: list[tuple[int, int]], confidence: float) -> list[float] | None:
    """The interval of a pooled proportion — several judgements of the same case, e.g. a standard's
    criteria — that accounts for their clustering by case: a percentile bootstrap resampling whole
    cases (``scipy.stats.bootstrap``, seeded), in percent. ``per_case`` is each case's (met, judged).
    Where every case gives the same share (all met, or none) resampling cannot move it, so the
    interval is the Wilson interval of the cases themselves, as if each counted once."""
    cases = [(met, judged) for met, judged in per_case if judged]
    if not cases:
        return None
    met = np.array([m for m, _ in cases], dtype=float)
    judged = np.array([j for _, j in cases], dtype=float)
    shares = met / judged
    if np.all(shares == shares[0]):
        return wilson(int(round(shares[0] * len(cases))), len(cases), confidence)
    found = stats.bootstrap((met, judged), lambda m, j, axis=-1: m.sum(axis=axis) / j.sum(axis=axis),
                            paired=True, vectorized=True, n_resamples=RESAMPLES, confidence_level=confidence,
                            method="percentile", rng=np.random.default_rng(SEED)).confidence_interval
    return [round(100 * float(found.low), 1), round(100 * float(found.high), 1)]


def fisher(first: tuple[int, int], second: tuple[int, int]) -> float | None:
    """The two-sided p-value of Fisher's exact test on the 2x2 table (sufficient, not sufficient) x
    (first group, second group); each group is given as ``(sufficient, applicable)``. ``None``
    when either group is empty."""
    (k1, n1), (k2, n2) = first, second
    if n1 <= 0 or n2 <= 0:
        return None
    return float(stats.fisher_exact([[k1, n1 - k1], [k2, n2 - k2]], alternative="two-sided").pvalue)


def rounded_p(p: float | None) -> float | None:
    return None if p is None else round(p, 4)


def adjusted(p_values: list[float], method: str) -> list[float]:
    """The p-values adjusted for their number by ``method`` (statsmodels' ``multipletests``:
    ``holm`` or ``fdr_bh``), in the same order; unchanged for ``none``."""
    if method == "none" or not p_values:
        return list(p_values)
    return [float(p) for p in multitest.multipletests(p_values, method=method)[1]]
