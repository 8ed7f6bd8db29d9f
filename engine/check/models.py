"""Models: the shapes of qi's input files, as strict pydantic v2 models.

Unknown keys are errors, types are not coerced (a quoted "1" is not the number 1), and every field
has a description that ends up in the JSON Schema editors use (``qi schema case``).

Values drawn from the framework's vocabulary (providers, declared case fields, diversity...) are
checked against the framework passed in the validation context
(``Model.model_validate(data, context={"framework": fw})``), so the vocabulary lives in
``framework/`` and can grow without code. Each vocabulary field carries ``x-vocabulary`` in its
schema so ``qi schema`` can list the allowed values.
"""

from __future__ import annotations

import datetime
import hashlib
import re
from collections.abc import Hashable
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from engine.base.diagnostics import did_you_mean

#: A pseudonymous reference: safe as a file name and in a URL, never a path.
REFERENCE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
_REFERENCE = re.compile(REFERENCE_PATTERN)
#: How any node id of any framework is written (each framework's own pattern, per level, is
#: checked where the framework is known: see :class:`Level`).
NODE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


class Strict(BaseModel):
    """Base of every input model: unknown keys are errors and types are not coerced."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def _error(code: str, message: str, hint: str = "") -> PydanticCustomError:
    """A validation error whose ``type`` is a qi diagnostic code."""
    # pydantic fills in only the context's keys ({hint}); other braces in the message stay as written
    return PydanticCustomError(code, message, {"hint": hint})


def check_reference(value: str) -> str:
    """Reject references that could escape a folder or hide text, with a specific message."""
    if ".." in value or "/" in value or "\\" in value or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise _error("unsafe_reference", f"the reference {value!r} contains a path separator, '..' or a control character",
                     "use letters, digits, '.', '_' and '-' only, e.g. NW-014")
    if not _REFERENCE.match(value):
        raise _error("invalid_reference", f"the reference {value!r} is not a valid pseudonymous reference",
                     "start with a letter or digit; then up to 63 letters, digits, '.', '_' or '-'")
    return value


Reference = Annotated[
    str,
    AfterValidator(check_reference),
    Field(json_schema_extra={"pattern": REFERENCE_PATTERN}),
]


def _not_a_number(value: Any) -> Any:
    """Dates are written as dates: pydantic would read a number as seconds since 1970."""
    if isinstance(value, (bool, int, float)):
        raise _error("wrong_type", f"expected a date (YYYY-MM-DD), found the number {value}",
                     "write the date as YYYY-MM-DD")
    return value


#: A date written YYYY-MM-DD (a quoted one too); never a number.
Date = Annotated[datetime.date, BeforeValidator(_not_a_number), Field(strict=False)]


def _framework(info: ValidationInfo):
    return (info.context or {}).get("framework")


def vocabulary(kind: str, what: str, code: str = "unknown_value"):
    """An after-validator checking a value against the framework vocabulary ``kind``."""

    sets: dict[int, tuple] = {}  # per framework (kept alive here, so its id is not reused): the allowed set

    def check(value: Any, info: ValidationInfo) -> Any:
        framework = _framework(info)
        if framework is None:
            return value
        entry = sets.get(id(framework))
        if entry is None or entry[0] is not framework:
            entry = sets[id(framework)] = (framework, frozenset(
                v for v in framework.vocabulary.ids(kind) if isinstance(v, Hashable)))
        try:
            known = value in entry[1]
        except TypeError:  # an unhashable value (a list or mapping) is never an allowed term
            known = False
        if not known:
            allowed = framework.vocabulary.ids(kind)
            raise _error(code, f"{value!r} is not a known {what}", _abbreviation_of(value, allowed)
                         or did_you_mean(value, allowed))
        return value

    return AfterValidator(check)


def _abbreviation_of(value: Any, allowed: list) -> str:
    """A hint when ``value`` abbreviates an allowed value by its initials, e.g. N/A for
    not_applicable; empty otherwise."""
    if not isinstance(value, str):
        return ""
    letters = re.sub(r"[^a-z]", "", value.lower())
    for option in allowed:
        if isinstance(option, str) and "_" in option and letters == "".join(w[:1] for w in option.split("_")):
            return f"write {option}"
    return ""


def _unique(values: list) -> list:
    seen = set()
    for value in values:
        if value in seen:
            raise _error("duplicate_value", f"{value!r} is listed twice", "list each value once")
        seen.add(value)
    return values


def _vocab_field(kind: str, description: str, **field_options: Any) -> Any:
    return Field(description=description, json_schema_extra={"x-vocabulary": kind}, **field_options)


# --- the framework ------------------------------------------------------------------------------


class Term(Strict):
    """One entry of a controlled vocabulary."""

    id: str = Field(description="The value written in files, e.g. community_order.", min_length=1)
    label: str = Field(description="What the value means, in words.")


#: What an answer counts as, whatever the framework calls it: every rule the engine generates
#: (criterion declarations, notes required, practice examples) reads answers through these.
ANSWER_MEANINGS = ("met", "met_in_part", "not_met", "not_applicable")


class AnswerTerm(Term):
    """One answer of the framework's answer scale, and what it counts as."""

    counts_as: Literal["met", "met_in_part", "not_met", "not_applicable"] = Field(
        description="What the answer counts as: met, met_in_part (short of met, but not nothing), not_met, or "
                    "not_applicable (the item does not arise in the case, unlike an item left unanswered).")


class NumberedTerm(Strict):
    """One entry of a numbered vocabulary (e.g. levels 1, 2, 3)."""

    id: int = Field(description="The number written in files, e.g. 2.")
    label: str = Field(description="What the number means, in words.")


class DiversityField(Strict):
    """A diversity characteristic recorded on cases, with its allowed values."""

    id: str = Field(description="The key written under `diversity:` in a case file.")
    label: str = Field(description="What the characteristic is.")
    values: list[str] = Field(description="Allowed values for the characteristic.", min_length=1)
    unrecorded: list[str] = Field(default_factory=list, description=(
        "Values that say the characteristic was not recorded: their groups are shown but never compared "
        "with other groups, since they are not a group of people with anything in common."))

    @model_validator(mode="after")
    def _unrecorded_are_values(self) -> DiversityField:
        problems = [_detail(("unrecorded", index), value, _error(
            "unknown_value", f"unrecorded: {value} not among the values of {self.id}",
            f"values are {', '.join(self.values)}")) for index, value in enumerate(self.unrecorded)
            if value not in self.values]
        if problems:
            raise ValidationError.from_exception_data("DiversityField", problems)
        return self


class CaseField(Strict):
    """One field of case context a case file records, declared by the framework: its name, its
    type and, for terms, the vocabulary its values come from. The case file's own fields (case,
    provider, population, diversity, evidence, judgements) are qi's; every other field is declared."""

    id: str = Field(description="The key written in a case file, e.g. order.", pattern=r"^[a-z][a-z0-9_]*$")
    description: str = Field(description="What the field records, in words: shown in the JSON Schema, the case "
                                          "template and the workbook.")
    type: Literal["term", "terms", "date", "number", "mapping"] = Field(
        description="term: one value of a vocabulary; terms: a list of them; date: YYYY-MM-DD; number; mapping: "
                    "fields of its own (`fields`).")
    terms: str | None = Field(default=None, description="For term and terms: the vocabulary the values come from.")
    each: str | None = Field(default=None, description="For term and terms: what one value is called in messages, "
                                                       "e.g. order type.")
    required: bool = Field(default=True, description="A case file must record it (terms: may be left out, meaning "
                                                     "none; others: may be left out or null when not required).")
    fields: list[CaseField] = Field(default_factory=list, description="For mapping: its fields, in order.")

    @model_validator(mode="after")
    def _shape(self) -> CaseField:
        wrong = None
        if self.type in ("term", "terms") and not self.terms:
            wrong = ("terms", None, f"a {self.type} field names the vocabulary of its values", "add terms: VOCABULARY")
        elif self.type == "mapping" and not self.fields:
            wrong = ("fields", None, "a mapping field declares its fields", "add fields: [...]")
        elif self.type != "mapping" and self.fields:
            wrong = ("fields", self.fields, f"a {self.type} field has no fields of its own", "use type: mapping")
        if wrong:
            raise ValidationError.from_exception_data("CaseField", [_detail(
                (wrong[0],), wrong[1], _error("invalid_value", wrong[2], wrong[3]))])
        return self

    def at(self, path: list[str]) -> CaseField | None:
        """The declared field at ``path`` under this one (itself for an empty path)."""
        if not path:
            return self
        child = next((f for f in self.fields if f.id == path[0]), None)
        return child.at(path[1:]) if child is not None else None


#: The union tag of the condition form reading keys the framework declares (a shorthand): never a
#: key in a document, so a diagnostic's position skips it.
DECLARED_TAG = "[declared]"

#: What a case file holds whatever the framework: the rest of its fields are declared (``case_file``).
CASE_FILE_FIELDS = ("case", "provider", "population", "diversity", "evidence", "judgements")


class Shorthand(Strict):
    """A key rules may write for a condition on one context field, worded in the framework's own
    terms: ``flag: vulnerable`` for ``context: {field: flags, in: vulnerable}``."""

    key: str = Field(description="The key rules write, e.g. flag.", pattern=r"^[a-z][a-z0-9_]*$")
    test: Literal["in", "at_least"] = Field(
        default="in", description="in: the field has one of the values written (a list field: has one of them); "
                                  "at_least: an ordered field is at or above the one value written.")
    words: str = Field(description="How traces and the handbook word the condition; {values} stands for the "
                                   "values written, e.g. \"the case is flagged {values}\". For a present field: "
                                   "the words when it is recorded (the rule writes true).")
    otherwise: str | None = Field(default=None, description="For a present field: the words when it is not "
                                                            "recorded (the rule writes false).")
    shows: str | None = Field(default=None, description="A case field (dotted) a trace shows as what the "
                                                        "condition saw, instead of this field's value.")


class ContextField(Strict):
    """One field of case context a case file records, and how rules and aggregates read it."""

    id: str = Field(description="The field's name in rules (context:), traces and groupings, e.g. order_type.")
    label: str = Field(description="What the field is, in words.")
    path: str = Field(description="Where a case file records it, dotted, e.g. order.type.")
    terms: str | None = Field(default=None, description="The vocabulary its values come from (not for `present`).")
    shape: Literal["one", "many", "present"] = Field(
        default="one", description="one value; many values (a list); or present: whether it is recorded at all.")
    fact: str = Field(description="Its name in the compiled fact; for `many`, the prefix of one name per term.",
                      pattern=r"^[a-z][a-z0-9_]*$")
    each: str | None = Field(default=None, description="How one value reads in messages and (for `many`) in a lint "
                                                       "witness, e.g. flag.")
    absent: int | str | None = Field(default=None, description="Its value when the case records none, e.g. 0.")
    ordered: bool = Field(default=False, description="Rules may test \"at or above\" in the order of its terms.")
    group: bool = Field(default=False, description="Aggregates count and compare cases by it.")
    shorthands: list[Shorthand] = Field(default_factory=list, description=(
        "Keys rules may write for conditions on this field, each with its own wording (context: and "
        "context_at_least: read every field whatever it declares)."))


class Vocabulary(Strict):
    """The controlled vocabulary of case context: extend it here, without code. Besides the named
    fields below, any key holds a list of terms (``{id, label}``, or ``{id: NUMBER, label}`` for a
    numbered vocabulary such as levels), which case fields and context fields name in ``terms``."""

    model_config = ConfigDict(extra="allow", strict=True, frozen=True)
    __pydantic_extra__: dict[str, list[Term] | list[NumberedTerm]] = Field(init=False)

    answers: list[AnswerTerm] = Field(description="The answer scale: answers an inspector may give on an item, "
                                                  "each with what it counts as (met, met_in_part, not_met, "
                                                  "not_applicable). A scale needs a met, a not_met and a "
                                                  "not_applicable answer; met_in_part is optional (a yes/no scale).")
    providers: list[Term] = Field(description="Organisations that deliver the work inspected.")
    diversity: list[DiversityField] = Field(description="Diversity characteristics and their values.")
    evidence_sources: list[Term] = Field(description="Where an inspector found evidence.")
    causes: list[Term] = Field(default_factory=list, description=(
        "Causes inspectors may record as lying behind what they found: in an organisation file's `causes` "
        "and, where the framework declares a case field over this vocabulary, in case files."))
    group_labels: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description="How reports name a group of cases by a diversity value, in plain words: "
                    "field -> value -> label, e.g. gender: {female: women}.")
    populations: list[Term] = Field(default_factory=list, description=(
        "Populations of cases besides the main sample, each answering only its own standards (a standard's "
        "`population`), e.g. an unpaid work sample; a case file names its population in `population:`."))
    case_file: list[CaseField] = Field(default_factory=list, description=(
        "The fields of case context a case file records beside case, provider, diversity, evidence and judgements, "
        "in file order."))
    context: list[ContextField] = Field(description="The fields of case context, in order, and how qi reads each.")

    _ids: dict = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _group_labels_name_known_values(self) -> Vocabulary:
        fields = {d.id: d.values for d in self.diversity}
        for field, labels in self.group_labels.items():
            if field not in fields:
                raise ValueError(f"group_labels: '{field}' is not a diversity field (fields are {', '.join(fields)})")
            unknown = sorted(set(labels) - set(fields[field]))
            if unknown:
                raise ValueError(f"group_labels.{field}: {', '.join(unknown)} not among its values")
        return self

    def term_lists(self) -> list[str]:
        """The names of the vocabularies of terms (``providers``, ``answers``, ``evidence_sources``
        and every list the framework adds)."""
        named = [name for name in type(self).model_fields if name not in ("context", "diversity", "case_file")
                 and isinstance(getattr(self, name), list)]
        return named + list(self.__pydantic_extra__ or {})

    def numbered(self, kind: str) -> bool:
        """Whether the terms of ``kind`` are numbers (e.g. levels 1, 2, 3)."""
        terms = getattr(self, kind, None) or []
        return bool(terms) and all(isinstance(term, NumberedTerm) for term in terms)

    def case_field(self, path: str) -> CaseField | None:
        """The declared case field at a dotted ``path``, e.g. order.type; None if none is."""
        head, *rest = path.split(".")
        top = next((f for f in self.case_file if f.id == head), None)
        return top.at(rest) if top is not None else None

    @model_validator(mode="after")
    def _context_terms(self) -> Vocabulary:
        problems = []
        lists = self.term_lists()

        def check_terms(loc: tuple, name: str | None) -> None:
            if name not in lists:
                problems.append(_detail(loc, name, _error(
                    "unknown_value", f"{name!r} is not a vocabulary of terms", did_you_mean(name, lists))))

        def check_fields(fields: list[CaseField], loc: tuple) -> None:
            seen: set[str] = set()
            for index, field in enumerate(fields):
                if field.id in seen or (loc == ("case_file",) and field.id in CASE_FILE_FIELDS):
                    problems.append(_detail(loc + (index, "id"), field.id, _error(
                        "duplicate_value", f"case files already have a field {field.id!r}",
                        "give every case field its own name")))
                seen.add(field.id)
                if field.type in ("term", "terms"):
                    check_terms(loc + (index, "terms"), field.terms)
                check_fields(field.fields, loc + (index, "fields"))

        check_fields(self.case_file, ("case_file",))
        for name in lists:  # a term listed twice would be counted twice, or break an order
            seen_ids: set = set()
            for index, term in enumerate(getattr(self, name)):
                if term.id in seen_ids:
                    problems.append(_detail((name, index, "id"), term.id, _error(
                        "duplicate_value", f"{term.id!r} is listed twice in {name}", "list each term once")))
                seen_ids.add(term.id)
        columns: dict[str, str] = {name: name for name in CASE_FILE_FIELDS}
        for path in _paths(self.case_file):
            field = self.case_field(".".join(path))
            if field.type != "mapping":
                column = "_".join(path)
                if column in columns:
                    problems.append(_detail(("case_file",), ".".join(path), _error(
                        "duplicate_value", f"{'.'.join(path)} and {columns[column]} would share the workbook column "
                        f"{column!r}", "rename one of them")))
                columns[column] = ".".join(path)
        paths = ["provider"] + [".".join(p) for p in _paths(self.case_file)]
        keys: set[str] = set()
        for index, field in enumerate(self.context):
            for s_index, shorthand in enumerate(field.shorthands):
                where = ("context", index, "shorthands", s_index)
                if shorthand.key in keys:
                    problems.append(_detail(where + ("key",), shorthand.key, _error(
                        "duplicate_value", f"the shorthand {shorthand.key!r} is declared twice", "give each its own key")))
                keys.add(shorthand.key)
                if shorthand.test == "at_least" and not field.ordered:
                    problems.append(_detail(where + ("test",), shorthand.test, _error(
                        "invalid_value", f"{field.id} has no order to be at or above", "set ordered: true, or test: in")))
                if field.shape != "present" and "{values}" not in shorthand.words:
                    problems.append(_detail(where + ("words",), shorthand.words, _error(
                        "invalid_value", "the words do not say the values the rule writes",
                        'put {values} where they go, e.g. "the case is flagged {values}"')))
                if shorthand.shows is not None and shorthand.shows not in ["provider", *(
                        ".".join(p) for p in _paths(self.case_file))]:
                    problems.append(_detail(where + ("shows",), shorthand.shows, _error(
                        "unknown_field", f"case files have no field {shorthand.shows!r}",
                        did_you_mean(shorthand.shows, [".".join(p) for p in _paths(self.case_file)]))))
                if (shorthand.otherwise is None) != (field.shape != "present"):
                    problems.append(_detail(where, shorthand.key, _error(
                        "invalid_value", "otherwise: words when a present field is not recorded; only present fields "
                        "have them", "add or remove otherwise:")))
            if field.shape != "present":
                check_terms(("context", index, "terms"), field.terms)
            if field.path not in paths:
                problems.append(_detail(("context", index, "path"), field.path, _error(
                    "unknown_field", f"case files have no field {field.path!r}", did_you_mean(field.path, paths))))
        if problems:
            raise ValidationError.from_exception_data("Vocabulary", problems)
        return self

    @model_validator(mode="after")
    def _answer_scale(self) -> Vocabulary:
        missing = [m for m in ANSWER_MEANINGS if m != "met_in_part" and not self.answers_meaning(m)]
        if missing:
            raise ValueError(f"answers: no answer counts as {' or '.join(missing)} (each answer says what it counts "
                             "as: counts_as: met | met_in_part | not_met | not_applicable)")
        return self

    def answers_meaning(self, *meanings: str) -> list[str]:
        """The answers that count as any of ``meanings``, in the scale's order."""
        return [a.id for a in self.answers if a.counts_as in meanings]

    def context_field(self, field_id: str) -> ContextField | None:
        return next((f for f in self.context if f.id == field_id), None)

    def shorthand(self, key: str) -> tuple[ContextField, Shorthand] | None:
        """The context field a shorthand key reads, with the shorthand; None when none declares it."""
        return next(((f, s) for f in self.context for s in f.shorthands if s.key == key), None)

    def ids(self, kind: str) -> list:
        """The allowed values of vocabulary ``kind``, in the order the framework gives them."""
        if kind not in self._ids:
            if kind.startswith("diversity."):
                field = kind.removeprefix("diversity.")
                self._ids[kind] = next((list(d.values) for d in self.diversity if d.id == field), [])
            else:
                self._ids[kind] = [term.id for term in getattr(self, kind)]
        return self._ids[kind]


def _paths(fields: list[CaseField], prefix: tuple = ()) -> list[tuple]:
    """Every dotted path of the declared case fields, parents before their children."""
    found = []
    for field in fields:
        found.append(prefix + (field.id,))
        found += _paths(field.fields, prefix + (field.id,))
    return found


class Level(Strict):
    """One level of the framework's hierarchy: what the framework calls it and how its ids are
    written. qi judges three levels — standards (reported and rated), criteria (judged per case or
    organisation) and items (answered by inspectors) — whatever a framework names them."""

    name: str = Field(description="What the framework calls one node of this level, e.g. Criterion or Key question.")
    plural: str = Field(description="The plural, e.g. Criteria or Key questions.")
    id_pattern: str = Field(description="A regular expression every id of this level matches, e.g. ^[0-9]+$.")
    numbering: Literal["numbers", "letters", "free"] = Field(
        description="How ids are given in document order: numbers (1, 2, …) or letters (a, b, …) after the parent's "
                    "id and the separator, or free (any id matching id_pattern, unique).")
    separator: str = Field(default=".", description="Between the parent's id and the number or letter.")

    @field_validator("id_pattern")
    @classmethod
    def _compiles(cls, pattern: str) -> str:
        try:
            re.compile(pattern)
        except re.error as error:
            raise _error("invalid_value", f"{pattern!r} is not a regular expression: {error}",
                         "e.g. ^[0-9]+$") from None
        return pattern

    def numbered(self, parent: str | None, index: int) -> str | None:
        """The id the node at ``index`` (0-based) under ``parent`` must have; None when free."""
        counter = str(index + 1) if self.numbering == "numbers" else _letters(index) if self.numbering == "letters" else None
        if counter is None:
            return None
        return counter if parent is None else f"{parent}{self.separator}{counter}"


class Levels(Strict):
    """The framework's three judged levels, top down."""

    standard: Level = Field(description="What is reported and rated, e.g. Standard.")
    criterion: Level = Field(description="What is judged on each case or organisation, e.g. Criterion, Key question.")
    item: Level = Field(description="What inspectors answer, e.g. Line of enquiry, Prompt.")


class Item(Strict):
    """A key indicator of achievement or a possible line of enquiry."""

    id: str = Field(description="Stable id, written as the framework's levels say, e.g. 3.4.a.",
                    pattern=NODE_ID_PATTERN)
    text: str = Field(description="The item's text, verbatim from the framework document.", min_length=1)


class Criterion(Strict):
    id: str = Field(description="Stable id, written as the framework's levels say, e.g. 3.4.", pattern=NODE_ID_PATTERN)
    title: str = Field(description="The criterion, verbatim.", min_length=1)
    items: list[Item] = Field(description="The criterion's items, in document order.", min_length=1)


class Standard(Strict):
    id: str = Field(description="Stable id, written as the framework's levels say, e.g. 3.", pattern=NODE_ID_PATTERN)
    title: str = Field(description="The standard, verbatim.", min_length=1)
    scope: Literal["case", "organisation"] = Field(
        description="`case`: judged on each case in the sample; `organisation`: once per provider.")
    dimension: str = Field(description="What the standard measures (an id in `dimensions`), e.g. impact or quality.")
    item_kind: str = Field(description="The kind of this standard's items (an id in `item_kinds`).")
    population: str | None = Field(default=None, description=(
        "For a case-scoped standard answered only by one population of cases (an id in vocabulary.populations, "
        "e.g. a specific-work sample); omit for the main sample."))
    criteria: list[Criterion] = Field(description="The standard's criteria, in document order.", min_length=1)


class Introduction(Strict):
    purpose: str = Field(description="What the inspection programme is for.")
    working_model: str = Field(description="The framework's working model, verbatim.")
    outcome_questions: list[str] = Field(description="The outcomes the inspection reports on.")
    practice_themes: list[str] = Field(description="The practice themes quality is assessed against.")


class ReportLayout(Strict):
    """How a run's draft report is laid out for this framework."""

    layout: Literal["findings", "ratings"] = Field(default="findings", description=(
        "findings: key facts, recommendations, then each standard's criteria with their figures (the Q&I draft); "
        "ratings: a ratings table first, then each standard's strengths and areas for improvement, then the figures."))
    outcomes: str | None = Field(default=None, description=(
        "A dimension (an id in `dimensions`) whose case-scoped standards are reported first, as the outcomes the "
        "inspection reports on, e.g. impact."))


class Framework(Strict):
    """An inspection framework: standards, criteria and items, and the vocabulary of case context."""

    id: str = Field(description="Framework id, e.g. hmip-qi-adult.", pattern=REFERENCE_PATTERN)
    version: str = Field(description="Framework version, e.g. \"2.0\" (quoted).")
    released: Date = Field(description="Release date.")
    title: str = Field(description="Title of the framework document.")
    publisher: str = Field(description="Who publishes the framework.")
    illustration: str | None = Field(default=None, min_length=1, description=(
        "Set on a framework written to illustrate a shape, not to judge practice: says so in words. Reports carry "
        "it, and qi never uses the framework unless it is named."))
    introduction: Introduction
    dimensions: list[Term] = Field(description="What standards measure: quality + impact = effectiveness.")
    item_kinds: list[Term] = Field(description="Kinds of item, e.g. key indicators, lines of enquiry.")
    levels: Levels = Field(description="The framework's levels: their names and how their ids are written.")
    report: ReportLayout = Field(default_factory=ReportLayout, description="How run reports are laid out.")
    standards: list[Standard] = Field(description="The standards, in document order.", min_length=1)
    vocabulary: Vocabulary

    _standard_of: dict = PrivateAttr(default_factory=dict)
    _item_sets: dict = PrivateAttr(default_factory=dict)
    _case_model: Any = PrivateAttr(default=None)

    def case_model(self) -> type[CaseFile]:
        """The model of this framework's case files: qi's own fields with the declared ones
        (``vocabulary.case_file``) between provider and diversity, built once per framework."""
        if self._case_model is None:
            self._case_model = case_model(self.vocabulary)
        return self._case_model

    @model_validator(mode="after")
    def _consistent_ids(self) -> Framework:
        problems = []
        kinds = {k.id for k in self.item_kinds}
        dimensions = {d.id for d in self.dimensions}
        populations = [p.id for p in self.vocabulary.populations]
        for s_index, standard in enumerate(self.standards):
            if standard.population is not None and (standard.scope != "case" or standard.population not in populations):
                problems.append(_detail(("standards", s_index, "population"), standard.population, _error(
                    "unknown_value", f"{standard.population!r} is not a population of cases"
                    if standard.scope == "case" else "an organisation-scoped standard has no population of cases",
                    did_you_mean(standard.population, populations) if standard.scope == "case"
                    else "remove population:")))
        if self.report.outcomes is not None and self.report.outcomes not in dimensions:
            problems.append(_detail(("report", "outcomes"), self.report.outcomes, _error(
                "unknown_value", f"{self.report.outcomes!r} is not a dimension",
                did_you_mean(self.report.outcomes, sorted(dimensions)))))
        for s_index, standard in enumerate(self.standards):
            here = ("standards", s_index)
            if standard.dimension not in dimensions:
                problems.append(_detail(here + ("dimension",), standard.dimension,
                                        _error("unknown_value", f"{standard.dimension!r} is not a dimension",
                                               did_you_mean(standard.dimension, sorted(dimensions)))))
            if standard.item_kind not in kinds:
                problems.append(_detail(here + ("item_kind",), standard.item_kind,
                                        _error("unknown_value", f"{standard.item_kind!r} is not an item kind",
                                               did_you_mean(standard.item_kind, sorted(kinds)))))
            problems += self._id_problems(self.levels.standard, None, s_index, standard.id, here + ("id",))
            for c_index, criterion in enumerate(standard.criteria):
                where = here + ("criteria", c_index)
                problems += self._id_problems(self.levels.criterion, standard, c_index, criterion.id, where + ("id",))
                for i_index, item in enumerate(criterion.items):
                    problems += self._id_problems(self.levels.item, criterion, i_index, item.id,
                                                  where + ("items", i_index, "id"))
        seen: dict[str, int] = {}
        for node in self.ids():
            seen[node] = seen.get(node, 0) + 1
        problems += [_detail(("standards",), node, _error("inconsistent_id", f"the id {node!r} is used {count} times",
                                                          "give every standard, criterion and item its own id"))
                     for node, count in sorted(seen.items()) if count > 1]
        if problems:
            raise ValidationError.from_exception_data("Framework", problems)
        return self

    @staticmethod
    def _id_problems(level: Level, parent, index: int, node_id: str, loc: tuple) -> list[InitErrorDetails]:
        """An id that does not match its level's pattern, or not the number or letter its place gives."""
        if not re.search(level.id_pattern, node_id):
            return [_detail(loc, node_id, _error("inconsistent_id", f"{level.name.lower()} id {node_id!r} does not "
                                                 f"match the pattern {level.id_pattern} of the framework's levels",
                                                 "write the id as levels says, or change the level's id_pattern"))]
        expected = level.numbered(parent.id if parent is not None else None, index)
        if expected is not None and parent is not None and node_id != expected:
            return [_detail(loc, node_id, _error(
                "inconsistent_id", f"{level.name.lower()} {node_id!r} is {level.name.lower()} number {index + 1} of "
                f"{parent.id}", f"its id must be {expected!r}"))]
        return []

    # --- lookups used across the pipeline ---

    def standard_of(self, node_id: str) -> Standard | None:
        """The standard a standard, criterion or item id belongs to."""
        if not self._standard_of:
            self._standard_of.update({node: s for s in self.standards for node in
                                      [s.id] + [x for c in s.criteria for x in [c.id] + [i.id for i in c.items]]})
        return self._standard_of.get(node_id)

    def criteria(self) -> list[Criterion]:
        return [c for s in self.standards for c in s.criteria]

    def answered_by(self, population: str | None) -> list[Standard]:
        """The case-scoped standards a case of ``population`` (None: the main sample) answers."""
        return [s for s in self.standards_of("case") if s.population == population]

    def standards_of(self, scope: str | None) -> list[Standard]:
        """The standards judged at ``scope`` (``case`` or ``organisation``; None for all)."""
        return [s for s in self.standards if scope in (None, s.scope)]

    def criteria_of(self, scope: str | None) -> list[Criterion]:
        """The criteria of the standards judged at ``scope`` (None for all), in document order."""
        return [c for s in self.standards_of(scope) for c in s.criteria]

    def items(self) -> list[Item]:
        return [i for c in self.criteria() for i in c.items]

    def item_ids(self, scope: str | None = None) -> list[str]:
        return [i.id for c in self.criteria_of(scope) for i in c.items]

    def has_item(self, item_id: Any, scope: str | None = None) -> bool:
        """Whether ``item_id`` is an item of the standards judged at ``scope`` (a set built once)."""
        found = self._item_sets.get(scope)
        if found is None:
            found = self._item_sets[scope] = frozenset(self.item_ids(scope))
        return isinstance(item_id, Hashable) and item_id in found

    def find(self, node_id: str) -> Standard | Criterion | Item | None:
        """The standard, criterion or item with this id, or None."""
        for standard in self.standards:
            if standard.id == node_id:
                return standard
            for criterion in standard.criteria:
                if criterion.id == node_id:
                    return criterion
                for item in criterion.items:
                    if item.id == node_id:
                        return item
        return None

    def ids(self) -> list[str]:
        return [n for s in self.standards for n in [s.id] + [x for c in s.criteria for x in [c.id] + [i.id for i in c.items]]]


def _letters(index: int) -> str:
    """0 -> a, 25 -> z, 26 -> aa: the lettering of items within a criterion."""
    letters = ""
    index += 1
    while index:
        index, remainder = divmod(index - 1, 26)
        letters = chr(97 + remainder) + letters
    return letters


def _detail(loc: tuple, value: Any, error: PydanticCustomError) -> InitErrorDetails:
    return InitErrorDetails(type=error, loc=loc, input=value)


# --- evidence, shared by case and organisation files ----------------------------------------------

#: An inspector's answer on an item: a term of the framework's ``answers`` vocabulary.
Answer = Annotated[str, vocabulary("answers", "answer", "invalid_value"), Field(json_schema_extra={"x-vocabulary": "answers"})]
#: The answer of an item the inspector recorded nothing on, and the finding on a criterion no rule
#: concluded on: never a term of the vocabulary, never silently sufficient.
NOT_ASSESSED = "not_assessed"


class Evidence(Strict):
    """What the inspector found on one framework item."""

    answer: Answer = Field(description="An answer from the framework's vocabulary, e.g. yes | no | "
                                       "not_applicable. Unquoted yes/no are the words.")
    note: str | None = Field(default=None, description="The inspector's note: what was found and where.")
    sources: Annotated[list[Annotated[str, vocabulary("evidence_sources", "evidence source")]],
                       AfterValidator(_unique)] = _vocab_field(
        "evidence_sources", "Where the evidence was found.", default_factory=list)

    _counts_as: str | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _meaning(self, info: ValidationInfo) -> Evidence:
        framework = _framework(info)
        if framework is not None:
            self._counts_as = next((a.counts_as for a in framework.vocabulary.answers if a.id == self.answer), None)
        return self

    @property
    def counts_as(self) -> str | None:
        """What the answer counts as on the framework's scale (met, met_in_part, not_met,
        not_applicable); None when validated without a framework."""
        return self._counts_as


def item_of_scope(scope: str):
    """An after-validator: the value is an item of a standard with this scope (``case``...)."""

    def check(item_id: str, info: ValidationInfo) -> str:
        framework = _framework(info)
        if framework is None:
            return item_id
        if framework.has_item(item_id, scope):
            return item_id
        if framework.has_item(item_id):
            standard = framework.standard_of(item_id)
            other = "organisation files" if scope == "case" else "case files"
            raise _error("wrong_scope", f"item {item_id!r} belongs to standard {standard.id}, which is judged in {other}",
                         f"move it to the {other.removesuffix(' files')} evidence file")
        raise _error("unknown_item", f"{item_id!r} is not an item of framework {framework.id} {framework.version}",
                     did_you_mean(item_id, framework.item_ids(scope), "items"))

    return AfterValidator(check)


def criterion_of_scope(scope: str):
    """An after-validator: the value is a criterion of a standard with this scope."""

    def check(criterion_id: str, info: ValidationInfo) -> str:
        framework = _framework(info)
        if framework is None:
            return criterion_id
        allowed = [c.id for c in framework.criteria_of(scope)]
        if criterion_id not in allowed:
            kind = f"{scope}-scoped criterion" if scope else "criterion"
            raise _error("unknown_criterion", f"{criterion_id!r} is not a {kind} of framework "
                         f"{framework.id} {framework.version}", did_you_mean(criterion_id, allowed, "criteria"))
        return criterion_id

    return AfterValidator(check)


def _evidence_field(scope: str) -> Any:
    key = Annotated[str, item_of_scope(scope), Field(pattern=NODE_ID_PATTERN)]
    return Annotated[dict[key, Evidence], Field(
        description="Framework item id -> what the inspector found. Items left out are 'not assessed'.",
        json_schema_extra={"x-vocabulary": f"items.{scope}"})]


# --- people's judgements, shared by case and organisation files ------------------------------------

Finding = Literal["sufficient", "insufficient", "not_applicable"]


class Judgement(Strict):
    """The inspector's own finding on one criterion; the engine's finding is a check on it."""

    finding: Finding = Field(description="sufficient | insufficient | not_applicable: the inspector's judgement.")
    note: str | None = Field(default=None, description="Why: what the judgement rests on.")


def _judgements_field(scope: str) -> Any:
    key = Annotated[str, criterion_of_scope(scope), Field(pattern=NODE_ID_PATTERN)]
    return Annotated[dict[key, Judgement], Field(
        description="Criterion id -> the inspector's own judgement. Optional; compared with the engine's finding.",
        json_schema_extra={"x-vocabulary": f"criteria.{scope}"})]


# --- case files -----------------------------------------------------------------------------------


def _check_diversity(values: dict[str, str], info: ValidationInfo) -> dict[str, str]:
    framework = _framework(info)
    if framework is None:
        return values
    fields = [d.id for d in framework.vocabulary.diversity]
    problems = []
    for key, value in values.items():
        if key not in fields:
            problems.append(_detail((key, "[key]"), key, _error(
                "unknown_field", f"{key!r} is not a diversity characteristic", did_you_mean(key, fields))))
            continue
        allowed = framework.vocabulary.ids(f"diversity.{key}")
        if value not in allowed:
            problems.append(_detail((key,), value, _error(
                "unknown_value", f"{value!r} is not a value of {key}", did_you_mean(value, allowed))))
    if problems:
        raise ValidationError.from_exception_data("diversity", problems)
    return values


def context_value(case: Any, field: ContextField) -> Any:
    """The value of a context field in a case: its ``path`` followed through the model, ``absent``
    where the case records none; for ``present``, whether it records one."""
    value = case
    for part in field.path.split("."):
        value = getattr(value, part, None) if value is not None else None
    if field.shape == "present":
        return value is not None
    if field.shape == "many":
        return list(value or [])
    return field.absent if value is None else value


class CaseFile(Strict):
    """One case in the sample, as the inspector records it: the base of every framework's case
    model (:meth:`Framework.case_model`), which adds the fields the framework declares."""


def _fixed_case_fields() -> tuple[dict, dict]:
    before = {
        "case": (Reference, Field(description="Pseudonymous case reference, e.g. NW-014. Never a name.")),
        "provider": (Annotated[str, vocabulary("providers", "provider")],
                     _vocab_field("providers", "The organisation supervising the case.")),
    }
    after = {
        "diversity": (Annotated[dict[str, str], AfterValidator(_check_diversity)], Field(
            default_factory=dict, description="Diversity characteristics: field -> value, from the framework "
                                              "vocabulary.", json_schema_extra={"x-vocabulary": "diversity"})),
        "evidence": (_evidence_field("case"), Field(default_factory=dict)),
        "judgements": (_judgements_field("case"), Field(default_factory=dict)),
    }
    return before, after


def _declared(field: CaseField, terms: Vocabulary, shape: str) -> tuple[Any, Any]:
    """The annotation and field of one declared case field."""
    options: dict[str, Any] = {"description": field.description}
    if field.type == "mapping":
        name = "".join(part.capitalize() for part in field.id.split("_"))
        annotation: Any = _findable(create_model(name, __base__=Strict, __doc__=field.description,
                                                 **{child.id: _declared(child, terms, f"{shape}.{field.id}")
                                                    for child in field.fields}), f"{shape}.{field.id}")
    elif field.type in ("term", "terms"):
        one = Annotated[int if terms.numbered(field.terms) else str,
                        vocabulary(field.terms, field.each or field.terms.replace("_", " "))]
        annotation = one if field.type == "term" else Annotated[list[one], AfterValidator(_unique)]
        options["json_schema_extra"] = {"x-vocabulary": field.terms}
    elif field.type == "date":
        annotation = Date
    else:
        annotation = Annotated[int | float, Field(allow_inf_nan=False)]
    if field.type == "terms":
        options["default_factory"] = list
    elif not field.required:
        annotation, options["default"] = annotation | None, None
    return annotation, Field(**options)


def case_model(terms: Vocabulary) -> type[CaseFile]:
    """The case file model for a vocabulary's declared case fields."""
    before, after = _fixed_case_fields()
    shape = terms.model_dump_json()  # the fields, and whether the vocabularies they name are numbered
    declared = {field.id: _declared(field, terms, shape) for field in terms.case_file}
    model = create_model("CaseFile", __base__=CaseFile, __doc__=CaseFile.__doc__, **before, **_population_field(terms),
                         **declared, **after,
                         __validators__={"_answers_its_population": model_validator(mode="after")(
                             _answers_its_population)})
    return _findable(model, shape)


def _findable(model: type[Strict], shape: str) -> type[Strict]:
    """A model built from a framework, findable in this module under a name its shape fixes, so
    that its instances (and frameworks holding it) pickle to forked worker processes. Its own name
    stays what schemas show (CaseFile, and each mapping field by its name)."""
    qualname = f"{model.__name__}_{hashlib.sha256(shape.encode()).hexdigest()[:16]}"
    existing = globals().get(qualname)
    if existing is not None:
        return existing
    model.__qualname__ = qualname
    globals()[qualname] = model
    return model


def _population_field(terms: Vocabulary) -> dict:
    """The case file's ``population`` field, where the framework declares populations."""
    if not terms.populations:
        return {}
    return {"population": (Annotated[str, vocabulary("populations", "population")] | None, Field(
        default=None, description="The population of cases the case belongs to (vocabulary.populations), e.g. an "
                                  "unpaid work sample; omit for the main sample. A case answers only its "
                                  "population's standards.", json_schema_extra={"x-vocabulary": "populations"}))}


def _answers_its_population(case: CaseFile, info: ValidationInfo) -> CaseFile:
    """Evidence and judgements only on the standards of the case's population."""
    framework = _framework(info)
    if framework is None or not framework.vocabulary.populations:
        return case
    population = getattr(case, "population", None)
    own = {node for s in framework.answered_by(population) for c in s.criteria for node in [c.id, *(i.id for i in c.items)]}
    problems = []
    for section in ("evidence", "judgements"):
        for node in getattr(case, section):
            if node not in own:
                standard = framework.standard_of(node)
                where = f"the {standard.population} population" if standard.population else "the main sample"
                problems.append(_detail((section, node, "[key]"), node, _error(
                    "wrong_population", f"{node!r} belongs to standard {standard.id}, answered by cases of {where}",
                    f"set population: {standard.population}" if standard.population else "remove population:")))
    if problems:
        raise ValidationError.from_exception_data("CaseFile", problems)
    return case


def model_of(kind: str, framework: Framework | None) -> type[Strict]:
    """The model of a file kind: a framework's own case model for case files."""
    if kind == "case":
        if framework is None:
            raise ValueError("case files are validated against a framework")
        return framework.case_model()
    return KINDS[kind]


def _written(text: str) -> str:
    if not text.strip():
        raise _error("empty_note", "the note says nothing", "write what was found, and where")
    return text


class ObservedCause(Strict):
    """A cause inspectors found in their work with an organisation, and the evidence for it."""

    note: Annotated[str, AfterValidator(_written)] = Field(description="What was found, and where.")
    sources: Annotated[list[Annotated[str, vocabulary("evidence_sources", "evidence source")]],
                       AfterValidator(_unique)] = _vocab_field(
        "evidence_sources", "Where the evidence was found.", default_factory=list)


class OrganisationFile(Strict):
    """Organisation evidence for the organisation-scoped standard(s), one file per provider."""

    organisation: Annotated[str, vocabulary("providers", "provider")] = _vocab_field(
        "providers", "The provider this evidence is about.")
    evidence: _evidence_field("organisation") = Field(default_factory=dict)
    judgements: _judgements_field("organisation") = Field(default_factory=dict)
    causes: dict[Annotated[str, vocabulary("causes", "cause")], ObservedCause] = _vocab_field(
        "causes", "Causes the inspectors found in their work with the organisation (the framework's causes "
        "vocabulary), each with what was found.", default_factory=dict)


# --- samples --------------------------------------------------------------------------------------


class Period(Strict):
    start: Date = Field(description="First day of the period inspected.")
    end: Date = Field(description="Last day of the period inspected.")

    @model_validator(mode="after")
    def _ordered(self) -> Period:
        if self.end < self.start:
            raise ValidationError.from_exception_data("Period", [_detail(("end",), str(self.end), _error(
                "invalid_period", f"the period ends ({self.end}) before it starts ({self.start})",
                "swap start and end"))])
        return self


class FrameworkRef(Strict):
    id: str = Field(description="Framework id, e.g. hmip-qi-adult.")
    version: str = Field(description="Framework version, quoted, e.g. \"2.0\".")


class SampleManifest(Strict):
    """`sample.yaml`: what the sample is and which framework and rule set judge it."""

    id: Reference = Field(description="Sample id, e.g. north-west-2016.")
    title: str = Field(description="Title of the inspection, e.g. Quality & Impact inspection: North West.")
    area: str = Field(description="The area inspected.")
    period: Period = Field(description="The period of supervision the sample covers.")
    framework: FrameworkRef = Field(description="The framework the sample is judged against.")
    rules: Reference | None = Field(default=None, description="Rule set id; omit to use the one in force for the period.")


#: The kinds of data file the check stage validates. Later stages define their own file kinds (rule
#: sets in check/rules.py, rule tests and generation profiles in tools/) and pass their model class
#: to ``validate.to_model``; nothing is added here at import time.
KINDS: dict[str, type[Strict]] = {
    "case": CaseFile,
    "organisation": OrganisationFile,
    "sample": SampleManifest,
    "framework": Framework,
}


def json_schema(kind: str | type[Strict], framework: Framework | None = None) -> dict:
    """JSON Schema of a file kind (a name in KINDS, or a model class), with the framework's
    vocabulary filled in as ``enum`` lists."""
    model = kind if isinstance(kind, type) else model_of(kind, framework)
    if model is CaseFile and framework is not None:
        model = framework.case_model()
    schema = model.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    if framework is not None:
        _fill_vocabulary(schema, framework)
    return schema


def _fill_vocabulary(node: Any, framework: Framework) -> None:
    if isinstance(node, list):
        for child in node:
            _fill_vocabulary(child, framework)
        return
    if not isinstance(node, dict):
        return
    if node.pop("x-declared-conditions", False):  # keys the framework declares for its context fields
        node["propertyNames"] = {"enum": [s.key for f in framework.vocabulary.context for s in f.shorthands]}
    kind = node.get("x-vocabulary")
    if kind == "diversity":
        node["properties"] = {d.id: {"enum": list(d.values), "description": d.label}
                              for d in framework.vocabulary.diversity}
        node["additionalProperties"] = False
    elif kind:
        if kind.startswith("items."):
            allowed: list = framework.item_ids(kind.removeprefix("items.") or None)
        elif kind.startswith("criteria."):
            scope = kind.removeprefix("criteria.") or None
            allowed = [c.id for c in framework.criteria_of(scope)]
        else:
            allowed = framework.vocabulary.ids(kind)
        if any(option.get("type") == "null" for option in node.get("anyOf", [])):
            allowed = [*allowed, None]  # a value that may be left null
        if node.get("type") == "object":
            node["propertyNames"] = {"enum": allowed}
        elif node.get("type") == "array":
            node["items"]["enum"] = allowed
        else:
            node["enum"] = allowed
    if node.pop("x-one-or-many", False):  # a single value may stand for a one-element list
        whole = dict(node)
        node.clear()
        node["anyOf"] = [whole["items"], whole]
    for child in list(node.values()):
        _fill_vocabulary(child, framework)
