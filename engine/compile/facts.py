"""Facts: a case as the flat, typed record the rules engine matches against.

Every attribute is always present and takes a value from a finite domain known from the
framework (answers, vocabulary terms, booleans), so negation is exact and no comparison ever
crosses types — two of durable_rules' traps (a missing attribute fails every test, and ``"1" == 1``)
cannot arise. An item the inspector did not assess has the answer :data:`NOT_ASSESSED`.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from typing import Any, Callable

from engine.check import models

NOT_ASSESSED = models.NOT_ASSESSED
#: The ``kind`` of every fact qi asserts; catch-all rules match on it.
FACT_KIND = "case_phase"
#: The value of a diversity characteristic the case file does not give.
NOT_GIVEN = "not_given"


def answers(framework: models.Framework) -> tuple:
    """The domain of an answer attribute: the framework's answers, and :data:`NOT_ASSESSED`."""
    return (*framework.vocabulary.ids("answers"), NOT_ASSESSED)


@functools.lru_cache(maxsize=4096)
def safe(identifier: str) -> str:
    """An id as it may appear in an attribute name: ``3.4.a`` -> ``3_4_a``."""
    return re.sub(r"[^A-Za-z0-9_]", "_", identifier)


def answer_attribute(item_id: str) -> str:
    return "a_" + safe(item_id)


def term_attribute(field: models.ContextField, term) -> str:
    """The true/false attribute of one term of a many-valued context field, e.g. ``flag_mental_health``."""
    return field.fact + safe(str(term))


def diversity_attribute(field: str) -> str:
    return "div_" + safe(field)


def is_diversity_attribute(attribute: str) -> bool:
    """Whether an attribute holds a diversity value (see :func:`diversity_attribute`)."""
    return attribute.startswith("div_")


def fact_attribute(fact: str) -> str:
    return "fact_" + safe(fact)


def count_attribute(items, answers) -> str:
    """How many of ``items`` have one of ``answers``: a whole number from 0 to len(items)."""
    return "n_" + "_".join(safe(i) for i in sorted(items)) + "__" + "_".join(sorted(answers))


def count_domain(items) -> tuple:
    return tuple(range(len(set(items)) + 1))


def with_counts(attributes: dict, schema: "Schema") -> dict:
    """The attributes with every count the rule set reads (``at_least`` lowers to a count, so a
    threshold over many items stays one small test rather than a combination per subset)."""
    counted = dict(attributes)
    for attribute, (items, answers) in schema.counts.items():
        counted[attribute] = sum(1 for i in items if attributes[answer_attribute(i)] in answers)
    return counted


@dataclasses.dataclass(frozen=True)
class Schema:
    """The attributes of a fact and the finite domain of each, derived from a framework.

    ``extras`` are attributes a condition form added while it was lowered (``Lowering.extra``),
    each read from the case or organisation model; ``words`` says how an attribute's value reads
    in a lint witness (attributes without one read ``attribute: value``)."""

    domains: dict[str, tuple]
    extras: dict[str, Callable[[Any], Any]] = dataclasses.field(default_factory=dict)
    words: dict[str, Callable[[Any], str | None]] = dataclasses.field(default_factory=dict)
    #: The case context fields (from the framework's vocabulary) the attributes come from, by id.
    fields: dict[str, models.ContextField] = dataclasses.field(default_factory=dict)
    #: count attribute -> (items, answers) it counts; see :func:`with_counts`.
    counts: dict[str, tuple] = dataclasses.field(default_factory=dict)

    def counting(self, counts) -> Schema:
        """This schema with count attributes for each (items, answers) pair."""
        extra = {count_attribute(items, answers): (tuple(sorted(set(items))), tuple(sorted(answers)))
                 for items, answers in counts}
        return dataclasses.replace(self, domains={**self.domains, **{a: count_domain(i) for a, (i, _) in extra.items()}},
                                   counts={**self.counts, **extra})

    @classmethod
    def for_framework(cls, framework: models.Framework, facts: list[str] = ()) -> Schema:
        """Case context (the fields the framework's vocabulary declares), answers on case items,
        diversity characteristics and the rule set's derived facts."""
        vocab = framework.vocabulary
        named: list[tuple[str, tuple, str]] = []
        words: dict[str, Callable] = {}
        for field in vocab.context:
            if field.shape == "present":
                named.append((field.fact, (True, False), field.id))
            elif field.shape == "many":
                for term in vocab.ids(field.terms):
                    named.append((term_attribute(field, term), (True, False), term))
                    words[term_attribute(field, term)] = functools.partial(_when_set, f"{field.each or field.id} {term}")
            else:
                absent = () if field.absent is None else (field.absent,)
                named.append((field.fact, (*absent, *vocab.ids(field.terms)), field.id))
        named += ([(answer_attribute(i), answers(framework), i) for i in framework.item_ids("case")]
                  + [(diversity_attribute(d.id), (*d.values, NOT_GIVEN), d.id) for d in vocab.diversity]
                  + [(fact_attribute(f), (True, False), f) for f in facts])
        domains: dict[str, tuple] = {}
        for attribute, domain, original in named:
            if attribute in domains:
                raise ValueError(f"{original!r} and another id both become the attribute {attribute!r}")
            domains[attribute] = domain
        words |= _answer_words(framework.item_ids("case")) | _fact_words(facts)
        return cls(domains, words=words, fields={f.id: f for f in vocab.context})

    def add(self, attribute: str, domain: tuple, extract: Callable[[Any], Any],
            words: Callable[[Any], str | None]) -> None:
        """Add an attribute read from the model by ``extract`` (no-op if it is already there)."""
        if attribute in self.domains and attribute not in self.extras:
            raise ValueError(f"the attribute {attribute!r} is already in the schema")
        self.domains.setdefault(attribute, domain)
        self.extras.setdefault(attribute, extract)
        self.words.setdefault(attribute, words)

    def word(self, attribute: str, value: Any) -> str | None:
        """How ``attribute = value`` reads in a witness (None: not worth saying, e.g. a flag not set)."""
        say = self.words.get(attribute)
        return say(value) if say else f"{attribute}: {value}"

    def extra_attributes(self, model: Any) -> dict:
        """The values of the added attributes for a case or organisation model."""
        return {attribute: extract(model) for attribute, extract in self.extras.items()}


# Witness wording, as module-level functions so that a compiled rule set pickles to workers.

def _answer_word(item: str, value: str) -> str:
    return f"{item}: {value}"


def _fact_word(fact: str, value: bool) -> str:
    return f"fact {fact} {'holds' if value else 'does not hold'}"


def _when_set(words: str, value: bool) -> str | None:
    return words if value else None


def _answer_words(items) -> dict:
    return {answer_attribute(i): functools.partial(_answer_word, i) for i in items}


def _fact_words(facts) -> dict:
    return {fact_attribute(f): functools.partial(_fact_word, f) for f in facts}


def case_attributes(case: models.CaseFile, framework: models.Framework, schema: Schema | None = None) -> dict:
    """The attributes of a case, before any derived facts: every attribute of the schema but facts
    (pass the compiled rule set's schema for the attributes its conditions added)."""
    vocab = framework.vocabulary
    attributes: dict = {}
    for field in vocab.context:
        value = models.context_value(case, field)
        if field.shape == "many":
            for term in vocab.ids(field.terms):
                attributes[term_attribute(field, term)] = term in value
        else:
            attributes[field.fact] = value
    for item_id in framework.item_ids("case"):
        entry = case.evidence.get(item_id)
        attributes[answer_attribute(item_id)] = entry.answer if entry else NOT_ASSESSED
    for field in vocab.diversity:
        attributes[diversity_attribute(field.id)] = case.diversity.get(field.id, NOT_GIVEN)
    if vocab.populations:
        attributes[POPULATION] = getattr(case, "population", None) or MAIN_SAMPLE
    if schema is not None and schema.extras:
        attributes.update(schema.extra_attributes(case))
    return attributes


# --- organisation evidence ------------------------------------------------------------------------


def organisation_schema(framework: models.Framework, facts: list[str] = ()) -> Schema:
    """The attributes of an organisation fact: its provider and its answers on organisation items."""
    provider = framework.vocabulary.context_field("provider")
    domains: dict[str, tuple] = {"provider": tuple(framework.vocabulary.ids("providers"))}
    domains.update({answer_attribute(i): answers(framework) for i in framework.item_ids("organisation")})
    domains.update({fact_attribute(f): (True, False) for f in facts})
    return Schema(domains, words=_answer_words(framework.item_ids("organisation")) | _fact_words(facts),
                  fields={"provider": provider} if provider else {})


class WithCases:
    """An organisation's evidence with its provider's judged cases: what an organisation rule's
    ``provider_cases`` condition reads (``provider_cases``; each case has ``reference``,
    ``findings`` and ``matched``, the keys of the case conditions that hold on it). Everything
    else is the organisation file's (``evidence``, ``organisation``, ``judgements``...)."""

    def __init__(self, model: models.OrganisationFile, cases) -> None:
        self.model = model
        self.provider_cases = tuple(cases)

    def __getattr__(self, name: str) -> Any:
        if name == "model":  # not set yet (a copy being made): never recurse
            raise AttributeError(name)
        return getattr(self.model, name)


def organisation_attributes(organisation: models.OrganisationFile | WithCases, framework: models.Framework,
                            schema: Schema | None = None) -> dict:
    """The attributes of an organisation's evidence (with the schema's added attributes, if given;
    pass it :class:`WithCases` for conditions on the provider's cases to read them)."""
    attributes: dict = {"provider": organisation.organisation}
    for item_id in framework.item_ids("organisation"):
        entry = organisation.evidence.get(item_id)
        attributes[answer_attribute(item_id)] = entry.answer if entry else NOT_ASSESSED
    if schema is not None and schema.extras:
        attributes.update(schema.extra_attributes(organisation))
    return attributes


# --- the whole sample: aggregates -----------------------------------------------------------------

#: The group that is the whole sample.
ALL = "all"
#: The attribute naming a case's population, where the framework declares populations (the
#: judge keeps only the findings of that population's standards), and its value for the main sample.
POPULATION = "population"
MAIN_SAMPLE = ""

#: A rating attribute's value before any rule rated the target.
UNRATED = "unrated"
#: An aggregate figure that is undefined (no applicable cases, or too few groups to compare).
UNDEFINED = -1.0


#: The target of a rating over every standard: the overall rating.
OVERALL = "overall"


def target_key(criterion: str | None, standard: str | None) -> str:
    """``c3_4`` for criterion 3.4, ``s3`` for standard 3, ``overall`` for neither."""
    if criterion is None and standard is None:
        return OVERALL
    return "c" + safe(criterion) if criterion is not None else "s" + safe(standard)


def judged_attribute(standard: str, group: str, value: str) -> str:
    """How many of an organisation-scoped standard's criteria the provider's organisation evidence
    was judged ``value`` on (sufficient, or judged at all)."""
    return f"org__{standard}__{safe(group)}__{value}"


def score_attribute(group: str) -> str:
    """The sum of every standard's band score for the group (undefined while one is unrated)."""
    return f"score__{safe(group)}"


def percent_attribute(target: str, group: str) -> str:
    return f"pct__{target}__{safe(group)}"


def applicable_attribute(target: str, group: str) -> str:
    return f"n__{target}__{safe(group)}"


def cases_attribute(group: str) -> str:
    return f"cases__{safe(group)}"


def share_attribute(kind: str, factor: str, group: str) -> str:
    return f"share__{kind}__{safe(factor)}__{safe(group)}"


def relevant_attribute(kind: str, factor: str, group: str) -> str:
    """How many of the group's cases an enabler or barrier can arise in (its share is of them)."""
    return f"relevant__{kind}__{safe(factor)}__{safe(group)}"


def gap_attribute(target: str, grouping: str) -> str:
    return f"gap__{target}__{safe(grouping)}"


def below_attribute(target: str, provider: str, other: str) -> str:
    """How many points ``provider`` is below ``other`` on the target."""
    return f"below__{target}__{safe(provider)}__{safe(other)}"


def rating_attribute(target: str, group: str) -> str:
    return f"rating__{target}__{safe(group)}"
