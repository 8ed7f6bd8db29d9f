"""The inspection-report draft: report.json arranged as the 2016 Quality & Impact reports were —
key facts and recommendations first, then the three outcomes per provider, then the standards
and criteria — in plain words, for the Markdown, HTML and Word views to render.

Nothing here judges anything: every figure, finding and example comes from report.json; this
module only chooses the order, the labels and how a figure is written. Labels come from the
framework vocabulary (recorded in report.json as ``labels``), never from internal keys.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from engine.report import charts
from engine.report import ratings as rated
from engine.report import wording

#: Below this many applicable cases a figure is written as a count ("5 of 6"): a percentage of a
#: handful of cases claims a precision the sample does not have.
COUNT_ONLY_BELOW = 20

ALL = "all"


# --- figures ------------------------------------------------------------------------------------

def figure(group: dict | None, confidence: float = 0.95) -> str:
    """A group's % sufficient as a reader should see it: a count for small numbers, a rounded
    percentage with its count otherwise, and the interval at the run's ``confidence`` wherever the
    run computed one. Parentheses, not brackets, so Markdown needs no escapes.

    >>> figure({"counts": {"sufficient": 5}, "applicable": 6, "percent": 83.3, "interval": [43.6, 97.0]})
    '5 of 6 (95% interval 44–97%)'
    >>> figure({"counts": {"sufficient": 23}, "applicable": 41, "percent": 56.1, "interval": [41.0, 70.1]}, 0.9)
    '56% (23 of 41; 90% interval 41–70%)'
    >>> figure({"counts": {"sufficient": 0}, "applicable": 0, "percent": None})
    'no applicable cases'
    """
    if not group or not group.get("applicable"):
        return "no applicable cases"
    return counted(group["counts"]["sufficient"], group["applicable"], group.get("percent"), interval(group), confidence)


def line_figure(group: dict | None, confidence: float = 0.95) -> str:
    """A line of enquiry's % met of the cases where it was relevant, worded as :func:`figure`.

    >>> line_figure({"met": 3, "relevant": 5, "percent": 60.0, "interval": [23.1, 88.2]})
    '3 of 5 (95% interval 23–88%)'
    >>> line_figure({"met": 0, "relevant": 0, "not_applicable": 4, "percent": None})
    'not relevant in any case'
    """
    if not group or not group.get("relevant"):
        return "not relevant in any case"
    return counted(group["met"], group["relevant"], group.get("percent"), interval(group), confidence)


def counted(part: int, whole: int, percent: float | None, bounds: tuple[int, int] | None, confidence: float) -> str:
    """``56% (23 of 41; 95% interval 41–70%)``, or the count alone below COUNT_ONLY_BELOW."""
    count = f"{part} of {whole}"
    stated = f"{level(confidence)} interval {bounds[0]}–{bounds[1]}%" if bounds else ""
    if whole >= COUNT_ONLY_BELOW and percent is not None:
        return f"{round(percent)}% ({count}{'; ' + stated if stated else ''})"
    return f"{count} ({stated})" if stated else count


def level(confidence: float) -> str:
    """``95%``: a confidence level as readers see it (0.975 gives ``97.5%``).

    >>> level(0.95), level(0.975)
    ('95%', '97.5%')
    """
    return f"{100 * confidence:g}%"


def interval(group: dict | None) -> tuple[int, int] | None:
    """A group's 95% interval on % sufficient, rounded, where the run computed one."""
    found = (group or {}).get("interval")
    if isinstance(found, dict) and found.get("low") is not None:
        return round(float(found["low"])), round(float(found["high"]))
    if isinstance(found, list | tuple) and len(found) == 2 and None not in found:
        return round(found[0]), round(found[1])
    return None


def plural(count: int, one: str, many: str | None = None) -> str:
    """``1 case``, ``2 cases``."""
    return f"{count} {one if count == 1 else (many or one + 's')}"


def capital(text: str) -> str:
    """``all cases`` → ``All cases``; ``EAST`` stays ``EAST``."""
    return text[:1].upper() + text[1:]


def words(identifier: str) -> str:
    """An id from a rule set written as words (``requires_improvement`` → ``requires improvement``)."""
    return identifier.replace("_", " ")


# --- practice examples --------------------------------------------------------------------------

def example_answers(framework) -> dict[str, tuple[str, ...]]:
    """Which answers a practice example of each finding quotes, from the framework's scale: an
    answer short of met for an insufficient finding, a met one for a sufficient one."""
    vocabulary = framework.vocabulary
    return {"insufficient": tuple(vocabulary.answers_meaning("not_met", "met_in_part")),
            "sufficient": tuple(vocabulary.answers_meaning("met"))}


def practice_examples(results: Iterable[dict], wanted: dict[str, tuple[str, ...]], slots: int | None = None,
                      per_finding: int = 1, trace_of=None) -> dict[str, list[dict]]:
    """Quotations from inspectors' notes that illustrate each criterion's findings, chosen by rule:
    for each criterion, provider and finding (sufficient, insufficient), the first cases in
    reference order whose finding rests on evidence with a note — the evidence quoted is what the
    rules that concluded the finding read (``wanted`` answers for each finding, from
    :func:`example_answers`: short of met for an insufficient finding, met for a sufficient one).
    At most ``per_finding`` each. ``results`` come in reference order; reading stops once ``slots``
    (criterion × provider × finding) are full. ``trace_of(result, criterion)`` gives a finding's
    trace (by default the one the result holds), so results may be lines expanded only where read.
    """
    trace_of = trace_of or (lambda result, criterion: result["findings"][criterion].get("trace", {}))
    chosen: dict[tuple[str, str, str], list[dict]] = {}
    filled = 0
    for result in results:
        if slots is not None and filled >= slots:
            break
        provider = result.get("provider", "")
        for criterion, finding in sorted(result.get("findings", {}).items()):
            value = finding.get("value")
            if value not in wanted:
                continue
            slot = chosen.setdefault((criterion, provider, value), [])
            if len(slot) >= per_finding:
                continue
            evidence = _first_evidence(trace_of(result, criterion), wanted[value])
            if evidence is not None:
                filled += len(slot) + 1 == per_finding
                slot.append({"case": result["case"], "provider": provider, "criterion": criterion,
                             "finding": value, "item": evidence["item"], "answer": evidence["answer"],
                             "note": evidence["note"], "at": evidence.get("at", "")})
    examples: dict[str, list[dict]] = {}
    for (criterion, _, _), found in sorted(chosen.items()):
        examples.setdefault(criterion, []).extend(found)
    return examples


def _first_evidence(node, answers: tuple[str, ...]) -> dict | None:
    """The first evidence with a note and one of ``answers`` under a fired rule of a trace."""
    if isinstance(node, dict):
        if node.get("fired") is False:
            return None
        for entry in node.get("evidence", []) or []:
            if entry.get("answer") in answers and (entry.get("note") or "").strip():
                return entry
        for key in ("because", "condition", "children", "derived_by"):
            found = _first_evidence(node.get(key), answers)
            if found is not None:
                return found
    elif isinstance(node, list):
        for child in node:
            found = _first_evidence(child, answers)
            if found is not None:
                return found
    return None


# --- the draft ----------------------------------------------------------------------------------

@dataclasses.dataclass
class Table:
    header: list[str]
    rows: list[list[str]]
    anchor: str = ""
    kind: str = "table"


@dataclasses.dataclass
class Quote:
    """A practice example: an inspector's note, and where it came from."""

    text: str
    source: str
    kind: str = "quote"


@dataclasses.dataclass
class Bullets:
    items: list[str]
    kind: str = "bullets"


@dataclasses.dataclass
class Section:
    """A heading and what follows it: paragraphs (str), bullet lists, tables, quotes, and
    subsections."""

    title: str
    anchor: str
    blocks: list = dataclasses.field(default_factory=list)
    sections: list[Section] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Draft:
    title: str
    summary: list[str]
    sections: list[Section]


def build(report: dict, consistency: bool = False) -> Draft:
    """The draft of a run's report (a report.json object). With ``consistency``, it ends with the
    engine–inspector agreement, the moderation list and the review state (Markdown and HTML render
    those sections from their own templates, with their reasoning one click away).

    A redacted report (``redacted: true``) is the one for publication: it has neither those
    sections nor the answers to check, and its practice examples (where the rule set allows them)
    say where they come from without naming the case."""
    redacted = bool(report.get("redacted"))
    plain = report.get("labels", {})
    label = lambda key: plain.get(key) or key.partition(":")[2] or key  # noqa: E731
    aggregates = report["aggregates"]
    providers = report["sample"]["providers"]
    columns = [ALL] + [f"provider:{p}" for p in providers]
    ratings = rated.cells(report)
    examples = report.get("examples", {})
    sample = report["sample"]
    title = f"{sample['title']}: draft inspection report"
    summary = [f"{sample['area']}, {sample['period']['start']} to {sample['period']['end']}: "
               f"{plural(sample['cases'], 'case')} inspected against the {report['framework']['title']} "
               f"(version {report['framework']['version']}), judged with the rule set "
               f"{report['ruleset']['title']} (version {report['ruleset']['version']}).",
               f"Run {report['run']['id']}, redacted for publication: it names no case and quotes inspectors' notes "
               f"only where the rule set allows; the full report stays with the inspectors and in the audit store."
               if redacted else
               f"Run {report['run']['id']}. This is a draft for inspectors to edit: every finding can be "
               f"traced to its rules and evidence with qi explain."]
    if report["framework"].get("illustration"):
        summary.insert(0, f"Not a real inspection framework: {report['framework']['illustration']}")
    layout = report["framework"].get("report") or QI_DRAFT
    names = wording.Names(report)
    standards = report["standards"]
    outcome_standards = [s for s in standards if layout.get("outcomes") and s["dimension"] == layout["outcomes"]
                         and s["scope"] == "case"]
    outcomes = Section("Outcomes", "outcomes",
                       [f"The outcomes the inspection reports on, for each {names.lower('organisation')}."])
    for standard in outcome_standards:
        chart = lines_chart(report, standard, columns, label)
        if chart is not None:
            outcomes.blocks.append(chart)
        for criterion in standard["criteria"]:
            outcomes.sections.append(_criterion(criterion, aggregates, report, columns, label, ratings, examples))
    quality = Section(f"{names.many('standard')} and {names.lower('criterion', 2)}", "standards")
    for standard in standards:
        if standard in outcome_standards:
            continue
        quality.sections.append(_standard(standard, aggregates, report, columns, label, ratings, examples))
    if layout["layout"] == "ratings":
        sections = [_ratings_table(report, columns, label, ratings, names),
                    _strengths_and_areas(report, label, ratings, names),
                    _recommendations(report, label), _key_facts(report, columns, label)]
    else:
        sections = [_key_facts(report, columns, label), _recommendations(report, label)]
    sections += ([outcomes] if outcomes.sections else []) + [quality]
    if consistency and report.get("consistency") and not redacted:
        sections.append(_consistency(report))
    checks = None if redacted else _answers_to_check(report)
    if checks:
        sections.append(checks)
    sections.append(_method(report))
    return Draft(title, summary, [s for s in sections if s.blocks or s.sections])  # no section is ever printed empty


#: The target of the overall rating (as ratings record it).
OVERALL = "overall"

#: The layout of a run recorded before frameworks declared theirs: every such run was judged
#: against the 2016 framework, whose draft reports its impact standards first as outcomes.
QI_DRAFT = {"layout": "findings", "outcomes": "impact"}


def _ratings_table(report: dict, columns: list[str], label, ratings: dict, names) -> Section:
    """Every standard's rating, overall and per organisation, beside how the bands are derived;
    empty (so not printed) when the rule set issues no bands."""
    section = Section("Ratings", "ratings")

    def shown(target: str, column: str, organisation: bool) -> str:
        if organisation and column == ALL:
            return f"per {names.lower('organisation')}"
        return rated.cell(ratings, target, column) or "not rated"

    rows = [[f"{s['id']}. {s['title']}"] + [shown(f"standard {s['id']}", c, s["scope"] == "organisation") for c in columns]
            for s in report["standards"] if any(rated.cell(ratings, f"standard {s['id']}", c) for c in columns)]
    if any(rated.cell(ratings, OVERALL, c) for c in columns):
        rows.append(["Overall"] + [shown(OVERALL, c, False) for c in columns])
    if rows:
        section.blocks.append(Table([names.one("standard")] + [capital(label(c)) for c in columns], rows,
                                    anchor="ratings-table"))
        section.blocks.append(f"How the bands are derived: {rated.method(report)}")
    return section


def _strengths_and_areas(report: dict, label, ratings: dict, names) -> Section:
    """Per standard, what went well and what needs to improve, from the ratings (a band in the upper
    half of the rule set's bands is a strength, in the lower half an area for improvement), the
    organisations' findings and the enablers and barriers of its criteria. A standard with none of
    these is left out; so is the whole section."""
    section = Section("Strengths and areas for improvement", "strengths")
    bands = (rated.scheme(report) or {}).get("bands", [])
    upper = set(bands[: (len(bands) + 1) // 2])
    aggregates = report["aggregates"]
    factors = list(aggregates.get("factors", {}).values())
    for standard in report["standards"]:
        strengths: list[str] = []
        areas: list[str] = []
        ids = {c["id"]: c["title"] for c in standard["criteria"]}
        for criterion, title in ids.items():
            band = rated.bands(report).get((criterion, ALL))
            if band:
                (strengths if band in upper else areas).append(
                    f"{criterion} {title} — {words(band)}: "
                    f"{figure(aggregates['targets'].get(criterion, {}).get('groups', {}).get(ALL), aggregates.get('confidence', 0.95))}")
        for organisation in report.get("organisations", []) if standard["scope"] == "organisation" else []:
            for criterion, finding in organisation.get("findings", {}).items():
                if criterion in ids and finding["value"] in ("sufficient", "insufficient"):
                    (strengths if finding["value"] == "sufficient" else areas).append(
                        f"{criterion} {ids[criterion]} — {words(finding['value'])} for {organisation['organisation']}")
        for factor in sorted(factors, key=lambda f: (-f["groups"][ALL]["cases"], f["id"])):
            if (factor.get("criterion") in ids or factor.get("standard") == standard["id"]) \
                    and factor["groups"][ALL]["cases"]:
                (strengths if factor["kind"] == "enabler" else areas).append(factor_line(factor))
        if not strengths and not areas:
            continue
        part = Section(f"{names.one('standard')} {standard['id']}: {standard['title']}", f"strengths-{standard['id']}")
        for heading, listed in (("Strengths", strengths), ("Areas for improvement", areas)):
            if listed:
                part.blocks.append(f"{heading}:")
                part.blocks.append(Bullets(listed))
        section.sections.append(part)
    if section.sections and bands:
        section.blocks.append(f"A {names.lower('criterion')} rated {' or '.join(words(b) for b in sorted(upper, key=bands.index))} "
                              f"is listed as a strength, one rated lower as an area for improvement.")
    return section


#: Warnings that say an answer disagrees with the case context, or that evidence is missing: the
#: run's findings stand on them, so the report lists them for the inspectors to check.
CHECK_CODES = ("expected_not_applicable", "answered_not_expected", "not_assessed")


def _answers_to_check(report: dict) -> Section | None:
    """The run's warnings about answers and missing evidence, one line each, at their positions."""
    found = [w for w in report.get("warnings", []) if w.get("code") in CHECK_CODES]
    if not found:
        return None
    section = Section("Answers to check", "answers-to-check")
    section.blocks.append(f"{plural(len(found), 'answer or gap', 'answers or gaps')} in the evidence disagree with "
                          "the case context or leave a criterion not assessed. The findings above stand on the "
                          "answers as recorded; inspectors should confirm or correct each.")
    section.blocks.append(Bullets([f"{w['path']}:{w['line']}: {w['message']}." for w in found]))
    return section


def _consistency(report: dict) -> Section:
    """Engine against inspectors, second markings and reviewers' decisions, in words."""
    found = report["consistency"]
    engine = found["engine_inspector"]
    section = Section("Consistency: engine and inspectors", "consistency")
    if not engine["overall"]["n"]:
        section.blocks.append("No case carries the inspector's own judgements.")
        return section
    section.blocks.append(f"The inspectors' own judgements and the engine's findings agree on "
                          f"{wording.agreement_words(engine['overall'])}, over the {engine['judged']} cases "
                          f"and organisations that carry judgements.")
    section.blocks.append(Table([wording.Names(report).one("criterion"), "Agreement"],
                                [[c, wording.agreement_words(a)] for c, a in engine["criteria"].items()]))
    decided = {(d["case"], d["criterion"]): d for d in report.get("review", {}).get("decisions", [])}
    moderation = []
    for row in found["moderation"]:
        # the answer changes that would make the engine agree are for reviewers (qi runs show, the
        # review queue), never in the draft: a report must not invite changing answers
        line = f"{row['case']}, {row['criterion']}: engine {words(row['engine'])}, inspector {words(row['inspector'])}."
        decision = decided.get((row["case"], row["criterion"]))
        if decision:
            line += f" Review: {decision['decision']} by {wording.maker(decision)}"
            line += f", final finding {words(decision['final'])}." if decision.get("final") else "."
        elif "review" in report:
            line += " Review: open."
        moderation.append(line)
    section.blocks.append("Moderation list:" if moderation else "The engine agrees with every judgement recorded.")
    if moderation:
        section.blocks.append(Bullets(moderation))
    second = found.get("second_marking", {})
    if second.get("cases"):
        section.blocks.append(f"Cases marked twice: {', '.join(second['cases'])}. Answers agree on "
                              f"{wording.agreement_words(second['answers']['overall'])}; judgements on "
                              f"{wording.agreement_words(second['judgements']['overall'])}.")
    signoffs = report.get("review", {}).get("signoffs", [])
    if "review" in report:
        section.blocks.append("; ".join(f"Signed off by {wording.maker(s)} at {s['at']}" for s in signoffs) + "."
                              if signoffs else "Not signed off.")
    return section


def _points(groups: dict, columns: list[str]) -> list:
    """Each column's (percent, low, high) in a target's or line's groups, None where it has none."""
    points = []
    for column in columns:
        found = groups.get(column) or {}
        bounds = found.get("interval") or [None, None]
        points.append((found["percent"], bounds[0], bounds[1]) if found.get("percent") is not None else None)
    return points


def criteria_chart(report: dict, columns: list[str], label) -> charts.Chart | None:
    """Every case-scoped criterion's % sufficient per column (the sample, each provider), with its
    interval, as a chart; None when no criterion has a figure."""
    aggregates = report["aggregates"]
    names = wording.Names(report)
    rows = []
    for standard in report["standards"]:
        if standard["scope"] != "case":
            continue
        for criterion in standard["criteria"]:
            rows.append((criterion["id"], _points(aggregates["targets"].get(criterion["id"], {}).get("groups", {}),
                                                  columns)))
    level_words = level(aggregates.get("confidence", 0.95))
    return _drawn(rows, [capital(label(c)) for c in columns], "criteria",
                  f"{names.many('criterion')} judged sufficient, with {level_words} intervals",
                  "% of applicable cases judged sufficient",
                  f"Chart: the % of applicable cases judged sufficient on each {names.lower('criterion')}, for the "
                  f"whole sample and each {names.lower('organisation')}, with {level_words} intervals as whiskers. "
                  f"The same figures are in each {names.lower('criterion')}'s table.")


def _drawn(rows: list, columns: list[str], name: str, title: str, axis: str, alt: str) -> charts.Chart | None:
    """A chart of these rows, or None when no row has a figure to draw."""
    if not any(point for _, points in rows for point in points):
        return None
    return charts.Chart(title=title, axis=axis, alt=alt, columns=columns, rows=rows, name=name)


def lines_chart(report: dict, standard: dict, columns: list[str], label) -> charts.Chart | None:
    """A case-scoped standard's lines (items) with the % of relevant cases in which each was met,
    per column (the sample, each provider), with its interval; None when no line has a figure."""
    if standard["scope"] != "case":
        return None
    aggregates = report["aggregates"]
    names = wording.Names(report)
    criteria = {c["id"] for c in standard["criteria"]}
    rows = []
    for line in aggregates.get("lines", {}).values():
        if line["criterion"] in criteria:
            rows.append((line["id"], _points(line["groups"], columns)))
    level_words = level(aggregates.get("confidence", 0.95))
    return _drawn(rows, [capital(label(c)) for c in columns], f"lines-{standard['id']}",
                  f"{names.one('standard')} {standard['id']}: {names.lower('item', 2)} met, with {level_words} intervals",
                  "% of relevant cases in which it was met",
                  f"Chart: the % of relevant cases in which each {names.lower('item')} of {names.lower('standard')} "
                  f"{standard['id']} was met, for the whole sample and each {names.lower('organisation')}, with "
                  f"{level_words} intervals as whiskers. The same figures are in each {names.lower('criterion')}'s "
                  f"table of its {names.lower('item', 2)}.")


def _key_facts(report: dict, columns: list[str], label) -> Section:
    aggregates = report["aggregates"]
    names = wording.Names(report)
    section = Section("Key facts", "key-facts")
    sizes = aggregates.get("group_sizes", {})
    section.blocks.append("Cases inspected: " + "; ".join(
        f"{label(c)} {sizes.get(c, aggregates['cases'] if c == ALL else 0)}" for c in columns) + ".")
    rows = []
    for standard in report["standards"]:
        if standard["scope"] != "case":
            continue
        target = aggregates["targets"].get(f"standard {standard['id']}", {})
        rows.append([f"{standard['id']}. {standard['title']}"]
                    + [figure(target.get("groups", {}).get(c), aggregates.get("confidence", 0.95)) for c in columns])
    organisations = {o["organisation"]: o for o in report.get("organisations", [])}
    for standard in report["standards"]:
        if standard["scope"] != "organisation":
            continue
        row = [f"{standard['id']}. {standard['title']}"]
        for column in columns:
            provider = column.partition(":")[2]
            findings = organisations.get(provider, {}).get("findings", {}) if provider else {}
            ids = [c["id"] for c in standard["criteria"]]
            met = sum(1 for c in ids if findings.get(c, {}).get("value") == "sufficient")
            row.append(f"judged per {names.lower('organisation')}" if not provider
                       else f"{met} of {len(ids)} {names.lower('criterion', len(ids))} sufficient" if findings
                       else "no organisation evidence")
        rows.append(row)
    section.blocks.append("Cases judged sufficient, of the cases where each standard applied:")
    section.blocks.append(Table([names.one("standard")] + [capital(label(c)) for c in columns], rows, anchor="headline"))
    chart = criteria_chart(report, columns, label)
    if chart is not None:
        section.blocks.append(chart)
    if rated.method(report):
        section.blocks.append(f"Ratings: {rated.method(report)}")
    flagged = _flagged_gaps(aggregates, label)
    if flagged:
        section.blocks.append("Differences between groups flagged by the rule set's tests:")
        section.blocks.append(Bullets(flagged))
    return section


def _recommendations(report: dict, label) -> Section:
    section = Section("Recommendations", "recommendations")
    recommendations = report["sample_judgement"]["recommendations"]
    if not recommendations:
        section.blocks.append("The sample rules made no recommendation.")
    for recommendation in recommendations:
        to = ", ".join(recommendation.get("to", []))
        text = recommendation["text"] + (f" (to {to})" if to else "")
        covers = recommendation.get("criteria") or ([recommendation["criterion"]] if recommendation.get("criterion") else [])
        if covers:
            text += f" — {wording.Names(report).lower('criterion', len(covers))} {', '.join(covers)}"
        section.blocks.append(Bullets([text]))
    return section


def _standard(standard: dict, aggregates: dict, report: dict, columns, label, ratings, examples) -> Section:
    section = Section(f"{wording.Names(report).one('standard')} {standard['id']}: {standard['title']}",
                      f"standard-{standard['id']}")
    if standard["scope"] == "organisation":
        rows = []
        for criterion in standard["criteria"]:
            rows.append([f"{criterion['id']} {criterion['title']}"]
                        + [words(o["findings"].get(criterion["id"], {}).get("value", "not_assessed"))
                           for o in report.get("organisations", [])])
        names = wording.Names(report)
        section.blocks.append(f"Judged once for each {names.lower('organisation')}, from its organisational evidence:")
        section.blocks.append(Table([names.one("criterion")] + [o["organisation"] for o in report.get("organisations", [])],
                                    rows))
        section.blocks += _rating_line(f"standard {standard['id']}", ratings, columns[1:], label)
        for organisation in report.get("organisations", []):
            factors = [f"{e['text']} (enabler)" for e in organisation.get("enablers", [])]
            factors += [f"{b['text']} (barrier)" for b in organisation.get("barriers", [])]
            if factors:
                section.blocks.append(f"{organisation['organisation']}:")
                section.blocks.append(Bullets(factors))
        for organisation in report.get("organisations", []):
            checked = corroboration_lines(organisation)
            if checked:
                section.blocks.append(f"{organisation['organisation']}, checked against its own cases:")
                section.blocks.append(Bullets(checked))
        for organisation in report.get("organisations", []):
            causes = cause_lines(organisation)
            if causes:
                section.blocks.append(f"{organisation['organisation']}, causes the inspectors recorded:")
                section.blocks.append(Bullets(causes))
        return section
    target = aggregates["targets"].get(f"standard {standard['id']}", {})
    section.blocks.append(f"Cases sufficient across the {wording.Names(report).lower('standard')}'s "
                          f"{wording.Names(report).lower('criterion', 2)}: " + "; ".join(
        f"{label(c)} {figure(target.get('groups', {}).get(c), aggregates.get('confidence', 0.95))}" for c in columns) + ".")
    section.blocks += _rating_line(f"standard {standard['id']}", ratings, columns, label)
    chart = lines_chart(report, standard, columns, label)
    if chart is not None:
        section.blocks.append(chart)
    for criterion in standard["criteria"]:
        section.sections.append(_criterion(criterion, aggregates, report, columns, label, ratings, examples))
    return section


def _rating_line(target: str, ratings: dict, columns: list[str], label) -> list[str]:
    """"Rating: all cases: good; EAST: too few cases to rate (n = 4)." — nothing without bands."""
    shown = [f"{label(c)}: {rated.cell(ratings, target, c)}" for c in columns if rated.cell(ratings, target, c)]
    return ["Rating (see how these findings were reached): " + "; ".join(shown) + "."] if shown else []


def _criterion(criterion: dict, aggregates: dict, report: dict, columns, label, ratings, examples) -> Section:
    section = Section(f"{criterion['id']} {criterion['title']}", f"criterion-{criterion['id']}")
    target = aggregates["targets"].get(criterion["id"], {})
    groups = target.get("groups", {})
    confidence = aggregates.get("confidence", 0.95)
    lines = [line for line in aggregates.get("lines", {}).values() if line["criterion"] == criterion["id"]]
    if lines:  # the framework's own figures first: each line met in how many of the cases where it was relevant
        section.blocks.append(Table([wording.Names(report).one("item"), *[capital(label(c)) for c in columns]],
                                    [[line["id"], *[line_figure(line["groups"].get(c), confidence) for c in columns]]
                                     for line in lines], anchor=f"lines-{criterion['id']}"))
        section.blocks.append(f"Each {wording.Names(report).lower('item')}: met (answered yes) in how many of the cases "
                              "where it was relevant (answered anything but not applicable).")
    section.blocks.append(Table(["Cases", "Sufficient"], [[capital(label(c)), figure(groups.get(c), confidence)] for c in columns]))
    if lines:
        section.blocks.append(f"{wording.Names(report).one('criterion')} judged sufficient: the rule set's roll-up of "
                              f"its {wording.Names(report).lower('item', 2)} (see how these findings were reached).")
    section.blocks += _rating_line(criterion["id"], ratings, columns, label)
    factors = [f for f in aggregates.get("factors", {}).values() if f.get("criterion") == criterion["id"]]
    for kind, heading in (("enabler", "What helped"), ("barrier", "What got in the way")):
        listed = [factor_line(f) for f in sorted(factors, key=lambda f: (-f["groups"][ALL]["cases"], f["id"]))
                  if f["kind"] == kind and f["groups"][ALL]["cases"]]
        if listed:
            section.blocks.append(f"{heading}:")
            section.blocks.append(Bullets(listed))
    gaps = gap_lines(target, label)
    if gaps:
        section.blocks.append("Differences between groups:")
        section.blocks.append(Bullets(gaps))
    for example in examples.get(criterion["id"], []):
        where = f"{example['case']} ({example['provider']})" if example.get("case") else example["provider"]
        section.blocks.append(Quote(example["note"], f"{where}, {example['item']} answered {words(example['answer'])}; "
                                                     f"finding {example['finding']}"))
    return section


def factor_line(factor: dict) -> str:
    """"Contact too infrequent: 3 of 5 cases with a licence" — the share
    of the cases where it can arise (``among``), else of every case."""
    figures = factor["groups"][ALL]
    return f"{factor['text']}: {figures['cases']} of {figures['of']} {factor.get('among') or 'cases'}"


def gap_lines(target: dict, label) -> list[str]:
    """Each flagged gap in plain words, both groups with their figures and the test that passed:
    "women: 4 of 5, 80% [38–96%]; men: …; Fisher's exact test p = 0.0123 (below 0.05)"."""
    lines = []
    for grouping, gap in sorted(target.get("gaps", {}).items()):
        if gap.get("flagged"):
            lines.append(compared_words(gap, label))
    return lines


def compared_words(gap: dict, label) -> str:
    """Two compared groups and their test, as :func:`gap_lines` writes them."""
    sides = "; ".join(f"{label(g['group'])}: {side(g)}" for g in gap.get("groups", []))
    test = gap.get("test")
    if test and test.get("p_value") is not None:
        verdict = f"{'below' if test['significant'] else 'not below'} {test['level']:g}"
        if test.get("adjusted_p") is not None:
            sides += (f"; Fisher's exact test p = {test['p_value']:g}, {test['adjustment']}-adjusted "
                      f"p = {test['adjusted_p']:g} ({verdict})")
        else:
            sides += f"; Fisher's exact test p = {test['p_value']:g} ({verdict})"
    return sides + f" — a difference of {gap['points']} points"


def side(group: dict) -> str:
    """``4 of 5, 80% [38–96%]``: one group of a comparison (the count always shown beside the
    percentage, since a comparison's groups are usually small)."""
    text = f"{group['sufficient']} of {group['applicable']}"
    if group.get("percent") is not None:
        text += f", {round(group['percent'])}%"
    interval = group.get("interval")
    if interval:
        text += f" [{round(interval[0])}–{round(interval[1])}%]"
    return text


def _flagged_gaps(aggregates: dict, label) -> list[str]:
    found = []
    for key, target in aggregates["targets"].items():
        for line in gap_lines(target, label):
            found.append(f"{target.get('title', key)} ({key}): {line}")
    return found


#: How the method text names each adjustment for the number of comparisons.
ADJUSTMENT_WORDS = {"holm": "Holm-Bonferroni method (the chance of any false flag kept below the level)",
                    "fdr_bh": "Benjamini-Hochberg method (the expected share of false flags kept below the level)"}


def _method(report: dict) -> Section:
    aggregates = report["aggregates"]
    names = wording.Names(report)
    section = Section("How these findings were reached", "method")
    section.blocks.append(
        f"Each case was judged {names.lower('criterion')} by {names.lower('criterion')} by the rule set named above, "
        f"from the inspectors' answers on the framework's {names.lower('item', 2)}. Figures count applicable cases "
        f"only: a case where a {names.lower('criterion')} did not apply, or could not be assessed, is left out of that "
        f"{names.lower('criterion')}'s figures. "
        f"Figures from fewer than {COUNT_ONLY_BELOW} cases are given as counts, not percentages.")
    section.blocks.append(
        f"Groups with fewer than {aggregates['min_group_size']} applicable cases are never compared.")
    sources = aggregates.get("sources")
    if sources and sources["answers"]:
        single = "; ".join(f"{entry['answers']} on “{entry['label']}” alone" for entry in sources["by_source"])
        section.blocks.append(
            f"Evidence: of the {plural(sources['answers'], 'answer')} that apply, {sources['one_source']} rest on a "
            f"single source" + (f" ({single})" if single else "") +
            (f", and {sources['no_source']} list no source" if sources["no_source"] else "") + ".")
    method = rated.method(report)
    section.blocks.append(f"Ratings: {method}" if method else
                          "The rule set issues no rating bands: findings are the percentages of applicable cases "
                          "judged sufficient.")
    if "significance" in aggregates:
        tests = aggregates.get("tests") or {"count": None, "adjust": "none"}
        counted = f"the {plural(tests['count'], 'comparison')} tested" if tests["count"] is not None else \
            "the number of comparisons"
        adjustment = (f"with p-values adjusted for {counted} by the {ADJUSTMENT_WORDS[tests['adjust']]}"
                      if tests["adjust"] != "none" else f"with no adjustment for {counted}")
        section.blocks.append(
            f"Each percentage of one {names.lower('criterion')} is shown with its Wilson "
            f"{level(aggregates['confidence'])} interval; a {names.lower('standard')}'s percentage pools several "
            f"{names.lower('criterion', 2)} of the same cases, so its interval comes from a bootstrap that resamples "
            "whole cases (judgements of one person are not independent). A difference "
            f"between two groups is reported only when it is at least {aggregates['gap_points']:g} points and "
            f"Fisher's exact test on the two groups gives p below {aggregates['significance']:g}, {adjustment}; "
            "for several groups, the highest and lowest are tested. Nothing is adjusted for case mix. A reported "
            "difference says where to look, not why it arose.")
    return section


def corroboration_lines(organisation: dict) -> list[str]:
    """An organisation's answers checked against its provider's own cases, in words: each check,
    contradicted or not, with the counts it read and the cases behind a contradiction."""
    lines = []
    for entry in organisation.get("corroboration", []):
        if entry.get("kind") == "cause":
            continue
        concluded = [f"{c['criterion']} {words(c['value'])}" for c in entry["concludes"] if c["kind"] == "finding"]
        for check in entry["checks"]:
            seen = check["seen"]
            if "counted" not in seen:
                lines.append(f"{entry['title']}: not checked — {next(iter(seen.values()))}.")
                continue
            counted = (f"{seen['falling short']} of {seen['counted']} cases counted"
                       + (f" ({seen['percent falling short']:g}%)" if seen["percent falling short"] is not None
                          and seen["counted"] >= COUNT_ONLY_BELOW else ""))
            cases = seen["cases"] if isinstance(seen["cases"], str) else ", ".join(seen["cases"]) or "none"
            if entry["contradicted"]:
                lines.append(f"Contradicted — {entry['title']}: {counted} fall short ({check['text']}); cases: {cases}. "
                             f"Finding: {', '.join(concluded) or 'none'} ({entry['rule']}).")
            elif check["holds"] is True:
                lines.append(f"Cases fall short, no contradiction — {entry['title']}: {counted} fall short "
                             f"({check['text']}), but the organisation's own answers do not claim otherwise.")
            else:
                lines.append(f"Not contradicted by the rule set's test — {entry['title']}: {counted} fall short; "
                             f"the test is: {check['text']}.")
    return lines


def cause_lines(organisation: dict) -> list[str]:
    """The causes an organisation's rules weighed (``cause_found`` beside its provider's cases), in
    words: each concluded, with the counts it read and its cases; each recorded in some case but
    not concluded, with why; then each cause the inspectors found in fieldwork, with its note."""
    lines = []
    for entry in organisation.get("corroboration", []):
        if entry.get("kind") != "cause":
            continue
        for check in entry["checks"]:
            seen = check["seen"]
            recorded = seen.get("provider cases matching")
            if "counted" not in seen or not recorded:
                continue
            counted = (f"recorded in {recorded} of its cases; "
                       f"{seen['falling short']} of the {seen['counted']} judged were insufficient on a criterion "
                       "the rule reads")
            if seen["percent falling short"] is not None and seen["counted"] >= COUNT_ONLY_BELOW:
                counted += f" ({seen['percent falling short']:g}%)"
            cases = seen["cases"] if isinstance(seen["cases"], str) else ", ".join(seen["cases"]) or "none"
            barriers = "; ".join(c["text"] for c in entry["concludes"] if c["kind"] == "barrier")
            if entry["fired"]:
                lines.append(f"Cause found — {entry['title']}: {counted} (cases: {cases}), and the organisation's "
                             f"own evidence points the same way. Barrier: {barriers} ({entry['rule']}).")
            elif check["holds"] is True:
                lines.append(f"Not concluded — {entry['title']}: {counted}, but the organisation's own evidence "
                             "does not point the same way.")
            else:
                lines.append(f"Not concluded — {entry['title']}: {counted}, short of the rule's test: {check['text']}.")
    for cause in organisation.get("causes", []):
        sources = f" (sources: {', '.join(cause['sources'])})" if cause.get("sources") else ""
        note = f": {cause['note'].rstrip().rstrip('.')}" if cause.get("note") else ""
        lines.append(f"Found in fieldwork with the organisation — {cause['label']}{note}{sources}.")
    return lines


def review_account(review: dict, label=lambda key: key) -> list[str]:
    """What review changed, in plain words for the Review section: the findings decided
    otherwise than the engine found, the figures that moved with them, ratings and recommendations
    gained or lost, and what the newest sign-off signed. Empty when review changed nothing.

    >>> review_account({"changes": {"findings": [{"case": "NW-1", "criterion": "3.6", "engine": "insufficient",
    ...     "final": "sufficient", "decision": 1, "reviewer": "R"}], "figures": [{"target": "3.6", "group": "all",
    ...     "engine": {"sufficient": 8, "applicable": 14}, "final": {"sufficient": 9, "applicable": 14},
    ...     "decisions": [1]}], "ratings": [], "recommendations": []}})[:2]
    ['Changed by review: 1 finding — NW-1 3.6 insufficient, final sufficient (decision 1 by R).', 'Figures computed from the final findings: 3.6 all: 8 of 14 sufficient, engine; 9 of 14, final (decision 1).']
    """
    changes = review.get("changes") or {}
    lines = [f"Warning: {warning}." for warning in review.get("warnings", [])]
    findings = changes.get("findings", [])
    if findings:
        listed = "; ".join(f"{c['case']} {c['criterion']} {c['engine'].replace('_', ' ')}, final "
                           f"{c['final'].replace('_', ' ')} (decision {c['decision']} by {wording.maker(c)})" for c in findings)
        lines.append(f"Changed by review: {len(findings)} finding{'s' * (len(findings) != 1)} — {listed}.")
        figures = changes.get("figures", [])
        headline = [f for f in figures if f["group"] == "all" or f["group"].startswith("provider:")]
        moved = [f"{f['target']} {label(f['group'])}: {f['engine']['sufficient']} of {f['engine']['applicable']} "
                 f"sufficient, engine; {f['final']['sufficient']} of {f['final']['applicable']}, final "
                 f"(decision{'s' * (len(f['decisions']) != 1)} {', '.join(map(str, f['decisions']))})"
                 for f in headline]
        others = len(figures) - len(headline)
        rest = f"; and {others} figure{'s' * (others != 1)} of other groups" if others else ""
        lines.append("Figures computed from the final findings: " + ("; ".join(moved) if moved else "none moved")
                     + rest + ".")
        for kind, entries in (("Ratings", changes.get("ratings", [])), ("Recommendations", changes.get("recommendations", []))):
            if entries:
                what = "; ".join(f"{e.get('text') or ' '.join(filter(None, (e.get('target'), e.get('group'), e.get('band'))))}"
                                 f" {e['change']}" for e in entries)
                lines.append(f"{kind} changed by review: {what}.")
            else:
                lines.append(f"{kind}: unchanged by review.")
        lines.append("The engine's own figures are kept in report.json under engine.")
    signed = review.get("signed")
    if signed:
        state = ("this is the report signed off" if signed["unchanged"] else
                 f"the final report has changed since (now sha256:{signed['final_report_sha256'][:12]}…)")
        lines.append(f"Signed off by {wording.maker(signed)} at {signed['at']} for final report "
                     f"sha256:{(signed['report_sha256'] or 'not recorded')[:12]}…; {state}.")
    return lines
