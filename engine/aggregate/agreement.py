"""Agreement: how far two raters agree — the engine and the inspector, or two inspectors.

For a list of paired judgements (one pair per case, or per case and criterion): the number of
pairs ``n``, how many agree, the percentage agreement with its Wilson 95% interval, and Cohen's
kappa (agreement beyond chance) with its asymptotic 95% interval (clipped to kappa's range, -1 to 1). Both come from statsmodels
(``proportion_confint``, ``inter_rater.cohens_kappa``), never from a formula typed here. Figures
pooled over several pairs of one case (every criterion, every item) take both intervals from a
bootstrap resampling whole cases instead (``scipy.stats.bootstrap``), as pooled percentages do.

Degenerate cases are said, not hidden: with no pairs nothing is computed; when both raters used
one and the same category throughout, chance agreement is already 100% and kappa is undefined
(``null`` with a ``kappa_note``); when kappa's standard error is zero (every pair agrees) its
interval is not meaningful and is left out.

The consistency section of a run (:func:`consistency`) puts engine–inspector agreement per
criterion and overall beside the moderation list (every disagreement, with the inspector's note
and what would make the engine agree), and inter-rater agreement from second markings.
"""

from __future__ import annotations

import math
import warnings

import numpy

from engine.aggregate import statistics
from engine.base import lazy

stats = lazy.Module("scipy.stats")
inter_rater = lazy.Module("statsmodels.stats.inter_rater")
proportion = lazy.Module("statsmodels.stats.proportion")

#: Findings in the order tables list them; other categories (a framework's answers) follow in
#: alphabetical order. Kappa does not depend on the order: it only fixes the table's layout.
ORDER = ("sufficient", "insufficient", "not_applicable", "not_assessed")
CONFIDENCE = 0.95
#: Fewest cases a pooled figure's bootstrap resamples: with fewer, the resamples take so few
#: distinct values that a percentile interval says nothing (two cases give three resamples).
MIN_CASES = 5


def _rounded(value: float | None, places: int = 3) -> float | None:
    return None if value is None or math.isnan(value) else round(float(value), places)


def agreement(pairs: list[tuple[str, str]], clusters: list[str] | None = None) -> dict:
    """Agreement between two raters over ``pairs`` of (first rater's category, second's).

    ``clusters`` names the case each pair belongs to, where a case gives several pairs (its
    criteria, its items): both intervals then come from a percentile bootstrap resampling whole
    cases (``interval_method`` says so), since pairs of one case are not independent."""
    result = _agreement(pairs)
    if clusters is None or result["percent"] is None:
        return result
    by_case: dict[str, list[tuple[str, str]]] = {}
    for case, pair in zip(clusters, pairs, strict=True):
        by_case.setdefault(case, []).append(pair)
    if len(by_case) == len(pairs):  # one pair per case: nothing clusters
        return result
    result["interval_method"] = "bootstrap resampling whole cases"
    if len(by_case) < MIN_CASES:
        result["percent_interval"] = result["kappa_interval"] = None
        result["interval_note"] = (f"pooled over {len(by_case)} cases, too few to resample whole cases, so no "
                                   "interval is given")
        return result
    result["percent_interval"] = statistics.clustered(
        [(sum(a == b for a, b in group), len(group)) for group in by_case.values()], CONFIDENCE)
    if result["kappa"] is not None and result["kappa_interval"] is not None:
        result["kappa_interval"] = _clustered_kappa(list(by_case.values()))
        if result["kappa_interval"] is None:
            result["kappa_note"] = ("some resamples of the cases leave kappa undefined (one category only), so no "
                                    "interval is given")
    return result


def _categories(pairs) -> list[str]:
    return sorted({c for pair in pairs for c in pair}, key=lambda c: (ORDER.index(c) if c in ORDER else len(ORDER), c))


def _table(pairs, categories: list[str]) -> numpy.ndarray:
    table = numpy.zeros((len(categories), len(categories)))
    for first, second in pairs:
        table[categories.index(first), categories.index(second)] += 1
    return table


def _clustered_kappa(groups: list[list[tuple[str, str]]]) -> list[float] | None:
    """Kappa's interval from a percentile bootstrap over whole cases (``scipy.stats.bootstrap``,
    seeded as every bootstrap of a run); None where a resample leaves kappa undefined."""
    categories = _categories([pair for group in groups for pair in group])
    tables = numpy.stack([_table(group, categories) for group in groups])

    def kappa(indices, axis=-1):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return inter_rater.cohens_kappa(tables[indices.astype(int)].sum(axis=0), return_results=False)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an undefined resample warns; it is reported as no interval
        found = stats.bootstrap((numpy.arange(len(groups)),), kappa, vectorized=False,
                                n_resamples=statistics.RESAMPLES, confidence_level=CONFIDENCE, method="percentile",
                                rng=numpy.random.default_rng(statistics.SEED)).confidence_interval
    if not (math.isfinite(found.low) and math.isfinite(found.high)):
        return None
    return [max(-1.0, _rounded(found.low)), min(1.0, _rounded(found.high))]


def _agreement(pairs: list[tuple[str, str]]) -> dict:
    n = len(pairs)
    agreed = sum(a == b for a, b in pairs)
    result: dict = {"n": n, "agreed": agreed, "percent": None, "percent_interval": None,
                    "kappa": None, "kappa_interval": None, "kappa_note": None}
    if n == 0:
        result["kappa_note"] = "no pairs to compare"
        return result
    low, high = proportion.proportion_confint(agreed, n, alpha=1 - CONFIDENCE, method="wilson")
    result["percent"] = round(100 * agreed / n, 1)
    result["percent_interval"] = [round(100 * low, 1), round(100 * high, 1)]
    categories = _categories(pairs)
    if len(categories) < 2:
        result["kappa_note"] = (f"undefined: both raters used only {categories[0]!r}, so chance agreement "
                                "is already 100%")
        return result
    table = _table(pairs, categories)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a zero standard error divides by zero inside
        computed = inter_rater.cohens_kappa(table)  # its interval is 95%, as CONFIDENCE says
    result["kappa"] = _rounded(computed.kappa)
    if computed.std_kappa and not math.isnan(computed.std_kappa):
        # the asymptotic interval can pass kappa's bounds on small samples; kappa itself cannot
        result["kappa_interval"] = [max(-1.0, _rounded(computed.kappa_low)), min(1.0, _rounded(computed.kappa_upp))]
    elif agreed == n:
        result["kappa_note"] = "every pair agrees: its standard error is zero, so no interval is given"
    else:
        result["kappa_note"] = "each rater used a single category: its standard error is zero, so no interval is given"
    return result


def compare(findings: dict[str, str], judgements: dict[str, dict], order: list[str]) -> list[dict]:
    """Engine and inspector side by side on each criterion the inspector judged: disagreements
    first, then criteria in framework ``order``."""
    rows = [{"criterion": c, "engine": findings.get(c, "not_assessed"), "inspector": j["finding"],
             "agree": findings.get(c, "not_assessed") == j["finding"], "note": j.get("note")}
            for c, j in judgements.items()]
    return sorted(rows, key=lambda r: (r["agree"], order.index(r["criterion"]) if r["criterion"] in order else 0))


def consistency(cases: list[dict], organisations: list[dict], second: list[dict], order: list[str],
                items: list[str]) -> dict:
    """The consistency section of a run.

    ``cases`` and ``organisations`` are results carrying ``judgements`` rows from :func:`compare`
    (a disagreement may carry ``what_if``); ``second`` holds the second markings, each
    ``{case, answers, judgements, engine}`` with the first marking's answers and judgements beside
    it (``first_answers``, ``first_judgements``). ``order`` and ``items`` are the framework's
    criteria and items, for ordering."""
    units = [(c["case"], c["provider"], c.get("judgements", [])) for c in cases]
    units += [(f"organisation:{o['organisation']}", o["organisation"], o.get("judgements", [])) for o in organisations]
    by_criterion: dict[str, list[tuple[str, str]]] = {}
    pooled, pooled_cases = [], []
    moderation = []
    for reference, provider, rows in units:
        for row in rows:
            by_criterion.setdefault(row["criterion"], []).append((row["inspector"], row["engine"]))
            pooled.append((row["inspector"], row["engine"]))
            pooled_cases.append(reference)
            if not row["agree"]:
                moderation.append({"case": reference, "provider": provider, **row})
    key = lambda c: order.index(c) if c in order else len(order)  # noqa: E731
    return {
        "engine_inspector": {
            "raters": ["inspector", "engine"],
            "overall": agreement(pooled, pooled_cases),
            "criteria": {c: agreement(by_criterion[c]) for c in sorted(by_criterion, key=key)},
            "judged": sum(1 for _, _, rows in units if rows),
        },
        "moderation": sorted(moderation, key=lambda m: (key(m["criterion"]), m["case"])),
        "second_marking": _second_marking(second, order, items),
    }


def _second_marking(second: list[dict], order: list[str], items: list[str]) -> dict:
    """Inter-rater agreement between first and second markings, item by item and criterion by
    criterion, and which side the engine's finding (on the first marking) takes where they differ."""
    answers: dict[str, list[tuple[str, str]]] = {}
    judged: dict[str, list[tuple[str, str]]] = {}
    pooled: dict[str, tuple[list, list]] = {"answers": ([], []), "judgements": ([], [])}
    sides = {"first": 0, "second": 0, "neither": 0}
    differences = []
    for marking in sorted(second, key=lambda m: m["case"]):
        for item in items:
            first, other = marking["first_answers"].get(item), marking["answers"].get(item)
            if first is not None and other is not None:
                answers.setdefault(item, []).append((first, other))
                pooled["answers"][0].append((first, other))
                pooled["answers"][1].append(marking["case"])
        for criterion in order:
            first, other = marking["first_judgements"].get(criterion), marking["judgements"].get(criterion)
            if first is None or other is None:
                continue
            judged.setdefault(criterion, []).append((first, other))
            pooled["judgements"][0].append((first, other))
            pooled["judgements"][1].append(marking["case"])
            if first != other:
                engine = marking["engine"].get(criterion, "not_assessed")
                side = "first" if engine == first else "second" if engine == other else "neither"
                sides[side] += 1
                differences.append({"case": marking["case"], "criterion": criterion, "first": first,
                                    "second": other, "engine": engine, "engine_sides_with": side})
    return {
        "cases": sorted(m["case"] for m in second),
        "answers": {"overall": agreement(*pooled["answers"]),
                    "items": {i: agreement(answers[i]) for i in items if i in answers}},
        "judgements": {"overall": agreement(*pooled["judgements"]),
                       "criteria": {c: agreement(judged[c]) for c in order if c in judged}},
        "differences": differences,
        "engine_sides_with": sides,
    }
