"""Branch names and revisions from outside: data, never an option (design invariant 7)."""

from __future__ import annotations

import pytest

from lpdeploy.core.errors import InvalidInput
from lpdeploy.core.refs import (
    branch_matches,
    qualified,
    validate_branch,
    validate_branch_pattern,
    validate_revision,
)

SHA1 = "0123456789abcdef0123456789abcdef01234567"
SHA256 = "0123456789abcdef" * 4


@pytest.mark.parametrize(
    "name",
    ["devel", "stable", "security/fix-1", "production-stable", "production-devel", "release_2.0", "a+b", "x"],
)
def test_normal_branch_names_are_accepted_unchanged(name):
    assert validate_branch(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "-x",
        "--upload-pack=touch /tmp/x",
        "refs/heads/x",
        "a..b",
        "a b",
        "x.lock",
        "security/",
        "a//b",
        "a/.hidden",
        "trailing.",
        ".dot-first",
        "/abs",
        "a\nb",
        "a~1",
        "a^",
        "a:b",
        "HEAD@{1}",
        "x" * 201,
    ],
)
def test_unsafe_or_invalid_branch_names_are_refused(name):
    with pytest.raises(InvalidInput) as e:
        validate_branch(name, what="stable branch")
    assert e.value.value == name
    assert e.value.what == "stable branch"  # every refusal names what was being validated
    assert e.value.problem


@pytest.mark.parametrize("value", [None, 1, b"devel", ["devel"]])
def test_a_branch_name_that_is_not_a_string_is_refused(value):
    with pytest.raises(InvalidInput, match="must be a string") as e:
        validate_branch(value, what="devel branch")
    assert (e.value.what, e.value.value) == ("devel branch", repr(value))


def test_an_option_like_branch_name_is_refused_because_it_reads_as_an_option():
    with pytest.raises(InvalidInput, match="option"):
        validate_branch("--upload-pack=touch /tmp/x")


def test_the_longest_allowed_branch_name_is_accepted():
    assert validate_branch("x" * 200) == "x" * 200


def test_the_refusal_names_what_was_being_validated():
    with pytest.raises(InvalidInput) as e:
        validate_branch("-x", what="stable branch")
    assert e.value.what == "stable branch"
    assert "stable branch" in str(e.value)


def test_qualified_refuses_what_validate_branch_refuses():
    assert qualified("security/fix-1") == "refs/heads/security/fix-1"
    with pytest.raises(InvalidInput):
        qualified("--upload-pack=x")


@pytest.mark.parametrize("rev", [SHA1, "f" * 40, SHA256])
def test_full_lowercase_hex_revisions_are_accepted(rev):
    assert validate_revision(rev) == rev


@pytest.mark.parametrize(
    "rev",
    [
        "",
        "-",
        "--all",
        SHA1[:12],
        SHA1[:39],
        SHA1 + "8",
        SHA1.upper(),
        "g" * 40,
        "HEAD",
        "devel",
        SHA1 + "\n",
        " " + SHA1,
        SHA1[:-1] + "^",
    ],
)
def test_short_uppercase_or_non_hex_revisions_are_refused(rev):
    with pytest.raises(InvalidInput) as e:
        validate_revision(rev, what="target revision")
    assert (e.value.what, e.value.value) == ("target revision", rev)
    assert "full 40-character hex commit id" in e.value.problem


@pytest.mark.parametrize("value", [None, 12345, b"0" * 40])
def test_a_revision_that_is_not_a_string_is_refused(value):
    with pytest.raises(InvalidInput, match="must be a string") as e:
        validate_revision(value, what="target revision")
    assert (e.value.what, e.value.value) == ("target revision", repr(value))


def test_a_security_branch_matches_the_security_pattern():
    assert branch_matches("security/fix", "security/*") is True


def test_the_security_pattern_does_not_cross_a_slash():
    assert branch_matches("security/a/b", "security/*") is False


def test_devel_is_not_a_security_branch():
    assert branch_matches("devel", "security/*") is False


def test_an_empty_suffix_does_not_match_the_security_pattern():
    assert branch_matches("security/", "security/*") is False


def test_a_pattern_without_a_star_matches_only_itself():
    assert branch_matches("stable", "stable") is True
    assert branch_matches("stable2", "stable") is False


def test_pattern_characters_other_than_star_are_literal():
    assert branch_matches("release-1.0", "release-1.*") is True
    assert branch_matches("release-1x0", "release-1.*") is False


def test_a_branch_pattern_may_contain_a_star_but_not_an_option():
    assert validate_branch_pattern("security/*") == "security/*"
    with pytest.raises(InvalidInput) as e:
        validate_branch_pattern("-*", what="branches.security")
    assert e.value.what == "branches.security"
    with pytest.raises(InvalidInput, match="must be a string") as e:
        validate_branch_pattern(None, what="branches.security")
    assert (e.value.what, e.value.value) == ("branches.security", "None")
