"""The Pipeline dashboard in a real browser (Debian's Chromium, driven by Selenium).

A real master, worker and repository: the flow is driven with the CLI, then
the page is loaded headless as anonymous, as a LOSA and as a security user.
Screenshots land in ``artifacts/``. Skipped — loudly — where Chromium or its
driver is missing, unless ``LPDEPLOY_REQUIRE_BROWSER=1``: then a missing
browser fails every test. ``.ci/run`` installs both and sets that variable, so
CI never skips these.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.flow_harness import ROOT, Flow, git, wait_until

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
MISSING = None if CHROMIUM and DRIVER else ("Debian's chromium and chromium-driver are not installed "
                                            "(apt-get install chromium chromium-driver; .ci/run does this)")
REQUIRED = os.environ.get("LPDEPLOY_REQUIRE_BROWSER") == "1"  # .ci/run: CI must never skip these tests
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(bool(MISSING) and not REQUIRED, reason=f"BROWSER TESTS SKIPPED: {MISSING}"),
]
SECRET = "EMBARGO-SECRET-7f3a9"
ARTIFACTS = ROOT / "artifacts"
PAGE = "plugins/wsgi_dashboards/pipeline/page"


@pytest.fixture(scope="module", autouse=True)
def browser_present() -> None:
    """Where the browser is required and missing, fail before anything starts (autouse: set up first)."""
    if MISSING:
        pytest.fail(f"LPDEPLOY_REQUIRE_BROWSER=1 but {MISSING}", pytrace=False)


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flow]:
    base = tmp_path_factory.mktemp("browser")
    out = base / "servers"
    out.mkdir()
    write = ["sh", "-c", f'echo "$1" > {out}/"$0"', "{server}", "{revision}"]
    servers = "".join(f'[[servers]]\nname = "{n}"\ndeploy_command = {json.dumps(write)}\n' for n in ("app1", "app2"))
    f = Flow(base, extra_site=servers)
    yield from f.running()


@pytest.fixture(scope="module")
def story(flow: Flow) -> dict[str, str]:
    """Drive the flow: a gated push, a promotion, a deploy, a cowboy, an embargoed security fix."""
    flow.wait_builds("lpdeploy-gate", 1)
    sha = flow.commit("ok", "Add the search page")
    wait_until(lambda: flow.tip("stable") == sha, 90, "stable to move")
    assert flow.cli("promote", user="bob").returncode == 0
    assert flow.cli("deploy", "--server", "app1", user="bob").returncode == 0
    assert flow.cli("cowboy", "add", "--server", "app2", "--reason", "patched the mail relay by hand",
                    user="bob").returncode == 0
    git("fetch", "--quiet", str(flow.upstream), "refs/heads/production-stable", cwd=flow.work)
    git("checkout", "--quiet", "-B", "fix", "FETCH_HEAD", cwd=flow.work)
    (flow.work / "app.txt").write_text((flow.work / "app.txt").read_text() + f"fix: {SECRET}\n")
    git("commit", "--quiet", "-am", f"Close the hole {SECRET}", cwd=flow.work)
    git("push", "--quiet", str(flow.upstream), "HEAD:refs/heads/security/hole", cwd=flow.work)
    fix = git("rev-parse", "HEAD", cwd=flow.work)
    wait_until(lambda: flow.tip("production-stable") == fix, 120, "the fix to reach production")
    flow.commit("ok", "Work after the fix")  # stable → devel moves on; production holds the fix
    return {"fix": fix, "stable": sha}


def browser(flow: Flow, user: str | None):  # type: ignore[no-untyped-def]
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM  # type: ignore[assignment]
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--window-size=1500,1100"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=DRIVER), options=opts)
    driver.get(flow.url + "api/v2")  # same origin first, so the session cookie can be set
    if user:
        jar = flow.session(user).handlers  # type: ignore[attr-defined]
        cookies = next(h.cookiejar for h in jar if hasattr(h, "cookiejar"))
        for c in cookies:
            driver.add_cookie({"name": c.name, "value": c.value, "path": "/"})
    driver.get(flow.url + PAGE)
    return driver


def shot(driver, name: str) -> Path:  # type: ignore[no-untyped-def]
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


def test_the_page_shows_tips_tested_marks_servers_cowboys_and_numbers(flow: Flow, story: dict[str, str]) -> None:
    driver = browser(flow, "bob")
    try:
        text = driver.find_element("tag name", "body").text
        for branch in ("devel", "stable", "production-devel", "production-stable"):
            assert driver.find_element("id", f"stage-{branch}")
        assert "tested (build #" in text
        assert "patched the mail relay by hand" in text and "cowboy #1" in text
        assert "app1" in text and "behind production-stable" in text
        assert driver.find_elements("id", "lead-chart"), "no lead time chart"
        assert "suite runs avoided by the ledger" in text
        assert shot(driver, "pipeline-losa").stat().st_size > 10_000
    finally:
        driver.quit()


def test_no_trace_of_the_embargoed_fix_without_the_security_role(flow: Flow, story: dict[str, str]) -> None:
    for user in (None, "bob"):
        driver = browser(flow, user)
        try:
            html = driver.page_source
            assert SECRET not in html
            assert "Close the hole" not in html
            assert f"{story['fix'][:12]} embargoed" in driver.find_element("id", "stage-production-stable").text
            assert not driver.find_elements("id", "security")
        finally:
            driver.quit()
    driver = browser(flow, "alice")
    try:
        assert SECRET in driver.page_source  # the security user sees the fix
        assert "security/hole" in driver.find_element("id", "security").text
        shot(driver, "pipeline-security")
    finally:
        driver.quit()


def test_buttons_follow_roles_and_the_page_updates_itself(flow: Flow, story: dict[str, str]) -> None:
    anonymous = browser(flow, None)
    try:
        assert not anonymous.find_elements("css selector", ".actions form")
    finally:
        anonymous.quit()
    driver = browser(flow, "bob")
    try:
        assert not driver.find_elements("css selector", "form[data-scheduler=security-build]")
        form = driver.find_element("css selector", "form[data-scheduler=freeze]")
        form.find_element("name", "freeze_reason").send_keys("browser freeze")
        form.find_element("tag name", "button").click()
        wait_until(lambda: "queued" in driver.find_element("id", "message").text, 30, "the freeze to be queued")
        started = time.monotonic()
        wait_until(lambda: driver.find_elements("id", "freeze"), 30, "the page to show the freeze by itself")
        assert "browser freeze" in driver.find_element("id", "freeze").text
        assert time.monotonic() - started < 30
        shot(driver, "pipeline-frozen")
    finally:
        driver.quit()
    assert flow.cli("thaw", user="bob").returncode == 0


def test_a_refused_form_field_is_shown_with_its_rule(flow: Flow, story: dict[str, str]) -> None:
    driver = browser(flow, "bob")
    try:
        form = driver.find_element("css selector", "form[data-scheduler=freeze]")
        form.find_element("name", "freeze_reason").send_keys("x" * 201)
        form.find_element("tag name", "button").click()
        wait_until(lambda: "refused" in driver.find_element("id", "message").text, 30, "the refusal")
        message = driver.find_element("id", "message").text
        assert message.startswith("refused (400): freeze_reason: invalid freeze reason"), message
        assert "at most 200 printable characters" in message
    finally:
        driver.quit()


def test_the_menu_entry_opens_the_page_in_the_buildbot_ui(flow: Flow, story: dict[str, str]) -> None:
    driver = browser(flow, None)
    try:
        driver.get(flow.url + "#/pipeline")
        wait_until(lambda: driver.find_elements("css selector", "iframe[title=Pipeline]"), 30, "the embedded page")
        assert any("Pipeline" in a.text for a in driver.find_elements("css selector", "a, .nav-link, li"))
        driver.switch_to.frame(driver.find_element("css selector", "iframe[title=Pipeline]"))
        wait_until(lambda: driver.find_elements("id", "stage-stable"), 30, "the pipeline inside the frame")
        driver.switch_to.default_content()
        shot(driver, "buildbot-ui-pipeline")
    finally:
        driver.quit()

