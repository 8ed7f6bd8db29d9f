"""Judge stage: combine the conclusions of the rules that fired into one finding per criterion.

The combination policy, applied to each case-scoped criterion of the framework:

1. Only the rules that fired and conclude a finding on the criterion count.
2. Of those, only the ones with the highest ``priority`` count (a rule set can let a specific
   rule — "this criterion is not applicable in custody" — override general ones).
3. Among them, ``insufficient`` beats ``sufficient``, which beats ``not_applicable``: a serious
   failure is never outweighed by good practice elsewhere, and a criterion is not applicable only
   when no rule of the same priority found it applicable.
4. A criterion no rule concluded on is ``not_assessed``, with a warning — never silently
   sufficient.

Enablers and barriers are the union over the rules that fired, one entry per id.
"""

from __future__ import annotations

import dataclasses

from engine.check import rules
from engine.check.models import NOT_ASSESSED
from engine.compile import facts
from engine.compile.compile import CompiledRuleSet, resolve
from engine.evaluate import evaluate as evaluator
from engine.evaluate.evaluate import Evaluation

POLICY = ("highest priority first; then insufficient beats sufficient, which beats not_applicable; "
          "a criterion no rule concluded on is not_assessed")
SEVERITY = ("insufficient", "sufficient", "not_applicable")


@dataclasses.dataclass(frozen=True)
class Finding:
    criterion: str
    value: str
    rules: tuple[int, ...]       # the rules whose conclusion is the finding
    overridden: tuple[int, ...]  # rules that concluded something else on the criterion


@dataclasses.dataclass(frozen=True)
class Factor:
    """An enabler or a barrier, and the rules that concluded it."""

    kind: str
    id: str
    text: str
    criterion: str
    rules: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class Judgement:
    findings: dict[str, Finding]
    enablers: tuple[Factor, ...]
    barriers: tuple[Factor, ...]


def judge(compiled: CompiledRuleSet, evaluation: Evaluation) -> Judgement:
    """Apply the combination policy to one case's (or one organisation's) evaluation."""
    framework = compiled.loaded.framework
    scope = "organisation" if compiled.section == "organisation_rules" else "case"
    concluded: dict[str, list[tuple[int, int, str]]] = {}
    factors: dict[tuple[str, str], list] = {}
    for index in evaluation.fired:
        rule = compiled.rules[index].rule
        for conclusion in rule.then:
            if isinstance(conclusion, rules.FindingConclusion):
                body = conclusion.finding
                concluded.setdefault(body.criterion, []).append((rule.priority, index, body.value))
            elif isinstance(conclusion, (rules.EnablerConclusion, rules.BarrierConclusion)):
                kind = "enabler" if isinstance(conclusion, rules.EnablerConclusion) else "barrier"
                body = getattr(conclusion, kind)
                factors.setdefault((kind, body.id), []).append((index, body))
    findings = {}
    population = evaluation.fact.get(facts.POPULATION, facts.MAIN_SAMPLE) or None
    for standard in framework.standards:
        if standard.scope != scope or (scope == "case" and standard.population != population):
            continue  # another scope, or a standard a case of another population does not answer
        for criterion in standard.criteria:
            findings[criterion.id] = _combine(criterion.id, concluded.get(criterion.id, []))
    made = {kind: [] for kind in ("enabler", "barrier")}
    for (kind, factor_id), found in sorted(factors.items()):
        first = found[0][1]
        made[kind].append(Factor(kind, factor_id, first.text, first.criterion, tuple(sorted(i for i, _ in found))))
    return Judgement(findings, tuple(made["enabler"]), tuple(made["barrier"]))


def _combine(criterion: str, conclusions: list[tuple[int, int, str]]) -> Finding:
    if not conclusions:
        return Finding(criterion, NOT_ASSESSED, (), ())
    top = max(priority for priority, _, _ in conclusions)
    contenders = [(index, value) for priority, index, value in conclusions if priority == top]
    value = min((v for _, v in contenders), key=SEVERITY.index)
    winners = tuple(sorted({i for i, v in contenders if v == value}))
    others = tuple(sorted({i for _, i, _ in conclusions} - set(winners)))
    return Finding(criterion, value, winners, others)


# --- the whole sample -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Rating:
    target: str                 # criterion id, or "standard N"
    group: str                  # "all" or a provider
    band: str
    rules: tuple[int, ...]      # the instances whose band won
    overridden: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class SampleConclusion:
    """A recommendation, or a sample-level enabler or barrier, with the rule instances behind it."""

    kind: str
    id: str
    text: str
    to: tuple[str, ...]
    about: dict                 # criterion / standard / provider it concerns
    rules: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class SampleJudgement:
    ratings: tuple[Rating, ...]
    recommendations: tuple[SampleConclusion, ...]
    enablers: tuple[SampleConclusion, ...]
    barriers: tuple[SampleConclusion, ...]


def judge_sample(compiled: CompiledRuleSet, evaluation: Evaluation) -> SampleJudgement:
    """Ratings by the rating policy (highest priority, then the worst band); recommendations,
    enablers and barriers one per distinct id and text, with every instance that concluded them."""
    framework = compiled.loaded.framework
    titles = {n.id: n.title for s in framework.standards for n in [s, *s.criteria]}
    bands = compiled.ruleset.sample.bands
    rated: dict[tuple[str, str], list[tuple[int, str, int]]] = {}
    made: dict[tuple, list[tuple[int, object, dict]]] = {}
    for index in evaluation.fired:
        instance = compiled.rules[index]
        for conclusion in instance.rule.then:
            if isinstance(conclusion, rules.RatingConclusion):
                criterion, standard, group = resolve(conclusion.rating, instance.bindings)
                target = criterion if criterion is not None else f"standard {standard}" if standard is not None \
                    else facts.OVERALL
                rated.setdefault((target, group), []).append((instance.rule.priority, conclusion.rating.band, index))
            elif not isinstance(conclusion, rules.FactConclusion):
                kind = next(k for k in ("recommendation", "enabler", "barrier") if hasattr(conclusion, k))
                body = getattr(conclusion, kind)
                criterion, standard, group = resolve(body, instance.bindings) if kind != "recommendation" else (
                    instance.bindings.get("criterion"), instance.bindings.get("standard"),
                    instance.bindings.get("provider"))
                provider = instance.bindings.get("provider", group if group != "all" else "") or ""
                to = tuple(provider if t == "{provider}" else t for t in getattr(body, "to", ()))
                # one conclusion per cause: every instance with this id, addressees and provider
                made.setdefault((kind, body.id, to, provider), []).append(
                    (index, body, {"criterion": criterion, "standard": standard}))
    merged = []
    for (kind, conclusion_id, to, provider), concluded in made.items():
        merged.append(_merged(kind, conclusion_id, to, provider, concluded, titles, framework))
    ratings = []
    for (target, group), concluded in sorted(rated.items(), key=lambda kv: (_order(kv[0][0], framework), kv[0][1])):
        band = rating_of([(p, b) for p, b, _ in concluded], bands)
        top = max(p for p, _, _ in concluded)
        winners = tuple(sorted(i for p, b, i in concluded if p == top and b == band))
        ratings.append(Rating(target, group, band, winners,
                              tuple(sorted({i for _, _, i in concluded} - set(winners)))))
    grouped: dict[str, list[SampleConclusion]] = {"recommendation": [], "enabler": [], "barrier": []}
    for conclusion in sorted(merged, key=lambda c: (c.kind, c.id, c.text, c.to, sorted(c.about.items()))):
        grouped[conclusion.kind].append(conclusion)
    return SampleJudgement(tuple(ratings), tuple(grouped["recommendation"]), tuple(grouped["enabler"]),
                           tuple(grouped["barrier"]))


def rating_scheme(settings, ratings: tuple[Rating, ...], targets: dict) -> dict | None:
    """How the run rates, for every view to show beside its bands: the bands, the rule set's own
    words on how they are derived, and each target and group (all cases, each provider) left
    unrated, with why — fewer applicable cases than ``min_group_size``, or no criterion of a
    standard rated. None when the rule set issues no bands (its reports give percentages only)."""
    method = settings.method_text()
    if method is None:
        return None
    rated = {(r.target, r.group) for r in ratings}
    unrated = []
    for key, target in targets.items():
        for group_key, figures in target["groups"].items():
            if group_key != facts.ALL and not group_key.startswith("provider:"):
                continue
            group = group_key.split(":", 1)[-1]
            if (key, group) in rated:
                continue
            applicable = figures.get("applicable", 0)
            if target["kind"] == "criterion":
                why = ("too_few_cases" if applicable < settings.min_group_size else "no_rule_rated")
            else:
                why = "no_criterion_rated"
            unrated.append({"target": key, "group": group, "applicable": applicable, "why": why})
    return {"bands": list(settings.bands), "method": method, "min_group_size": settings.min_group_size,
            "unrated": unrated}


def _merged(kind: str, conclusion_id: str, to: tuple, provider: str, concluded: list, titles: dict,
            framework) -> SampleConclusion:
    """The instances of one conclusion as one: ``{criteria}`` / ``{standards}`` list every criterion
    or standard the instances were about, in the framework's order; ``{criterion}`` and its title
    are those of the first."""
    order = {n: i for i, n in enumerate(n for s in framework.standards for n in [s.id, *[c.id for c in s.criteria]])}
    criteria = sorted({about["criterion"] for _, _, about in concluded if about["criterion"]}, key=order.get)
    standards = sorted({about["standard"] for _, _, about in concluded if about["standard"]}, key=order.get)
    first_index, body, first = min(concluded, key=lambda c: c[0])
    values = {"criterion": first["criterion"] or "", "standard": first["standard"] or "",
              "criterion_title": titles.get(first["criterion"] or "", ""),
              "standard_title": titles.get(first["standard"] or "", ""), "provider": provider,
              "criteria": _listed([f"{c} ({titles.get(c, '')})" for c in criteria]),
              "standards": _listed([f"{s} ({titles.get(s, '')})" for s in standards])}
    about: dict = {}
    if len(criteria) == 1:
        about["criterion"] = criteria[0]
    elif criteria:
        about["criteria"] = criteria
    if len(standards) == 1:
        about["standard"] = standards[0]
    elif standards:
        about["standards"] = standards
    if provider:
        about["provider"] = provider
    return SampleConclusion(kind, conclusion_id, body.text.format_map(values), to, about,
                            tuple(sorted(i for i, _, _ in concluded)))


def _listed(names: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1] if names else ""


def rating_of(concluded: list[tuple[int, str]], order: list[str]) -> str:
    """The rating policy: the highest priority counts, then the worst band (bands are listed best
    first); unrated when no rule rated the target. Evaluation of sample rules is given this policy,
    since sample rules read the ratings other sample rules concluded."""
    if not concluded:
        return facts.UNRATED
    top = max(priority for priority, _ in concluded)
    return max((band for priority, band in concluded if priority == top), key=order.index)


def evaluate_sample(compiled: CompiledRuleSet, attributes: dict, tracer=None) -> Evaluation:
    """Evaluate the sample rules on the sample's attributes, under this stage's rating policy."""
    return evaluator.evaluate(compiled, attributes, tracer, rate=rating_of)


def _order(target: str, framework) -> int:
    ids = [n for s in framework.standards for n in [f"standard {s.id}", *[c.id for c in s.criteria]]]
    return ids.index(target) if target in ids else len(ids)
