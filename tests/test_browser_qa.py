"""The deployment report's QA buttons in a real browser (Chromium via Selenium; skipped like the Pipeline tests).

A QA engineer opens the Pipeline page, types a reason on a commit's row and
presses **bad**: the page posts the mark to ``/plugins/lpdeploy/qa-mark``,
says so, and the report shows the commit bad, marked by them, by itself.
Anonymous viewers get no buttons.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.flow_harness import Flow, wait_until
from tests.test_browser_pipeline import MISSING, REQUIRED, browser, shot

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(bool(MISSING) and not REQUIRED, reason=f"BROWSER TESTS SKIPPED: {MISSING}"),
]


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flow]:
    if MISSING:
        pytest.fail(f"LPDEPLOY_REQUIRE_BROWSER=1 but {MISSING}", pytrace=False)
    yield from Flow(tmp_path_factory.mktemp("browser-qa"), extra_site='qa = ["quinn"]\n').running()


def test_a_qa_engineer_marks_a_commit_bad_from_the_deployment_report(flow: Flow) -> None:
    flow.wait_builds("lpdeploy-gate", 1)
    sha = flow.commit("ok", "Speed up the search page\n\nLP: #4321")
    wait_until(lambda: flow.tip("stable") == sha, 90, "stable to move")
    anonymous = browser(flow, None)
    try:
        assert anonymous.find_elements("id", f"qa-{sha}")
        assert not anonymous.find_elements("css selector", "form.qa-mark")
    finally:
        anonymous.quit()
    driver = browser(flow, "quinn")
    try:
        row = driver.find_element("id", f"qa-{sha}")
        assert "needs-testing" in row.text and "#4321" in row.text
        row.find_element("name", "reason").send_keys("search answers 500 on qastaging")
        row.find_element("css selector", "button[value=bad]").click()
        wait_until(lambda: "marked bad" in driver.find_element("id", "qa-message").text, 30, "the mark")
        wait_until(lambda: "quinn" in driver.find_element("id", f"qa-{sha}").text, 30, "the report to update")
        assert "search answers 500 on qastaging" in driver.find_element("id", f"qa-{sha}").text
        shot(driver, "pipeline-qa-marked-bad")
    finally:
        driver.quit()
    listed = json.loads(flow.cli("qa", "list", "--json").stdout)
    row_json = next(c for c in listed["commits"] if c["revision"] == sha)
    assert (row_json["qa"], row_json["marked_by"]) == ("bad", "quinn")
