"""The input rules: one place decides what a reason, a server list, a cowboy id or a revision may be."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lpdeploy.core import validators
from lpdeploy.core.errors import InvalidInput

SHA = "0123456789abcdef0123456789abcdef01234567"


def problem(fn, *args, **kwargs) -> str:
    with pytest.raises(InvalidInput) as e:
        fn(*args, **kwargs)
    return str(e.value)


# --- free text -------------------------------------------------------------


def test_a_one_line_reason_is_kept_without_surrounding_spaces():
    assert validators.reason("  hot patch for the mail relay (#123) — urgent  ") == \
        "hot patch for the mail relay (#123) — urgent"


def test_a_reason_at_the_limit_passes_and_one_character_more_is_refused_with_the_rule():
    assert validators.reason("x" * validators.MAX_TEXT) == "x" * validators.MAX_TEXT
    msg = problem(validators.reason, "x" * (validators.MAX_TEXT + 1), "freeze reason")
    assert "201 characters" in msg
    assert "freeze reason must be one line of at most 200 printable characters, not starting with '-'" in msg


def test_a_ten_megabyte_reason_is_refused_and_the_message_stays_short():
    msg = problem(validators.reason, "A" * 10_000_000)
    assert len(msg) < 300


@pytest.mark.parametrize("text", ["first line\nFAKE: second line", "carriage\rreturn", "trailing newline\n"])
def test_a_reason_of_more_than_one_line_is_refused(text):
    assert "more than one line" in problem(validators.reason, text)


@pytest.mark.parametrize(("text", "code"), [
    ("bell\x07", "U+0007"), ("tab\there", "U+0009"), ("escape \x1b[31mred", "U+001B"),
    ("nul\x00", "U+0000"), ("del\x7f", "U+007F"), ("rtl \u202eoverride", "U+202E"),
    ("zero\u200bwidth", "U+200B"), ("line\u2028separator", "U+2028"), ("c1 \x85", "U+0085"),
])
def test_control_and_format_characters_are_refused_by_code_point(text, code):
    assert f"control or format character {code}" in problem(validators.reason, text)


@pytest.mark.parametrize("text", ["-x", "--upload-pack=touch /tmp/x", " -- rm"])
def test_an_option_shaped_reason_is_refused(text):
    assert "starts with '-'" in problem(validators.reason, text)


def test_a_dash_inside_a_reason_is_fine():
    assert validators.reason("mail relay - hot patch") == "mail relay - hot patch"


@pytest.mark.parametrize("value", [None, "", "    "])
def test_an_empty_reason_is_refused_when_required_and_empty_otherwise(value):
    assert "must not be empty" in problem(validators.reason, value)
    assert validators.reason(value, required=False) == ""


@pytest.mark.parametrize("value", [5, ["a"], {"a": 1}, b"bytes", True])
def test_a_reason_that_is_not_text_is_refused(value):
    assert "must be text" in problem(validators.reason, value)


@given(st.text(max_size=300))
def test_every_accepted_text_is_one_bounded_printable_line_that_is_no_option(text):
    try:
        out = validators.one_line(text, "text")
    except InvalidInput:
        return
    assert len(out) <= validators.MAX_TEXT
    assert "\n" not in out and "\r" not in out
    assert out.isprintable()
    assert not out.startswith("-")
    assert out == text.strip(" ")


# --- revisions ---------------------------------------------------------------


def test_an_optional_revision_is_a_full_sha_or_empty():
    assert validators.optional_revision(SHA) == SHA
    assert validators.optional_revision(f" {SHA} ") == SHA
    assert validators.optional_revision("") == ""
    assert validators.optional_revision(None) == ""


@pytest.mark.parametrize("value", ["abc123", SHA.upper(), SHA + "\n", "--all", SHA + "0" * 1000, "HEAD~1", 7])
def test_anything_else_is_not_a_revision(value):
    assert "--revision" in problem(validators.optional_revision, value, "--revision")


# --- servers ------------------------------------------------------------------


def test_server_names_are_split_on_spaces_and_commas_and_kept_once_in_order():
    assert validators.server_names("app2, app1 app2,,app3") == ["app2", "app1", "app3"]
    assert validators.server_names(["app1", "app1"]) == ["app1"]
    assert validators.server_names("") == []


@pytest.mark.parametrize(("value", "words"), [
    ("-app1", "starts with '-'"), ("app1,.x", "starting with a letter or digit"), ("app1 --all", "'--all'"),
    ("app1;reboot", "'app1;reboot'"),
    ("app1\napp2", "more than one line"), ("app1\tapp2", "U+0009"), ("a" * 64, "at most 63"),
    (["ok", "-x"], "'-x'"), ("x " * 501, "1001 characters; servers must be one line of at most 1000"),
    (7, "must be text"),
])
def test_bad_server_lists_are_refused(value, words):
    assert words in problem(validators.server_names, value)


def test_an_unknown_server_is_refused_when_the_known_ones_are_given():
    msg = problem(validators.server_names, "app1 app9", known=["app1", "app2"])
    assert "'app9': unknown server (known: app1, app2)" in msg


def test_a_required_server_list_must_name_one():
    assert "name at least one server" in problem(validators.server_names, " , ", required=True)


def test_server_name_is_the_rule_the_site_file_uses_too():
    assert validators.server_name("app-1.example_2") == "app-1.example_2"
    assert "starting with a letter or digit" in problem(validators.server_name, ".hidden")


# --- cowboy ids ---------------------------------------------------------------


@pytest.mark.parametrize(("value", "number"), [("7", 7), ("#7", 7), (" 12 ", 12), (3, 3), ("#999999999", 999999999)])
def test_a_cowboy_id_is_a_number_with_an_optional_hash(value, number):
    assert validators.cowboy_id(value) == number


@pytest.mark.parametrize("value", ["", "#", "-1", "1; rm -rf /", "1\n2", "1234567890", "x", True, None, 1.5])
def test_anything_else_is_not_a_cowboy_id(value):
    assert "must be a number" in problem(validators.cowboy_id, value)


@pytest.mark.parametrize("name", ["alice", "carol@example.org", "b.o_b-2", "a" * 64])
def test_a_user_name_the_site_file_may_grant_a_role_to(name):
    assert validators.user_name(name) == name


@pytest.mark.parametrize("name", ["", "bob smith", "-alice", "@alice", "a" * 65, "al:ice", "alice\n", 7])
def test_a_user_name_that_cannot_be_a_login_is_refused(name):
    with pytest.raises(InvalidInput, match="user name"):
        validators.user_name(name)


# --- a cowboy's patch --------------------------------------------------------

DIFF = "diff --git a/app.py b/app.py\n--- a/app.py\n+++ b/app.py\n@@ -1 +1 @@\n-print('a')\n+print('b')\n"


def test_a_unified_diff_is_a_patch_kept_as_is_and_empty_means_none():
    assert validators.patch(DIFF) == DIFF
    assert validators.patch(DIFF.split("\n", 1)[1]) == DIFF.split("\n", 1)[1]  # a plain diff -u has no git line
    assert validators.patch("") == "" and validators.patch(None) == ""


def test_a_patch_of_up_to_one_mib_is_taken_and_a_byte_more_is_refused_naming_the_limit():
    filler = "+" + "x" * 99 + "\n"
    at_limit = DIFF + filler * ((validators.MAX_PATCH - len(DIFF)) // len(filler))
    at_limit += "+" * (validators.MAX_PATCH - len(at_limit))
    assert len(at_limit.encode()) == validators.MAX_PATCH and validators.patch(at_limit) == at_limit
    assert "larger than the 1 MiB a cowboy's patch may have" in problem(validators.patch, at_limit + "+")


def test_text_that_is_no_diff_a_nul_or_a_non_string_is_refused():
    assert "is not a unified diff" in problem(validators.patch, "I changed the mail relay config by hand\n")
    assert "is not a unified diff" in problem(validators.patch, "--- a/x\n+++ b/x\nno hunk\n")
    assert "NUL" in problem(validators.patch, DIFF + "\0")
    assert "must be text" in problem(validators.patch, 42)
