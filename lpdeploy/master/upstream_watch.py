"""The periodic reads of the upstream's tips, with backoff and the "unreachable since" record.

The poller and the schedulers read the tips on their timers. While the
upstream does not answer (a timeout, exit 128), each failed read is recorded
(``core.upstream_health``: since when, how many) in the database and the next
read waits longer, up to a bound; nothing is decided on stale tips, so
nothing advances. The first read that succeeds clears the record and
announces the recovery on Buildbot's message queue (``RECOVERED_KEY``, seen by
every master): the gate reconciles at once instead of at its next timer tick.
"""

from __future__ import annotations

from typing import Any

from twisted.python import log

from lpdeploy.core.errors import LpDeployError
from lpdeploy.core.model import Tips
from lpdeploy.core.settings import Settings
from lpdeploy.core.upstream_health import RECOVERED_KEY, after_read, may_read
from lpdeploy.facts.services import services


async def read_tips(master: Any, settings: Settings, who: str) -> Tips | None:
    """The upstream's tips, or None (logged) while it is unreachable or its next read is not due yet.

    Called by ``who`` (a poller or scheduler name, for the log) on its timer.
    """
    reach = services(master)
    url = settings.repository.url
    store = reach.upstream_health
    health = await store.get(url)
    now = master.reactor.seconds()
    if not may_read(health, now):
        log.msg(f"{who}: the upstream has been unreachable since {health.unreachable_since}; "
                f"next read in {health.next_read - now:.0f}s")
        return None
    try:
        tips = await reach.upstream(url, settings.repository.timeout).fetch()
    except LpDeployError as e:
        now = master.reactor.seconds()
        error = str(e).replace(url, settings.repository.public_url)  # shown to everyone: no user name
        after = after_read(health, now, error, settings.repository.poll_interval)
        await store.save(url, after)
        log.msg(f"{who}: cannot read the upstream tips ({e}); {after.failures} failed read(s) in a row, "
                f"next in {after.next_read - now:.0f}s")
        return None
    if not health.reachable:
        await store.save(url, after_read(health, master.reactor.seconds(), None, settings.repository.poll_interval))
        log.msg(f"{who}: the upstream answers again (unreachable since {health.unreachable_since})")
        master.mq.produce(RECOVERED_KEY, {"unreachable_since": health.unreachable_since})
    return tips
