"""The source stamp of every buildset lpdeploy adds: one codebase, the upstream."""

from __future__ import annotations

from typing import Any

from lpdeploy.core.settings import Settings


def source_stamp(settings: Settings, branch: str = "", revision: str | None = None) -> dict[str, Any]:
    """The upstream's only codebase, on ``branch`` at ``revision``.

    No branch and no revision (security jobs, shards) says nothing about the
    work: those builds read what to check out from their properties or their
    job, never from the source stamp, which everyone can read.
    """
    return {"codebase": "", "repository": settings.repository.url, "branch": branch, "revision": revision,
            "project": ""}
