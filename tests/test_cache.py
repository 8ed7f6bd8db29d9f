"""The validated-case cache: a hit gives byte-identical results to a cold run; a changed case,
a changed or truncated entry, or an unsafe folder is never trusted; the cache stays within its
limit, and qi cache info / clear manage it."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from engine.check import cache
from engine.check import framework as frameworks
from engine.check import sample
from tests.conftest import SAMPLE


def _entries() -> list[Path]:
    return sorted(cache.folder().glob("*/*.json"))


def _run(qi, sample_dir: Path, out: Path, *options: str) -> tuple[dict, bytes]:
    result = qi("run", sample_dir, "--out", out, "--db", out.parent / f"{out.name}.db", *options)
    assert result.exit_code == 0, result.stderr
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    report.pop("run")
    report.pop("store", None)
    return report, (out / "trace.jsonl").read_bytes()


def test_a_warm_run_gives_byte_identical_results_and_adds_no_entries(qi, tmp_path):
    cold = _run(qi, SAMPLE, tmp_path / "cold")
    entries = _entries()
    assert len(entries) == len(list((SAMPLE / "cases").glob("*.yaml")))
    written = {path: path.read_bytes() for path in entries}
    warm = _run(qi, SAMPLE, tmp_path / "warm")
    assert warm == cold
    assert {path: path.read_bytes() for path in _entries()} == written


def test_a_hit_is_the_model_and_positions_a_fresh_read_gives(tmp_path):
    path = SAMPLE / "cases" / "NW-003.yaml"
    framework_path = frameworks.default_path()
    fresh = sample.load_case(path, "cases/NW-003.yaml", framework_path)
    hit = sample.load_case(path, "cases/NW-003.yaml", framework_path)
    assert hit.document.data is None  # it came from the cache, not from the YAML
    assert hit.model.model_dump() == fresh.model.model_dump()
    assert hit.document.marks == fresh.document.marks and hit.document.sha256 == fresh.document.sha256
    assert [e.counts_as for e in hit.model.evidence.values()] == [e.counts_as for e in fresh.model.evidence.values()]


def test_a_changed_case_file_is_read_again(qi, sample_copy, tmp_path):
    _run(qi, sample_copy, tmp_path / "first")
    case = sample_copy / "cases" / "NW-001.yaml"
    case.write_text(case.read_text(encoding="utf-8").replace("provider: NPS", "provider: CRC"), encoding="utf-8")
    report, _ = _run(qi, sample_copy, tmp_path / "second")
    assert next(c for c in report["cases"] if c["case"] == "NW-001")["provider"] == "CRC"
    assert len(_entries()) == 15  # the edited file has an entry of its own


@pytest.mark.parametrize("damage", ["changed", "truncated", "valid digest, not a model", "empty"])
def test_a_damaged_entry_is_refused_removed_and_the_file_read_again(qi, tmp_path, damage):
    cold = _run(qi, SAMPLE, tmp_path / "cold")
    for entry in _entries():
        text = entry.read_text(encoding="utf-8")
        if damage == "changed":
            text = text.replace('"NPS"', '"CRC"').replace('"yes"', '"no"')
        elif damage == "truncated":
            text = text[: len(text) // 2]
        elif damage == "empty":
            text = ""
        else:
            import hashlib
            body = '[]\n{"case": 3}'
            text = hashlib.sha256(body.encode()).hexdigest() + "\n" + body
        entry.write_text(text, encoding="utf-8")
    warm = _run(qi, SAMPLE, tmp_path / "warm")
    assert warm == cold
    assert all(json.loads(e.read_text().split("\n", 2)[2])["case"] for e in _entries())  # rewritten whole


def test_an_invalid_case_is_never_cached_and_reported_every_time(qi, sample_copy, tmp_path):
    bad = sample_copy / "cases" / "NW-002.yaml"
    bad.write_text(bad.read_text(encoding="utf-8").replace("provider: CRC", "provider: CRX"), encoding="utf-8")
    for attempt in range(2):
        result = qi("run", sample_copy, "--out", tmp_path / f"o{attempt}", "--db", tmp_path / "db")
        assert result.exit_code == 1 and "NW-002.yaml" in result.stderr and "unknown_value" in result.stderr
    assert len(_entries()) == 13


def test_the_cache_is_owner_only_and_refused_when_others_may_write(qi, tmp_path, monkeypatch):
    _run(qi, SAMPLE, tmp_path / "a")
    base = cache.folder().parent
    assert stat.S_IMODE(base.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(e.stat().st_mode) == 0o600 for e in _entries())
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)
    monkeypatch.setenv("QI_CACHE_DIR", str(shared))
    cache._usable_folder.cache_clear()
    _run(qi, SAMPLE, tmp_path / "b")
    assert not list(shared.rglob("*.json"))


def test_off_writes_nothing(qi, tmp_path, monkeypatch):
    monkeypatch.setenv("QI_CACHE", "off")
    _run(qi, SAMPLE, tmp_path / "a")
    assert not cache.folder() and not list(Path(os.environ["QI_CACHE_DIR"]).rglob("*.json"))
    assert "is off" in qi("cache", "info").stdout


def test_the_cache_stays_within_its_limit_dropping_the_least_recently_used(qi, tmp_path, monkeypatch):
    _run(qi, SAMPLE, tmp_path / "a")
    sizes = sorted(e.stat().st_size for e in _entries())
    monkeypatch.setenv("QI_CACHE_MAX_MB", str(sum(sizes[:5]) / 1024 / 1024))
    oldest = sorted(_entries(), key=lambda e: e.stat().st_mtime)
    for age, entry in enumerate(oldest):
        os.utime(entry, (1_000_000 + age, 1_000_000 + age))
    removed = cache.prune()
    kept = _entries()
    assert removed and sum(e.stat().st_size for e in kept) <= cache.limit_bytes()
    assert set(kept) <= set(oldest[removed:])  # the least recently used went first


def test_cache_info_and_clear(qi, tmp_path):
    _run(qi, SAMPLE, tmp_path / "a")
    info = json.loads(qi("cache", "info", "--format", "json").stdout)
    assert info["enabled"] and info["entries"] == 14 and info["bytes"] > 0
    assert "14 case entries, 0 evaluation entries" in qi("cache", "info").stdout
    assert qi("cache", "clear").stdout.strip() == "removed 14 entries"
    assert json.loads(qi("cache", "info", "--format", "json").stdout)["entries"] == 0
    _run(qi, SAMPLE, tmp_path / "b")  # and it fills again
    assert len(_entries()) == 14


def test_a_diff_keeps_the_baseline_s_evaluations_and_reuses_them_with_the_same_result(qi, tmp_path, monkeypatch):
    from engine.evaluate import evaluate as evaluator
    from tests.conftest import ROOT

    old = ROOT / "rules" / "hmip-qi-adult-2.0.yaml"
    new = tmp_path / "rules" / "new.yaml"
    new.parent.mkdir()
    new.write_text(old.read_text(encoding="utf-8").replace("threshold: 66", "threshold: 80", 1), encoding="utf-8")
    first = qi("rules", "diff", old, new, "--sample", SAMPLE, "--format", "json")
    assert first.exit_code == 0, first.stderr
    evaluations = sorted(cache.evaluations_folder().glob("*/*.json"))
    assert len(evaluations) == 14
    whole = []
    original = evaluator.evaluate
    monkeypatch.setattr(evaluator, "evaluate", lambda compiled, *a, **k: (
        whole.append(len(compiled.phases and [c for p in compiled.phases for c in p])), original(compiled, *a, **k))[1])
    again = qi("rules", "diff", old, new, "--sample", SAMPLE, "--format", "json")
    assert again.stdout == first.stdout
    from engine.run import pipeline
    full_chunks = sum(len(p) for p in pipeline.compiled_rules(old).phases)
    assert whole and max(whole) < full_chunks  # only what the change moves is evaluated; the baseline is reused
    for entry in evaluations:  # a damaged evaluation entry is refused and the case evaluated again
        entry.write_text(entry.read_text().replace('"', "'"))
    assert qi("rules", "diff", old, new, "--sample", SAMPLE, "--format", "json").stdout == first.stdout
    assert json.loads(qi("cache", "info", "--format", "json").stdout)["evaluations"] == 14


def test_clear_and_prune_touch_nothing_qi_did_not_write(qi, tmp_path, monkeypatch):
    """A cache folder may hold other files (it may even be a project folder laid out like a
    sample): only entries named by their key, in shards named by two hex digits, are ever
    counted, pruned or cleared."""
    _run(qi, SAMPLE, tmp_path / "a")
    base = cache.folder().parent
    foreign = [base / "cases" / "north-west" / "results.json", base / "evaluations" / "2024" / "scores.json",
               base / "cases" / "ab" / "notes.json", base / "cases" / "ab" / ("0" * 63 + ".json")]
    for path in foreign:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{}")
    assert json.loads(qi("cache", "info", "--format", "json").stdout)["entries"] == 14
    monkeypatch.setenv("QI_CACHE_MAX_MB", "0")
    assert cache.prune() == 14
    _run(qi, SAMPLE, tmp_path / "b")
    monkeypatch.delenv("QI_CACHE_MAX_MB")
    qi("cache", "clear")
    assert all(path.exists() for path in foreign)
    shared = tmp_path / "shared"
    (shared / "cases" / "ab").mkdir(parents=True)
    planted = shared / "cases" / "ab" / ("a" * 64 + ".json")
    planted.write_text("{}")
    os.chmod(shared, 0o777)
    monkeypatch.setenv("QI_CACHE_DIR", str(shared))
    cache._usable_folder.cache_clear()
    assert "not used" in qi("cache", "info").stdout
    assert qi("cache", "clear").stdout.strip() == "removed 0 entries" and planted.exists()


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e400", "lots", ""])
def test_a_bad_limit_is_the_default(monkeypatch, value):
    monkeypatch.setenv("QI_CACHE_MAX_MB", value)
    assert cache.limit_bytes() == cache.DEFAULT_LIMIT_MB * 1024 * 1024


def test_entries_made_by_other_code_are_never_found(monkeypatch):
    """The key carries a sha256 of the engine's source files, not only the version number that
    every build of one release shares."""
    from importlib import metadata

    monkeypatch.setattr(metadata, "version", lambda name: "0.1.0")
    cache._qi_version.cache_clear()
    this_code = cache.key("f" * 64, "c" * 64)
    monkeypatch.setattr(cache.Path, "read_bytes", lambda self: b"other code")
    cache._qi_version.cache_clear()
    other_code = cache.key("f" * 64, "c" * 64)
    monkeypatch.undo()
    cache._qi_version.cache_clear()
    assert this_code != other_code and cache.key("f" * 64, "c" * 64) != other_code
