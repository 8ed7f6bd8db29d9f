"""Conditions on the inspector's answers to framework items (case and organisation rules)."""

from __future__ import annotations

import itertools
import math
from typing import Annotated, ClassVar

from pydantic import Field, ValidationError, model_validator

from engine.check.models import Strict
from engine.check.rules.form import CASE, ORGANISATION, Form, either, problem
from engine.check.rules.terms import Answers, ItemId

ANSWER_LEVELS = frozenset({CASE, ORGANISATION})


class ItemAnswer(Strict):
    item: ItemId = Field(description="Framework item id, e.g. 3.4.a.")
    in_: Answers = Field(alias="in", description="Answers that satisfy the condition, e.g. [no].")


class ItemsAnswer(Strict):
    items: Annotated[list[ItemId], Field(min_length=1)] = Field(description="Framework item ids.")
    in_: Answers = Field(alias="in", description="Answers that satisfy the condition.")


#: Most ways of choosing n of the items an ``at_least`` condition may have: the rules engine matches
#: each way as an alternative, and a rule may have no more than this many (C(32, 16) would be 601
#: million, gigabytes before any error). Checked here, before anything is built; the compile stage
#: splits any condition into at most this many alternatives.
MAX_ALTERNATIVES = 256


class AtLeast(ItemsAnswer):
    n: int = Field(ge=1, description="How many of the items must have one of the answers.")

    @model_validator(mode="after")
    def _reachable(self) -> AtLeast:
        if self.n > len(self.items):
            raise ValidationError.from_exception_data("AtLeast", [problem(
                ("n",), self.n, "invalid_value", f"at least {self.n} of {len(self.items)} items can never hold",
                f"n must be between 1 and {len(self.items)}")])
        ways = math.comb(len(self.items), self.n)
        if ways > MAX_ALTERNATIVES:
            raise ValidationError.from_exception_data("AtLeast", [problem(
                ("n",), self.n, "rule_too_complex", f"at least {self.n} of {len(self.items)} items can hold in "
                f"{ways:,} ways, more than the {MAX_ALTERNATIVES} the rules engine can match",
                "split the items into smaller groups, or use all_answers / any_answer")])
        return self


class _Answers(Form):
    """Shared by the forms over several items: what they read, what they saw, how they lower."""

    levels: ClassVar[frozenset[str]] = ANSWER_LEVELS

    def items(self) -> list[tuple[tuple, str]]:
        return [((self.key, "items", i), item) for i, item in enumerate(self.body.items)]

    def item_ids(self) -> list[str]:  # as items() gives them, without building locations: a trace asks often
        return list(self.body.items)

    def tests(self, low) -> list:
        return [low.test(low.names.answer_attribute(item), self.body.in_) for item in self.body.items]

    def seen(self, view) -> dict:
        return {item: view.fact[view.names.answer_attribute(item)] for item in self.item_ids()}


class AnswerCondition(_Answers):
    """One item's answer is one of the given answers (an item not assessed matches none)."""

    key: ClassVar[str] = "answer"
    answer: ItemAnswer

    def items(self) -> list[tuple[tuple, str]]:
        return [(("answer", "item"), self.answer.item)]

    def item_ids(self) -> list[str]:
        return [self.answer.item]

    def describe(self, bindings: dict | None = None) -> str:
        return f"{self.answer.item} is {either(self.answer.in_)}"

    def lower(self, low):
        return low.test(low.names.answer_attribute(self.answer.item), self.answer.in_)


class AnyAnswerCondition(_Answers):
    """At least one of the items has one of the answers."""

    key: ClassVar[str] = "any_answer"
    any_answer: ItemsAnswer

    def describe(self, bindings: dict | None = None) -> str:
        return f"any of {', '.join(self.body.items)} is {either(self.body.in_)}"

    def lower(self, low):
        return low.any(self.tests(low))


class AllAnswersCondition(_Answers):
    """Every one of the items has one of the answers."""

    key: ClassVar[str] = "all_answers"
    all_answers: ItemsAnswer

    def describe(self, bindings: dict | None = None) -> str:
        return f"each of {', '.join(self.body.items)} is {either(self.body.in_)}"

    def lower(self, low):
        return low.all(self.tests(low))


class AtLeastCondition(_Answers):
    """At least n of the items have one of the answers."""

    key: ClassVar[str] = "at_least"
    at_least: AtLeast

    def describe(self, bindings: dict | None = None) -> str:
        return f"at least {self.body.n} of {', '.join(self.body.items)} are {either(self.body.in_)}"

    def lower(self, low):
        """A count attribute when the schema has it (see facts.with_counts: one small test rather
        than one combination per subset), else every combination of n items."""
        attribute = low.names.count_attribute(self.body.items, self.body.in_)
        if attribute in low.schema.domains:
            return low.test(attribute, range(self.body.n, len(set(self.body.items)) + 1))
        return low.any(low.all(chosen) for chosen in itertools.combinations(self.tests(low), self.body.n))


class NotAssessedCondition(_Answers):
    """The inspector recorded nothing on this item."""

    key: ClassVar[str] = "not_assessed"
    not_assessed: ItemId

    def items(self) -> list[tuple[tuple, str]]:
        return [(("not_assessed",), self.not_assessed)]

    def item_ids(self) -> list[str]:
        return [self.not_assessed]

    def describe(self, bindings: dict | None = None) -> str:
        return f"{self.not_assessed} was not assessed"

    def lower(self, low):
        return low.test(low.names.answer_attribute(self.not_assessed), [low.names.NOT_ASSESSED])
