"""Synthetic samples: realistic case files generated from a profile (``cases/profiles/*.yaml``),
valid by construction, the same files for the same seed.

Everything about what is inspected — provider mix, the case fields' values, diversity, how good
practice is, which lines of enquiry apply only when relevant — is in the profile. The generator
draws from its distributions: each case gets a practice quality around its provider's, and each
standard a quality around the case's, so answers are correlated the way practice is.
"""

from __future__ import annotations

import datetime
import json
import os
import random
from pathlib import Path
from typing import Annotated, Union

from pydantic import AfterValidator, Discriminator, Field, Tag, ValidationError, ValidationInfo, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from engine.base.diagnostics import Diagnostic, InputError, did_you_mean
from engine.base.resources import data_dir
from engine.check import framework as frameworks
from engine.check import models, rules, validate
from engine.compile import conditions, facts
from engine.load import source

#: A weight or a chance: a finite number, not negative.
Share = Annotated[float, Field(ge=0, allow_inf_nan=False)]
#: A chance, between 0 and 1.
Chance = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]


def _some_weight(weights: dict) -> dict:
    if weights and not sum(weights.values()) > 0:
        raise PydanticCustomError("invalid_value", "every weight is 0, so no value can be drawn",
                                  {"hint": "give at least one value a weight above 0"})
    return weights


#: Weights of the values of a term field (numbers for a numbered vocabulary).
Weights = Annotated[dict[int | str, Share], AfterValidator(_some_weight)]
#: Weights of the values of a diversity characteristic.
Distribution = Annotated[dict[str, Share], AfterValidator(_some_weight)]


class TermsDraw(models.Strict):
    """How a list field is drawn: each term with its own chance, or (``by``) with chances that
    depend on the value drawn for an earlier field, e.g. requirements by order type."""

    by: str | None = Field(default=None, description="A term field drawn earlier, e.g. order.type.")
    chances: dict[int | str, Chance] | dict[int | str, dict[int | str, Chance]] = Field(
        description="Term -> chance; with `by`, the earlier field's value -> (term -> chance).")


class NumberDraw(models.Strict):
    between: Annotated[list[int], Field(min_length=2, max_length=2)] = Field(
        description="A whole number drawn uniformly from the two, inclusive.")

    @model_validator(mode="after")
    def _ordered(self) -> NumberDraw:
        if self.between[0] > self.between[1]:
            raise ValidationError.from_exception_data("NumberDraw", [_problem(
                ("between",), self.between, "invalid_value", f"{self.between[0]} is above {self.between[1]}",
                "write the lower number first")])
        return self


#: A draw for one declared case field: weights (term), a TermsDraw (terms), the chance an optional
#: mapping is recorded, a NumberDraw (number).
def _draw_kind(value) -> str:
    """Which kind of draw a value is, told apart by its shape so a mistake reports one kind's errors."""
    if isinstance(value, dict) and ("chances" in value or "by" in value):
        return "terms"
    if isinstance(value, dict) and "between" in value:
        return "number"
    if isinstance(value, (TermsDraw, NumberDraw)):
        return "terms" if isinstance(value, TermsDraw) else "number"
    return "weights" if isinstance(value, dict) else "chance"


Draw = Annotated[Union[Annotated[float, Field(ge=0, le=1), Tag("chance")], Annotated[Weights, Tag("weights")],
                       Annotated[TermsDraw, Tag("terms")], Annotated[NumberDraw, Tag("number")]],
                 Discriminator(_draw_kind)]


class ProviderProfile(models.Strict):
    id: str
    share: float = Field(gt=0)
    practice: float = Field(ge=0, le=1, description="Mean chance a line of enquiry is met.")
    context: dict[str, Draw] = Field(default_factory=dict, description=(
        "This provider's draws for declared case fields, by dotted name (before the profile's own `context`)."))


class AnswerProfile(models.Strict):
    case_spread: float = Field(ge=0)
    standard_spread: float = Field(ge=0)
    met_in_part_share: float = Field(ge=0, le=1)
    applies_only_when: dict[str, rules.Condition] = Field(default_factory=dict)
    notes: dict[str, Annotated[list[str], Field(min_length=1)]]
    sources: Annotated[list[str], Field(min_length=1)]


class Profile(models.Strict):
    """How to generate a realistic sample."""

    id: models.Reference
    title: str
    framework: models.FrameworkRef
    period: models.Period
    reference_prefix: models.Reference
    providers: Annotated[list[ProviderProfile], Field(min_length=1)]
    context: dict[str, Draw] = Field(default_factory=dict, description=(
        "Draws for the framework's declared case fields (vocabulary.case_file), by dotted name, e.g. "
        "order.type: {community: 0.5, ...}. A date field is drawn within the period unless given; a required "
        "field with no draw here or under its provider is an error."))
    populations: dict[str, Chance] = Field(default_factory=dict, description=(
        "The chance a case belongs to each population the framework declares (vocabulary.populations); the rest "
        "are the main sample."))
    diversity: dict[str, Distribution]
    answers: AnswerProfile

    @model_validator(mode="after")
    def _draws_fit_the_fields(self, info: ValidationInfo) -> Profile:
        framework = (info.context or {}).get("framework")
        if framework is not None:
            problems = [problem for index, provider in enumerate(self.providers)
                        for problem in _draw_problems(framework, provider.context, ("providers", index, "context"))]
            problems += _draw_problems(framework, self.context, ("context",))
            problems += _missing_draws(framework, self)
            known = framework.vocabulary.ids("populations")
            problems += [_problem(("populations", name, "[key]"), name, "unknown_value",
                                  f"{name!r} is not a population of cases", did_you_mean(name, known))
                         for name in self.populations if name not in known]
            if sum(self.populations.values()) > 1:
                problems.append(_problem(("populations",), self.populations, "invalid_value",
                                         "the populations' chances add up to more than 1", "lower them"))
            if problems:
                raise ValidationError.from_exception_data("Profile", problems)
        return self


_KINDS = {"term": dict, "terms": TermsDraw, "number": NumberDraw}


def _draw_problems(framework: models.Framework, draws: dict, loc: tuple) -> list:
    vocabulary = framework.vocabulary
    paths = [".".join(p) for p in models._paths(vocabulary.case_file)]
    problems = []
    for path, draw in draws.items():
        field = vocabulary.case_field(path)
        if field is None:
            problems.append(_problem(loc + (path, "[key]"), path, "unknown_field",
                                     f"{path!r} is not a declared case field", did_you_mean(path, paths)))
            continue
        if isinstance(draw, float) and field.type == "mapping" and not field.required:
            continue
        if not isinstance(draw, _KINDS.get(field.type, type(None))) or isinstance(draw, float):
            problems.append(_problem(loc + (path,), draw, "invalid_value", f"this draw does not fit {path}, a "
                                     f"{field.type} field", _DRAW_HINTS.get(field.type, "")))
            continue
        allowed = vocabulary.ids(field.terms) if field.terms else []
        values = (list(draw) if field.type == "term" else
                  [t for chances in draw.chances.values() for t in chances] if field.type == "terms" and draw.by else
                  list(draw.chances) if field.type == "terms" else [])
        problems += [_problem(loc + (path, value), value, "unknown_value", f"{value!r} is not a value of {path}",
                              did_you_mean(value, allowed)) for value in values if value not in allowed]
        if field.type == "terms" and draw.by is not None:
            by = vocabulary.case_field(draw.by)
            if by is None or by.type != "term" or paths.index(draw.by) > paths.index(path):
                problems.append(_problem(loc + (path, "by"), draw.by, "invalid_value", f"{draw.by!r} is not a field "
                                         f"with one value declared before {path}", did_you_mean(draw.by, paths)))
    return problems


_DRAW_HINTS = {"term": "write value: weight, ...", "terms": "write chances: {term: chance, ...}",
               "number": "write between: [LOW, HIGH]", "mapping": "an optional mapping takes the chance it is recorded",
               "date": "dates are drawn within the period"}


def _missing_draws(framework: models.Framework, profile: Profile) -> list:
    """Required term and number fields some provider has no draw for."""
    problems = []
    for provider_index, provider in enumerate(profile.providers):
        draws = {**profile.context, **provider.context}
        for path, field in _leaves(framework.vocabulary.case_file, "", draws):
            if field.required and field.type in ("term", "number") and path not in draws:
                problems.append(_problem(("providers", provider_index, "context"), path, "missing_field",
                                         f"no draw for {path} (a required {field.type} field) for {provider.id}",
                                         f"add {path}: to context: or to this provider's context:"))
    return problems


def _leaves(fields: list[models.CaseField], prefix: str, draws: dict):
    """The fields that are not mappings, with their dotted names; none under an optional mapping
    never recorded (no draw)."""
    for field in fields:
        if field.type == "mapping":
            if field.required or prefix + field.id in draws:
                yield from _leaves(field.fields, f"{prefix}{field.id}.", draws)
        else:
            yield prefix + field.id, field


def _problem(loc: tuple, value, code: str, message: str, hint: str):
    return InitErrorDetails(type=PydanticCustomError(code, message, {"hint": hint}), loc=loc, input=value)




def default_profile() -> Path:
    return sorted((data_dir("cases") / "profiles").glob("*.yaml"))[0]


def load_profile(path: str | os.PathLike[str]) -> tuple[Profile, models.Framework]:
    document = source.load(path)
    framework = frameworks.load(frameworks.named_by(document))
    return validate.to_model(document, Profile, framework), framework


def _pick(rng: random.Random, distribution: Distribution):
    """A key drawn with the given weights (in the order written, for reproducibility)."""
    keys = list(distribution)
    return rng.choices(keys, weights=[distribution[k] for k in keys])[0] if keys else None


def _clamp(value: float) -> float:
    return min(0.98, max(0.02, value))


def generate(profile: Profile, framework: models.Framework, count: int, seed: int, out: str | os.PathLike[str]
             ) -> list[Path]:
    """Write a sample of ``count`` cases to ``out``: sample.yaml, cases/, organisation/."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise InputError([Diagnostic(str(out), 1, 1, "output_not_empty", "the output folder is not empty",
                                     "choose a new folder, so no existing sample is mixed with the new one")])
    rng = random.Random(seed)
    schema = facts.Schema.for_framework(framework)
    applies = {item: conditions.lower(condition, schema) for item, condition in profile.answers.applies_only_when.items()}
    (out / "cases").mkdir(parents=True, exist_ok=True)
    (out / "organisation").mkdir(exist_ok=True)
    written = [_write(out / "sample.yaml", _manifest(profile, seed))]
    width = max(5, len(str(count)))
    for number in range(1, count + 1):
        reference = f"{profile.reference_prefix}-{number:0{width}d}"
        case = _case(rng, profile, framework, reference, applies)
        written.append(_write(out / "cases" / f"{reference}.yaml", _yaml(case)))
    for provider in profile.providers:
        organisation = {"organisation": provider.id,
                        "evidence": {item: _evidence(rng, profile, provider.practice, False, framework.vocabulary)
                                     for item in framework.item_ids("organisation")}}
        written.append(_write(out / "organisation" / f"{provider.id}.yaml", _yaml(organisation)))
    return written


def _manifest(profile: Profile, seed: int) -> str:
    return _yaml({"id": f"{profile.id}-{seed}", "title": profile.title, "area": f"Synthetic (seed {seed})",
                  "period": {"start": profile.period.start, "end": profile.period.end},
                  "framework": {"id": profile.framework.id, "version": profile.framework.version}})


def _case(rng: random.Random, profile: Profile, framework: models.Framework, reference: str, applies: dict) -> dict:
    provider = rng.choices(profile.providers, weights=[p.share for p in profile.providers])[0]
    draws = {**profile.context, **provider.context}
    population = _population(rng, profile)
    case = {"case": reference, "provider": provider.id, **({"population": population} if population else {}),
            **_drawn(rng, framework.vocabulary.case_file, draws, profile.period, "", {}),
            "diversity": {field: _pick(rng, distribution) for field, distribution in profile.diversity.items()}}
    attributes = facts.case_attributes(framework.case_model().model_validate({**case, "evidence": {}},
                                                                            context={"framework": framework}), framework)
    quality = _clamp(rng.gauss(provider.practice, profile.answers.case_spread))
    evidence = {}
    for standard in framework.answered_by(population):
        standard_quality = _clamp(rng.gauss(quality, profile.answers.standard_spread))
        for criterion in standard.criteria:
            for item in criterion.items:
                relevant = item.id not in applies or conditions.holds(applies[item.id], attributes)
                evidence[item.id] = _evidence(rng, profile, standard_quality, not relevant, framework.vocabulary)
    case["evidence"] = evidence
    return case


def _population(rng: random.Random, profile: Profile) -> str | None:
    """The population a case belongs to (None: the main sample); no draw without populations, so
    a profile without them generates the same files as before."""
    if not profile.populations:
        return None
    draw, total = rng.random(), 0.0
    for name, chance in profile.populations.items():
        total += chance
        if draw < total:
            return name
    return None


def _drawn(rng: random.Random, fields: list[models.CaseField], draws: dict, period: models.Period, prefix: str,
           values: dict) -> dict:
    """Values for declared case fields, in file order (``values`` collects them by dotted name, for
    draws that depend on an earlier field). A mapping that is not required is recorded with the
    chance its draw gives; a term or number field with no draw is left out."""
    drawn: dict = {}
    for field in fields:
        path = prefix + field.id
        draw = draws.get(path)
        if field.type == "mapping":
            recorded = field.required or (isinstance(draw, float) and rng.random() < draw)
            drawn[field.id] = _drawn(rng, field.fields, draws, period, path + ".", values) if recorded else None
        elif field.type == "term" and isinstance(draw, dict):
            drawn[field.id] = _pick(rng, draw)
        elif field.type == "terms":
            chances = {} if draw is None else draw.chances.get(values.get(draw.by), {}) if draw.by else draw.chances
            drawn[field.id] = [term for term, chance in chances.items() if rng.random() < chance]
        elif field.type == "date":
            drawn[field.id] = period.start + datetime.timedelta(days=rng.randint(0, (period.end - period.start).days))
        elif field.type == "number" and isinstance(draw, NumberDraw):
            drawn[field.id] = rng.randint(*draw.between)
        if field.id in drawn:
            values[path] = drawn[field.id]
    return drawn


def _evidence(rng: random.Random, profile: Profile, quality: float, not_applicable: bool,
              scale: models.Vocabulary) -> dict:
    """One answer drawn on the framework's scale: not applicable where the item does not arise,
    met with the standard's quality, else met in part (``met_in_part_share`` of the rest, where the scale
    has such an answer) or not met."""
    first = lambda *meanings: scale.answers_meaning(*meanings)[0]  # noqa: E731
    if not_applicable:
        answer = first("not_applicable")
    elif rng.random() < quality:
        answer = first("met")
    else:
        in_part = scale.answers_meaning("met_in_part")
        answer = in_part[0] if in_part and rng.random() < profile.answers.met_in_part_share else first("not_met")
    return {"answer": answer, "note": rng.choice(profile.answers.notes.get(answer, [""])) or None,
            "sources": sorted(rng.sample(profile.answers.sources, k=min(2, len(profile.answers.sources))))}


def _yaml(value, indent: int = 0) -> str:
    """Plain YAML for generated data: block mappings, flow lists, every string quoted."""
    pad = " " * indent
    lines = []
    for key, item in value.items():
        label = json.dumps(str(key))
        if isinstance(item, dict) and item:
            lines.append(f"{pad}{label}:")
            lines.append(_yaml(item, indent + 2).rstrip("\n"))
        else:
            lines.append(f"{pad}{label}: {_scalar(item)}")
    return "\n".join(lines) + "\n"


def _scalar(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(_scalar(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))}: {_scalar(v)}" for k, v in value.items()) + "}"
    return json.dumps(str(value), ensure_ascii=False)


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path
