"""The change source: one poller for every branch of the flow.

Stock ``GitPoller`` reports only *new commits*, so a fast-forward of stable to
a commit already seen on devel emits nothing. The flow cares about *tips*, so
this poller compares the upstream's tips (``git ls-remote``) with the tips it
last reported, kept in Buildbot's database, and emits one change per branch
whose tip moved: fast-forwards, new branches and pushes made while the master
was down included.

A crash between reporting a change and saving the new tip would report it
again on restart; before reporting, the poller checks whether the newest
change it recorded for that branch already names that tip.

Security branches are not reported at all (a change record is readable by
everyone); the security scheduler watches them itself. A flow branch whose
new tip is an embargoed commit (production after a security promotion) is
reported with no commit text, and with the time the poller saw it rather
than the commit's own time (which would date the embargoed work).

A push webhook (``lpdeploy.web.hook``) is a hint to poll now: while active,
the poller consumes ``webhook.HINT_KEY`` from Buildbot's message queue (so a
hook received by any master reaches the one running the poller) and polls at
once; the interval stays the safety net.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from buildbot import config
from buildbot.changes.base import ReconfigurablePollingChangeSource
from buildbot.util.state import StateMixin
from twisted.internet import defer

from lpdeploy.core import properties as prop
from lpdeploy.core.model import EMBARGOED
from lpdeploy.core.refs import short
from lpdeploy.core.settings import Settings
from lpdeploy.core.webhook import HINT_KEY
from lpdeploy.facts.embargo import embargoed_commits
from lpdeploy.facts.services import services
from lpdeploy.git.gitops import branch_names
from lpdeploy.git.upstream import Upstream
from lpdeploy.master.upstream_watch import read_tips


class FlowPoller(ReconfigurablePollingChangeSource, StateMixin):
    """Poll the upstream's branch tips and report every tip that moved."""

    def checkConfig(self, settings: Settings) -> None:  # type: ignore[override]
        if not isinstance(settings, Settings):
            config.error("FlowPoller needs lpdeploy Settings")
        super().checkConfig(pollInterval=settings.repository.poll_interval, pollAtLaunch=True)

    @defer.inlineCallbacks
    def reconfigService(self, settings: Settings):  # type: ignore[override]
        self.settings = settings
        yield super().reconfigService(name=self.name, pollInterval=settings.repository.poll_interval,
                                      pollAtLaunch=True)

    _hints: Any = None  # the message-queue consumer of webhook hints, while active

    @defer.inlineCallbacks
    def activate(self):
        """Called by Buildbot on the master that claims this poller: poll on the interval and on every hint."""
        yield super().activate()
        self._hints = yield self.master.mq.startConsuming(self._hinted, HINT_KEY)

    @defer.inlineCallbacks
    def deactivate(self):
        if self._hints is not None:
            self._hints.stopConsuming()
            self._hints = None
        yield super().deactivate()

    def _hinted(self, key: tuple[str, ...], message: Any) -> None:
        """A signed push arrived: read the tips now (Buildbot's poller runs again if a poll is under way)."""
        self.force()

    def describe(self) -> str:
        return f"lpdeploy FlowPoller watching {self.settings.repository.url}"

    def watched(self, branch: str) -> bool:
        return branch in self.settings.branches.flow

    def poll(self) -> defer.Deferred[None]:
        """Called by Buildbot every ``poll_interval`` seconds (and once at start)."""
        return defer.ensureDeferred(self._poll())

    async def _poll(self) -> None:
        upstream = services(self.master).upstream(self.settings.repository.url, self.settings.repository.timeout)
        tips = await read_tips(self.master, self.settings, self.name)  # backs off while the upstream is down
        if tips is None:
            return
        known: dict[str, str] | None = await self.getState("tips", None)
        current = {name: tips.heads[name] for name in branch_names(tips.heads) if self.watched(name)}
        if known is None:
            # first poll ever: nothing to compare with; the schedulers reconcile from the tips
            await self.setState("tips", current)
            return
        moved = {b: sha for b, sha in current.items() if known.get(b) != sha}
        embargoed = (await embargoed_commits(upstream, services(self.master).registry, self.settings, tips)
                     if moved else set())
        for branch, sha in sorted(moved.items()):
            if not await self._already_reported(branch, sha):
                await self._report(upstream, branch, sha, known.get(branch), sha in embargoed)
            known[branch] = sha
            await self.setState("tips", known)
        gone = [b for b in known if b not in current]
        if gone:
            for b in gone:
                del known[b]
            await self.setState("tips", known)

    async def _report(self, upstream: Upstream, branch: str, sha: str, previous: str | None,
                      embargoed: bool) -> None:
        commit = await upstream.commit(sha)
        await self.master.data.updates.addChange(
            author=EMBARGOED if embargoed else commit.author,
            committer=EMBARGOED if embargoed else commit.author,
            revision=sha,
            branch=branch,
            repository=self.settings.repository.public_url,
            project="",
            codebase="",
            comments=f"{short(sha)} {EMBARGOED}" if embargoed else commit.subject,
            files=[],
            when_timestamp=int(self.master.reactor.seconds()) if embargoed else commit.timestamp,
            category="push",
            properties={prop.PREVIOUS_TIP: previous or ""},
            src="git",
        )

    async def _already_reported(self, branch: str, sha: str) -> bool:
        """Whether the newest change recorded for ``branch`` already names ``sha``."""
        url = self.settings.repository.public_url

        def thd(conn: Any) -> bool:
            tbl = self.master.db.model.changes
            q = (sa.select(tbl.c.revision)
                 .where(tbl.c.branch == branch, tbl.c.repository == url)
                 .order_by(tbl.c.changeid.desc()).limit(1))
            row = conn.execute(q).first()
            return row is not None and row.revision == sha

        return await self.master.db.pool.do(thd)
