"""Fuzzing qi's input stages with hypothesis: the YAML reader, case validation (and judging the
cases that validate) and the rule-set loader (and compiling and running the rule sets that load).

Not part of the default test run. Run it for a time budget::

    .venv/bin/python -m tests.fuzz --minutes 10            # all three targets, time shared
    .venv/bin/python -m tests.fuzz --minutes 3 --target rules

The only acceptable outcomes for any input are a result or an ``InputError`` (diagnostics). Any
other exception — and any input taking longer than ``--slow`` seconds — is a finding: the input is
written to ``tests/fixtures/fuzz/<target>-<sha256 prefix>.yaml`` with a ``.txt`` beside it saying
what happened, and ``tests/test_fuzz_fixtures.py`` replays every fixture there on each test run, so
a crash once found stays fixed. The input being tried is kept in ``tests/fixtures/fuzz/.pending-*``
until it finishes, so an input that kills the process (a segfault in the rules engine) is promoted
to a fixture by the next run.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import random
import sys
import time
import traceback
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "fuzz"
SAMPLE = ROOT / "cases" / "north-west-2016"
DEFAULT_RULES = ROOT / "rules" / "hmip-qi-adult-2.0.yaml"
TARGETS = ("yaml", "case", "rules")


# --- what each target does with an input (shared with tests/test_fuzz_fixtures.py) -----------------

_state: dict = {}


def _framework():
    from engine.check import framework as frameworks
    if "framework" not in _state:
        _state["framework"] = frameworks.load(frameworks.default_path())
    return _state["framework"]


def _compiled():
    from engine.run import pipeline
    if "compiled" not in _state:
        _state["compiled"] = pipeline.compiled_rules(DEFAULT_RULES)
    return _state["compiled"]


def run_yaml(raw: bytes) -> None:
    from engine.load import source
    source.parse(raw, "fuzz.yaml")


def run_case(raw: bytes) -> None:
    """Read and validate a case file; judge it if it is valid, and render its traces."""
    from engine.check import sample, validate
    from engine.load import source
    from engine.report import views
    from engine.run import pipeline
    document = source.parse(raw, "fuzz.yaml")
    kind = validate.kind_of(document)
    model = validate.to_model(document, kind, _framework() if kind in ("case", "organisation") else None)
    if kind != "case":
        return
    loaded = sample.Loaded(document, model)
    sample.warnings_for(loaded)
    result = pipeline.case_result(_compiled(), loaded)
    views.result_text(result)
    for finding in result["findings"].values():
        views.tree_text(finding["trace"])


def run_rules(raw: bytes) -> None:
    """Load a rule set, compile all three sections, and judge one example case with it."""
    from engine.check import rules, sample, validate
    from engine.compile import compile as compiler
    from engine.load import source
    from engine.run import pipeline
    document = source.parse(raw, "fuzz.yaml")
    loaded = rules.from_document(document, _framework())
    compiled = compiler.compile_rules(loaded)
    compiler.compile_organisation(loaded)
    compiler.compile_sample(loaded)
    case_document = source.load(SAMPLE / "cases" / "NW-014.yaml")
    case = sample.Loaded(case_document, validate.to_model(case_document, "case", _framework()))
    pipeline.case_result(compiled, case)


RUNNERS = {"yaml": run_yaml, "case": run_case, "rules": run_rules}


def outcome(target: str, raw: bytes) -> str | None:
    """None when qi handled the input (a result or diagnostics); else what went wrong."""
    from engine.base.diagnostics import InputError
    try:
        RUNNERS[target](raw)
    except InputError:
        return None
    except Exception as error:  # noqa: BLE001 - anything else is the finding
        frames = traceback.extract_tb(error.__traceback__)
        where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "?"
        return f"{type(error).__name__} at {where}: {str(error)[:300]}"
    return None


# --- inputs ------------------------------------------------------------------------------------------

SPICE = ["&a ", "*a", "<<: *a", "!!str ", "!!binary ", "!!python/object:os.system ", "!x ", "? ", "- ", ": ", "{", "}",
         "[", "]", ",", "#", "|", ">", "'", '"', "\\e", "\\x9b", "\\u202e", "\\0", "\\N", "\\L", "\\_", "\t", "\r",
         "\n", "\n  ", "---\n", "...\n", "%YAML 1.1\n", "%TAG ! tag:x,2000:\n", "\ufeff", "\x00", "\x85", "\u2028",
         "yes", "no", "null", "~", "0x1f", "0o17", "1e400", ".nan", "-.inf", "2016-02-30", "2016-01-01T25:00:00",
         "99999999999999999999999", "0", "-1", "true", "3.1.a", "6.1.a", "NW-001", "nw-001", "../x", "\u00e9"]


def _scalar():
    return st.one_of(
        st.text(max_size=30), st.integers(), st.floats(allow_nan=True), st.booleans(), st.none(),
        st.dates(min_value=datetime.date(1, 1, 1)), st.sampled_from(SPICE),
        st.sampled_from(["yes", "no", "partly", "not_applicable", "NPS", "CRC", "custody", "licence", "female",
                         "male", "high", "low", "oasys", "child_safeguarding", "3.1", "3", "sufficient",
                         "insufficient"]))


_VALUES = st.recursive(_scalar(), lambda inner: st.one_of(
    st.lists(inner, max_size=5), st.dictionaries(st.one_of(st.text(max_size=12), st.sampled_from(SPICE)), inner,
                                                 max_size=5)), max_leaves=20)


def _dump(data) -> bytes:
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False, default_flow_style=None).encode("utf-8")


@st.composite
def spliced(draw, base: bytes) -> bytes:
    """``base`` with a few fragments inserted, deleted or swapped at random places."""
    text = base.decode("utf-8", "replace")
    for _ in range(draw(st.integers(1, 6))):
        position = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(["insert", "delete", "duplicate_line", "swap"]))
        if action == "insert":
            text = text[:position] + draw(st.one_of(st.sampled_from(SPICE), st.text(max_size=8))) + text[position:]
        elif action == "delete":
            text = text[:position] + text[position + draw(st.integers(1, 40)):]
        elif action == "duplicate_line":
            lines = text.split("\n")
            index = draw(st.integers(0, max(0, len(lines) - 1)))
            lines.insert(index, lines[index] if lines else "")
            text = "\n".join(lines)
        else:
            other = draw(st.integers(0, len(text)))
            a, b = sorted((position, other))
            text = text[:a] + text[b:b + 20] + text[a + 20:b] + text[a:a + 20] + text[b + 20:]
    return text.encode("utf-8", "surrogatepass")


def _edit(draw, data):
    """A structural edit of plain data: replace, delete or add somewhere in the tree."""
    node = data
    path = []
    while isinstance(node, (dict, list)) and node and draw(st.booleans()):
        key = draw(st.sampled_from(sorted(node, key=str) if isinstance(node, dict) else list(range(len(node)))))
        path.append(key)
        node = node[key]
    parent = data
    for key in path[:-1]:
        parent = parent[key]
    action = draw(st.sampled_from(["replace", "delete", "add"]))
    if not path:
        if isinstance(data, dict):
            data[draw(st.one_of(st.text(max_size=12), st.sampled_from(SPICE)))] = draw(_VALUES)
        return data
    last = path[-1]
    if action == "replace":
        parent[last] = draw(_VALUES)
    elif action == "delete":
        del parent[last]
    elif isinstance(parent, dict):
        parent[draw(st.one_of(st.text(max_size=12), st.sampled_from(SPICE)))] = draw(_VALUES)
    else:
        parent.insert(draw(st.integers(0, len(parent))), draw(_VALUES))
    return data


def _cached(name: str, make):
    if name not in _state:
        _state[name] = make()
    return _state[name]


def _case_bases() -> list[tuple[bytes, dict]]:
    from engine.load import source
    return [(path.read_bytes(), source.load(path).data) for path in sorted((SAMPLE / "cases").glob("*.yaml"))]


def _rules_base() -> tuple[bytes, dict]:
    from engine.load import source
    return DEFAULT_RULES.read_bytes(), source.load(DEFAULT_RULES).data


def _plain(value):
    """Loaded data as plain YAML-dumpable values (dates stay dates)."""
    return json.loads(json.dumps(value, default=str)) if not isinstance(value, (dict, list)) else (
        {str(k): _plain(v) for k, v in value.items()} if isinstance(value, dict) else [_plain(v) for v in value])


@st.composite
def yaml_inputs(draw) -> bytes:
    choice = draw(st.integers(0, 3))
    if choice == 0:
        return draw(st.binary(max_size=300))
    if choice == 1:
        return _dump(draw(_VALUES))
    bases = [raw for raw, _ in _cached("cases", _case_bases)[:3]] + [b"a: &a [x, *a]\n", b"k: v\n"]
    return draw(spliced(draw(st.sampled_from(bases))))


@st.composite
def case_inputs(draw) -> bytes:
    raw, data = draw(st.sampled_from(_cached("cases", _case_bases)))
    if draw(st.integers(0, 3)) == 0:
        return draw(spliced(raw))
    data = json.loads(json.dumps(data, default=str))
    for _ in range(draw(st.integers(1, 4))):
        data = _edit(draw, data)
    return _dump(data)


@st.composite
def rules_inputs(draw) -> bytes:
    raw, data = _cached("rules", _rules_base)
    data = json.loads(json.dumps(data, default=str))
    # a few rules of each section keep each example fast; the header, facts and settings stay
    for section in ("rules", "organisation_rules", "sample_rules"):
        if isinstance(data.get(section), list) and data[section]:
            count = draw(st.integers(1 if section == "rules" else 0, min(6, len(data[section]))))
            start = draw(st.integers(0, len(data[section]) - count))
            data[section] = data[section][start:start + count]
    if draw(st.integers(0, 4)) == 0:
        return draw(spliced(_dump(data)))
    for _ in range(draw(st.integers(1, 4))):
        data = _edit(draw, data)
    return _dump(data)


STRATEGIES = {"yaml": yaml_inputs, "case": case_inputs, "rules": rules_inputs}


# --- the loop ------------------------------------------------------------------------------------------


def record(target: str, raw: bytes, what: str) -> Path:
    FIXTURES.mkdir(parents=True, exist_ok=True)
    name = f"{target}-{hashlib.sha256(raw).hexdigest()[:16]}"
    (FIXTURES / f"{name}.yaml").write_bytes(raw)
    (FIXTURES / f"{name}.txt").write_text(what + "\n", encoding="utf-8")
    return FIXTURES / f"{name}.yaml"


def _promote_pending(found: list) -> None:
    for pending in sorted(FIXTURES.glob(".pending-*.yaml")) if FIXTURES.is_dir() else []:
        target = pending.name.removeprefix(".pending-").removesuffix(".yaml")
        found.append(record(target, pending.read_bytes(), "the process died on this input (found pending)"))
        pending.unlink()


def fuzz(target: str, seconds: float, slow: float, found: list, stats: dict) -> None:
    deadline = time.monotonic() + seconds
    seen = {(p.name.split("-", 1)[0], p.read_text(encoding="utf-8").split(": ", 1)[0].strip())
            for p in FIXTURES.glob("*.txt")} if FIXTURES.is_dir() else set()
    pending = FIXTURES / f".pending-{target}.yaml"
    FIXTURES.mkdir(parents=True, exist_ok=True)

    @settings(max_examples=200, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck))
    @given(STRATEGIES[target]())
    def one(raw: bytes) -> None:
        if time.monotonic() > deadline:
            return
        FIXTURES.mkdir(parents=True, exist_ok=True)
        pending.write_bytes(raw)
        started = time.monotonic()
        try:
            what = outcome(target, raw)
        finally:  # not reached if the process dies: the next run finds the input pending
            pending.unlink()
        took = time.monotonic() - started
        stats[target] = stats.get(target, 0) + 1
        if what is None and took > slow:
            what = f"slow: took {took:.1f} s (more than {slow:g} s)"
        signature = what.split(": ", 1)[0] if what else None  # the exception and where, or "took N s"
        if what is not None and (target, signature) not in seen:
            seen.add((target, signature))  # one fixture per distinct failure, not one per input
            path = record(target, raw, what)
            found.append(path)
            print(f"  finding: {path.name}: {what}", file=sys.stderr)

    while time.monotonic() < deadline:
        one()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10, help="total time, shared between targets")
    parser.add_argument("--target", choices=TARGETS, action="append", help="target(s) to fuzz (default: all)")
    parser.add_argument("--slow", type=float, default=10, help="seconds after which an input is a finding")
    parser.add_argument("--seed", type=int, help="seed Python's random module (hypothesis draws its own)")
    args = parser.parse_args(argv)
    if args.seed is not None:
        random.seed(args.seed)
    targets = args.target or list(TARGETS)
    found: list[Path] = []
    _promote_pending(found)
    stats: dict[str, int] = {}
    for target in targets:
        print(f"fuzzing {target} for {args.minutes / len(targets):.1f} min", file=sys.stderr)
        fuzz(target, args.minutes * 60 / len(targets), args.slow, found, stats)
    print(json.dumps({"inputs_tried": stats, "findings": [p.name for p in found]}, indent=1))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
