"""The ``[promotion] schedule`` slots: which cron instant is due, and whether it already fired.

Issue 12 (clock): a slot missed while every master was down fires once when
one starts, never twice; a clock that jumps backwards does not fire a slot
again. The rule: each firing stands for the newest slot not after the clock
(``latest_slot``), that slot is recorded in Buildbot's database before the
build is queued, and a slot not newer than the recorded one is never fired
(``slot_decision``), whatever the clock, the process memory or another master
says. Slots are cron instants in the master's local time.
"""

from __future__ import annotations

import datetime

import croniter

from lpdeploy.core.model import Action, Decision


def _local(ts: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(ts).astimezone()


def next_slot(cron: str, after: float) -> float:
    """The first cron instant strictly after ``after``."""
    return float(croniter.croniter(cron, _local(after)).get_next(float))


def latest_slot(cron: str, now: float) -> float:
    """The newest cron instant at or before ``now`` (the slot a firing at ``now`` stands for)."""
    before = float(croniter.croniter(cron, _local(now)).get_prev(float))  # strictly before now
    following = next_slot(cron, before)
    return following if following <= now else before


def slot_decision(slot: float, last_fired: float | None) -> Decision:
    """Fire ``slot`` (``MOVE``: queue the promotion) unless a slot at or after it was fired already."""
    shown = datetime.datetime.fromtimestamp(slot).astimezone().strftime("%Y-%m-%d %H:%M %Z")
    if last_fired is not None and slot <= last_fired:
        fired = datetime.datetime.fromtimestamp(last_fired).astimezone().strftime("%Y-%m-%d %H:%M %Z")
        return Decision(Action.NOTHING, f"the promotion slot of {shown} already fired (last fired: {fired})")
    return Decision(Action.MOVE, f"scheduled promotion for the slot of {shown}")
