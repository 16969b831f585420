"""The repository URL carries no credentials, and what everyone can read shows it without user info.

The site file refuses a password or token in ``repository.url``; an
``ssh://git@host/...`` user stays allowed, and is dropped wherever the URL is
shown to anonymous users: ``status.json``, the change records, the force
forms. The poller and status tests reach a real local upstream under an
``ssh://git@...`` address through git's own ``url.<base>.insteadOf``, so the
code runs exactly as with an SSH upstream.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest

with warnings.catch_warnings():
    # forcesched imports buildbot.util.ssl, which touches an API Twisted 26.10 deprecates; once
    # buildbot.test is imported (by any earlier test module) that warning is an error
    warnings.simplefilter("ignore", DeprecationWarning)
    from buildbot.schedulers.forcesched import ForceScheduler

    from lpdeploy import configurator
from buildbot.test.reactor import TestReactorMixin
from buildbot.test.util.changesource import ChangeSourceMixin
from buildbot.util.twisted import async_to_deferred
from support import GitUpstream, RealUpstreamMixin, temp_dir
from twisted.internet import defer
from twisted.trial import unittest

from lpdeploy.core.errors import SettingsError
from lpdeploy.core.settings import parse_settings, public_url
from lpdeploy.git.gitops import Mirror
from lpdeploy.git.upstream import Upstream
from lpdeploy.master.changes import FlowPoller
from lpdeploy.stores.ledger import InMemoryLedger
from lpdeploy.stores.registry import InMemoryRegistry
from lpdeploy.web.status import flow_status

SSH_URL = "ssh://git@git.example.org/launchpad.git"
SHOWN = "ssh://git.example.org/launchpad.git"


def settings_for(url: str):
    return parse_settings({"repository": {"url": url}})


@pytest.mark.parametrize("url", [
    "https://deploy:s3cr3t-token@git.example.org/lp.git",
    "https://s3cr3t-token@git.example.org/lp.git",
    "http://user:s3cr3t-token@git.example.org/lp.git",
    "ssh://git:s3cr3t-token@git.example.org/lp.git",
    "git://s3cr3t-token@git.example.org/lp.git",
    "https://:s3cr3t-token@git.example.org/lp.git",
    "ftp://user:s3cr3t-token@git.example.org/lp.git",
])
def test_a_url_with_a_password_or_token_is_refused_without_echoing_it(url):
    with pytest.raises(SettingsError) as e:
        settings_for(url)
    assert e.value.key == "repository.url"
    assert "must not carry a password or token" in str(e.value)
    assert "credential helper or an SSH key" in str(e.value)
    assert "s3cr3t-token" not in str(e.value)


def test_an_ssh_user_without_a_password_stays_allowed():
    assert settings_for(SSH_URL).repository.url == SSH_URL


def test_a_url_python_cannot_parse_is_one_settings_error():
    with pytest.raises(SettingsError) as e:
        settings_for("https://[::1/lp.git")
    assert e.value.key == "repository.url"


@pytest.mark.parametrize(("url", "shown"), [
    (SSH_URL, SHOWN),
    ("ssh://git@[2001:db8::1]:2222/lp.git", "ssh://[2001:db8::1]:2222/lp.git"),
    ("https://user:pw@host/x.git?a=1", "https://host/x.git?a=1"),
    ("file:///srv/lp.git", "file:///srv/lp.git"),
    ("https://git.example.org/lp.git", "https://git.example.org/lp.git"),
])
def test_the_public_url_has_no_user_info(url, shown):
    assert public_url(url) == shown


def test_the_settings_repr_shows_no_user():
    assert "git@" not in repr(settings_for(SSH_URL))


def test_every_force_form_shows_the_repository_without_its_user():
    c: dict = {}
    configurator.apply(c, settings_for(SSH_URL))
    forms = [s for s in c["schedulers"] if isinstance(s, ForceScheduler)]
    shown = set()
    for form in forms:
        for codebase in form._config_kwargs["codebases"]:
            shown |= {f.default for f in codebase.fields if f.name == "repository"}
    assert len(forms) >= 7
    assert shown == {SHOWN}


def ssh_alias(case: unittest.TestCase, bare: str) -> None:
    """Make git read ``SSH_URL`` from the local bare repository (git's url.<base>.insteadOf)."""
    for key, value in {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": f"url.file://{bare}.insteadOf",
                       "GIT_CONFIG_VALUE_0": SSH_URL}.items():
        old = os.environ.get(key)
        os.environ[key] = value
        case.addCleanup(lambda k=key, v=old: os.environ.pop(k) if v is None else os.environ.__setitem__(k, v))


class ChangeRecords(RealUpstreamMixin, ChangeSourceMixin, TestReactorMixin, unittest.TestCase):
    @defer.inlineCallbacks
    def setUp(self):
        self.setup_real_upstream("lpdeploy-url-")
        ssh_alias(self, self.repo.bare)
        yield self.setUpChangeSource()
        base = self.repo.commit("Initial release", None)
        for b in ("devel", "stable", "production-devel", "production-stable"):
            self.repo.push(b, base)
        self.poller = yield self.attachChangeSource(FlowPoller(name="lpdeploy-poller",
                                                               settings=settings_for(SSH_URL)))

    @async_to_deferred
    async def test_a_change_record_names_the_repository_without_its_user_and_is_reported_once(self):
        await self.poller.poll()
        first_tips = await self.poller.getState("tips", None)
        self.repo.push("devel", self.repo.commit("Add search", first_tips["devel"]))
        await self.poller.poll()
        changes = self.master.data.updates.changesAdded
        self.assertEqual([c["repository"] for c in changes], [SHOWN])
        await self.poller.setState("tips", first_tips)  # a crash before the tips were saved
        await self.poller.poll()
        self.assertEqual(len(changes), 1)
        self.assertEqual([c.repository for c in await self.master.db.changes.getChanges()], [SHOWN])


class Status(TestReactorMixin, unittest.TestCase):
    def setUp(self):
        self.setup_test_reactor()
        base = temp_dir(self)
        repo = GitUpstream(base)
        tip = repo.commit("Initial release", None)
        for b in ("devel", "stable", "production-devel", "production-stable"):
            repo.push(b, tip)
        ssh_alias(self, repo.bare)
        self.upstream = Upstream(Mirror(Path(base) / "mirror.git", SSH_URL))

    @async_to_deferred
    async def test_status_shows_the_repository_without_its_user(self):
        status = await flow_status(self.upstream, InMemoryLedger(), InMemoryRegistry(), settings_for(SSH_URL))
        self.assertEqual(status["repository"], SHOWN)
        self.assertIsNotNone(status["branches"][0]["tip"])  # it did read the upstream through the alias
