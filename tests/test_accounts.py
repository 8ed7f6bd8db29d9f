"""Accounts and roles: who may record what, on the command line and in the workspace.

A store with accounts records every decision and sign-off under an authenticated account and its
role; a store without them under the operating-system user. The tests on a team's store run on
both backends, an SQLite file and a PostgreSQL database (tests/stores.py). These tests drive ``qi users``,
``qi review --as`` and the workspace's logins as people would, and attack them: wrong and missing
passwords, disabled accounts, roles that may not, forged and replayed sessions, an open redirect,
a flood of guesses, and edits to the stored role.
"""

from __future__ import annotations

import json
import re

import pytest
from starlette.testclient import TestClient

from engine.serve import login
from engine.store import accounts, review
from engine.store import store as audit
from tests import stores
from tests.conftest import SAMPLE

PASSWORD = "a long shared test password"
#: One account per role.
TEAM = {"ines": "inspector", "ann": "reviewer", "rob": "reviewer", "quinn": "qa_lead", "mo": "methodology",
        "ada": "admin"}
#: The team's administrator, as the API takes one (the store's accounts are changed by her).
ADA = accounts.Actor("ada", "admin", accounts.ACCOUNT)


def admin(password_file) -> tuple:
    return ("--as", "ada", "--admin-password-file", password_file)


@pytest.fixture(scope="module", params=stores.BACKENDS)
def base_store(request, tmp_path_factory):
    """A store holding one run of the example sample and an account for each role, on each backend."""
    from click.testing import CliRunner

    import cli

    root = tmp_path_factory.mktemp("accounts")
    db = stores.empty_store(request.param, root)
    (root / "password").write_text(PASSWORD + "\n")
    ran = CliRunner().invoke(cli.cli, ["run", str(SAMPLE), "--out", str(root / "out"), "--db", str(db), "-q"])
    assert ran.exit_code == 0, ran.stderr
    for name, role in TEAM.items():
        added = CliRunner().invoke(cli.cli, ["users", "add", name, "--role", role, "--password-file",
                                             str(root / "password"), "--db", str(db)])
        assert added.exit_code == 0, added.stderr
    yield db
    if stores.is_postgres(db):
        stores.drop(db)


@pytest.fixture
def team(base_store, tmp_path):
    """A fresh copy of the store, and the password file."""
    db = stores.copy(base_store, tmp_path)
    if not stores.is_postgres(db):
        db.chmod(0o600)
    (tmp_path / "password").write_text(PASSWORD + "\n")
    yield db, tmp_path / "password"
    if stores.is_postgres(db):
        stores.drop(db)


def decisions(db) -> list[tuple]:
    return stores.rows(db, "SELECT reviewer, role, identity, decision FROM decisions ORDER BY id")


def as_(name: str, password_file) -> tuple:
    return ("--as", name, "--password-file", password_file)


# --- qi users ---


def test_users_add_list_disable_enable_passwd_role(qi, tmp_path):
    db, password = tmp_path / "new" / "qi.db", tmp_path / "pw"
    password.write_text(PASSWORD + "\n")
    assert qi("users", "list", "--db", db).exit_code == 1  # no store yet: nothing is created by a read
    assert not db.exists()
    added = qi("users", "add", "ann", "--role", "reviewer", "--password-file", password, "--db", db)
    assert added.exit_code == 0 and "account ann added: reviewer" in added.stdout
    assert db.stat().st_mode & 0o077 == 0  # the new store is the owner's only
    assert qi("users", "disable", "ann", "--db", db).exit_code == 0
    assert qi("users", "role", "ann", "qa_lead", "--db", db).exit_code == 0
    listed = json.loads(qi("users", "list", "--db", db, "--format", "json").stdout)["accounts"]
    assert [(a["name"], a["role"], a["disabled"]) for a in listed] == [("ann", "qa_lead", True)]
    assert set(listed[0]) == {"name", "role", "disabled", "created_at", "updated_at"}  # never the hash
    assert qi("users", "enable", "ann", "--db", db).exit_code == 0
    new = tmp_path / "new-pw"
    new.write_text("another long password\r\n")  # a Windows line ending is not part of it
    assert qi("users", "passwd", "ann", "--password-file", new, "--db", db).exit_code == 0
    with audit.Store.open(db) as store:
        assert accounts.authenticate(store, "ann", "another long password") == accounts.Actor(
            "ann", "qa_lead", accounts.ACCOUNT)
        with pytest.raises(audit.InputError):
            accounts.authenticate(store, "ann", PASSWORD)
    stored = db.read_bytes()
    assert b"another long password" not in stored and PASSWORD.encode() not in stored
    assert stores.rows(db, "SELECT password_hash FROM users")[0][0].startswith("$argon2id$")
    assert qi("runs", "verify", "--db", db).exit_code == 0  # accounts are not links of the chain


def test_users_add_reports_every_problem_at_once_and_creates_nothing(qi, tmp_path):
    (tmp_path / "short").write_text("tiny\n")
    refused = qi("users", "add", "not a name", "--role", "reviewer", "--password-file", tmp_path / "short",
                 "--db", tmp_path / "qi.db")
    assert refused.exit_code == 1 and "invalid_account_name" in refused.stderr and "weak_password" in refused.stderr
    assert "Traceback" not in refused.stderr and not (tmp_path / "qi.db").exists()
    missing = qi("users", "add", "ann", "--role", "reviewer", "--password-file", tmp_path / "nope",
                 "--db", tmp_path / "qi.db")
    assert missing.exit_code == 1 and "password_file" in missing.stderr
    (tmp_path / "binary").write_bytes(b"\xff\xfe long enough bytes")
    assert "not UTF-8" in qi("users", "add", "ann", "--role", "reviewer", "--password-file", tmp_path / "binary",
                             "--db", tmp_path / "qi.db").stderr
    role = qi("users", "add", "ann", "--role", "boss", "--password-file", tmp_path / "short", "--db", tmp_path / "q")
    assert role.exit_code == 2 and "'boss' is not one of" in role.stderr


def test_users_add_refuses_a_taken_name_and_change_an_unknown_one(qi, team):
    db, password = team
    taken = qi("users", "add", "Ann", "--role", "admin", "--password-file", password, "--db", db, *admin(password))
    assert taken.exit_code == 1 and "account_exists" in taken.stderr
    unknown = qi("users", "disable", "anne", "--db", db, *admin(password))
    assert unknown.exit_code == 1 and "unknown_account" in unknown.stderr and "ann" in unknown.stderr
    with audit.Store.open(db) as store:
        assert {a.name: a.role for a in accounts.accounts(store)} == TEAM


def test_a_password_can_come_from_standard_input(qi, tmp_path):
    from click.testing import CliRunner

    import cli

    db = tmp_path / "qi.db"
    added = CliRunner().invoke(cli.cli, ["users", "add", "ann", "--role", "reviewer", "--password-file", "-",
                                         "--db", str(db)], input=PASSWORD + "\n")
    assert added.exit_code == 0, added.stderr
    with audit.Store.open(db) as store:
        assert accounts.authenticate(store, "ann", PASSWORD).role == "reviewer"


# --- decisions and sign-offs on the command line ---


def test_a_store_with_accounts_records_only_an_authenticated_account_with_the_role(qi, team, tmp_path):
    db, password = team
    decide = ("review", "1", "--db", db, "--case", "NW-014", "--criterion", "3.3", "--decision", "agree")
    without = qi(*decide)
    assert without.exit_code == 1 and "account_required" in without.stderr
    (tmp_path / "wrong").write_text("not the password at all\n")
    for name, file in (("ann", tmp_path / "wrong"), ("nobody", password), ("ANN", password)):
        failed = qi(*decide, *as_(name, file))
        assert failed.exit_code == 1 and "login_failed" in failed.stderr
    for name in ("ines", "mo", "ada"):
        refused = qi(*decide, *as_(name, password))
        assert refused.exit_code == 1 and "not_permitted" in refused.stderr and "may record a decision" in refused.stderr
    typed = qi(*decide, "--reviewer", "Someone Else")
    assert typed.exit_code == 2 and "typed name is no longer recorded" in typed.stderr
    half = qi(*decide, "--password-file", password)
    assert half.exit_code == 2 and "without --as" in half.stderr
    assert decisions(db) == []
    made = qi(*decide, *as_("ann", password))
    assert made.exit_code == 0 and "by ann (reviewer)" in made.stdout
    assert qi("users", "disable", "ann", "--db", db, *admin(password)).exit_code == 0
    disabled = qi(*decide, *as_("ann", password))
    assert disabled.exit_code == 1 and "login_failed" in disabled.stderr
    assert decisions(db) == [("ann", "reviewer", "account", "agree")]
    assert qi("runs", "verify", "--db", db).exit_code == 0


def _decide_all(qi, db, password, name: str) -> None:
    for case, criterion in (("NW-001", "3.2"), ("NW-007", "3.1"), ("NW-014", "3.3")):
        made = qi("review", "1", "--db", db, "--case", case, "--criterion", criterion, "--decision", "agree",
                  *as_(name, password))
        assert made.exit_code == 0, made.stderr


def test_only_a_qa_lead_signs_off_and_not_a_run_they_alone_decided(qi, team):
    db, password = team
    _decide_all(qi, db, password, "quinn")
    for name in ("ann", "mo", "ines", "ada"):
        refused = qi("runs", "signoff", "1", "--db", db, *as_(name, password))
        assert refused.exit_code == 1 and "not_permitted" in refused.stderr
    alone = qi("runs", "signoff", "1", "--db", db, *as_("quinn", password))
    assert alone.exit_code == 1 and "not_independent" in alone.stderr and "3 findings" in alone.stderr
    _decide_all(qi, db, password, "ann")  # a second person decides each finding after
    overridden = qi("review", "1", "--db", db, "--case", "NW-014", "--criterion", "3.3", "--decision", "override",
                    "--finding", "insufficient", "--reason", "mine", *as_("quinn", password))
    assert overridden.exit_code == 0
    after = qi("runs", "signoff", "1", "--db", db, *as_("quinn", password))  # quinn's override is what stands
    assert after.exit_code == 1 and "not_independent" in after.stderr and "NW-014 3.3" in after.stderr
    assert "1 finding " in after.stderr
    assert qi("review", "1", "--db", db, "--case", "NW-014", "--criterion", "3.3", "--decision", "agree",
              *as_("ann", password)).exit_code == 0
    signed = qi("runs", "signoff", "1", "--db", db, *as_("quinn", password))
    assert signed.exit_code == 0 and "signed off by quinn (qa lead)" in signed.stdout
    shown = qi("runs", "show", "1", "--db", db)
    assert "NW-014 3.3: agree by ann (reviewer)" in shown.stdout
    assert "signed off by quinn (qa lead)" in shown.stdout
    as_json = json.loads(qi("runs", "show", "1", "--db", db, "--format", "json").stdout)
    assert {(d["reviewer"], d["role"], d["identity"]) for d in as_json["review"]["history"]} == {
        ("quinn", "qa_lead", "account"), ("ann", "reviewer", "account")}
    assert as_json["review"]["signed"]["role"] == "qa_lead" and as_json["review"]["signed"]["identity"] == "account"
    assert as_json["ruleset"]["review"] == {"independent_signoff": True}
    assert qi("runs", "verify", "--db", db).exit_code == 0


def test_a_rule_set_without_the_policy_lets_a_qa_lead_sign_off_alone(qi, tmp_path):
    from tests.conftest import ROOT

    rules = (ROOT / "rules" / "hmip-qi-adult-2.0.yaml").read_text(encoding="utf-8")
    assert rules.count("review: {independent_signoff: true}\n") == 1
    (tmp_path / "rules.yaml").write_text(rules.replace("review: {independent_signoff: true}\n", ""), encoding="utf-8")
    db, password = tmp_path / "qi.db", tmp_path / "pw"
    password.write_text(PASSWORD + "\n")
    assert qi("run", SAMPLE, "--rules", tmp_path / "rules.yaml", "--out", tmp_path / "out", "--db", db,
              "-q").exit_code == 0
    assert qi("users", "add", "quinn", "--role", "qa_lead", "--password-file", password, "--db", db).exit_code == 0
    _decide_all(qi, db, password, "quinn")
    signed = qi("runs", "signoff", "1", "--db", db, *as_("quinn", password))
    assert signed.exit_code == 0, signed.stderr


@pytest.mark.parametrize("tamper, code", [
    ("UPDATE decisions SET role = 'qa_lead'", "review_mismatch"),      # promoted after the fact
    ("UPDATE decisions SET identity = 'os-user', role = NULL", "review_mismatch"),
    ("UPDATE decisions SET identity = 'root'", "invalid_record"),
    ("UPDATE signoffs SET reviewer = 'ann'", "review_mismatch"),
])
def test_who_decided_and_their_role_are_covered_by_the_chain(qi, team, tamper, code):
    db, password = team
    _decide_all(qi, db, password, "ann")
    assert qi("runs", "signoff", "1", "--db", db, *as_("quinn", password)).exit_code == 0
    assert qi("runs", "verify", "--db", db).exit_code == 0
    stores.sql(db, tamper)
    verified = qi("runs", "verify", "--db", db)
    assert verified.exit_code == 1 and f": {code}: " in verified.stderr


def test_an_api_caller_cannot_pass_off_a_local_user_on_a_store_with_accounts(team):
    db, _ = team
    with audit.Store(db) as store:
        for actor in (accounts.Actor("someone", None, accounts.OS_USER),
                      accounts.Actor("ann", "qa_lead", accounts.ACCOUNT),  # not ann's role
                      accounts.Actor("zed", "reviewer", accounts.ACCOUNT)):  # no such account
            with pytest.raises(audit.InputError) as refused:
                review.record_decision(store, 1, "NW-014", "3.3", "agree", actor)
            assert refused.value.diagnostics[0].code in ("account_required", "account_changed")
    assert decisions(db) == []


# --- the workspace ---


def client(db, base_url: str = "http://127.0.0.1", **options) -> TestClient:
    from engine.serve import app

    return TestClient(app.create(db, **options), base_url=base_url)


def token(web: TestClient, path: str = "/login") -> str:
    return re.search(r'name="csrf" value="([0-9a-f]{64})"', web.get(path).text).group(1)


def log_in(web: TestClient, name: str, password: str = PASSWORD, next: str = "/") -> object:
    return web.post("/login", data={"csrf": token(web), "name": name, "password": password, "next": next},
                    follow_redirects=False)


def test_every_page_needs_a_login_once_the_store_has_accounts(team):
    db, _ = team
    web = client(db)
    for path in ("/", "/runs/1", "/runs/1/cases/NW-014", "/review", "/runs/1/review", "/rules",
                 "/runs/1/charts/criteria.svg", "/rules/hmip-qi-adult-2.0.yaml/try"):
        sent = web.get(path, follow_redirects=False)
        assert sent.status_code == 303 and sent.headers["location"].startswith("/login?next="), path
        assert "NW-0" not in sent.text
    assert web.get("/static/qi.css").status_code == 200
    csrf = token(web)
    for path in ("/runs/1/decisions", "/runs/1/signoff", "/rules/hmip-qi-adult-2.0.yaml/try"):
        refused = web.post(path, data={"csrf": csrf, "case": "NW-014", "criterion": "3.3", "decision": "agree"},
                           follow_redirects=False)
        assert refused.status_code == 403, path
    assert decisions(db) == []


def test_a_login_goes_back_to_the_page_asked_for_and_never_to_another_site(team):
    db, _ = team
    web = client(db)
    asked = web.get("/runs/1/cases/NW-014?x=1", follow_redirects=False).headers["location"]
    next_page = re.search(r"next=([^&]+)", asked).group(1)
    import urllib.parse

    went = log_in(web, "ines", next=urllib.parse.unquote(next_page))
    assert went.status_code == 303 and went.headers["location"] == "/runs/1/cases/NW-014?x=1"
    cookie = went.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax") and "Secure" not in cookie
    assert "ines (inspector)" in web.get("/").text
    for hostile in ("//evil.example/", "https://evil.example/", "/\\evil.example", "evil", "/x\r\nSet-Cookie: a=b"):
        other = client(db)
        assert log_in(other, "ines", next=hostile).headers["location"] == "/"


def test_a_failed_login_says_the_same_whatever_failed_and_is_logged_without_the_password(team):
    from structlog.testing import capture_logs

    db, _ = team
    with audit.Store(db) as store:
        accounts.set_disabled(store, "rob", True, ADA)
    web = client(db)
    with capture_logs() as logged:
        answers = {name: log_in(web, name, password) for name, password in
                   (("ann", "wrong password here"), ("nobody", PASSWORD), ("rob", PASSWORD))}
    messages = {re.search(r'<div class="error" id="errors">(.*?)</div>', r.text, re.S).group(1)
                for r in answers.values()}
    assert all(r.status_code == 403 for r in answers.values()) and len(messages) == 1
    assert [(e["event"], e["account"]) for e in logged] == [("login failed", "ann"), ("login failed", "nobody"),
                                                             ("login failed", "rob")]
    assert "wrong password here" not in repr(logged) and PASSWORD not in repr(logged)
    assert login.COOKIE not in web.cookies


def test_repeated_failures_are_refused_even_with_the_right_password(team):
    db, _ = team
    web = client(db)
    for _ in range(login.MAX_FAILURES):
        assert log_in(web, "ann", "a wrong guess of a password").status_code == 403
    blocked = log_in(web, "ann")
    assert blocked.status_code == 429 and "Too many failed logins" in blocked.text
    assert login.COOKIE not in web.cookies
    assert log_in(TestClient(web.app, base_url="http://127.0.0.1"), "quinn").status_code == 303  # another name
    for guess in range(login.MAX_CLIENT_FAILURES - login.MAX_FAILURES):  # one address, many names
        assert log_in(web, f"name{guess}", "a wrong guess of a password").status_code == 403
    assert log_in(TestClient(web.app, base_url="http://127.0.0.1"), "rob").status_code == 429
    assert log_in(client(db), "ann").status_code == 303  # counted per workspace: a restart starts again


def test_guesses_sent_at_once_are_counted_as_they_arrive(team):
    """Forty wrong passwords for one account at the same moment: only the first few are checked."""
    import threading

    db, _ = team
    web = client(db)
    start, answers = threading.Barrier(40), []

    def guess(number: int) -> None:
        browser = TestClient(web.app, base_url="http://127.0.0.1")
        csrf = token(browser)
        start.wait()
        answers.append(browser.post("/login", data={"csrf": csrf, "name": "quinn", "password": f"guess {number:04}!!",
                                                    "next": "/"}, follow_redirects=False).status_code)

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(answers) == [403] * login.MAX_FAILURES + [429] * (40 - login.MAX_FAILURES)


def test_sessions_and_the_throttle_expire(monkeypatch):
    now = [1000.0]
    sessions = login.Sessions(clock=lambda: now[0])
    actor = accounts.Actor("ann", "reviewer", accounts.ACCOUNT)
    idle, kept = sessions.start(actor, "stamp"), sessions.start(actor, "stamp")
    now[0] += login.IDLE - 1
    assert sessions.find(kept).actor == actor
    now[0] += 2
    assert sessions.find(idle) is None and sessions.find(kept) is not None  # used, so kept alive
    for _ in range(int(login.LIFETIME / (login.IDLE / 2))):
        now[0] += login.IDLE / 2
        sessions.find(kept)
    assert sessions.find(kept) is None  # however busy, a session lasts no longer than LIFETIME
    assert sessions.find("forged") is None and sessions.find("x" * 10_000) is None
    throttle = login.Throttle(clock=lambda: now[0])
    for _ in range(login.MAX_FAILURES):
        assert throttle.attempt("ann", "10.0.0.1") == 0
    throttle.attempt("bob", "10.0.0.1")
    throttle.succeeded("bob", "10.0.0.1")  # a success is not counted against the name or the address
    assert throttle.attempt("ANN", "10.0.0.2") > 0 and throttle.attempt("bob", "10.0.0.1") == 0
    now[0] += login.WINDOW + 1
    assert throttle.attempt("ann", "10.0.0.1") == 0
    for number in range(login.MAX_KEYS + 10):  # names never seen again are forgotten, oldest first
        throttle.attempt(f"n{number}", "10.0.0.3")
    assert len(throttle._failures) <= login.MAX_KEYS


def test_a_forged_or_replayed_session_is_nobody(team):
    db, _ = team
    web = client(db)
    assert log_in(web, "ann").status_code == 303
    stolen = web.cookies[login.COOKIE]
    forger = client(db)
    forger.cookies.set(login.COOKIE, stolen[:-2] + ("AA" if not stolen.endswith("AA") else "BB"))
    assert forger.get("/", follow_redirects=False).status_code == 303
    csrf = re.search(r'name="csrf" value="([0-9a-f]{64})"', web.get("/runs/1/review").text).group(1)
    assert web.post("/logout", data={"csrf": csrf}, follow_redirects=False).headers["location"] == "/login"
    replay = client(db)
    replay.cookies.set(login.COOKIE, stolen)
    assert replay.get("/", follow_redirects=False).status_code == 303  # logged out: the token is dead


def test_each_role_can_do_what_it_may_and_nothing_more(team):
    db, _ = team
    for name, role in TEAM.items():
        web = client(db)
        assert log_in(web, name).status_code == 303
        case_page = web.get("/runs/1/cases/NW-014").text
        assert ('action="/runs/1/decisions"' in case_page) == (role in ("reviewer", "qa_lead")), name
        queue = web.get("/runs/1/review").text
        assert ('id="signoff"' in queue) == (role == "qa_lead"), name
        csrf = re.search(r'name="csrf" value="([0-9a-f]{64})"', queue).group(1)
        decided = web.post("/runs/1/decisions", data={"csrf": csrf, "case": "NW-014", "criterion": "3.3",
                                                      "decision": "agree", "back": "queue"}, follow_redirects=False)
        assert decided.status_code == (303 if role in ("reviewer", "qa_lead") else 403), name
        tried = web.post("/rules/hmip-qi-adult-2.0.yaml/try", data={"csrf": csrf, "text": "x", "sample": "none"},
                         follow_redirects=False)
        assert tried.status_code == (400 if role == "methodology" else 403), name  # 400: past the role, a bad form
        try_page = web.get("/rules/hmip-qi-adult-2.0.yaml/try").text
        assert ('id="try"' in try_page) == (role == "methodology"), name
    assert decisions(db) == [("ann", "reviewer", "account", "agree"), ("rob", "reviewer", "account", "agree"),
                             ("quinn", "qa_lead", "account", "agree")]


def test_the_qa_lead_signs_off_in_the_workspace_after_a_reviewer_decided(team, qi):
    db, _ = team
    reviewer = client(db)
    log_in(reviewer, "ann")
    csrf = re.search(r'name="csrf" value="([0-9a-f]{64})"', reviewer.get("/runs/1/review").text).group(1)
    for case, criterion in (("NW-001", "3.2"), ("NW-007", "3.1"), ("NW-014", "3.3")):
        assert reviewer.post("/runs/1/decisions", data={"csrf": csrf, "case": case, "criterion": criterion,
                                                        "decision": "agree", "reviewer": "Mallory"},
                             follow_redirects=False).status_code == 303
    refused = reviewer.post("/runs/1/signoff", data={"csrf": csrf}, follow_redirects=False)
    assert refused.status_code == 403
    lead = client(db)
    log_in(lead, "quinn")
    csrf = re.search(r'name="csrf" value="([0-9a-f]{64})"', lead.get("/runs/1/review").text).group(1)
    assert lead.post("/runs/1/signoff", data={"csrf": csrf}, follow_redirects=False).status_code == 303
    assert "Signed off by quinn (qa lead)" in lead.get("/runs/1/review").text
    assert {row[0] for row in decisions(db)} == {"ann"}  # the typed name is never recorded
    assert qi("runs", "verify", "--db", db).exit_code == 0


def test_disabling_moving_or_a_new_password_ends_an_account_s_session_at_once(team, qi):
    db, password = team
    web, other, third, untouched = client(db), client(db), client(db), client(db)
    log_in(web, "ann")
    log_in(other, "rob")
    log_in(third, "quinn")
    log_in(untouched, "mo")
    assert web.get("/", follow_redirects=False).status_code == 200
    with audit.Store(db) as store:
        accounts.set_disabled(store, "ann", True, ADA)
        accounts.set_role(store, "rob", "inspector", ADA)
    (password.parent / "new").write_text("quinn's new long password\n")
    assert qi("users", "passwd", "quinn", "--password-file", password.parent / "new", "--db", db,
              *admin(password.parent / "password")).exit_code == 0
    for browser in (web, other, third):
        assert browser.get("/", follow_redirects=False).status_code == 303
    assert untouched.get("/", follow_redirects=False).status_code == 200
    assert log_in(other, "rob").status_code == 303 and "rob (inspector)" in other.get("/").text
    assert log_in(third, "quinn", "quinn's new long password").status_code == 303


def test_cookies_are_secure_beyond_this_machine_and_a_read_only_workspace_has_logins(team):
    db, _ = team
    plain = client(db, secure=True)
    assert "Secure" in plain.get("/login").headers["set-cookie"]
    assert log_in(plain, "ann").status_code == 403  # over plain HTTP a Secure cookie never comes back
    web = client(db, base_url="https://127.0.0.1", secure=True, read_only=True)
    went = log_in(web, "ann")
    assert went.status_code == 303 and "Secure" in went.headers["set-cookie"]
    fresh = TestClient(web.app, base_url="https://127.0.0.1")  # no cookie yet: the page sets the form's
    assert "Secure" in fresh.get("/login").headers["set-cookie"]
    csrf = re.search(r'name="csrf" value="([0-9a-f]{64})"', web.get("/runs/1/review").text).group(1)
    assert web.post("/runs/1/decisions", data={"csrf": csrf, "case": "NW-014", "criterion": "3.3",
                                               "decision": "agree"}, follow_redirects=False).status_code == 403
    assert decisions(db) == []


def test_a_store_without_accounts_has_no_login(tmp_path, qi):
    db = tmp_path / "qi.db"
    assert qi("run", SAMPLE, "--out", tmp_path / "out", "--db", db, "-q").exit_code == 0
    web = client(db)
    assert web.get("/login", follow_redirects=False).headers["location"] == "/"
    assert "this machine's user; the store has no accounts" in web.get("/").text


# --- ten reviewers at once ---

FINDINGS = [("NW-001", "3.2"), ("NW-007", "3.1"), ("NW-014", "3.3"), ("NW-014", "3.1"), ("NW-003", "1.1")]


def _assert_linear(db, expected: int) -> None:
    """Every decision recorded once, as a link of one chain: links numbered with no gap or repeat."""
    links = [row[0] for row in stores.rows(
        db, "SELECT link FROM runs UNION ALL SELECT link FROM decisions UNION ALL SELECT link FROM signoffs ORDER BY 1")]
    count = stores.rows(db, "SELECT count(*) FROM decisions")[0][0]
    assert count == expected and links == list(range(1, len(links) + 1))


def test_ten_reviewers_deciding_at_once_lose_nothing_and_keep_one_chain(team, qi):
    """Ten reviewers, each with their own connection to the store, record five decisions each at
    the same moment, all on the same findings of one run: every one is recorded, once, in one
    linear chain, and verify holds."""
    import threading

    db, _ = team
    names = [f"reviewer{i}" for i in range(10)]
    with audit.Store(db) as store:
        for name in names:
            accounts.add(store, name, "reviewer", PASSWORD, ADA)
        actors = [accounts.authenticate(store, name, PASSWORD) for name in names]
    start, failures = threading.Barrier(len(actors)), []

    def work(actor) -> None:
        try:
            with audit.Store(db) as store:  # a connection of its own, as another process would have
                start.wait()
                for case, criterion in FINDINGS:
                    review.record_decision(store, 1, case, criterion, "challenge", actor, reason=f"{actor.name} asks")
        except Exception as error:  # noqa: BLE001  (reported below)
            failures.append(repr(error))

    threads = [threading.Thread(target=work, args=(actor,)) for actor in actors]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert failures == [] and not any(t.is_alive() for t in threads)
    _assert_linear(db, len(actors) * len(FINDINGS))
    with audit.Store.open(db) as store:
        history = review.decisions_for_run(store, 1, history=True)
    assert sorted((d.reviewer, d.case, d.criterion) for d in history) == sorted(
        (a.name, case, criterion) for a in actors for case, criterion in FINDINGS)
    assert qi("runs", "verify", "--db", db).exit_code == 0


def test_ten_reviewers_logged_in_to_one_served_workspace_at_once(team, qi):
    """The same through ``qi serve``: ten browsers logged in as ten reviewers post their decisions
    at once, and the store holds each once, in one chain."""
    import http.cookiejar
    import threading
    import urllib.parse
    import urllib.request

    from tests.test_serve import start_server

    db, _ = team
    names = [f"reviewer{i}" for i in range(10)]
    with audit.Store(db) as store:
        for name in names:
            accounts.add(store, name, "reviewer", PASSWORD, ADA)
    process, address = start_server(db)
    try:
        def opener_for(name: str):
            opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
            page = opener.open(address + "/login").read().decode()
            csrf = re.search(r'name="csrf" value="([0-9a-f]{64})"', page).group(1)
            form = urllib.parse.urlencode({"csrf": csrf, "name": name, "password": PASSWORD, "next": "/"}).encode()
            assert f"{name} (reviewer)" in opener.open(address + "/login", data=form).read().decode()
            return opener, csrf

        browsers = [opener_for(name) for name in names]
        start, failures = threading.Barrier(len(browsers)), []

        def work(opener, csrf) -> None:
            try:
                start.wait()
                for case, criterion in FINDINGS:
                    form = urllib.parse.urlencode({"csrf": csrf, "case": case, "criterion": criterion,
                                                   "decision": "agree", "back": "queue"}).encode()
                    with opener.open(address + "/runs/1/decisions", data=form) as response:
                        assert response.status == 200 and response.url.endswith("/runs/1/review")
            except Exception as error:  # noqa: BLE001  (reported below)
                failures.append(repr(error))

        threads = [threading.Thread(target=work, args=browser) for browser in browsers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert failures == []
    finally:
        process.terminate()
        process.wait(timeout=10)
    _assert_linear(db, len(names) * len(FINDINGS))
    assert {row[0] for row in decisions(db)} == set(names)
    assert qi("runs", "verify", "--db", db).exit_code == 0


def test_an_administrator_manages_accounts_in_the_workspace_and_nobody_else_can(team):
    db, _ = team
    for name in ("ann", "quinn", "mo", "ines"):
        web = client(db)
        log_in(web, name)
        assert web.get("/users").status_code == 403
        assert "/users" not in web.get("/").text
        csrf = re.search(r'name="csrf" value="([0-9a-f]{64})"', web.get("/").text).group(1)
        assert web.post("/users", data={"csrf": csrf, "name": "eve", "role": "admin", "password": PASSWORD},
                        follow_redirects=False).status_code == 403
        assert web.post("/users/ann", data={"csrf": csrf, "role": "qa_lead", "state": "enabled"},
                        follow_redirects=False).status_code == 403
    admin = client(db)
    log_in(admin, "ada")
    listed = admin.get("/users")
    assert listed.status_code == 200 and "quinn" in listed.text and "argon2id$" not in listed.text
    csrf = re.search(r'name="csrf" value="([0-9a-f]{64})"', listed.text).group(1)
    added = admin.post("/users", data={"csrf": csrf, "name": "nia", "role": "reviewer", "password": PASSWORD},
                       follow_redirects=False)
    assert added.status_code == 303
    weak = admin.post("/users", data={"csrf": csrf, "name": "bad name", "role": "boss", "password": "short"})
    assert weak.status_code == 400 and all(word in weak.text for word in ("not an account name", "not a role",
                                                                          "characters"))
    assert admin.post("/users/ann", data={"csrf": csrf, "role": "qa_lead", "state": "disabled"},
                      follow_redirects=False).status_code == 303
    own = admin.post("/users/ada", data={"csrf": csrf, "role": "inspector", "state": "disabled"})
    assert own.status_code == 400 and "Your own account" in own.text
    with audit.Store.open(db) as store:
        found = {a.name: (a.role, a.disabled) for a in accounts.accounts(store)}
        assert accounts.authenticate(store, "nia", PASSWORD).role == "reviewer"
    assert found["ann"] == ("qa_lead", True) and found["ada"] == ("admin", False) and "bad name" not in found


def test_once_there_is_an_administrator_only_an_administrator_changes_accounts(qi, team, tmp_path):
    db, password = team
    for command in (("add", "eve", "--role", "admin", "--password-file", password), ("disable", "ada"),
                    ("enable", "ann"), ("role", "ann", "qa_lead"), ("passwd", "quinn", "--password-file", password)):
        anyone = qi("users", *command, "--db", db)
        assert anyone.exit_code == 1 and "admin_required" in anyone.stderr, command
        reviewer = qi("users", *command, "--db", db, "--as", "ann", "--admin-password-file", password)
        assert reviewer.exit_code == 1 and "not_permitted" in reviewer.stderr, command
    with audit.Store.open(db) as store:
        assert {a.name: a.role for a in accounts.accounts(store)} == TEAM
    assert qi("users", "add", "eve", "--role", "reviewer", "--password-file", password, "--db", db,
              *admin(password)).exit_code == 0
    half = qi("users", "disable", "eve", "--db", db, "--as", "ada")
    assert half.exit_code == 2 and "go together" in half.stderr
    first = tmp_path / "first.db"  # a store without an administrator: its first is added by whoever can write it
    assert qi("users", "add", "r", "--role", "reviewer", "--password-file", password, "--db", first).exit_code == 0
    assert qi("users", "add", "a", "--role", "admin", "--password-file", password, "--db", first).exit_code == 0
    assert "admin_required" in qi("users", "add", "x", "--role", "admin", "--password-file", password,
                                  "--db", first).stderr


def test_a_record_by_the_system_user_after_accounts_were_deleted_fails_verify(qi, team):
    db, password = team
    assert qi("review", "1", "--db", db, "--case", "NW-014", "--criterion", "3.3", "--decision", "agree",
              *as_("ann", password)).exit_code == 0
    stores.sql(db, "DELETE FROM users")
    unattributed = qi("review", "1", "--db", db, "--case", "NW-001", "--criterion", "3.2", "--decision", "agree")
    if stores.is_postgres(db):  # a shared store never records the operating-system user, accounts or not
        assert unattributed.exit_code == 1 and "account_required: this is a shared PostgreSQL store" in \
            unattributed.stderr
        return
    assert unattributed.exit_code == 0
    verified = qi("runs", "verify", "--db", db)
    assert verified.exit_code == 1 and ": accounts_removed: " in verified.stderr


def test_a_password_file_is_read_to_its_first_line_break_only(qi, tmp_path):
    db = tmp_path / "qi.db"
    (tmp_path / "pw").write_text("correct horse battery\u2028staple and more\nsecond line\n", encoding="utf-8")
    assert qi("users", "add", "ann", "--role", "reviewer", "--password-file", tmp_path / "pw", "--db", db).exit_code == 0
    with audit.Store.open(db) as store:
        assert accounts.authenticate(store, "ann", "correct horse battery\u2028staple and more").name == "ann"
        with pytest.raises(audit.InputError):
            accounts.authenticate(store, "ann", "correct horse battery")
    huge = tmp_path / "huge"
    with huge.open("wb") as handle:  # read no further than a password can reach
        handle.write(b"x" * (64 * 1024 * 1024))
    refused = qi("users", "add", "bob", "--role", "reviewer", "--password-file", huge, "--db", db)
    assert refused.exit_code == 1 and "weak_password" in refused.stderr and "Traceback" not in refused.stderr


def test_a_read_only_workspace_sees_accounts_added_after_it_started(qi, tmp_path):
    """An old store (before accounts) served read-only, then given accounts by another process:
    the next page asks for a login."""
    db = tmp_path / "qi.db"
    assert qi("run", SAMPLE, "--out", tmp_path / "out", "--db", db, "-q").exit_code == 0
    import sqlite3

    with sqlite3.connect(db) as connection:  # as a store made before migration 0004
        connection.executescript("DROP TABLE users; DELETE FROM migrations WHERE name = '0004-accounts';")
        for table in ("decisions", "signoffs"):
            connection.execute(f"ALTER TABLE {table} DROP COLUMN identity")
            connection.execute(f"ALTER TABLE {table} DROP COLUMN role")
    web = client(db, read_only=True)
    assert web.get("/runs/1", follow_redirects=False).status_code == 200
    (tmp_path / "pw").write_text(PASSWORD + "\n")
    assert qi("users", "add", "ann", "--role", "reviewer", "--password-file", tmp_path / "pw", "--db", db).exit_code == 0
    assert web.get("/runs/1", follow_redirects=False).status_code == 303


def test_head_on_form_pages_is_answered_as_get(team):
    db, _ = team
    web = client(db)
    assert web.head("/login").status_code == 200
    log_in(web, "mo")
    assert web.head("/rules/hmip-qi-adult-2.0.yaml/try").status_code == 200


def test_a_workspace_whose_database_connections_were_dropped_recovers_at_the_next_page(team):
    """On PostgreSQL the server may drop a workspace's connections (a restart, an administrator):
    a page then says the store cannot be read now (503, never a 500), and the next one works."""
    db, _ = team
    if not stores.is_postgres(db):
        pytest.skip("a PostgreSQL server's connections")
    web = client(db)
    log_in(web, "ines")
    assert web.get("/runs/1").status_code == 200
    stores.sql(stores.Database(stores.SERVER), "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
               f"WHERE datname = '{db.name}' AND pid <> pg_backend_pid()")
    first = web.get("/runs/1")
    assert first.status_code in (200, 503), first.status_code
    if first.status_code == 503:
        assert "store_unavailable: the audit store cannot be read now" in first.text
    assert web.get("/runs/1").status_code == 200
    assert web.get("/").status_code == 200


def test_writers_queue_whatever_isolation_the_database_defaults_to(team, qi):
    """A database whose transactions default to repeatable read: the writer that waited for the
    lock still sees what the one before it committed (two reviewers at once, one linear chain)."""
    import threading

    db, _ = team
    if not stores.is_postgres(db):
        pytest.skip("PostgreSQL's default_transaction_isolation")
    stores.sql(stores.Database(stores.SERVER),
               f"ALTER DATABASE \"{db.name}\" SET default_transaction_isolation = 'repeatable read'")
    results, failures = [], []
    with audit.Store(db) as store:
        actors = [accounts.authenticate(store, name, PASSWORD) for name in ("ann", "rob", "quinn")]
    start = threading.Barrier(len(actors))

    def decide(actor, criterion: str) -> None:
        try:
            with audit.Store(db) as store:  # a connection of its own, as another process has
                start.wait()
                review.record_decision(store, 1, "NW-001", criterion, "agree", actor)
                results.append(0)
        except Exception as error:  # noqa: BLE001  (reported below)
            failures.append(repr(error))

    threads = [threading.Thread(target=decide, args=(actor, criterion))
               for actor, criterion in zip(actors, ("3.2", "3.1", "1.1"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert failures == []
    assert results == [0, 0, 0]
    _assert_linear(db, 3)
    assert qi("runs", "verify", "--db", db).exit_code == 0
