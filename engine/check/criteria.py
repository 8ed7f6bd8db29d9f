"""Criterion declarations: the counting rules of a criterion, written once as data.

Methodology staff declare, per criterion, which lines of enquiry it counts and how; this module
expands each declaration into ordinary rules (and the derived fact they share) before the rule
set is validated, so every later stage — compile, evaluate, trace, lint, rule tests — sees plain
rules whose positions are the declaration's::

    criteria:
      - criterion: "3.4"
        rationale: "Why these lines are key, in the framework's words."
        core: [3.4.a, 3.4.d, 3.4.e, 3.4.f, 3.4.g, 3.4.h]     # expected in every case
        expected_when:                                      # expected only in this context
          3.4.i: {fact: resettlement_relevant}
        key: [3.4.a, 3.4.d]               # a `no` makes the criterion insufficient
        key_when:                         # a `no` is decisive only in this context
          3.4.i: {fact: resettlement_relevant}
        protection: [3.4.a, 3.4.h]        # short of met is decisive where protection_when holds
        protection_when: {fact: public_protection_priority}
        decisive_when:                    # short of met is decisive only in this context
          3.4.e: {fact: vulnerability_relevant}
        threshold: 80                     # % of the applicable lines that must be met (yes)

What the expanded rules mean (the same for every criterion, so an answer met in part has one meaning):

* A line *applies* when it is answered anything but ``not_applicable`` — an explicit answer is
  never dropped, whatever the context. Thresholds count applicable lines only: at least
  ``threshold`` % of them answered ``yes``.
* A line is *expected* when it is core, or its ``expected_when`` holds. ``<c>-expected-lines-
  assessed`` derives ``<c>_expected_assessed`` when every expected line has an answer — every line
  expected through ``expected_when`` an answer other than ``not_applicable`` (the framework's words
  set the condition and the case shows it), and, where protection is the priority, every expected
  protection line too (the inspector is warned at the answer; the criterion stays not assessed
  unless a failure is established).
* ``<c>-sufficient``: every expected line assessed, at least one line applies, no key line ``no``
  (nor a ``key_when`` line where its condition holds), no protection line short of met where
  protection is the priority (nor a ``decisive_when`` line where its condition holds), and the
  threshold met.
* ``<c>-key-line-not-met`` / ``<c>-protection-line-not-met`` / ``<c>-decisive-line-not-met``: the
  decisive failures; they stand even while other evidence is missing.
* ``<c>-too-few-met``: the threshold cannot be met — with complete evidence, or already, even if
  every line still missing were answered ``yes`` (an established failure stands).
* ``<c>-not-applicable``: every expected line assessed and none applies.
* Otherwise no rule concludes and the criterion is ``not_assessed``: missing evidence is never
  sufficient.
"""

from __future__ import annotations

import copy
import itertools
from typing import Annotated, Any

from pydantic import Field, ValidationError

from engine.base.diagnostics import Diagnostic, InputError
from engine.check import models
from engine.check.models import Strict
from engine.load import source



class Scale:
    """The framework's answer scale as the expanded rules read it: which answers count as met,
    met in part, not met and not applicable (``counts_as`` in the framework's ``answers``), so a
    yes/no scale, or one with other words, needs no change here."""

    def __init__(self, framework: models.Framework) -> None:
        vocabulary = framework.vocabulary
        self.met = vocabulary.answers_meaning("met")
        self.in_part = vocabulary.answers_meaning("met_in_part")
        self.not_met = vocabulary.answers_meaning("not_met")
        self.not_applicable = vocabulary.answers_meaning("not_applicable")
        self.applies = vocabulary.answers_meaning("met", "met_in_part", "not_met")
        self.short = vocabulary.answers_meaning("met_in_part", "not_met")

    @staticmethod
    def words(answers: list[str]) -> str:
        """``in part or no``: answers as a rationale names them."""
        return " or ".join(answers)

SECTIONS = {"criteria": ("rules", "case"), "organisation_criteria": ("organisation_rules", "organisation")}

#: Most lines one declaration may make expected only in some cases: ``<c>-too-few-met`` has a part
#: for every set of them the case may leave out, and more than this outgrows what the rules engine
#: matches in one rule.
MAX_CONDITIONAL = 6


class Declaration(Strict):
    """How one criterion is judged from its lines of enquiry; expanded into rules."""

    criterion: str = Field(pattern=models.NODE_ID_PATTERN, description="Criterion id, quoted, e.g. \"3.4\".")
    rationale: str = Field(min_length=1, description="Why these lines, key lines and threshold: the framework's words.")
    core: list[str] = Field(default_factory=list, description="Lines expected in every case.")
    expected_when: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Lines expected only when a condition on the case holds (item -> condition).")
    key: list[str] = Field(default_factory=list, description="Lines whose not-met answer (`no`) makes the criterion "
                                                              "insufficient.")
    protection: list[str] = Field(default_factory=list,
                                  description="Lines whose answer short of met (met in part, or not met) is decisive where "
                                              "protection_when holds.")
    protection_when: dict[str, Any] | None = Field(default=None, description="When protection is the priority.")
    key_when: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Lines whose not-met answer is decisive only where a condition on the case "
                                          "holds (item -> condition).")
    decisive_when: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Lines whose answer short of met is decisive only where a condition on the "
                                          "case holds (item -> condition), as protection lines are where protection is "
                                          "the priority.")
    threshold: Annotated[float, Field(gt=0, le=100)] = Field(
        description="% of the applicable lines that must be met (answered yes).")


def expand(document: source.Document, framework: models.Framework) -> source.Document:
    """The document with every criterion declaration expanded into ordinary rules and facts.
    Raises InputError (with positions) for a declaration that is malformed."""
    data = document.data
    if not isinstance(data, dict) or not any(isinstance(data.get(s), list) for s in SECTIONS):
        return document
    data = copy.copy(data)
    marks = dict(document.marks)
    problems: list[Diagnostic] = []
    declared = data.get("facts")
    facts = list(declared or []) if isinstance(declared, list) or declared is None else declared
    for section, (rule_section, scope) in SECTIONS.items():
        entries = data.get(section)
        if not isinstance(entries, list):
            continue
        generated: list[dict] = []
        origins: list[tuple] = []
        seen: dict[str, tuple] = {}
        for index, entry in enumerate(entries):
            at = (section, index)
            declaration = _declaration(document, entry, at, framework, scope, problems)
            if declaration is None:
                continue
            if declaration.criterion in seen:
                first = document.at(seen[declaration.criterion])
                problems.append(document.diagnostic(at + ("criterion",), "duplicate_declaration",
                                                    f"criterion {declaration.criterion} is declared twice "
                                                    f"(first at {first})", "declare each criterion once"))
                continue
            seen[declaration.criterion] = at
            made, fact = rules_for(declaration, framework)
            generated += made
            origins += [at] * len(made)
            if isinstance(facts, list):
                facts.append(fact)
        existing = data.get(rule_section)
        existing = list(existing) if isinstance(existing, list) else ([] if existing is None else existing)
        if not isinstance(existing, list):
            continue
        start = len(existing)
        data[rule_section] = existing + generated
        for offset, origin in enumerate(origins):
            marks[(rule_section, start + offset)] = document.marks.get(origin) or document.marks.get((section,))
    if problems:
        raise InputError(sorted(problems))
    if isinstance(facts, list):
        data["facts"] = facts
    return source.Document(document.path, data, marks, document.sha256, list(document.problems))


def rule_ids(declared: list[Declaration]) -> set[str]:
    """The ids of the rules expanded from these declarations (each exact by construction, and
    tested as such: lint need not search them for conflicts with one another)."""
    return {f"{d.criterion}-{suffix}" for d in declared
            for suffix in ("expected-lines-assessed", "sufficient", "key-line-not-met", "protection-line-not-met",
                           "decisive-line-not-met", "too-few-met", "not-applicable")}


def _declaration(document, entry, at, framework, scope, problems) -> Declaration | None:
    before = len(problems)
    try:
        declaration = Declaration.model_validate(entry)
    except ValidationError as error:
        for e in error.errors():
            loc = at + tuple(e["loc"])
            problems.append(document.diagnostic(loc, "invalid_declaration", e["msg"].lower(),
                                                "see the criteria section of docs/methodology.md"))
        return None
    criteria = {c.id: (s.scope, [i.id for i in c.items]) for s in framework.standards for c in s.criteria}
    if declaration.criterion not in criteria or criteria[declaration.criterion][0] != scope:
        problems.append(document.diagnostic(at + ("criterion",), "unknown_criterion",
                                            f"{declaration.criterion!r} is not a {scope}-scoped criterion",
                                            f"declare {scope} criteria here"))
        return None
    own = criteria[declaration.criterion][1]
    counted = declaration.core + list(declaration.expected_when)
    for field in ("core", "expected_when", "key", "protection", "key_when", "decisive_when"):
        values = getattr(declaration, field)
        for position, item in enumerate(values):
            loc = at + ((field, position) if isinstance(values, list) else (field, item))
            if item not in own:
                problems.append(document.diagnostic(loc, "unknown_item", f"{item!r} is not an item of criterion "
                                                    f"{declaration.criterion}", f"items are {', '.join(own)}"))
            elif field in ("key", "protection", "key_when", "decisive_when") and item not in counted:
                problems.append(document.diagnostic(loc, "uncounted_item", f"{item!r} is {field} but not counted",
                                                    "list it in core or expected_when"))
    for field in ("key", "protection"):
        values = getattr(declaration, field)
        if len(set(values)) != len(values):
            problems.append(document.diagnostic(at + (field,), "duplicate_item", f"an item is listed twice in {field}",
                                                "list each item once"))
    for field in ("expected_when", "key_when", "decisive_when"):
        for item, condition in getattr(declaration, field).items():
            if item in _strings(condition):
                problems.append(document.diagnostic(at + (field, item), "circular_expectation",
                                                    f"{item} is conditioned on a condition on {item} itself",
                                                    "say when from the case's context fields, or a fact derived "
                                                    "from them"))
    for item in set(declaration.key) & set(declaration.key_when):
        problems.append(document.diagnostic(at + ("key_when", item), "duplicate_item",
                                            f"{item} is key in every case and in key_when",
                                            "list it in key or in key_when, not both"))
    if len(declaration.expected_when) > MAX_CONDITIONAL:
        problems.append(document.diagnostic(at + ("expected_when",), "invalid_declaration",
                                            f"{len(declaration.expected_when)} lines are expected only in some cases; "
                                            f"at most {MAX_CONDITIONAL} can be",
                                            "make the lines expected in every case core: the inspector answers "
                                            "not_applicable where one does not arise"))
    twice = set(declaration.core) & set(declaration.expected_when)
    if twice or len(set(declaration.core)) != len(declaration.core):
        problems.append(document.diagnostic(at + ("core",), "duplicate_item", "an item is counted twice",
                                            "list each item once, in core or in expected_when"))
    if not counted:
        problems.append(document.diagnostic(at, "invalid_declaration", "the declaration counts no items",
                                            "list the criterion's lines in core or expected_when"))
    if declaration.protection and declaration.protection_when is None:
        problems.append(document.diagnostic(at + ("protection",), "invalid_declaration",
                                            "protection lines need protection_when",
                                            "say when protection is the priority, e.g. {fact: ...}"))
    return declaration if len(problems) == before else None


def _strings(node) -> set[str]:
    """Every string in a condition as written: the items it reads are among them."""
    if isinstance(node, str):
        return {node}
    if isinstance(node, dict):
        return set().union(*(_strings(v) for v in node.values())) if node else set()
    if isinstance(node, list):
        return set().union(*(_strings(v) for v in node)) if node else set()
    return set()


def _need(threshold: float, applicable: int) -> int:
    """Lines that must be met out of ``applicable``: the least n with n / applicable >= threshold %."""
    n = 0
    while n * 100 < threshold * applicable:
        n += 1
    return n


def _subsets(items: list[str]) -> list[tuple[str, ...]]:
    """Every subset of ``items``, the empty one first, in a fixed order.

    >>> _subsets(["a", "b"])
    [(), ('a',), ('b',), ('a', 'b')]
    """
    return [combo for size in range(len(items) + 1) for combo in itertools.combinations(items, size)]


def _exactly(items: list[str], answers: list[str], n: int) -> list[dict]:
    parts = []
    if n >= 1:
        parts.append({"at_least": {"n": n, "items": items, "in": answers}})
    if n < len(items):
        parts.append({"not": {"at_least": {"n": n + 1, "items": items, "in": answers}}})
    return parts


def rules_for(d: Declaration, framework: models.Framework) -> tuple[list[dict], dict]:
    """The rules (as rule-set data) and the derived fact one declaration stands for."""
    order = {i.id: n for s in framework.standards for c in s.criteria for n, i in enumerate(c.items)}
    items = sorted(d.core + list(d.expected_when), key=order.__getitem__)
    c, m = d.criterion, len(items)
    scale = Scale(framework)
    met, not_met, short, na = (scale.words(scale.met), scale.words(scale.not_met), scale.words(scale.short),
                               scale.words(scale.not_applicable))
    fact = "expected_assessed_" + c.replace(".", "_")
    complete = {"fact": fact}
    finding = lambda value: [{"finding": {"criterion": c, "value": value}}]  # noqa: E731
    share = f"at least {d.threshold:g}% of the applicable lines met (answered {met})"
    conditional = ", ".join(d.expected_when) or "none"
    made: list[dict] = []

    assessed = [{"not": {"not_assessed": i}} for i in d.core]
    # a line expected only in some context is expected because the case shows that context: there,
    # not applicable is not an assessment of it
    assessed += [{"any": [{"not": cond}, {"any_answer": {"items": [i], "in": scale.applies}}]}
                 for i, cond in d.expected_when.items()]
    for i in d.protection:  # where protection is the priority, an expected protection line must apply
        if i not in d.expected_when:
            assessed.append({"any": [{"not": d.protection_when},
                                     {"not": {"any_answer": {"items": [i], "in": scale.not_applicable}}}]})
    for i, cond in d.decisive_when.items():  # so must a line decisive in this case
        if i not in d.expected_when:
            assessed.append({"any": [{"not": cond},
                                     {"not": {"any_answer": {"items": [i], "in": scale.not_applicable}}}]})
    core_protection = [i for i in d.protection if i not in d.expected_when]
    protected = (f" Where protection is the priority, a protection line ({', '.join(core_protection)}) "
                 f"answered {na} is not an assessment of it: the protection evidence is missing."
                 if core_protection else "")
    conditioned = (f" A line expected because the case shows its condition ({conditional}) answered {na} is not "
                   "an assessment of it: the case shows the condition the line is about." if d.expected_when else "")
    conditioned += (f" Nor is a line decisive in this case ({', '.join(d.decisive_when)}) answered {na} where its "
                    "condition holds." if d.decisive_when else "")
    made.append({
        "id": f"{c}-expected-lines-assessed", "title": f"{c}: every expected line of enquiry assessed",
        "rationale": f"Lines expected in every case ({', '.join(d.core) or 'none'}) and lines the case context "
                     f"makes expected ({conditional}) all have an answer; only then can {c} be sufficient or "
                     "not applicable." + conditioned + protected,
        "cites": items, "when": {"all": assessed}, "then": [{"fact": fact}]})

    meets = [{"all": [*_exactly(items, scale.applies, a),
                      {"at_least": {"n": _need(d.threshold, a), "items": items, "in": scale.met}}]}
             for a in range(1, m + 1)]
    guards: list[dict] = [complete, {"at_least": {"n": 1, "items": items, "in": scale.applies}}]
    if d.key:
        guards.append({"not": {"any_answer": {"items": d.key, "in": scale.not_met}}})
    if d.protection:
        guards.append({"any": [{"not": d.protection_when},
                               {"not": {"any_answer": {"items": d.protection, "in": scale.short}}}]})
    guards += [{"any": [{"not": cond}, {"not": {"answer": {"item": i, "in": scale.not_met}}}]}
               for i, cond in d.key_when.items()]
    guards += [{"any": [{"not": cond}, {"not": {"answer": {"item": i, "in": scale.short}}}]}
               for i, cond in d.decisive_when.items()]
    made.append({
        "id": f"{c}-sufficient", "title": f"{c} sufficient",
        "rationale": f"Every expected line assessed, {share}"
                     + (f", no key line ({', '.join(d.key)}) answered {not_met}" if d.key else "")
                     + (f", no line key in this case ({', '.join(d.key_when)}) answered {not_met}" if d.key_when else "")
                     + (f", no protection line ({', '.join(d.protection)}) short of {met} where protection is the "
                        "priority" if d.protection else "")
                     + (f", no line decisive in this case ({', '.join(d.decisive_when)}) short of {met}"
                        if d.decisive_when else "") + ". " + d.rationale,
        "cites": items, "when": {"all": [*guards, {"any": meets}]}, "then": finding("sufficient")})

    if d.key or d.key_when:
        decisive = ([{"any_answer": {"items": d.key, "in": scale.not_met}}] if d.key else []) + [
            {"all": [cond, {"answer": {"item": i, "in": scale.not_met}}]} for i, cond in d.key_when.items()]
        made.append({
            "id": f"{c}-key-line-not-met", "title": f"{c} insufficient: a key line of enquiry is not met",
            "rationale": (f"A key line ({', '.join(d.key)}) answered {not_met} makes {c} insufficient whatever else is "
                          "good. " if d.key else "")
                         + (f"A line key where the case calls for it ({', '.join(d.key_when)}) answered {not_met} "
                            f"there makes {c} insufficient whatever else is good. " if d.key_when else "")
                         + d.rationale,
            "cites": list(d.key) + [i for i in d.key_when if i not in d.key],
            "when": decisive[0] if len(decisive) == 1 else {"any": decisive},
            "then": finding("insufficient")})
    if d.decisive_when:
        decisive = [{"all": [cond, {"answer": {"item": i, "in": scale.short}}]} for i, cond in d.decisive_when.items()]
        made.append({
            "id": f"{c}-decisive-line-not-met",
            "title": f"{c} insufficient: a line decisive in this case is not fully met",
            "rationale": f"Where the case calls for it, a line ({', '.join(d.decisive_when)}) answered {short} makes "
                         f"{c} insufficient, as a protection line does where protection is the priority. "
                         + d.rationale,
            "cites": list(d.decisive_when),
            "when": decisive[0] if len(decisive) == 1 else {"any": decisive},
            "then": finding("insufficient")})
    if d.protection:
        made.append({
            "id": f"{c}-protection-line-not-met",
            "title": f"{c} insufficient: a public protection line is not fully met",
            "rationale": f"Where protection is the priority, a protection line ({', '.join(d.protection)}) answered "
                         f"{short} makes {c} insufficient"
                         + (f": {scale.words(scale.in_part)} is never enough on these lines. " if scale.in_part else ". ")
                         + d.rationale,
            "cites": list(d.protection),
            "when": {"all": [d.protection_when, {"any_answer": {"items": d.protection, "in": scale.short}}]},
            "then": finding("insufficient")})

    fails = []
    for out in _subsets(list(d.expected_when)):
        # lines in `out` are not expected and not answered: they cannot apply unless answered, so
        # they are not counted as lines that might yet be met
        left = [{"all": [{"not": d.expected_when[i]}, {"not_assessed": i}]} for i in out]
        counted = m - len(out)
        branches = []
        for k in range(counted):  # k lines not applicable; even if every missing line were yes, too few are met
            lines = counted - k
            over = lines - _need(d.threshold, lines) + 1
            if over <= lines:
                branches.append({"all": [*_exactly(items, scale.not_applicable, k),
                                         {"at_least": {"n": over, "items": items, "in": scale.short}}]})
        if branches:
            fails.append({"all": [*left, {"any": branches}]} if left else {"any": branches})
    made.append({
        "id": f"{c}-too-few-met", "title": f"{c} insufficient: too few lines of enquiry met",
        "rationale": f"Fewer than {d.threshold:g}% of the applicable lines are met, or can be even if every "
                     f"expected line still missing were answered {met} (a line the case does not call for, left "
                     "unanswered, does not apply): an established failure stands while other evidence is "
                     "missing. " + d.rationale,
        "cites": items, "when": {"any": fails}, "then": finding("insufficient")})

    made.append({
        "id": f"{c}-not-applicable", "title": f"{c} not applicable to the case",
        "rationale": f"Every expected line of {c} was assessed and none applies: each is not applicable, or not "
                     "expected in this case and not answered.",
        "cites": items, "when": {"all": [complete, {"not": {"at_least": {"n": 1, "items": items,
                                                                         "in": scale.applies}}}]},
        "then": finding("not_applicable")})
    return made, {"id": fact, "description": f"Every line of enquiry expected for {c} in this case was assessed."}
