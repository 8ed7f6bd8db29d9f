"""qi serve in a real headless Chromium, as a team uses it on a store with accounts: log in; open a
run, a case and its reasoning; as a reviewer record a decision and find it in the queue and in
``qi runs show``; as the QA lead sign the run off; as methodology staff try a rule change and see
what it does to the sample.

The workspace's pages carry no script and their Content-Security-Policy allows none, so what
works here works without JavaScript (the test itself scripts the browser only to fill the text
area, as pasting would). Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run``).
"""

from __future__ import annotations

import pytest

from tests.test_browser import CHROMEDRIVER, CHROMIUM, browser  # noqa: F401  (the shared browser fixture)
from tests.test_serve import HOSTILE, RULE, RULES, TURNED, hostile_sample, run_into, start_server

pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                                reason="needs Debian's chromium and chromium-driver (installed by .ci/run)")


def follow(browser, element) -> None:  # noqa: F811  (the shared fixture's name)
    """Click a link or submit button and wait until the next page has replaced this one: the click
    returns before the navigation finishes, so a lookup straight after it can see the old page.

    The old page is marked with a property on its window object, which every new document
    replaces; waiting on an element going stale instead is racy in Chromium (asking about an
    element mid-navigation can fail with an inspector error rather than report it stale)."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    browser.execute_script("window.qiOldPage = true")
    element.click()

    def replaced(driver) -> bool:
        try:
            return driver.execute_script(
                "return window.qiOldPage === undefined && document.readyState === 'complete'")
        except WebDriverException:  # the script landed mid-navigation: ask again
            return False

    WebDriverWait(browser, 20).until(replaced)


PASSWORD = "correct horse battery staple"
#: The team: a reviewer, a QA lead and a methodology lead.
TEAM = {"ann": "reviewer", "quinn": "qa_lead", "mo": "methodology"}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """``qi serve`` on a store holding one run of the example sample (a script in NW-006's note)
    and the team's accounts."""
    from click.testing import CliRunner

    import cli

    root = tmp_path_factory.mktemp("serve-browser")
    db = root / "qi.db"
    run_into(db, hostile_sample(root), root / "out")
    (root / "password").write_text(PASSWORD + "\n")
    for name, role in TEAM.items():
        added = CliRunner().invoke(cli.cli, ["users", "add", name, "--role", role, "--password-file",
                                             str(root / "password"), "--db", str(db)])
        assert added.exit_code == 0, added.stderr
    process, address = start_server(db)
    yield address, db
    process.terminate()
    process.wait(timeout=10)


def log_in(browser, address: str, name: str) -> None:  # noqa: F811
    """Log out whoever is logged in, and log in as ``name`` through the login form."""
    from selenium.webdriver.common.by import By

    browser.delete_all_cookies()
    browser.get(address + "/")  # every page sends someone not logged in to the login form
    assert browser.find_element(By.TAG_NAME, "h1").text == "Log in"
    browser.find_element(By.NAME, "name").send_keys(name)
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    follow(browser, browser.find_element(By.CSS_SELECTOR, "#login button[type=submit]"))
    assert browser.find_element(By.ID, "who").text == f"{name} ({TEAM[name].replace('_', ' ')})"


def test_a_wrong_password_is_refused_and_says_nothing_of_the_account(browser, workspace):  # noqa: F811
    from selenium.webdriver.common.by import By

    browser.delete_all_cookies()
    browser.get(workspace[0] + "/runs/1")
    browser.find_element(By.NAME, "name").send_keys("ann")
    browser.find_element(By.NAME, "password").send_keys("not the password at all")
    follow(browser, browser.find_element(By.CSS_SELECTOR, "#login button[type=submit]"))
    assert "account name or password is wrong" in browser.find_element(By.ID, "errors").text
    assert browser.find_elements(By.ID, "who") == []


def test_open_a_run_then_a_case_and_its_reasoning(browser, workspace):  # noqa: F811
    from selenium.webdriver.common.by import By

    log_in(browser, workspace[0], "ann")
    browser.get(workspace[0] + "/")
    runs = browser.find_element(By.ID, "runs")
    assert "north-west-2016" in runs.text and "verified" in runs.text
    follow(browser, runs.find_element(By.LINK_TEXT, "north-west-2016"))
    headline = browser.find_element(By.ID, "headline")
    assert [th.text for th in headline.find_elements(By.CSS_SELECTOR, "thead th")] == [
        "Standard", "all cases", "NPS", "CRC"]
    follow(browser, browser.find_element(By.ID, "case-list").find_element(By.LINK_TEXT, "NW-014"))
    assert browser.find_element(By.TAG_NAME, "h1").text.startswith("Case NW-014")
    row = browser.find_element(By.ID, "finding-3.1")
    assert "insufficient" in row.text
    note = "Risk to the partner's children not considered"
    trace = row.find_element(By.CSS_SELECTOR, "details.drill")
    assert note not in trace.text  # folded
    trace.find_element(By.TAG_NAME, "summary").click()
    assert "rule 3.1-key-line-not-met" in trace.text and note in trace.text
    assert note in browser.find_element(By.ID, "notes").text


def test_record_a_decision_and_see_it_in_the_queue_and_in_qi_runs_show(browser, workspace, qi):  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    from tests.test_serve import moderation

    case, criterion = moderation(workspace[1])[0]
    log_in(browser, workspace[0], "ann")
    browser.get(workspace[0] + "/review")
    follow(browser, browser.find_element(By.ID, "queues").find_element(By.LINK_TEXT, "1"))
    open_items = browser.find_element(By.ID, "open")
    assert f"{case} {criterion}" in open_items.text
    follow(browser, open_items.find_element(By.LINK_TEXT, case))
    row = browser.find_element(By.ID, f"finding-{criterion}")
    row.find_element(By.CSS_SELECTOR, "details.decide > summary").click()
    Select(row.find_element(By.NAME, "decision")).select_by_visible_text("challenge")
    row.find_element(By.NAME, "reason").send_keys("The inspector's note and the evidence disagree: <b>ask</b>.")
    assert row.find_elements(By.NAME, "reviewer") == []  # nobody types who they are
    follow(browser, row.find_element(By.CSS_SELECTOR, "button[type=submit]"))
    history = browser.find_element(By.ID, "review-history")
    assert "challenge" in history.text and "ann (reviewer)" in history.text and "<b>ask</b>" in history.text
    follow(browser, browser.find_element(By.LINK_TEXT, "The run's review queue"))
    assert "challenged by ann" in browser.find_element(By.ID, "open").text
    assert "ann (reviewer)" in browser.find_element(By.ID, "decisions").text
    assert browser.find_elements(By.ID, "signoff") == []  # a reviewer does not sign off
    shown = qi("runs", "show", "1", "--db", workspace[1])
    assert shown.exit_code == 0 and "challenge by ann (reviewer)" in shown.stdout


def test_a_reviewer_decides_then_the_qa_lead_signs_off(browser, workspace, qi):  # noqa: F811
    from selenium.webdriver.common.by import By

    from tests.test_serve import moderation

    log_in(browser, workspace[0], "ann")
    for case, criterion in moderation(workspace[1]):
        browser.get(f"{workspace[0]}/runs/1/cases/{case}")
        row = browser.find_element(By.ID, f"finding-{criterion}")
        row.find_element(By.CSS_SELECTOR, "details.decide > summary").click()
        follow(browser, row.find_element(By.CSS_SELECTOR, "button[type=submit]"))  # agree, the first choice
    browser.get(workspace[0] + "/runs/1/review")
    assert "Nothing is open." in browser.find_element(By.ID, "open").text
    follow(browser, browser.find_element(By.CSS_SELECTOR, "header form.logout button"))
    assert browser.find_element(By.TAG_NAME, "h1").text == "Log in"
    log_in(browser, workspace[0], "quinn")
    browser.get(workspace[0] + "/runs/1/review")
    follow(browser, browser.find_element(By.CSS_SELECTOR, "#signoff button[type=submit]"))
    assert "Signed off by quinn (qa lead)" in browser.find_element(By.ID, "signoffs").text
    shown = qi("runs", "show", "1", "--db", workspace[1])
    assert shown.exit_code == 0 and "signed off by quinn (qa lead)" in shown.stdout
    assert qi("runs", "verify", "--db", workspace[1]).exit_code == 0


def test_a_script_in_a_note_is_text_and_never_runs(browser, workspace):  # noqa: F811
    from selenium.webdriver.common.by import By

    log_in(browser, workspace[0], "ann")
    browser.get(workspace[0] + "/runs/1/cases/NW-006")
    assert HOSTILE in browser.find_element(By.ID, "notes").text
    assert browser.find_elements(By.CSS_SELECTOR, "main script, main img") == []
    assert browser.execute_script("return window.__pwned === undefined")


def test_try_a_rule_change_and_see_the_diff(browser, workspace):  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    log_in(browser, workspace[0], "mo")
    browser.get(workspace[0] + "/")
    follow(browser, browser.find_element(By.LINK_TEXT, "Rules"))
    # the default rule set's (the banded option, listed first, extends it)
    follow(browser, browser.find_element(By.CSS_SELECTOR, f'a[href="/rules/{RULES.name}/try"]'))
    box = browser.find_element(By.ID, "text")
    text = box.get_property("value")
    assert text == RULES.read_text(encoding="utf-8") and text.count(RULE) == 1
    browser.execute_script("arguments[0].value = arguments[1]", box, text.replace(RULE, TURNED))
    Select(browser.find_element(By.ID, "sample")).select_by_visible_text("cases/north-west-2016")
    follow(browser, browser.find_element(By.CSS_SELECTOR, "#try button[type=submit]"))
    assert browser.find_elements(By.ID, "outcome"), browser.find_element(By.TAG_NAME, "main").text[:500]
    assert "failed" in browser.find_element(By.ID, "tests-summary").text
    cases = browser.find_element(By.ID, "diff-cases")
    rows = [r.text for r in cases.find_elements(By.TAG_NAME, "tr")]
    assert any(r.startswith("NW-013 3.1: sufficient → insufficient") for r in rows), rows
    assert browser.find_element(By.ID, "text").get_property("value") == text.replace(RULE, TURNED)
    assert RULES.read_text(encoding="utf-8") == text  # the bundled rules are untouched
