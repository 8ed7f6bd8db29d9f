"""Synthetic samples: realistic case files generated from a profile (``cases/profiles/*.yaml``),
valid by construction, the same files for the same seed.

Everything probation-specific — provider mix, risk levels, sentences, flags, diversity, how good
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
from typing import Annotated

from pydantic import Field

from engine.base.diagnostics import Diagnostic, InputError
from engine.base.resources import data_dir
from engine.check import framework as frameworks
from engine.check import models, rules, validate
from engine.compile import conditions, facts
from engine.load import source

Distribution = dict[str, float]


class MappaProfile(models.Strict):
    probability: float = Field(ge=0, le=1)
    categories: dict[int, float] = Field(default_factory=dict)
    levels: dict[int, float] = Field(default_factory=dict)


class ProviderProfile(models.Strict):
    id: str
    share: float = Field(gt=0)
    practice: float = Field(ge=0, le=1, description="Mean chance a line of enquiry is met.")
    risk: Distribution
    sentence_types: Distribution
    mappa: MappaProfile


class AnswerProfile(models.Strict):
    case_spread: float = Field(ge=0)
    standard_spread: float = Field(ge=0)
    partly_share: float = Field(ge=0, le=1)
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
    requirements: dict[str, Distribution]
    flags: Distribution
    diversity: dict[str, Distribution]
    answers: AnswerProfile




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
    sentence_type = _pick(rng, provider.sentence_types)
    requirements = [r for r, chance in profile.requirements.get(sentence_type, {}).items() if rng.random() < chance]
    mappa = None
    if rng.random() < provider.mappa.probability:
        mappa = {"category": int(_pick(rng, provider.mappa.categories)), "level": int(_pick(rng, provider.mappa.levels))}
    span = (profile.period.end - profile.period.start).days
    case = {
        "case": reference, "provider": provider.id,
        "sentence": {"type": sentence_type, "requirements": requirements,
                     "start": profile.period.start + datetime.timedelta(days=rng.randint(0, span))},
        "risk_of_serious_harm": _pick(rng, provider.risk),
        "mappa": mappa,
        "flags": [flag for flag, chance in profile.flags.items() if rng.random() < chance],
        "diversity": {field: _pick(rng, distribution) for field, distribution in profile.diversity.items()},
    }
    attributes = facts.case_attributes(models.CaseFile.model_validate({**case, "evidence": {}},
                                                                      context={"framework": framework}), framework)
    quality = _clamp(rng.gauss(provider.practice, profile.answers.case_spread))
    evidence = {}
    for standard in framework.standards:
        if standard.scope != "case":
            continue
        standard_quality = _clamp(rng.gauss(quality, profile.answers.standard_spread))
        for criterion in standard.criteria:
            for item in criterion.items:
                relevant = item.id not in applies or conditions.holds(applies[item.id], attributes)
                evidence[item.id] = _evidence(rng, profile, standard_quality, not relevant, framework.vocabulary)
    case["evidence"] = evidence
    return case


def _evidence(rng: random.Random, profile: Profile, quality: float, not_applicable: bool,
              scale: models.Vocabulary) -> dict:
    """One answer drawn on the framework's scale: not applicable where the item does not arise,
    met with the standard's quality, else partly met (``partly_share`` of the rest, where the scale
    has such an answer) or not met."""
    first = lambda *meanings: scale.answers_meaning(*meanings)[0]  # noqa: E731
    if not_applicable:
        answer = first("not_applicable")
    elif rng.random() < quality:
        answer = first("met")
    else:
        partly = scale.answers_meaning("partly_met")
        answer = partly[0] if partly and rng.random() < profile.answers.partly_share else first("not_met")
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
