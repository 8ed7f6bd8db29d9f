"""The installed ``qi`` works from a user's own folder.

These tests run the console script that ``pip install`` put beside this interpreter (the one
``.ci/run`` installs), never the source tree's modules, from a temporary working directory holding
no ``rules/``, ``framework/`` or ``cases/``: every command that reads bundled data must find it in
the installed package. Under CI (``CI=true``) a missing or stale install fails; elsewhere it skips,
with the command that installs it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT, SAMPLE

BIN = Path(sys.executable).parent
QI = BIN / ("qi.exe" if os.name == "nt" else "qi")
IN_CI = os.environ.get("CI", "").lower() == "true"


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"the installed qi cannot be tested in CI: {reason}")
    pytest.skip(f"{reason} (run: {BIN / 'pip'} install '.[test]')")


def _installed_package() -> Path:
    """Where the installed qi's ``engine`` package is, asked from outside the source tree."""
    found = subprocess.run([sys.executable, "-I", "-c", "import engine, sys; sys.stdout.write(engine.__file__)"],
                           cwd="/", capture_output=True, text=True, timeout=60)
    if found.returncode != 0:
        _unavailable("qi is not installed in this environment")
    return Path(found.stdout).resolve().parent


@pytest.fixture(scope="module")
def installed() -> Path:
    """The installed console script, checked to be a plain install of this very source tree."""
    if not QI.is_file():
        _unavailable(f"no qi console script at {QI}")
    package = _installed_package()
    if package == (ROOT / "engine").resolve():
        _unavailable(f"qi is installed from the source tree ({package}), not as a package")
    stale = [p.relative_to(ROOT).as_posix() for p in sorted((ROOT / "engine").rglob("*"))
             if p.is_file() and p.suffix in (".py", ".j2", ".css")
             and _digest(package / p.relative_to(ROOT / "engine")) != _digest(p)]
    if _digest(package / "cli.py") != _digest(ROOT / "cli.py"):
        stale.append("cli.py")
    if stale:
        _unavailable(f"the installed qi differs from the source tree ({', '.join(stale[:3])}, ...)")
    return QI


def _digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    """The user's folder: a copy of the example sample under a name of their own, and nothing else."""
    where = tmp_path_factory.mktemp("user")
    shutil.copytree(SAMPLE, where / "nw")
    return where


def qi(installed: Path, home: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home), "XDG_DATA_HOME": str(home / "data"),
           "XDG_CACHE_HOME": str(home / "cache"), "LANG": "C.UTF-8"}
    result = subprocess.run([str(installed), *args], cwd=home, capture_output=True, text=True, env=env,
                            timeout=timeout)
    assert not any((home / name).exists() for name in ("rules", "framework", "cases")), "the folder was changed"
    return result


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stderr}"
    assert "Traceback" not in result.stderr
    return result.stdout


def test_the_installed_qi_is_the_package_not_the_source_tree(installed, home):
    located = subprocess.run([sys.executable, "-I", "-c", "import engine, sys; sys.stdout.write(engine.__file__)"],
                             cwd=home, capture_output=True, text=True)
    assert Path(located.stdout).resolve().parent != (ROOT / "engine").resolve()
    assert "site-packages" in located.stdout


def test_validate_evaluate_and_explain_from_a_users_folder(installed, home):
    assert "0 errors" in qi(installed, home, "validate", "nw").stderr
    # a name outputs give the bundled example opens from anywhere, as rules show does
    assert "checked 19 files: 0 errors" in qi(installed, home, "validate", "cases/north-west-2016").stderr
    evaluated = json.loads(ok(qi(installed, home, "evaluate", "nw/cases/NW-014.yaml", "--format", "json")))
    assert evaluated["findings"]["3.1"]["value"] == "insufficient"
    assert evaluated["ruleset"]["file"] == "rules/hmip-qi-adult-2.0.yaml"  # named by place, not install path
    explained = ok(qi(installed, home, "explain", "nw/cases/NW-014.yaml", "--criterion", "3.3"))
    assert "INSUFFICIENT" in explained and "rules/hmip-qi-adult-2.0.yaml:" in explained
    whatif = ok(qi(installed, home, "explain", "nw/cases/NW-001.yaml", "--criterion", "4.1", "--what-if"))
    assert "4.1 would be sufficient if 4.1.b were yes instead of partly" in whatif
    banded = qi(installed, home, "evaluate", "nw/cases/NW-014.yaml", "--rules", "rules/hmip-qi-adult-2.0-banded.yaml")
    assert "hmip-qi-adult-2.0-banded" in ok(banded)


def test_run_then_the_stored_run_from_a_users_folder(installed, home):
    ran = qi(installed, home, "run", "nw", "--out", "out", "-q")
    ok(ran)
    assert {p.name for p in (home / "out").iterdir()} == {"report.json", "report.md", "report.html",
                                                           "report.docx", "trace.jsonl"}
    assert (home / "data" / "qi" / "qi.db").is_file()  # the default store, under the user's data folder
    report = json.loads((home / "out" / "report.json").read_text())
    assert report["ruleset"]["file"] == "rules/hmip-qi-adult-2.0.yaml"
    # the stored run's inputs are read again (what-if re-evaluates) wherever qi is installed
    whatif = ok(qi(installed, home, "explain", "--run", "1", "--case", "NW-001", "--criterion", "4.1", "--what-if"))
    assert "4.1 would be sufficient if 4.1.b were yes instead of partly" in whatif
    ok(qi(installed, home, "report", "1", "--out", "again", "-q"))
    assert json.loads((home / "again" / "report.json").read_text())["run"]["id"] == report["run"]["id"]
    assert "1 run verified" in ok(qi(installed, home, "runs", "verify"))
    ok(qi(installed, home, "export", "1", "--to", "findings.xlsx"))
    assert (home / "findings.xlsx").stat().st_size > 0


def test_the_second_framework_from_a_users_folder(installed, home):
    """The bundled illustrative framework, its rule set, rule tests and sample, by the names outputs
    give them, from a folder holding none of them; a blank case of its unpaid work sample."""
    db = home / "illustrative.db"
    ok(qi(installed, home, "run", "cases/illustrative-region-2018", "--out", "ill", "--db", str(db), "-q"))
    report = json.loads((home / "ill" / "report.json").read_text())
    assert report["framework"]["id"] == "illustrative-standards" and report["framework"]["file"] == \
        "illustrative-standards-2018.yaml"
    assert "## Ratings" in (home / "ill" / "report.md").read_text()
    assert "0 failed" in ok(qi(installed, home, "rules", "test", "rules/tests/illustrative-standards.yaml"))
    blank = ok(qi(installed, home, "case", "new", "ILL-1", "--provider", "EAST", "--set", "population=unpaid_work",
                  "--framework", "framework/illustrative-standards-2018.yaml"))
    assert "  3.1.1.a: {answer: null" in blank


def test_rules_tools_from_a_users_folder(installed, home):
    linted = qi(installed, home, "rules", "lint")
    assert linted.returncode == 0 and "checked 3 files: 0 errors" in linted.stderr, linted.stderr
    tested = qi(installed, home, "rules", "test", "--format", "json")
    results = json.loads(ok(tested))
    assert results["failed"] == 0 and results["passed"] > 50
    handbook = ok(qi(installed, home, "rules", "doc"))
    assert "hmip-qi-adult-2.0-default" in handbook and "3.1.a" in handbook
    shown = qi(installed, home, "rules", "show", "rules/hmip-qi-adult-2.0.yaml")
    assert ok(shown).startswith("# The default rule set") and "site-packages" in shown.stderr
    diffed = ok(qi(installed, home, "rules", "diff", "rules/hmip-qi-adult-2.0.yaml",
                   "rules/hmip-qi-adult-2.0-banded.yaml", "--sample", "nw"))
    assert "Before: hmip-qi-adult-2.0-default" in diffed and "After: hmip-qi-adult-2.0-banded" in diffed
    # a team's own option on the default, in their own folder, extends the installed file by its name
    (home / "mine.yaml").write_text('extends: hmip-qi-adult-2.0.yaml\nid: mine\ntitle: Ours\nversion: "0.1"\n'
                                    'option: true\nrules: []\n', encoding="utf-8")
    linted = qi(installed, home, "rules", "lint", "mine.yaml")
    assert linted.returncode == 0 and "0 errors" in linted.stderr, linted.stderr
    ours = ok(qi(installed, home, "rules", "diff", "rules/hmip-qi-adult-2.0.yaml", "mine.yaml", "--sample", "nw"))
    assert "After: mine 0.1" in ours


def test_framework_schema_and_case_files_from_a_users_folder(installed, home):
    assert "Assessment" in ok(qi(installed, home, "framework", "show", "3.1"))
    schema = json.loads(ok(qi(installed, home, "schema", "case")))
    assert "evidence" in schema["properties"]
    blank = ok(qi(installed, home, "case", "new", "X-1", "--provider", "CRC", "--set", "sentence.type=licence"))
    assert "\ncase: \"X-1\"\n" in blank and "qi validate X-1.yaml" in blank
    ok(qi(installed, home, "cases", "export", "nw", "--to", "book.xlsx"))
    ok(qi(installed, home, "cases", "import", "book.xlsx", "--out", "nw-again"))
    assert len(list((home / "nw-again" / "cases").glob("*.yaml"))) == 14


def test_serve_starts_from_a_users_folder(installed, home):
    ok(qi(installed, home, "run", "nw", "--out", "served", "--db", "serve.db", "-q"))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home), "LANG": "C.UTF-8"}
    process = subprocess.Popen([str(installed), "serve", "--db", "serve.db", "--port", str(port)], cwd=home,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/") as response:
                    page = response.read().decode()
                break
            except OSError:
                assert process.poll() is None, process.stderr.read()
                assert time.monotonic() < deadline, "qi serve did not start"
                time.sleep(0.3)
        assert "north-west-2016" in page
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/rules") as response:
            listing = response.read().decode()  # the bundled rule sets and samples, read from the package
        assert "hmip-qi-adult-2.0-banded.yaml/try" in listing
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/rules/hmip-qi-adult-2.0.yaml/handbook") as response:
            assert "3.1.a" in response.read().decode()
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_readme_s_review_loop_as_a_team_from_a_users_folder(installed, tmp_path):
    """The README's review loop, run as its reader would run it (bash, the installed qi first on the
    PATH): two accounts, the reviewer decides, the QA lead's sign-off refused while anything is
    open and then recorded under the account; every step's exit code as the README says."""
    import re

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("as a team of two:\n\n```sh\n", 1)[1].split("```", 1)[0]
    steps = block.replace("\\\n", " ").splitlines()
    script = ["set -u"]
    expected = []
    for step in steps:
        script.append(step)
        if step.startswith("qi "):
            script.append('echo "__exit=$?"')
            expected.append(1 if "# exit 1" in step else 0)
    (tmp_path / ".config" / "qi").mkdir(parents=True)
    for name in ("r.patel", "s.khan"):
        (tmp_path / ".config" / "qi" / f"{name}.pw").write_text(f"the password of {name}, long\n")
    env = {"PATH": f"{installed.parent}:{os.environ.get('PATH', '')}", "HOME": str(tmp_path),
           "XDG_DATA_HOME": str(tmp_path / "data"), "XDG_CACHE_HOME": str(tmp_path / "cache"), "LANG": "C.UTF-8"}
    ran = subprocess.run(["bash", "-c", "\n".join(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=600)
    assert [int(code) for code in re.findall(r"__exit=(\d+)", ran.stdout)] == expected, ran.stderr[-3000:]
    assert "Traceback" not in ran.stderr
    assert "run 1 signed off by s.khan (qa lead)" in ran.stdout
    assert "NW-014 3.3: engine insufficient, inspector sufficient [override by r.patel (reviewer)]" in ran.stdout
    assert "not_permitted" not in ran.stderr and "NW-007 3.1 is open" in ran.stderr


def test_the_readme_s_postgresql_set_up_from_a_users_folder(installed, tmp_path):
    """The README's team set-up on PostgreSQL, its qi steps run with the installed qi from a user's
    folder on a new database of the test server (the server's own set-up, apt-get and createdb,
    is the administrator's; `qi serve` is tested elsewhere): accounts, a run, then the review loop
    on the shared store, verified, and who decided named."""
    from tests import stores

    database = stores.new_database()
    try:
        readme = (ROOT / "README.md").read_text(encoding="utf-8")
        block = readme.split("Set-up on Debian, end to end", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
        steps = [line.split("  #", 1)[0].strip() for line in block.splitlines()]
        steps = [f"export QI_DB={database}" if step.startswith("export QI_DB=") else step for step in steps
                 if step.startswith(("qi ", "export QI_DB=")) and not step.startswith("qi serve")]
        assert len(steps) == 5, steps
        script = ["set -eu", *steps,
                  "for finding in NW-001:3.2 NW-007:3.1 NW-014:3.3; do qi review 1 --case ${finding%:*} "
                  "--criterion ${finding#*:} --decision agree --as r.patel --password-file r.patel.pw; done",
                  "qi runs signoff 1 --as s.khan --password-file s.khan.pw", "qi runs verify", "qi runs show 1"]
        for name in ("a.admin", "s.khan", "r.patel"):
            (tmp_path / f"{name}.pw").write_text(f"the password of {name}, long\n")
        env = {"PATH": f"{installed.parent}:{os.environ.get('PATH', '')}", "HOME": str(tmp_path),
               "XDG_DATA_HOME": str(tmp_path / "data"), "XDG_CACHE_HOME": str(tmp_path / "cache"), "LANG": "C.UTF-8"}
        ran = subprocess.run(["bash", "-c", "\n".join(script)], cwd=tmp_path, env=env, capture_output=True,
                             text=True, timeout=600)
        assert ran.returncode == 0, ran.stderr[-3000:]
        assert "1 run verified" in ran.stdout and "run 1 signed off by s.khan (qa lead)" in ran.stdout
        assert "NW-014 3.3: engine insufficient, inspector sufficient [agree by r.patel (reviewer)]" in ran.stdout
        assert not (tmp_path / "data").exists()  # nothing went to a local store
    finally:
        stores.drop(database)
