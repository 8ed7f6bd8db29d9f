"""Property tests on generated samples: determinism, invariance to order and file names, traces
that reach the evidence, and no crash on any valid generated case."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.load import source
from engine.run import run
from engine.tools import generate
from tests.conftest import walk


def _generate(folder: Path, count: int, seed: int) -> Path:
    profile, framework = generate.load_profile(generate.default_profile())
    generate.generate(profile, framework, count, seed, folder)
    return folder


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    return _generate(tmp_path_factory.mktemp("generated") / "sample", 40, 11)


def _findings(report) -> dict:
    return {c["case"]: {k: v["value"] for k, v in c["findings"].items()} for c in report["cases"]}


def test_generated_samples_are_valid_and_reproducible(qi, tmp_path):
    first, second = _generate(tmp_path / "a", 25, 5), _generate(tmp_path / "b", 25, 5)
    assert qi("validate", first).exit_code == 0
    for path in sorted(first.rglob("*.yaml")):
        assert path.read_bytes() == (second / path.relative_to(first)).read_bytes()
    other = _generate(tmp_path / "c", 25, 6)
    assert any(p.read_bytes() != (other / p.relative_to(first)).read_bytes() for p in (first / "cases").glob("*.yaml"))


def test_generated_sample_shows_patterns(generated):
    report = run.run(run.prepare(generated))
    quality = report["aggregates"]["dimensions"]["quality"]["groups"]
    assert quality["provider:NPS"]["exact_percent"] > quality["provider:CRC"]["exact_percent"]  # by profile


def _strip_varying(path):
    """report.json's lines without what varies by execution: the run id (line 3), the time, and
    the store's head (last)."""
    text = path.read_text()
    lines = text[:text.index(',\n "store": {')].splitlines()
    assert lines[2].startswith('  "id": ')
    return [line for line in lines[:2] + lines[3:] if '"timestamp":' not in line]


def test_same_inputs_give_byte_identical_reports(qi, generated, tmp_path):
    for name in ("a", "b"):
        assert qi("run", generated, "--out", tmp_path / name, "--db", tmp_path / f"{name}.db").exit_code == 0
    assert _strip_varying(tmp_path / "a" / "report.json") == _strip_varying(tmp_path / "b" / "report.json")
    assert (tmp_path / "a" / "trace.jsonl").read_bytes() == (tmp_path / "b" / "trace.jsonl").read_bytes()


def test_case_order_key_order_and_file_names_change_no_finding(generated, tmp_path):
    rng = random.Random(3)
    shuffled = tmp_path / "shuffled"
    shutil.copytree(generated, shuffled)
    files = sorted((shuffled / "cases").glob("*.yaml"))
    names = [f"{rng.randrange(10**9):09d}.yaml" for _ in files]
    for path, name in zip(files, names):
        data = source.load(path).data
        evidence = list(data["evidence"].items())
        rng.shuffle(evidence)
        keys = list(data)
        rng.shuffle(keys)
        data = {k: data[k] for k in keys}
        data["evidence"] = dict(evidence)
        path.unlink()
        (shuffled / "cases" / name).write_text(generate._yaml(data), encoding="utf-8")
    before, after = run.run(run.prepare(generated)), run.run(run.prepare(shuffled))
    assert _findings(before) == _findings(after)
    assert before["aggregates"]["targets"]["3.1"]["groups"] == after["aggregates"]["targets"]["3.1"]["groups"]
    assert before["sample_judgement"]["ratings"] == after["sample_judgement"]["ratings"]


def test_every_trace_reaches_evidence_in_its_case_file(generated):
    report = run.run(run.prepare(generated))
    for result in report.spool.results():
        lines = Path(result["file"]).read_text(encoding="utf-8").splitlines()
        for finding in result["findings"].values():
            if finding["value"] == "not_assessed":
                continue
            evidence = [n for n in walk(finding["trace"]) if "answer" in n and "item" in n]
            assert evidence, (result["case"], finding)
            for entry in evidence:
                if entry["answer"] == "not_assessed":
                    continue
                path, _, line = entry["at"].rpartition(":")
                assert path == result["file"] and lines[int(line) - 1].strip().startswith(f'"{entry["item"]}":')


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10**6), count=st.integers(1, 12))
def test_no_valid_generated_sample_crashes(tmp_path_factory, seed, count):
    folder = _generate(tmp_path_factory.mktemp("seed") / "sample", count, seed)
    report = run.run(run.prepare(folder))
    assert report["sample"]["cases"] == count
    assert json.loads(json.dumps(report.content)) == report.content


def test_parallel_validation_and_evaluation_match_a_single_process(qi, tmp_path):
    folder = _generate(tmp_path / "sample", 64, 21)  # over 50 files: validation runs in workers too
    shutil.copy(folder / "cases" / "GEN-00003.yaml", folder / "cases" / "GEN-99999.yaml")
    for jobs in ("1", "2"):
        result = qi("run", folder, "--out", tmp_path / f"out{jobs}", "--db", tmp_path / "qi.db", "--jobs", jobs)
        assert result.exit_code == 1 and "GEN-99999.yaml:1:9: duplicate_case" in result.stderr
        assert "first given in" in result.stderr and "GEN-00003.yaml:1" in result.stderr
    (folder / "cases" / "GEN-99999.yaml").unlink()
    for jobs in ("1", "2"):
        assert qi("run", folder, "--out", tmp_path / f"out{jobs}", "--db", tmp_path / "qi.db", "--jobs", jobs
                  ).exit_code == 0
    assert _strip_varying(tmp_path / "out1" / "report.json") == _strip_varying(tmp_path / "out2" / "report.json")
    assert (tmp_path / "out1" / "trace.jsonl").read_bytes() == (tmp_path / "out2" / "trace.jsonl").read_bytes()
