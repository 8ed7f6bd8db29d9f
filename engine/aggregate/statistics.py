"""Statistics behind the sample's figures, from scipy.stats and statsmodels (never hand-typed
formulas): the Wilson interval of a proportion, Fisher's exact test of two groups' proportions, and
the adjustment of a run's p-values for the number of comparisons.

Percentages and their bounds are rounded to one decimal place, p-values to four, so that the
same inputs give byte-identical reports; decisions (``p < level``) use the unrounded p-value.
"""

from __future__ import annotations

from scipy import stats
from statsmodels.stats.multitest import multipletests

#: How each adjustment is named to readers.
ADJUSTMENTS = {"holm": "Holm-Bonferroni", "fdr_bh": "Benjamini-Hochberg"}


def wilson(successes: int, trials: int, confidence: float) -> list[float] | None:
    """The Wilson interval of ``successes`` of ``trials``, in percent, ``[low, high]``; ``None``
    when there are no trials (no proportion, so no interval)."""
    if trials <= 0:
        return None
    found = stats.binomtest(successes, trials).proportion_ci(confidence_level=confidence, method="wilson")
    return [round(100 * float(found.low), 1), round(100 * float(found.high), 1)]  # plain floats, not numpy's


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
    return [float(p) for p in multipletests(p_values, method=method)[1]]
