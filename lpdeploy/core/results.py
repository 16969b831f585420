"""Test ids and results out of what a suite prints: plain lines, subunit v2, JUnit XML.

Pure functions over bytes; no Buildbot, no Twisted. ``steps/subunit.py`` in
Buildbot only counts subunit v1 results, and lpdeploy needs every test's id,
status and duration (to partition by history and to prove every listed test
ran), so the parsing lives here.
"""

from __future__ import annotations

import enum
import io
import math
import xml.etree.ElementTree as ET  # noqa: S405 - our own suite's report; expat refuses external entities
from dataclasses import dataclass

SUBUNIT_V2_SIGNATURE = 0xB3


class TestStatus(enum.StrEnum):
    """How one test ended (subunit's words; stored with a shard's results)."""

    __test__ = False  # not a pytest test class, despite the name

    PASSED = "success"
    FAILED = "fail"
    SKIPPED = "skip"


_FINAL = {"success": TestStatus.PASSED, "xfail": TestStatus.PASSED, "skip": TestStatus.SKIPPED,
          "fail": TestStatus.FAILED, "uxsuccess": TestStatus.FAILED}


@dataclass(frozen=True)
class TestOutcome:
    """One test's status and duration."""

    __test__ = False

    status: TestStatus
    duration: float  # seconds

    def __post_init__(self) -> None:  # stored shard results hold the plain string
        object.__setattr__(self, "status", TestStatus(self.status))


def is_subunit_v2(data: bytes) -> bool:
    return bool(data) and data[0] == SUBUNIT_V2_SIGNATURE


def parse_test_list(data: bytes) -> list[str]:
    """Test ids from a list command: one per line, or the ids in a subunit v2 stream; no duplicates."""
    ids: list[str] = []
    if bytes([SUBUNIT_V2_SIGNATURE]) in data:  # a subunit stream, perhaps after some noise
        ids = list(_subunit_events(data))
    if not ids:
        ids = [line.strip() for line in data.decode("utf-8", "replace").splitlines()]
    return list(dict.fromkeys(i for i in ids if i))


def parse_results(data: bytes, fmt: str) -> dict[str, TestOutcome]:
    """Results by test id from a subunit v2 stream or a JUnit XML file."""
    if fmt == "junit":
        return parse_junit(data)
    return parse_subunit(data)


def parse_subunit(data: bytes) -> dict[str, TestOutcome]:
    outcomes: dict[str, TestOutcome] = {}
    for test_id, (status, duration) in _subunit_events(data).items():
        if status in _FINAL:
            outcomes[test_id] = TestOutcome(_FINAL[status], duration)
    return outcomes


def _subunit_events(data: bytes) -> dict[str, tuple[str | None, float]]:
    """Every test id in a subunit v2 stream with its final status and its duration."""
    import subunit  # python-subunit: imported here so the pure modules import fast
    import testtools

    seen: dict[str, tuple[str | None, float]] = {}
    started: dict[str, float] = {}

    class Collect(testtools.StreamResult):  # type: ignore[misc]
        def status(self, test_id=None, test_status=None, timestamp=None, **kwargs):  # type: ignore[no-untyped-def,override]
            if not test_id:
                return
            when = timestamp.timestamp() if timestamp is not None else None
            if test_status == "inprogress" and when is not None:
                started[test_id] = when
            duration = max(0.0, when - started[test_id]) if when is not None and test_id in started else 0.0
            previous = seen.get(test_id, (None, 0.0))
            final = test_status if test_status in _FINAL else previous[0]
            seen[test_id] = (final, duration if test_status in _FINAL else previous[1])

    subunit.ByteStreamToStreamResult(io.BytesIO(data), non_subunit_name="stdout").run(Collect())
    return seen


def parse_junit(data: bytes) -> dict[str, TestOutcome]:
    outcomes: dict[str, TestOutcome] = {}
    if not data.strip():
        return outcomes
    root = ET.fromstring(data)  # noqa: S314
    for case in root.iter("testcase"):
        name = case.get("name") or ""
        classname = case.get("classname")
        test_id = f"{classname}.{name}" if classname else name
        if case.find("failure") is not None or case.find("error") is not None:
            status = TestStatus.FAILED
        elif case.find("skipped") is not None:
            status = TestStatus.SKIPPED
        else:
            status = TestStatus.PASSED
        try:
            duration = float(case.get("time") or 0.0)
        except ValueError:
            duration = 0.0
        if not math.isfinite(duration) or duration < 0:
            duration = 0.0  # "nan", "inf", "-3": not a duration
        outcomes[test_id] = TestOutcome(status, duration)
    return outcomes


def match_ids(outcomes: dict[str, TestOutcome], expected: set[str]) -> dict[str, TestOutcome]:
    """Results keyed by the listed ids: an exact id, or else its longest dotted suffix that was listed.

    JUnit reports ``classname.name``; a list command may print either form.
    Results for tests that were not listed are dropped.
    """
    out: dict[str, TestOutcome] = {}
    for test_id, outcome in outcomes.items():
        parts = test_id.split(".")
        for k in range(len(parts)):
            candidate = ".".join(parts[k:])
            if candidate in expected:
                out[candidate] = outcome
                break
    return out
