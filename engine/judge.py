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

from engine import rules
from engine.compile import CompiledRuleSet
from engine.evaluate import Evaluation

POLICY = ("highest priority first; then insufficient beats sufficient, which beats not_applicable; "
          "a criterion no rule concluded on is not_assessed")
SEVERITY = ("insufficient", "sufficient", "not_applicable")
NOT_ASSESSED = "not_assessed"


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
    """Apply the combination policy to one case's evaluation."""
    framework = compiled.loaded.framework
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
    for standard in framework.standards:
        if standard.scope != "case":
            continue
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
