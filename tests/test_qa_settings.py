"""The site keys of QA: the ``qa`` role, ``[promotion] require_qa`` and ``[qa]`` (bug pattern and link)."""

from __future__ import annotations

import pytest

from lpdeploy.core.errors import SettingsError
from lpdeploy.core.qa import DEFAULT_BUG_PATTERN
from lpdeploy.core.settings import parse_settings

REPO = {"repository": {"url": "file:///srv/upstream.git"}}


def test_qa_is_off_by_default_and_finds_launchpad_and_forge_bugs() -> None:
    s = parse_settings(dict(REPO))
    assert s.promotion.require_qa is False
    assert s.qa.bug_pattern == DEFAULT_BUG_PATTERN and s.qa.bug_url is None


def test_the_qa_role_require_qa_and_a_bug_url_are_read() -> None:
    s = parse_settings({**REPO, "auth": {"roles": {"qa": ["quinn"]}}, "promotion": {"require_qa": True},
                        "qa": {"bug_pattern": r"bug (\d+)", "bug_url": "https://bugs.example/{bug}"}})
    assert s.auth.users_with("qa") == ("quinn",)
    assert s.promotion.require_qa is True
    assert (s.qa.bug_pattern, s.qa.bug_url) == (r"bug (\d+)", "https://bugs.example/{bug}")


@pytest.mark.parametrize(("raw", "key", "words"), [
    ({"promotion": {"require_qa": "yes"}}, "promotion.require_qa", "true or false"),
    ({"qa": {"bug_pattern": "(unclosed"}}, "qa.bug_pattern", "not a regular expression"),
    ({"qa": {"bug_pattern": r"(LP): #(\d+)"}}, "qa.bug_pattern", "2 groups"),
    ({"qa": {"bug_url": "https://bugs.example/"}}, "qa.bug_url", "{bug}"),
    ({"qa": {"bug_url": "javascript:alert({bug})"}}, "qa.bug_url", "http(s)"),
    ({"qa": {"colour": "red"}}, "qa.colour", "unknown key"),
])
def test_bad_qa_keys_are_refused_naming_the_key(raw: dict, key: str, words: str) -> None:
    with pytest.raises(SettingsError) as e:
        parse_settings({**REPO, **raw})
    assert e.value.key == key and words in e.value.problem
