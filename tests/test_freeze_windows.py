"""Freeze windows, told as the losa's calendar: Friday afternoons, the release party, back-to-back freezes.

Pure values in (the windows, a fixed ``now``), a ``WindowState`` out; the
refusal is ``policy.frozen_refusal``, which combines windows with the manual
freeze. Times are UTC (no daylight saving) except where an offset is the point.
"""

from __future__ import annotations

import datetime as dt

import pytest

from lpdeploy.core.errors import SettingsError
from lpdeploy.core.freeze_windows import FreezeWindow, span, window_state
from lpdeploy.core.model import Action, Freeze
from lpdeploy.core.policy import frozen_refusal
from lpdeploy.core.settings import parse_settings

UTC = dt.UTC
FRIDAY = FreezeWindow("Friday afternoon: nobody around to fix it", cron="0 13 * * 5", duration=5 * 3600)
PARTY = FreezeWindow("release party", start=dt.datetime(2026, 12, 24, 0, 0, tzinfo=UTC),
                     end=dt.datetime(2026, 12, 27, 0, 0, tzinfo=UTC))


def at(*args: int, tz: dt.tzinfo = UTC) -> float:
    return dt.datetime(*args, tzinfo=tz).timestamp()


# --- a recurring window --------------------------------------------------------
# 2026-12-04 is a Friday: the window is open from 13:00 to 18:00 UTC


def test_a_recurring_window_is_open_from_its_cron_firing():
    s = window_state([FRIDAY], at(2026, 12, 4, 13, 0))
    assert s.frozen
    assert [(o.start, o.end) for o in s.active] == [(at(2026, 12, 4, 13, 0), at(2026, 12, 4, 18, 0))]


def test_a_recurring_window_is_closed_just_before_its_firing():
    s = window_state([FRIDAY], at(2026, 12, 4, 12, 59, 59))
    assert not s.frozen
    assert s.until is None
    assert s.next is not None and s.next.start == at(2026, 12, 4, 13, 0)


def test_a_recurring_window_is_open_until_the_last_second_of_its_duration():
    s = window_state([FRIDAY], at(2026, 12, 4, 17, 59, 59))
    assert s.frozen
    assert s.until is not None and s.until.end == at(2026, 12, 4, 18, 0)


def test_a_recurring_window_is_closed_at_its_end():
    s = window_state([FRIDAY], at(2026, 12, 4, 18, 0))
    assert not s.frozen
    assert s.next is not None and s.next.start == at(2026, 12, 11, 13, 0)  # next Friday


def test_a_recurring_window_is_closed_on_other_days():
    assert not window_state([FRIDAY], at(2026, 12, 3, 14, 0)).frozen  # Thursday afternoon


def test_a_recurring_window_that_spans_midnight_is_open_the_next_morning():
    night = FreezeWindow("nightly backup", cron="0 22 * * *", duration=8 * 3600)
    s = window_state([night], at(2026, 12, 5, 5, 0))
    assert s.frozen and s.until is not None and s.until.end == at(2026, 12, 5, 6, 0)
    assert not window_state([night], at(2026, 12, 5, 6, 0)).frozen


def test_a_cron_read_in_a_time_zone_opens_at_that_zones_wall_clock():
    # Etc/GMT-2 is UTC+2 all year: 13:00 there is 11:00 UTC
    friday_east = FreezeWindow("Friday afternoon in Athens", cron="0 13 * * 5", duration=3600,
                               timezone="Etc/GMT-2")
    assert window_state([friday_east], at(2026, 12, 4, 11, 0)).frozen
    assert not window_state([friday_east], at(2026, 12, 4, 13, 0)).frozen
    s = window_state([friday_east], at(2026, 12, 4, 11, 30))
    assert s.describe().startswith("freeze window until 2026-12-04T14:00+02:00 (in 30m)")


# --- a one-shot window ---------------------------------------------------------


def test_a_one_shot_window_covers_start_to_end_and_not_the_end_itself():
    assert not window_state([PARTY], at(2026, 12, 23, 23, 59, 59)).frozen
    assert window_state([PARTY], at(2026, 12, 24, 0, 0)).frozen
    assert window_state([PARTY], at(2026, 12, 26, 23, 59, 59)).frozen
    assert not window_state([PARTY], at(2026, 12, 27, 0, 0)).frozen


def test_a_past_one_shot_window_is_never_next():
    s = window_state([PARTY], at(2027, 1, 2, 0, 0))
    assert not s.frozen and s.next is None


def test_a_one_shot_window_written_with_an_offset_ends_at_that_instant_and_shows_it():
    cet = dt.timezone(dt.timedelta(hours=1))
    launch = FreezeWindow("launch day", start=dt.datetime(2026, 12, 1, 9, 0, tzinfo=cet),
                          end=dt.datetime(2026, 12, 1, 17, 0, tzinfo=cet))
    assert window_state([launch], at(2026, 12, 1, 8, 0)).frozen  # 09:00+01:00 is 08:00 UTC
    assert not window_state([launch], at(2026, 12, 1, 16, 0)).frozen  # 17:00+01:00 is 16:00 UTC
    s = window_state([launch], at(2026, 12, 1, 15, 0))
    assert s.until is not None and s.until.at(s.until.end) == "2026-12-01T17:00+01:00"


# --- several windows -----------------------------------------------------------


def test_back_to_back_windows_make_one_freeze_that_ends_with_the_last():
    morning = FreezeWindow("morning", start=dt.datetime(2026, 12, 1, 9, 0, tzinfo=UTC),
                           end=dt.datetime(2026, 12, 1, 12, 0, tzinfo=UTC))
    afternoon = FreezeWindow("afternoon", start=dt.datetime(2026, 12, 1, 12, 0, tzinfo=UTC),
                             end=dt.datetime(2026, 12, 1, 15, 0, tzinfo=UTC))
    s = window_state([morning, afternoon], at(2026, 12, 1, 10, 0))
    assert [o.window.reason for o in s.active] == ["morning"]
    assert s.until is not None and s.until.end == at(2026, 12, 1, 15, 0)
    assert s.bounded


def test_overlapping_windows_are_all_named_and_the_later_end_counts():
    s = window_state([FRIDAY, FreezeWindow("quarter end", start=dt.datetime(2026, 12, 4, 0, 0, tzinfo=UTC),
                                           end=dt.datetime(2026, 12, 4, 15, 0, tzinfo=UTC))],
                     at(2026, 12, 4, 14, 0))
    assert {o.window.reason for o in s.active} == {FRIDAY.reason, "quarter end"}
    assert s.until is not None and s.until.end == at(2026, 12, 4, 18, 0)
    assert "quarter end" in s.describe() and FRIDAY.reason in s.describe()


def test_a_window_that_never_closes_is_reported_as_a_lower_bound():
    always = FreezeWindow("every minute for an hour", cron="* * * * *", duration=3600)
    s = window_state([always], at(2026, 12, 1, 0, 0))
    assert s.frozen and not s.bounded
    assert "until at least" in s.describe()


def test_the_next_window_is_the_earliest_to_open():
    s = window_state([FRIDAY, PARTY], at(2026, 12, 20, 0, 0))  # a Sunday
    assert s.next is not None and s.next.window is PARTY  # Dec 24 opens before Friday Dec 25
    assert s.as_json()["next"]["start_at"] == "2026-12-24T00:00+00:00"


def test_no_windows_means_never_frozen():
    s = window_state([], at(2026, 12, 4, 14, 0))
    assert not s.frozen and s.next is None and s.describe() == ""


# --- the refusal ---------------------------------------------------------------


def test_inside_a_window_a_promotion_is_refused_with_the_reason_and_when_it_ends():
    d = frozen_refusal(None, "promote", window_state([FRIDAY], at(2026, 12, 4, 15, 30)))
    assert d is not None and d.action is Action.REFUSE
    assert d.reason == ("refusing to promote: freeze window until 2026-12-04T18:00+00:00 (in 2h 30m): "
                        "Friday afternoon: nobody around to fix it")


def test_outside_every_window_nothing_is_refused():
    assert frozen_refusal(None, "deploy", window_state([FRIDAY, PARTY], at(2026, 12, 4, 18, 0))) is None


def test_a_manual_freeze_and_a_window_combine_and_both_are_named():
    d = frozen_refusal(Freeze("incident 42", "carol", at(2026, 12, 4, 12, 0)), "deploy",
                       window_state([FRIDAY], at(2026, 12, 4, 14, 0)))
    assert d is not None and d.refused
    assert "frozen by carol: incident 42" in d.reason and "until 2026-12-04T18:00+00:00" in d.reason


def test_a_manual_freeze_refuses_outside_any_window():
    d = frozen_refusal(Freeze("incident 42", "carol", 0.0), "deploy", window_state([FRIDAY], at(2026, 12, 3, 0, 0)))
    assert d is not None and d.reason == "refusing to deploy: frozen by carol: incident 42"


def test_spans_read_like_a_person_would_say_them():
    assert [span(s) for s in (40, 720, 4.5 * 3600, 2 * 86400 + 3 * 3600)] == ["40s", "12m", "4h 30m", "2d 3h"]


# --- the site file ---------------------------------------------------------------

SITE = {"repository": {"url": "https://git.example.org/lp.git"}}


def windows(*tables: dict) -> tuple[FreezeWindow, ...]:
    return parse_settings({**SITE, "freeze": {"windows": list(tables)}}).freeze.windows


def error(*tables: dict) -> SettingsError:
    with pytest.raises(SettingsError) as e:
        windows(*tables)
    return e.value


def test_the_site_file_reads_recurring_and_one_shot_windows():
    read = windows({"reason": "Fridays", "cron": "0 13 * * 5", "duration": "5h"},
                   {"reason": "party", "start": "2026-12-24T00:00:00+01:00",
                    "end": dt.datetime(2026, 12, 27, tzinfo=UTC)},
                   {"reason": "backup", "cron": "0 22 * * *", "duration": 1800, "timezone": "Europe/London"})
    assert read[0] == FreezeWindow("Fridays", cron="0 13 * * 5", duration=5 * 3600)
    assert read[1].start == dt.datetime(2026, 12, 24, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert read[1].end == dt.datetime(2026, 12, 27, tzinfo=UTC)
    assert read[2].duration == 1800 and read[2].timezone == "Europe/London"
    assert parse_settings(SITE).freeze.windows == ()


def test_durations_take_units():
    assert [windows({"reason": "r", "cron": "0 13 * * 5", "duration": d})[0].duration
            for d in ("1h30m", "2d", "45m", "90s", 600)] == [5400, 172800, 2700, 90, 600]


@pytest.mark.parametrize(("table", "key", "says"), [
    ({"cron": "0 13 * * 5", "duration": "5h"}, "freeze.windows[0].reason", "missing"),
    ({"reason": "r", "cron": "every friday", "duration": "5h"}, "freeze.windows[0].cron", "cron"),
    ({"reason": "r", "cron": "0 13 * * 5"}, "freeze.windows[0].duration", "missing"),
    ({"reason": "r", "cron": "0 13 * * 5", "duration": "5 hours"}, "freeze.windows[0].duration", "4h"),
    ({"reason": "r", "cron": "0 13 * * 5", "duration": 0}, "freeze.windows[0].duration", "more than 0"),
    ({"reason": "r", "cron": "0 13 * * 5", "duration": "32d"}, "freeze.windows[0].duration", "31 days"),
    ({"reason": "r", "cron": "0 13 * * 5", "duration": "5h", "timezone": "Mars/Olympus"},
     "freeze.windows[0].timezone", "time zone"),
    ({"reason": "r", "cron": "0 13 * * 5", "duration": "5h", "start": "2026-12-24T00:00+00:00"},
     "freeze.windows[0].start", "not both"),
    ({"reason": "r", "start": "2026-12-24T00:00:00", "end": "2026-12-25T00:00:00+00:00"},
     "freeze.windows[0].start", "no UTC offset"),
    ({"reason": "r", "start": dt.datetime(2026, 12, 24), "end": "2026-12-25T00:00:00+00:00"},
     "freeze.windows[0].start", "no UTC offset"),
    ({"reason": "r", "start": "2026-12-24T00:00:00+00:00", "end": "2026-12-25T00:00:00"},
     "freeze.windows[0].end", "no UTC offset"),
    ({"reason": "r", "start": "Christmas Eve", "end": "2026-12-25T00:00:00+00:00"},
     "freeze.windows[0].start", "ISO 8601"),
    ({"reason": "r", "start": "2026-12-24T00:00:00+00:00"}, "freeze.windows[0].end", "missing"),
    ({"reason": "r", "start": "2026-12-24T00:00:00+00:00", "end": "2026-12-24T00:00:00+00:00"},
     "freeze.windows[0].end", "not after start"),
    ({"reason": "r", "start": "2026-12-24T00:00:00+00:00", "end": "2026-12-25T00:00:00+00:00", "duration": 5},
     "freeze.windows[0].duration", "only for a recurring"),
    ({"reason": "r"}, "freeze.windows[0].start", "cron + duration or start + end"),
    ({"reason": "r", "cron": "0 13 * * 5", "duration": "5h", "weekday": "fri"},
     "freeze.windows[0].weekday", "unknown key"),
])
def test_each_bad_window_key_is_named_in_one_line(table, key, says):
    e = error(table)
    assert e.key == key
    assert says in e.problem
    assert "\n" not in str(e)


def test_windows_must_be_an_array_of_tables():
    with pytest.raises(SettingsError) as e:
        parse_settings({**SITE, "freeze": {"windows": {"reason": "r"}}})
    assert e.value.key == "freeze.windows"
    with pytest.raises(SettingsError) as e:
        parse_settings({**SITE, "freeze": {"window": []}})
    assert e.value.key == "freeze.window"
