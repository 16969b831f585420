"""Who may log in, and which roles may do what.

Login checks an Apache htpasswd file with bcrypt entries (``htpasswd -B``);
Buildbot's own ``HTPasswdAuth`` compares plain text, so it cannot be used.
Authorisation denies by default: every control action lpdeploy adds is
allowed to its role only, and a final rule denies every other control action
to everyone. Reads stay open to anonymous users.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import bcrypt
from buildbot.www.auth import CustomAuth
from buildbot.www.authz import Authz
from buildbot.www.authz.endpointmatchers import (
    AnyControlEndpointMatcher,
    ForceBuildEndpointMatcher,
    RebuildBuildEndpointMatcher,
    StopBuildEndpointMatcher,
)
from buildbot.www.authz.roles import RolesFromUsername

from lpdeploy.settings import Settings

log = logging.getLogger(__name__)
NOBODY = "lpdeploy-deny-all"  # a role no user ever has


@functools.cache
def _dummy_hash() -> bytes:
    """A real hash to check unknown users against, so timing does not reveal user names."""
    return bcrypt.hashpw(b"lpdeploy-no-such-user", bcrypt.gensalt())


class BcryptHtpasswdAuth(CustomAuth):
    """Check users against an htpasswd file of bcrypt entries, re-read on every login."""

    def __init__(self, path: str, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.path = Path(path)

    def entries(self) -> dict[str, bytes]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except OSError as e:
            log.warning("cannot read htpasswd file %s: %s", self.path, e)
            return {}
        found = {}
        for line in text.splitlines():
            user, sep, hashed = line.strip().partition(":")
            if sep and hashed.startswith(("$2y$", "$2b$", "$2a$")):
                found[user] = hashed.encode()
        return found

    def check_credentials(self, username: bytes | str, password: bytes | str) -> bool:
        """Called by Buildbot's login resource with the HTTP basic credentials."""
        user = username.decode() if isinstance(username, bytes) else username
        pw = password.encode() if isinstance(password, str) else password
        hashed = self.entries().get(user)
        try:
            ok = bcrypt.checkpw(pw, hashed or _dummy_hash())
        except ValueError:
            return False
        return ok and hashed is not None


def make_authz(settings: Settings, builders: dict[str, str]) -> Authz:
    """Rules for the builders lpdeploy makes: ``builders`` maps builder name → required role."""
    rules = []
    for builder, role in builders.items():
        rules += [
            ForceBuildEndpointMatcher(builder=builder, role=role),
            StopBuildEndpointMatcher(builder=builder, role=role),
            RebuildBuildEndpointMatcher(builder=builder, role=role),
        ]
    rules.append(AnyControlEndpointMatcher(role=NOBODY))  # deny every other control action
    matchers = [
        RolesFromUsername(roles=[role], usernames=list(users))
        for role, users in settings.auth.roles.items()
    ]
    return Authz(allowRules=rules, roleMatchers=matchers)
