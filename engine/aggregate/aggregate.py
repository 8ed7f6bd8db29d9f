"""Aggregate stage: the sample's case findings counted per criterion and standard, overall, per
provider and per group (each grouped context field, each diversity characteristic).

For each target and group: counts of sufficient / insufficient / not_applicable / not_assessed,
the cases in each, and the % sufficient of *applicable* cases (sufficient + insufficient;
not_applicable and not_assessed are left out of the denominator). Groups with fewer applicable
cases (people, not case x criterion pairs) than the rule set's ``min_group_size`` are marked
``small`` and never compared; nor are groups whose characteristic was not recorded (the
framework's ``unrecorded`` values, or no value given). Gaps between groups are the difference between the highest and
lowest comparable groups (and, for providers, every pair in both directions); a gap is flagged only
when it is at least ``gap_points`` *and* Fisher's exact test on the two groups gives p below the
rule set's ``significance``. Every percentage carries its Wilson interval at the rule set's
``confidence`` (see :mod:`engine.aggregate.statistics`). A standard's figures pool its criteria's
judgements: its pairs are not independent people, so a standard's gaps are shown but never tested
or flagged, and its interval (which treats pairs as independent) is narrower than it should be.
"""

from __future__ import annotations

import dataclasses

from engine.aggregate import labels as group_labels
from engine.aggregate import statistics
from engine.check import models, rules
from engine.check.models import NOT_ASSESSED
from engine.check.rules import form
from engine.compile import facts

VALUES = ("sufficient", "insufficient", "not_applicable", NOT_ASSESSED)


@dataclasses.dataclass(frozen=True)
class CaseRecord:
    """What aggregation needs of one judged case."""

    reference: str
    groups: dict[str, str]          # grouping -> the case's value, e.g. {"provider": "EAST", "gender": "male"}
    findings: dict[str, str]        # criterion -> value
    factors: frozenset[tuple[str, str]]  # {("barrier", id), ("enabler", id)}
    matched: frozenset[str] = frozenset()  # keys of the case conditions organisation rules read that hold
    answers: dict[str, str] = dataclasses.field(default_factory=dict)  # item -> the inspector's answer
    sources: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)  # item -> its evidence sources


def record(case: models.CaseFile, result: dict, framework: models.Framework) -> CaseRecord:
    groups = {field.id: models.context_value(case, field) for field in framework.vocabulary.context if field.group}
    for field in framework.vocabulary.diversity:
        groups[field.id] = case.diversity.get(field.id, facts.NOT_GIVEN)
    factors = {("barrier", b["id"]) for b in result["barriers"]} | {("enabler", e["id"]) for e in result["enablers"]}
    return CaseRecord(case.case, groups, {c: f["value"] for c, f in result["findings"].items()}, frozenset(factors),
                      answers={item: entry.answer for item, entry in sorted(case.evidence.items())},
                      sources={item: tuple(sorted(set(entry.sources))) for item, entry in sorted(case.evidence.items())})


def _figures(cases: dict[str, list[str]], minimum: int, confidence: float, listed: bool = True,
             pooled: bool = False, shown: bool | None = None) -> dict:
    """Counts and % sufficient; with ``listed``, the case references behind each count.

    ``people`` is the number of distinct cases among the applicable ones, and a group is ``small``
    when it has fewer people than ``minimum``: a standard pools case x criterion pairs (entries
    ``REF:CRITERION``), and 4 people's 12 pairs are still 4 people. A ``pooled`` figure's interval
    accounts for that clustering (a bootstrap over cases); it is computed for the groups reports
    show (the whole sample and each provider: ``shown``, by default ``listed``) and left out
    (``None``) for the others."""
    counts = {value: len(cases[value]) for value in VALUES}
    applicable = counts["sufficient"] + counts["insufficient"]
    people = len({entry.split(":", 1)[0] for value in ("sufficient", "insufficient") for entry in cases[value]})
    if pooled:
        per_case: dict[str, list[int]] = {}
        for value in ("sufficient", "insufficient"):
            for entry in cases[value]:
                tally = per_case.setdefault(entry.split(":", 1)[0], [0, 0])
                tally[0] += value == "sufficient"
                tally[1] += 1
        shown = listed if shown is None else shown
        bounds = statistics.clustered([tuple(t) for _, t in sorted(per_case.items())], confidence) if shown else None
    else:
        bounds = statistics.wilson(counts["sufficient"], applicable, confidence)
    figures = {"counts": counts, "applicable": applicable, "people": people,
               "percent": round(100 * counts["sufficient"] / applicable, 1) if applicable else None,
               "exact_percent": 100 * counts["sufficient"] / applicable if applicable else None,
               "interval": bounds, "interval_method": "cluster bootstrap by case" if pooled else "Wilson",
               "small": people < minimum}
    if listed:
        figures["cases"] = {v: sorted(cases[v]) for v in VALUES}
    return figures


def _listed(group_key: str) -> bool:
    """Case references are kept for the whole sample and each provider (what sample rules read and
    their traces cite); other groups keep counts, so reports stay small for large samples."""
    return group_key == facts.ALL or group_key.startswith("provider:")


def build(records: list[CaseRecord], loaded: rules.LoadedRuleSet) -> dict:
    """Every aggregate of the sample: the data behind reports and sample rules."""
    framework = loaded.framework
    settings = loaded.rules.sample
    plain = group_labels.labels(framework, {f"{g}:{r.groups[g]}" for r in records for g in rules.groupings(framework)})
    groupings = rules.groupings(framework)
    unrecorded = {f"{field.id}:{value}" for field in framework.vocabulary.diversity
                  for value in [facts.NOT_GIVEN, *field.unrecorded]}
    standards = framework.standards_of("case")
    records = sorted(records, key=lambda r: r.reference)

    def group_keys(record_: CaseRecord) -> list[str]:
        return [facts.ALL] + [f"{g}:{record_.groups[g]}" for g in groupings]

    targets: dict[str, dict] = {}
    for standard in standards:
        # every target has its all-cases group, even when no case answers it (a population with no cases)
        pooled: dict[str, dict[str, list[str]]] = {facts.ALL: {v: [] for v in VALUES}}
        for criterion in standard.criteria:
            grouped: dict[str, dict[str, list[str]]] = {facts.ALL: {v: [] for v in VALUES}}
            for rec in records:
                if criterion.id not in rec.findings:
                    continue  # a case of another population does not answer this standard
                value = rec.findings[criterion.id]
                for key in group_keys(rec):
                    grouped.setdefault(key, {v: [] for v in VALUES})[value].append(rec.reference)
                    pooled.setdefault(key, {v: [] for v in VALUES})[value].append(f"{rec.reference}:{criterion.id}")
            targets[criterion.id] = _target("criterion", criterion.id, criterion.title, standard.id,
                                            grouped, groupings, settings, plain, unrecorded)
        targets[f"standard {standard.id}"] = _target("standard", standard.id, standard.title, standard.id,
                                                     pooled, groupings, settings, plain, unrecorded)
    sizes: dict[str, int] = {}
    for rec in records:
        for key in group_keys(rec):
            sizes[key] = sizes.get(key, 0) + 1
    factors = _factors(records, loaded, group_keys, sizes, settings.confidence)
    lines = _lines(records, framework, settings.confidence)
    sources = _sources(records, framework)
    dimensions = {}
    for dimension in framework.dimensions:
        members = [targets[f"standard {s.id}"] for s in standards if s.dimension == dimension.id]
        if members:
            dimensions[dimension.id] = {"label": dimension.label, "standards": [m["id"] for m in members],
                                        "groups": _pool_groups(members, settings.min_group_size,
                                                                              settings.confidence)}
    tests = _adjust(targets, settings)
    return {"cases": len(records), "min_group_size": settings.min_group_size, "gap_points": settings.gap_points,
            "significance": settings.significance, "confidence": settings.confidence, "tests": tests,
            "groupings": {g: sorted({r.groups[g] for r in records}) for g in groupings},
            "group_sizes": dict(sorted(sizes.items())),
            "targets": targets, "lines": lines, "sources": sources, "factors": factors, "dimensions": dimensions}


def _sources(records: list[CaseRecord], framework: models.Framework) -> dict:
    """How many of the inspectors' answers (other than not applicable) rest on one evidence source,
    by that source, and how many list none: what a reader needs to weigh answers on one person's
    word (the case manager's, for instance) against corroborated ones."""
    vocabulary = framework.vocabulary
    applies = set(vocabulary.answers_meaning("met", "met_in_part", "not_met"))
    labels = {term.id: term.label for term in getattr(vocabulary, "evidence_sources", None) or []}
    answers = single = none = 0
    by_source: dict[str, int] = {}
    for rec in records:
        for item, answer in rec.answers.items():
            if answer not in applies:
                continue
            answers += 1
            listed = rec.sources.get(item, ())
            if not listed:
                none += 1
            elif len(listed) == 1:
                single += 1
                by_source[listed[0]] = by_source.get(listed[0], 0) + 1
    return {"answers": answers, "one_source": single, "no_source": none,
            "by_source": [{"source": source, "label": labels.get(source, source), "answers": count}
                          for source, count in sorted(by_source.items(), key=lambda pair: (-pair[1], pair[0]))]}


def _lines(records: list[CaseRecord], framework: models.Framework, confidence: float) -> dict:
    """Every case-scoped line of enquiry: in how many of the cases where it was relevant (answered
    anything but not applicable) it was met, across the sample and per provider — the figure
    HMIP published ("% of relevant cases"), beside the rule set's criterion roll-ups."""
    vocabulary = framework.vocabulary
    met, in_part = set(vocabulary.answers_meaning("met")), set(vocabulary.answers_meaning("met_in_part"))
    not_met, not_applicable = set(vocabulary.answers_meaning("not_met")), set(vocabulary.answers_meaning("not_applicable"))
    result = {}
    for criterion in framework.criteria_of("case"):
        for item in criterion.items:
            tallies: dict[str, dict[str, list[str]]] = {}
            for rec in records:
                answer = rec.answers.get(item.id)
                if answer is None:
                    continue
                kind = ("met" if answer in met else "in_part" if answer in in_part else "not_met" if answer in not_met
                        else "not_applicable" if answer in not_applicable else None)
                if kind is None:
                    continue
                for key in (facts.ALL, f"provider:{rec.groups.get('provider')}" if "provider" in rec.groups else None):
                    if key is not None:
                        tallies.setdefault(key, {k: [] for k in ("met", "in_part", "not_met", "not_applicable")})[
                            kind].append(rec.reference)
            groups = {}
            for key, tally in sorted(tallies.items()):
                relevant = len(tally["met"]) + len(tally["in_part"]) + len(tally["not_met"])
                groups[key] = {"met": len(tally["met"]), "relevant": relevant,
                               "in_part": len(tally["in_part"]), "not_met": len(tally["not_met"]),
                               "not_applicable": len(tally["not_applicable"]),
                               "percent": round(100 * len(tally["met"]) / relevant, 1) if relevant else None,
                               "interval": statistics.wilson(len(tally["met"]), relevant, confidence)}
            result[item.id] = {"id": item.id, "criterion": criterion.id, "groups": groups}
    return result


def _target(kind: str, target_id: str, title: str, standard: str, grouped: dict, groupings: list[str],
            settings: rules.SampleSettings, plain: dict[str, str], unrecorded: set[str]) -> dict:
    """One criterion's or standard's figures per group, and its gaps. Groups too small, and groups
    whose characteristic was not recorded (``unrecorded``), are shown but never compared."""
    groups = {key: _figures(cases, settings.min_group_size, settings.confidence, _listed(key), pooled=kind == "standard")
              for key, cases in sorted(grouped.items())}
    tested = kind == "criterion"
    gaps = {}
    for grouping in groupings:
        members = {k: v for k, v in groups.items() if k.startswith(grouping + ":")}
        comparable = {k: v for k, v in members.items()
                      if not v["small"] and v["exact_percent"] is not None and k not in unrecorded}
        gap = {"compared": sorted(comparable), "not_compared": sorted(set(members) - set(comparable)),
               "points": None, "highest": None, "lowest": None, "flagged": False, "test": None}
        if len(comparable) >= 2:
            highest = max(sorted(comparable), key=lambda k: comparable[k]["exact_percent"])
            lowest = min(sorted(comparable), key=lambda k: comparable[k]["exact_percent"])
            gap.update(_compared(comparable[highest], highest, comparable[lowest], lowest, settings, plain, tested))
        gaps[grouping] = gap
    comparisons = []
    if "provider" in groupings:
        providers = sorted(k for k in groups if k.startswith("provider:"))
        for i, first in enumerate(providers):
            for second in providers[i + 1:]:
                a, b = groups[first], groups[second]
                if a["small"] or b["small"] or a["exact_percent"] is None or b["exact_percent"] is None:
                    continue
                ahead, behind = (first, second) if a["exact_percent"] >= b["exact_percent"] else (second, first)
                comparisons.append(_compared(groups[ahead], ahead, groups[behind], behind, settings, plain, tested))
    return {"kind": kind, "id": target_id, "title": title, "standard": standard, "groups": groups, "gaps": gaps,
            "comparisons": comparisons}


def _compared(high: dict, high_key: str, low: dict, low_key: str, settings: rules.SampleSettings,
              plain: dict[str, str], tested: bool) -> dict:
    """Two groups side by side (the higher first) with the difference in points and, for a
    criterion, Fisher's exact test of it; flagged when the difference reaches ``gap_points`` and
    p is below ``significance``."""
    points = high["exact_percent"] - low["exact_percent"]
    p = statistics.fisher((high["counts"]["sufficient"], high["applicable"]),
                          (low["counts"]["sufficient"], low["applicable"])) if tested else None
    significant = p is not None and p < settings.significance
    side = [{"group": key, "label": plain.get(key, key), "sufficient": g["counts"]["sufficient"],
             "applicable": g["applicable"], "percent": g["percent"], "interval": g["interval"]}
            for key, g in ((high_key, high), (low_key, low))]
    return {"points": round(points, 1), "exact_points": points, "highest": high_key, "lowest": low_key,
            "groups": side,
            "test": {"name": "Fisher's exact test (two-sided)", "p_value": statistics.rounded_p(p),
                     "exact_p": p, "level": settings.significance, "significant": significant} if tested else None,
            "flagged": significant and points >= settings.gap_points}


def _adjust(targets: dict, settings: rules.SampleSettings) -> dict:
    """Hold every comparison the run tested against the level after adjusting the p-values for
    their number (the rule set's ``adjust``); each test keeps its own p and, when adjusted, the
    adjusted one. Returns how many were tested and how."""
    found = [gap for target in targets.values()
             for gap in [*target["gaps"].values(), *target["comparisons"]]
             if gap.get("test") and gap["test"]["exact_p"] is not None]
    if settings.adjust != "none":
        for gap, p in zip(found, statistics.adjusted([g["test"]["exact_p"] for g in found], settings.adjust)):
            test = gap["test"]
            test.update({"adjusted_p": statistics.rounded_p(p), "exact_adjusted_p": p,
                         "adjustment": statistics.ADJUSTMENTS[settings.adjust], "significant": p < settings.significance})
            gap["flagged"] = test["significant"] and gap["exact_points"] >= settings.gap_points
    return {"count": len(found), "adjust": settings.adjust}


def _pool_groups(members: list[dict], minimum: int, confidence: float) -> dict:
    keys = sorted({k for m in members for k in m["groups"] if k == facts.ALL or k.startswith("provider:")})
    pooled = {}
    for key in keys:
        cases = {v: [c for m in members for c in m["groups"].get(key, {"cases": {v: []}})["cases"][v]] for v in VALUES}
        pooled[key] = _figures(cases, minimum, confidence, listed=False, pooled=True, shown=True)
    return pooled


def _factors(records: list[CaseRecord], loaded: rules.LoadedRuleSet, group_keys, sizes: dict[str, int],
             confidence: float) -> dict:
    """For every enabler and barrier the case rules can conclude: the share of the cases where it
    can arise (its ``among``, and every case with it; every case without one), per provider and
    across the sample."""
    declared: dict[tuple[str, str], object] = {}
    for rule in loaded.rules.rules:
        for conclusion in rule.then:
            for kind in ("barrier", "enabler"):
                body = getattr(conclusion, kind, None)
                if body is not None:
                    declared.setdefault((kind, body.id), body)
    populations = rules.factor_populations(loaded.rules)
    result = {}
    for (kind, factor_id), body in sorted(declared.items()):
        among = populations.get((kind, factor_id))
        key_of = None if among is None else form.condition_key(among.where)
        with_it: dict[str, list[str]] = {}
        relevant: dict[str, int] = {}
        for rec in records:
            has = (kind, factor_id) in rec.factors
            if key_of is not None and not has and key_of not in rec.matched:
                continue
            for key in group_keys(rec):
                relevant[key] = relevant.get(key, 0) + 1
                if has:
                    with_it.setdefault(key, []).append(rec.reference)
        groups = {}
        for key in sorted(sizes):
            if key != facts.ALL and not key.startswith("provider:"):
                continue
            size, found = relevant.get(key, 0), with_it.get(key, [])
            groups[key] = {"cases": len(found), "of": size,
                           "percent": round(100 * len(found) / size, 1) if size else None,
                           "exact_percent": 100 * len(found) / size if size else None,
                           "interval": statistics.wilson(len(found), size, confidence) if size else None,
                           "references": sorted(found)}
        result[f"{kind}:{factor_id}"] = {"kind": kind, "id": factor_id, "text": body.text,
                                         "criterion": body.criterion, "groups": groups,
                                         "among": among.cases if among is not None else None}
    return result


def sample_attributes(aggregates: dict, loaded: rules.LoadedRuleSet, organisations: list[dict] | None = None) -> dict:
    """The aggregates as the flat numeric fact sample rules match (see :mod:`engine.compile.facts`),
    with, for each organisation-scoped standard and provider, how many of its criteria the
    provider's organisation evidence (``organisations``, their findings) was judged on and
    sufficient on."""
    providers = list(loaded.framework.vocabulary.ids("providers"))
    groups = {facts.ALL: facts.ALL, **{f"provider:{p}": p for p in providers}}
    attributes: dict = {}
    for target in aggregates["targets"].values():
        key = facts.target_key(target["id"], None) if target["kind"] == "criterion" else facts.target_key(None, target["id"])
        for group_key, group in groups.items():
            figures = target["groups"].get(group_key)
            percent = figures["exact_percent"] if figures and figures["exact_percent"] is not None else facts.UNDEFINED
            attributes[facts.percent_attribute(key, group)] = float(percent)
            attributes[facts.applicable_attribute(key, group)] = float(figures["applicable"] if figures else 0)
        for grouping, gap in target["gaps"].items():
            # a gap is a figure sample rules may read only when it was tested and passed the test
            points = gap.get("exact_points") if (gap.get("test") or {}).get("significant") else None
            attributes[facts.gap_attribute(key, grouping)] = float(points) if points is not None else facts.UNDEFINED
        for provider in providers:
            for other in providers:
                if provider != other:
                    attributes[facts.below_attribute(key, provider, other)] = facts.UNDEFINED
        for comparison in target.get("comparisons", []):
            if (comparison.get("test") or {}).get("significant"):
                behind, ahead = (comparison["lowest"].split(":", 1)[1], comparison["highest"].split(":", 1)[1])
                attributes[facts.below_attribute(key, behind, ahead)] = float(comparison["exact_points"])
    for factor in aggregates["factors"].values():
        for group_key, group in groups.items():
            figures = factor["groups"].get(group_key)
            share = figures["exact_percent"] if figures and figures["exact_percent"] is not None else 0.0
            attributes[facts.share_attribute(factor["kind"], factor["id"], group)] = float(share)
            attributes[facts.relevant_attribute(factor["kind"], factor["id"], group)] = float(
                figures["of"] if figures else 0)
    for group_key, group in groups.items():
        attributes[facts.cases_attribute(group)] = float(aggregates["group_sizes"].get(group_key, 0))
    findings = {o["organisation"]: o["findings"] for o in organisations or []}
    for standard in loaded.framework.standards_of("organisation"):
        key = facts.target_key(None, standard.id)
        for provider in providers:
            values = [findings.get(provider, {}).get(c.id, {}).get("value") for c in standard.criteria]
            attributes[facts.judged_attribute(key, provider, "judged")] = float(
                sum(v in ("sufficient", "insufficient") for v in values))
            attributes[facts.judged_attribute(key, provider, "sufficient")] = float(values.count("sufficient"))
    return attributes
