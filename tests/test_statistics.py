"""Statistics done properly: Wilson intervals on every percentage, gaps between groups (and
between providers, both ways) flagged only when Fisher's exact test passes at the rule set's level,
and one recommendation per cause. The expected values are worked out here independently (published
examples, statsmodels' Wilson interval, the hypergeometric distribution), not read from qi."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from engine.aggregate import aggregate, statistics
from engine.check import rules
from engine.check.rules import loading
from engine.compile import facts
from tests.conftest import ROOT, SAMPLE

LOADED = loading.load(ROOT / "rules" / "hmip-qi-adult-2.0.yaml")


# --- the two statistics -----------------------------------------------------------------------

def test_wilson_interval_matches_a_published_example_and_statsmodels():
    # Newcombe (1998), Statistics in Medicine 17:857, example: 81 of 263 -> 0.2553 to 0.3662
    assert statistics.wilson(81, 263, 0.95) == [25.5, 36.6]
    # issue 9: "5 of 6 ... its 95% interval is roughly 44-97%"
    low, high = statistics.wilson(5, 6, 0.95)
    assert round(low) == 44 and round(high) == 97
    for k, n in [(0, 1), (0, 7), (7, 7), (1, 2), (3, 14), (13, 14), (50, 100), (999, 1000)]:
        expected = [round(100 * b, 1) for b in proportion_confint(k, n, alpha=0.05, method="wilson")]
        assert statistics.wilson(k, n, 0.95) == pytest.approx(expected, abs=0.051), (k, n)


def test_wilson_degenerate_cases():
    assert statistics.wilson(0, 0, 0.95) is None  # no applicable cases: no proportion, no interval
    assert statistics.wilson(0, 9, 0.95)[0] == 0.0 and statistics.wilson(0, 9, 0.95)[1] > 0
    assert statistics.wilson(9, 9, 0.95)[1] == 100.0 and statistics.wilson(9, 9, 0.95)[0] < 100
    assert statistics.wilson(5, 6, 0.99)[0] < statistics.wilson(5, 6, 0.95)[0]  # the level is used
    # plain floats: numpy's would be stored as text by the audit store's encoder
    assert {type(x) for x in statistics.wilson(5, 6, 0.95) + [statistics.fisher((4, 6), (4, 8))]} == {float}


def _two_sided_fisher(k1: int, n1: int, k2: int, n2: int) -> float:
    """Fisher's exact test from the hypergeometric distribution: the probability of every table
    with these margins at most as likely as the one seen."""
    total, successes = n1 + n2, k1 + k2
    dist = stats.hypergeom(total, successes, n1)
    seen = dist.pmf(k1)
    lo, hi = max(0, successes - n2), min(n1, successes)
    return float(sum(dist.pmf(x) for x in range(lo, hi + 1) if dist.pmf(x) <= seen * (1 + 1e-7)))


def test_fishers_exact_test_matches_the_hypergeometric_distribution():
    # Fisher's tea-tasting table (3 of 4 against 1 of 4): two-sided p = 34/70 = 0.4857
    assert statistics.fisher((3, 4), (1, 4)) == pytest.approx(34 / 70)
    # issue 9: groups of 5 and 9 with p of about 0.22
    for table in [(4, 5, 3, 9), (5, 5, 4, 9), (8, 8, 0, 8), (0, 5, 0, 9), (5, 5, 9, 9), (36, 54, 29, 66)]:
        k1, n1, k2, n2 = table
        assert statistics.fisher((k1, n1), (k2, n2)) == pytest.approx(_two_sided_fisher(*table), rel=1e-6), table
    assert statistics.fisher((0, 0), (3, 5)) is None


# --- the aggregates ---------------------------------------------------------------------------

def _records(spec: list[tuple[str, str, int, int]]) -> list[aggregate.CaseRecord]:
    """Cases from (provider, gender, sufficient, insufficient) rows; every other grouping takes one value."""
    framework = LOADED.framework
    fixed = {g: "x" for g in rules.groupings(framework)}
    records, number = [], 0
    for provider, gender, good, bad in spec:
        for value in ["sufficient"] * good + ["insufficient"] * bad:
            number += 1
            records.append(aggregate.CaseRecord(f"T-{number:03d}", {**fixed, "provider": provider, "gender": gender},
                                                {"3.1": value}, frozenset()))
    return records


def test_a_gap_is_flagged_with_its_test_when_both_groups_are_big_enough_and_p_is_below_the_level():
    built = aggregate.build(_records([("NPS", "male", 4, 0), ("NPS", "female", 0, 4),
                                      ("CRC", "male", 4, 0), ("CRC", "female", 0, 4)]), LOADED)
    gap = built["targets"]["3.1"]["gaps"]["gender"]
    assert gap["flagged"] and gap["points"] == 100.0
    assert gap["test"]["level"] == 0.05 and gap["test"]["significant"]
    assert gap["test"]["exact_p"] == pytest.approx(_two_sided_fisher(8, 8, 0, 8))
    assert gap["test"]["p_value"] == round(_two_sided_fisher(8, 8, 0, 8), 4)
    men, women = gap["groups"]
    assert (men["label"], men["sufficient"], men["applicable"], men["percent"]) == ("men", 8, 8, 100.0)
    assert (women["label"], women["sufficient"], women["applicable"], women["percent"]) == ("women", 0, 8, 0.0)
    assert men["interval"] == statistics.wilson(8, 8, 0.95) and women["interval"] == statistics.wilson(0, 8, 0.95)
    attributes = aggregate.sample_attributes(built, LOADED)
    assert attributes[facts.gap_attribute(facts.target_key("3.1", None), "gender")] == 100.0
    # the providers are level: no comparison is flagged and neither "below" attribute is defined
    assert not built["targets"]["3.1"]["comparisons"][0]["flagged"]
    assert attributes[facts.below_attribute(facts.target_key("3.1", None), "CRC", "NPS")] == facts.UNDEFINED


def test_a_large_gap_that_fails_the_test_is_not_flagged_and_not_visible_to_rules():
    built = aggregate.build(_records([("NPS", "male", 5, 0), ("NPS", "female", 2, 3)]), LOADED)
    gap = built["targets"]["3.1"]["gaps"]["gender"]
    assert gap["points"] == 60.0 and gap["test"]["p_value"] == round(_two_sided_fisher(5, 5, 2, 5), 4)
    assert not gap["test"]["significant"] and not gap["flagged"]
    attributes = aggregate.sample_attributes(built, LOADED)
    assert attributes[facts.gap_attribute(facts.target_key("3.1", None), "gender")] == facts.UNDEFINED


def test_a_group_below_the_minimum_size_is_never_compared_or_tested():
    built = aggregate.build(_records([("NPS", "male", 9, 0), ("NPS", "female", 0, 4)]), LOADED)
    gap = built["targets"]["3.1"]["gaps"]["gender"]
    assert gap["not_compared"] == ["gender:female"] and gap["test"] is None and not gap["flagged"]


def _two_criteria(adjust: str) -> dict:
    """Men and women, 8 of each: on 3.1 a strong gap (8 of 8 against 0 of 8, p = 0.00016), on 3.2
    and 3.3 a modest one (7 of 8 against 2 of 8, p = 0.041): three tests in the run."""
    settings = LOADED.rules.sample.model_copy(update={"adjust": adjust})
    loaded = dataclasses.replace(LOADED, rules=LOADED.rules.model_copy(update={"sample": settings}))
    fixed = {g: "x" for g in rules.groupings(LOADED.framework)}
    records = []
    for number in range(16):
        woman = number >= 8
        modest = "insufficient" if (woman and number < 14) or number == 7 else "sufficient"
        records.append(aggregate.CaseRecord(
            f"T-{number:03d}", {**fixed, "provider": "NPS", "gender": "female" if woman else "male"},
            {"3.1": "insufficient" if woman else "sufficient", "3.2": modest, "3.3": modest}, frozenset()))
    return aggregate.build(records, loaded)


def test_p_values_are_adjusted_for_the_number_of_comparisons_when_the_rule_set_says_so():
    plain = _two_criteria("none")
    assert plain["tests"] == {"count": 3, "adjust": "none"}
    assert plain["targets"]["3.2"]["gaps"]["gender"]["test"]["p_value"] == round(_two_sided_fisher(7, 8, 2, 8), 4)
    assert plain["targets"]["3.1"]["gaps"]["gender"]["flagged"] and plain["targets"]["3.2"]["gaps"]["gender"]["flagged"]
    holm = _two_criteria("holm")
    modest, strong = holm["targets"]["3.2"]["gaps"]["gender"], holm["targets"]["3.1"]["gaps"]["gender"]
    # Holm on three tests: the k-th smallest p times (4 - k), each no smaller than the one before
    assert strong["test"]["exact_adjusted_p"] == pytest.approx(3 * _two_sided_fisher(8, 8, 0, 8))
    assert modest["test"]["exact_adjusted_p"] == pytest.approx(2 * _two_sided_fisher(7, 8, 2, 8))
    assert strong["flagged"] and not modest["flagged"] and not modest["test"]["significant"]
    assert modest["test"]["adjustment"] == "Holm-Bonferroni" and holm["tests"] == {"count": 3, "adjust": "holm"}
    attributes = aggregate.sample_attributes(holm, LOADED)  # sample rules see only what passed
    assert attributes[facts.gap_attribute(facts.target_key("3.2", None), "gender")] == facts.UNDEFINED
    assert attributes[facts.gap_attribute(facts.target_key("3.1", None), "gender")] == 100.0
    bh = _two_criteria("fdr_bh")  # Benjamini-Hochberg: the two largest p (rank 3 of 3) stay 0.041, below 0.05
    assert bh["targets"]["3.2"]["gaps"]["gender"]["flagged"]
    assert bh["targets"]["3.2"]["gaps"]["gender"]["test"]["exact_adjusted_p"] == pytest.approx(_two_sided_fisher(7, 8, 2, 8))


@pytest.mark.parametrize("unknown", ["not_recorded", "not_given"])
def test_a_group_whose_characteristic_was_not_recorded_is_never_compared(unknown):
    built = aggregate.build(_records([("NPS", "male", 9, 0), ("NPS", unknown, 0, 9)]), LOADED)
    gap = built["targets"]["3.1"]["gaps"]["gender"]
    assert gap["not_compared"] == [f"gender:{unknown}"] and gap["test"] is None and not gap["flagged"]
    assert built["targets"]["3.1"]["groups"][f"gender:{unknown}"]["applicable"] == 9  # still shown
    known = aggregate.build(_records([("NPS", "male", 9, 0), ("NPS", "female", 0, 9)]), LOADED)
    assert known["targets"]["3.1"]["gaps"]["gender"]["flagged"]  # the same figures for a recorded group are


@pytest.mark.parametrize("behind, ahead", [("NPS", "CRC"), ("CRC", "NPS")])
def test_provider_comparisons_run_both_ways(behind, ahead):
    built = aggregate.build(_records([(behind, "male", 0, 7), (ahead, "male", 7, 0)]), LOADED)
    [comparison] = built["targets"]["3.1"]["comparisons"]
    assert (comparison["lowest"], comparison["highest"]) == (f"provider:{behind}", f"provider:{ahead}")
    assert comparison["flagged"] and comparison["test"]["p_value"] == round(_two_sided_fisher(7, 7, 0, 7), 4)
    attributes = aggregate.sample_attributes(built, LOADED)
    key = facts.target_key("3.1", None)
    assert attributes[facts.below_attribute(key, behind, ahead)] == 100.0
    assert attributes[facts.below_attribute(key, ahead, behind)] == facts.UNDEFINED


def test_standards_pool_pairs_so_their_gaps_are_never_tested():
    built = aggregate.build(_records([("NPS", "male", 4, 0), ("NPS", "female", 0, 4),
                                      ("CRC", "male", 4, 0), ("CRC", "female", 0, 4)]), LOADED)
    gap = built["targets"]["standard 3"]["gaps"]["gender"]
    assert gap["test"] is None and not gap["flagged"]


@pytest.mark.parametrize("setting, problem", [("significance: 0", "significance"), ("significance: 1.5", "significance"),
                                              ("confidence: 1", "confidence"), ("gap_points: -3", "gap_points")])
def test_the_statistics_settings_are_validated(qi, tmp_path, setting, problem):
    text = (ROOT / "rules" / "hmip-qi-adult-2.0.yaml").read_text(encoding="utf-8")
    path = tmp_path / "rules.yaml"
    path.write_text(text.replace("  significance: 0.05\n", f"  {setting}\n" if "significance" in setting
                                 else f"  significance: 0.05\n  {setting}\n").replace(
        "  gap_points: 15\n", "" if "gap_points" in setting else "  gap_points: 15\n"), encoding="utf-8")
    line = next(i for i, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                if text.strip() == setting)
    result = qi("rules", "lint", path)
    assert result.exit_code == 1 and f"{path}:{line}:" in result.output + result.stderr, problem
    assert "Traceback" not in result.output + result.stderr


# --- end to end through the CLI ---------------------------------------------------------------

def _percentages(node, where=""):
    """Every (place, dict) in report.json holding a percentage."""
    if isinstance(node, dict):
        if "percent" in node:
            yield where, node
        for key, value in node.items():
            yield from _percentages(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _percentages(value, f"{where}/{index}")


def _check_report(report: dict) -> None:
    aggregates = report["aggregates"]
    found = list(_percentages(report))
    assert len(found) > 100
    for where, figures in found:
        interval = figures.get("interval", figures.get("percent_interval"))
        # a standard's pooled figure carries its (clustered) interval for the groups reports show only
        group = figures.get("group") or where.rsplit("/groups/", 1)[-1]
        pooled_unshown = where.startswith("/aggregates/targets/standard ") and not re.fullmatch(
            r"all|provider:[^/]+", group)
        if figures["percent"] is None or pooled_unshown:  # a pooled figure no report shows carries none
            assert interval is None, where
        elif figures.get("interval_note"):  # pooled over too few cases to resample: none, and says why
            assert interval is None and "too few" in figures["interval_note"], where
        else:
            assert isinstance(interval, list) and len(interval) == 2, where
            assert interval[0] <= figures["percent"] <= interval[1], where
    flagged = 0
    for target in aggregates["targets"].values():
        for gap in [*target["gaps"].values(), *target["comparisons"]]:
            if gap["flagged"]:
                flagged += 1
                assert gap["test"]["p_value"] < gap["test"]["level"] == aggregates["significance"]
                assert gap["points"] >= aggregates["gap_points"]
                assert len(gap["groups"]) == 2 and all(
                    g["label"] and g["applicable"] >= aggregates["min_group_size"] and g["interval"]
                    for g in gap["groups"])
            elif gap.get("test") and gap["points"] >= aggregates["gap_points"]:
                assert not gap["test"]["significant"]  # a big difference alone is never flagged
    recommendations = report["sample_judgement"]["recommendations"]
    ids = [(r["id"], tuple(r["to"])) for r in recommendations]
    assert len(ids) == len(set(ids)), ids
    assert "not only case mix" not in json.dumps(report["sample_judgement"])  # a claim nothing computed
    return flagged


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    from click.testing import CliRunner

    import cli
    root = tmp_path_factory.mktemp("generated")
    runner = CliRunner()
    made = runner.invoke(cli.cli, ["sample", "generate", "--cases", "200", "--seed", "3", "--out", str(root / "s")])
    assert made.exit_code == 0, made.output
    ran = runner.invoke(cli.cli, ["run", str(root / "s"), "--out", str(root / "out"), "--jobs", "1"])
    assert ran.exit_code == 0, ran.output
    return root / "out", ran.output


def test_example_run_every_percentage_has_an_interval_and_no_untested_gap_is_flagged(qi, tmp_path):
    result = qi("run", SAMPLE, "--out", tmp_path / "out", "--jobs", "1")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))
    # the example's groups are 4 to 10 cases: no difference between them passes Fisher's exact test
    assert _check_report(report) == 0
    assert not any(r["id"] == "understand-differential-outcomes" for r in report["sample_judgement"]["recommendations"])
    assert "68.3% [54–81]" in result.output  # the headline shows standard 1's (clustered) interval
    markdown = (tmp_path / "out" / "report.md").read_text(encoding="utf-8")
    assert "| 68% (28 of 41; 95% interval 54–81%) |" in markdown  # standard 1, all cases: nothing escaped


def test_generated_run_flags_tested_gaps_and_says_them_in_plain_words(generated):
    out, headline = generated
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert _check_report(report) > 0
    markdown = (out / "report.md").read_text(encoding="utf-8").replace("\\", "")  # Markdown escapes brackets
    gap = next(gap for target in report["aggregates"]["targets"].values() for gap in target["gaps"].values()
               if gap["flagged"])
    high, low = gap["groups"]
    words = (f"{high['label']}: {high['sufficient']} of {high['applicable']}, {round(high['percent'])}% "
             f"[{round(high['interval'][0])}–{round(high['interval'][1])}%]; {low['label']}: {low['sufficient']} "
             f"of {low['applicable']}")
    assert words in markdown
    # the default rule set adjusts every p-value for the number of comparisons (Holm) and says so
    assert report["aggregates"]["tests"]["adjust"] == "holm" and gap["test"]["adjusted_p"] < 0.05
    assert (f"Fisher's exact test p = {gap['test']['p_value']:g}, Holm-Bonferroni-adjusted p = "
            f"{gap['test']['adjusted_p']:g} (below 0.05)") in markdown
    assert f"adjusted for the {report['aggregates']['tests']['count']} comparisons tested" in " ".join(markdown.split())
    assert "Wilson 95% interval" in markdown
    assert "case mix" in markdown and "not only case mix" not in markdown  # the method says it was not adjusted for
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Fisher" in html and "–" in html


def test_one_recommendation_per_cause_lists_every_criterion(qi, tmp_path):
    """A for_each: criterion rule concluding one recommendation id gives it once, naming every criterion."""
    text = (ROOT / "rules" / "hmip-qi-adult-2.0.yaml").read_text(encoding="utf-8")
    probe = ("  - id: probe\n    title: T\n    rationale: R\n    for_each: [criterion]\n"
             "    when: {percent_sufficient: {below: 60}}\n    then:\n      - recommendation: {id: probe, "
             "text: \"Improve {criteria}.\", to: [NOMS]}\n")
    path = tmp_path / "rules.yaml"
    path.write_text(text + probe, encoding="utf-8")
    result = qi("run", SAMPLE, "--rules", path, "--out", tmp_path / "out", "--jobs", "1")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))
    [probe_recommendation] = [r for r in report["sample_judgement"]["recommendations"] if r["id"] == "probe"]
    below = sorted((t["id"] for t in report["aggregates"]["targets"].values()
                    if t["kind"] == "criterion" and t["groups"]["all"]["percent"] is not None
                    and t["groups"]["all"]["exact_percent"] < 60 and t["groups"]["all"]["applicable"] >= 5),
                   key=lambda c: tuple(int(p) for p in c.split(".")))
    assert len(below) > 1 and probe_recommendation["criteria"] == below
    assert all(f"{c} (" in probe_recommendation["text"] for c in below)
    assert len(probe_recommendation["rules"]) == len(below)


def test_rules_diff_shows_each_moved_percentage_with_its_interval(qi, tmp_path):
    """A methodology change that moves a criterion's figure shows both figures with their intervals."""
    default = ROOT / "rules" / "hmip-qi-adult-2.0.yaml"
    text = default.read_text(encoding="utf-8")
    old = "    core: [2.3.a, 2.3.b, 2.3.c]\n    threshold: 66\n"
    assert text.count(old) == 1
    changed = tmp_path / "changed.yaml"
    changed.write_text(text.replace(old, old.replace("66", "100")), encoding="utf-8")  # 2.3: every line met
    result = qi("rules", "diff", default, changed, "--sample", SAMPLE, "--format", "json")
    moved = [t for t in json.loads(result.stdout)["targets"] if t["target"] == "2.3"]
    assert moved, "raising 2.3's threshold moves its figure"
    for sides in moved[0]["groups"].values():
        for figures in sides.values():
            assert figures["interval"] == statistics.wilson(figures["counts"]["sufficient"], figures["applicable"], 0.95)
    markdown = qi("rules", "diff", default, changed, "--sample", SAMPLE).stdout
    assert "; interval " in markdown


def test_an_adjusted_comparison_says_both_p_values_and_the_method_says_how_many_were_tested():
    from engine.report import draft

    holm = _two_criteria("holm")
    words = draft.compared_words(holm["targets"]["3.1"]["gaps"]["gender"], lambda key: key)
    test = holm["targets"]["3.1"]["gaps"]["gender"]["test"]
    assert f"Fisher's exact test p = {test['p_value']:g}, Holm-Bonferroni-adjusted p = {test['adjusted_p']:g} " \
           "(below 0.05)" in words
    report = {"aggregates": holm, "sample_judgement": {"ratings": [], "rating_scheme": None}}
    method = " ".join(b for b in draft._method(report).blocks if isinstance(b, str))
    assert "with p-values adjusted for the 3 comparisons tested by the Holm-Bonferroni method" in method
    report["aggregates"] = _two_criteria("none")
    method = " ".join(b for b in draft._method(report).blocks if isinstance(b, str))
    assert "with no adjustment for the 3 comparisons tested" in method


def test_a_pooled_figure_accounts_for_several_judgements_of_the_same_cases():
    """Ten cases, each judged on three criteria, all three alike: 15 of 30 pairs but only ten
    independent people. The cluster bootstrap's interval is wider than Wilson's on 30 pairs, close
    to Wilson's on the ten people, and the same on every run."""
    from engine.aggregate import statistics
    alike = [(3, 3)] * 5 + [(0, 3)] * 5
    pooled = statistics.clustered(alike, 0.95)
    naive, people = statistics.wilson(15, 30, 0.95), statistics.wilson(5, 10, 0.95)
    assert pooled == statistics.clustered(alike, 0.95)
    assert pooled[1] - pooled[0] > naive[1] - naive[0] + 10
    assert abs((pooled[1] - pooled[0]) - (people[1] - people[0])) < 12
    # judgements that vary within each case carry more information: the interval narrows
    mixed = statistics.clustered([(2, 3), (1, 3)] * 5, 0.95)
    assert mixed[1] - mixed[0] < pooled[1] - pooled[0]
    # every case alike: resampling cannot move the share, so the cases' own Wilson interval
    assert statistics.clustered([(3, 3)] * 6, 0.95) == statistics.wilson(6, 6, 0.95)
    assert statistics.clustered([], 0.95) is None


def test_standard_figures_in_the_report_carry_the_clustered_interval(qi, tmp_path):
    assert qi("run", SAMPLE, "--out", tmp_path / "out", "--jobs", "1").exit_code == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))
    standard = report["aggregates"]["targets"]["standard 3"]["groups"]["all"]
    criterion = report["aggregates"]["targets"]["3.1"]["groups"]["all"]
    assert standard["interval_method"] == "cluster bootstrap by case" and criterion["interval_method"] == "Wilson"
    assert standard["interval"] != statistics_wilson(standard)
    assert "resamples whole cases" in " ".join((tmp_path / "out" / "report.md").read_text(encoding="utf-8").split())


def statistics_wilson(group: dict) -> list[float]:
    from engine.aggregate import statistics
    return statistics.wilson(group["counts"]["sufficient"], group["applicable"], 0.95)
