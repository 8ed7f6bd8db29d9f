"""Rule sets: the rule language methodology staff write, as strict models, and loading them.

A rule set is YAML (``rules/*.yaml``): an id, a version, the framework it applies to, the derived
facts it declares, and rules. A rule says *when* (a condition over the inspector's answers, the
case context and derived facts) *then* what follows (criterion findings, enablers, barriers,
derived facts). Every condition is a mapping with exactly one key naming its form::

    when:
      all:
        - flag: child_safeguarding
        - answer: {item: 3.4.a, in: [no]}
        - not: {fact: harm_to_children_assessed}

Values are checked against the framework (items, criteria, vocabulary) and against the facts the
rule set declares; problems come back as diagnostics with the file, line and column.

The package, by job:

* ``form`` — the base of every condition form and the registry (behaviour lives on the form);
* ``conditions/`` — the forms, one class each, in modules by kind;
* ``terms`` — the values rules name (items, answers, criteria, targets, thresholds);
* ``conclusions`` — what rules conclude, per case and for the sample;
* ``ruleset`` — rules and rule sets, and the checks that need the whole rule set;
* ``loading`` — reading a rule set file against its framework.
"""

from __future__ import annotations

from engine.check.rules.conclusions import (
    BarrierConclusion,
    Conclusion,
    EnablerConclusion,
    FactConclusion,
    FindingConclusion,
    RatingConclusion,
    RecommendationConclusion,
    SampleBarrierConclusion,
    SampleConclusion,
    SampleEnablerConclusion,
)
from engine.check.rules.conditions import Condition, SampleCondition
from engine.check.rules.form import Form, forms, walk
from engine.check.rules.loading import LoadedRuleSet, from_document, load, reserved_shorthands
from engine.check.rules.ruleset import (
    PLACEHOLDERS,
    Rule,
    RuleSet,
    SampleRule,
    SampleSettings,
    facts_read,
    factor_populations,
    groupings,
)

__all__ = [
    "BarrierConclusion", "Conclusion", "Condition", "EnablerConclusion", "FactConclusion", "FindingConclusion",
    "Form", "LoadedRuleSet", "PLACEHOLDERS", "RatingConclusion", "RecommendationConclusion", "Rule",
    "RuleSet", "SampleBarrierConclusion", "SampleCondition", "SampleConclusion", "SampleEnablerConclusion",
    "SampleRule", "SampleSettings", "facts_read", "factor_populations", "forms", "from_document", "groupings", "load", "walk",
]
