"""The qi benchmark: throughput, scale and parallelism, measured in one run on this machine.

    python bench/benchmark.py [--quick]

Writes bench/results.json and prints a table. Measures, on the default rule set and generated
samples (qi sample generate):

* per-case throughput of the full pipeline (read and validate the case file, build its facts,
  evaluate on durable_rules, judge, trace), and of qi's evaluation alone (phases, facts, actions),
  against raw durable_rules evaluation of the same compiled rulesets (the same facts asserted
  straight into the same chunks: no models, no tracing) — the engine's overhead as ratios;
* ``qi run`` wall time and peak memory for 100, 1,000 and 10,000 cases;
* the speed-up of ``--jobs 2`` over ``--jobs 1``;
* the audit store's growth per case per run (``--store-only`` measures just that, keeping the rest
  of results.json).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.check import sample  # noqa: E402
from engine.compile import (
    conditions,  # noqa: E402
    facts,  # noqa: E402
)
from engine.evaluate import evaluate  # noqa: E402
from engine.run import pipeline  # noqa: E402

TARGETS = {"pipeline_vs_raw": 0.70, "scale_10k_over_1k": 10.5, "peak_memory_mb_10k": 500, "jobs2_speedup": 1.7}


def generate(count: int, folder: Path) -> Path:
    out = folder / f"sample-{count}"
    subprocess.run([sys.executable, "-c", "import cli; cli.main()", "sample", "generate", "--cases", str(count),
                    "--seed", "2016", "--out", str(out)], cwd=ROOT, check=True, capture_output=True)
    return out


def throughput(sample_dir: Path) -> dict:
    """Cases per second: the full per-case pipeline, and raw durable_rules on the same rulesets."""
    compiled = pipeline.compiled_rules(ROOT / "rules" / "hmip-qi-adult-2.0.yaml")
    handles = sample.load(sample_dir).cases
    framework = compiled.loaded.framework
    for handle in handles[:20]:  # warm up: register every chunk, fill caches
        pipeline.case_result(compiled, handle.load())
    start = time.perf_counter()
    for handle in handles:
        pipeline.case_result(compiled, handle.load())
    full = time.perf_counter() - start
    # raw: the facts each phase would assert, computed beforehand, asserted straight into the chunks
    prepared = []
    for handle in handles:
        attributes = facts.case_attributes(handle.load().model, framework)
        fired: set[int] = set()
        phases = []
        for number, chunks in enumerate(compiled.phases):
            fact = {**attributes, "kind": facts.FACT_KIND, **evaluate.derived_attributes(compiled, fired)}
            phases.append([(chunk, {a: fact[a] for a in chunk.reads}) for chunk in chunks])
            fired |= {r.index for r in compiled.rules if r.phase == number and conditions.holds(r.condition, fact)}
        prepared.append(phases)
    attributes_of = [facts.case_attributes(handle.load().model, framework) for handle in handles]
    start = time.perf_counter()
    for attributes in attributes_of:
        evaluate.evaluate(compiled, attributes)
    engine_only = time.perf_counter() - start
    host = evaluate._get_host()
    session = 10_000_000
    start = time.perf_counter()
    for phases in prepared:
        for chunks in phases:
            for chunk, fact in chunks:
                session += 1
                host.assert_fact(chunk.name, {**fact, "kind": facts.FACT_KIND, "sid": str(session), "id": "case"})
                host.delete_state(chunk.name, str(session))
    raw = time.perf_counter() - start
    count = len(handles)
    return {"cases": count, "full_pipeline_cases_per_s": round(count / full, 1),
            "qi_evaluate_cases_per_s": round(count / engine_only, 1),
            "raw_durable_cases_per_s": round(count / raw, 1), "pipeline_vs_raw": round(raw / full, 3),
            "qi_evaluate_vs_raw": round(raw / engine_only, 3)}


_RUN = """
import resource, sys, time
import cli
start = time.perf_counter()
try:
    cli.main()
except SystemExit as done:
    code = done.code
finally:
    print("BENCH", time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
"""


def qi_run(sample_dir: Path, folder: Path, jobs: int = 1, db: Path | None = None, out: Path | None = None) -> dict:
    out = out or folder / f"out-{sample_dir.name}-{jobs}"
    db = db or folder / f"qi-{sample_dir.name}-{jobs}.db"
    result = subprocess.run([sys.executable, "-c", _RUN, "run", str(sample_dir), "--out", str(out), "--db", str(db),
                             "--jobs", str(jobs)], cwd=ROOT, capture_output=True, text=True)
    line = next(l for l in result.stderr.splitlines() if l.startswith("BENCH"))
    seconds, peak_kb = line.split()[1:]
    if result.returncode != 0:
        raise RuntimeError(result.stderr)
    return {"seconds": round(float(seconds), 2), "peak_memory_mb": round(int(peak_kb) / 1024, 1)}


#: The store's growth before traces were compressed (commit 5eaba17, the same 1,000-case sample and
#: method): the baseline the "store" section is compared with.
STORE_BASELINE = {"commit": "5eaba17", "bytes_per_case_per_run": 63_324}
STORE_TARGET_BYTES_PER_CASE = 10_240


def store_growth(sample_dir: Path, folder: Path, runs: int = 2) -> dict:
    """How much the audit store grows per case per run: ``qi run`` into a new store ``runs`` times,
    the growth of the file by the last run (the first also makes the schema), and the time taken."""
    db = folder / f"store-{sample_dir.name}.db"
    sizes, seconds = [], []
    for n in range(runs):
        seconds.append(qi_run(sample_dir, folder, 1, db=db, out=folder / f"store-out-{n}")["seconds"])
        sizes.append(db.stat().st_size)
    cases = len(list((sample_dir / "cases").glob("*.yaml")))
    per_case = round((sizes[-1] - sizes[-2]) / cases)
    return {"cases": cases, "store_bytes_after_each_run": sizes, "run_seconds": seconds,
            "bytes_per_case_per_run": per_case, "target_bytes_per_case": STORE_TARGET_BYTES_PER_CASE,
            "met": per_case <= STORE_TARGET_BYTES_PER_CASE, "baseline": STORE_BASELINE,
            "reduction": round(STORE_BASELINE["bytes_per_case_per_run"] / per_case, 1)}


def output_path(quick: bool, given: str | None) -> str:
    """Where results go: a quick run never replaces the committed full results."""
    full = ROOT / "bench" / "results.json"
    if given is None:
        return str(full.with_name("results-quick.json") if quick else full)
    if quick and Path(given).resolve() == full.resolve():
        raise SystemExit(f"--quick would overwrite the full results in {full}; choose another --output")
    return given


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="100 and 1,000 cases only (no 10,000); results go to bench/results-quick.json, "
                             "never over the committed full results")
    parser.add_argument("--output", help="results file (default: bench/results.json, or results-quick.json "
                                         "with --quick)")
    parser.add_argument("--store-only", action="store_true",
                        help="measure only the audit store's growth, keeping the other results in --output")
    options = parser.parse_args()
    options.output = output_path(options.quick, options.output)
    if options.store_only:
        with tempfile.TemporaryDirectory() as temporary:
            results = json.loads(Path(options.output).read_text()) if Path(options.output).exists() else {}
            results["store"] = {"date": datetime.date.today().isoformat(),
                                **store_growth(generate(1000, Path(temporary)), Path(temporary))}
        Path(options.output).write_text(json.dumps(results, indent=2) + "\n")
        print(json.dumps(results["store"], indent=2))
        return
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        sizes = [100, 1000] if options.quick else [100, 1000, 10000]
        samples = {n: generate(n, folder) for n in sizes}
        results = {"machine": {"platform": platform.platform(), "processor": platform.machine(),
                               "cpus": os.cpu_count(), "python": platform.python_version()},
                   "date": datetime.date.today().isoformat(), "targets": TARGETS}
        results["throughput"] = throughput(samples[1000])
        results["qi_run"] = {str(n): qi_run(samples[n], folder) for n in sizes}
        results["jobs"] = {"jobs_1": results["qi_run"]["1000"], "jobs_2": qi_run(samples[1000], folder, 2)}
        results["jobs"]["speedup"] = round(results["jobs"]["jobs_1"]["seconds"] / results["jobs"]["jobs_2"]["seconds"], 2)
        results["store"] = store_growth(samples[1000], folder)
        if "10000" in results["qi_run"]:
            results["scale_10k_over_1k"] = round(results["qi_run"]["10000"]["seconds"]
                                                 / results["qi_run"]["1000"]["seconds"], 2)
    Path(options.output).write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
