"""What a value typed by a person may look like: one rule per kind of field, for every interface.

The web forms (``configurator.CheckedText``), the CLI and the build steps all
call these functions, so a reason, a server list, a cowboy id or a revision is
refused by the same rule, with the same words, wherever it comes in: the form
answers HTTP 400, the CLI exits 2 before sending anything, a step refuses.

Free text is bounded because it travels far: a build's reason is stored in
the database, listed by ``/api/v2/buildsets`` to everyone and pushed to every
websocket client. So every free-text field is **one line of at most
``MAX_TEXT`` printable characters that does not start with '-'**:

* one line: a newline would forge extra lines in logs, summaries and
  ``lpdeploy status``;
* printable (``str.isprintable``): no control characters (escape sequences for
  a terminal), no invisible format characters (bidirectional overrides that
  make text read differently than it is);
* not starting with '-': no value ever looks like an option, even to a
  careless caller (invariant 7).

Surrounding spaces are dropped; nothing else is changed. Nothing here imports
Buildbot, so the CLI checks exactly what the master will check.
"""

from __future__ import annotations

import re

from lpdeploy.core.errors import InvalidInput
from lpdeploy.core.refs import validate_revision

MAX_TEXT = 200  # characters of a reason (one line)
MAX_SERVER_LIST = 1000  # characters of a server list as typed in a form
SERVER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
_SERVER_SEPARATORS = re.compile(r"[ ,]+")
_COWBOY_ID = re.compile(r"#?([0-9]{1,9})")
USER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")


def text_rule(limit: int = MAX_TEXT) -> str:
    """The free-text rule in words, as error messages and the README state it."""
    return f"one line of at most {limit} printable characters, not starting with '-'"


def one_line(value: object, what: str, *, limit: int = MAX_TEXT, required: bool = False) -> str:
    """``value`` without surrounding spaces if it is one bounded line of printable text, else InvalidInput.

    ``None`` and ``""`` are the empty text: refused if ``required``.
    """
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InvalidInput(what, repr(value)[:80], "must be text")
    text = value.strip(" ")

    def refuse(problem: str) -> InvalidInput:
        return InvalidInput(what, text, f"{problem}; {what} must be {text_rule(limit)}")

    if len(text) > limit:
        raise refuse(f"{len(text)} characters")
    if "\n" in text or "\r" in text:
        raise refuse("more than one line")
    if not text.isprintable():
        bad = next(c for c in text if not c.isprintable())
        raise refuse(f"contains the control or format character U+{ord(bad):04X}")
    if text.startswith("-"):
        raise refuse("starts with '-' (it would read as an option)")
    if required and not text:
        raise InvalidInput(what, text, "must not be empty")
    return text


def reason(value: object, what: str = "reason", *, required: bool = True) -> str:
    """Why something is done: shown in builds, the audit trail and ``lpdeploy status``."""
    return one_line(value, what, required=required)


def optional_revision(value: object, what: str = "revision") -> str:
    """A full hex commit id, or ``""`` for "the branch tip"."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidInput(what, repr(value)[:80], "must be text")
    text = value.strip(" ")
    return validate_revision(text, what) if text else ""


def server_name(name: object, what: str = "server name") -> str:
    """A server's name: letters, digits, '.', '_' and '-', starting with a letter or digit."""
    if not isinstance(name, str) or not SERVER_NAME.fullmatch(name):
        raise InvalidInput(what, name if isinstance(name, str) else repr(name),
                           "at most 63 letters, digits, '.', '_' and '-', starting with a letter or digit")
    return name


def user_name(name: object, what: str = "user name") -> str:
    """A login name as the site file grants roles to it: letters, digits, '.', '_', '@' and '-'."""
    if not isinstance(name, str) or not USER_NAME.fullmatch(name):
        raise InvalidInput(what, name if isinstance(name, str) else repr(name),
                           "at most 64 letters, digits, '.', '_', '@' and '-', starting with a letter or digit")
    return name


def server_names(value: object, what: str = "servers", *, known: list[str] | None = None,
                 required: bool = False) -> list[str]:
    """Server names from a form field (``"app1 app2"``, ``"app1,app2"``) or a list, each once, in order.

    An empty result means "every server" to the caller. With ``known``, a name
    that is not configured is refused too.
    """
    if isinstance(value, (list, tuple)):
        names = [server_name(v) for v in value]
    else:
        text = one_line(value, what, limit=MAX_SERVER_LIST)
        names = [server_name(n) for n in _SERVER_SEPARATORS.split(text) if n]
    if required and not names:
        raise InvalidInput(what, "", "name at least one server")
    if known is not None:
        for n in names:
            if n not in known:
                raise InvalidInput("server", n, f"unknown server (known: {', '.join(known) or 'none'})")
    return list(dict.fromkeys(names))


def cowboy_id(value: object) -> int:
    """A cowboy's id as ``lpdeploy cowboy list`` shows it (``7`` or ``#7``)."""
    text = value if isinstance(value, str) else repr(value)[:80]
    found = _COWBOY_ID.fullmatch(text.strip(" ")) if isinstance(value, (str, int)) else None
    if not found:
        raise InvalidInput("cowboy id", text, "must be a number, as `lpdeploy cowboy list` shows it")
    return int(found.group(1))


MAX_PATCH = 1024 * 1024  # bytes of a cowboy's patch (``lpdeploy cowboy add --patch FILE``)
_HUNK = re.compile(r"^@@ -[0-9]+(,[0-9]+)? \+[0-9]+(,[0-9]+)? @@", re.MULTILINE)
_FILE_HEADER = re.compile(r"^(diff --git |--- )", re.MULTILINE)


def patch(value: object, what: str = "patch") -> str:
    """A cowboy's patch: a unified diff (``git diff`` output) of at most ``MAX_PATCH`` bytes, or ``""``.

    This is the shape check the CLI and the form make before anything is
    sent; the master then asks ``git patch-id`` (``gitops.patch_id``), which
    must find exactly one change in it. A diff carries whatever bytes the
    patched files hold, so the one-line rule of free text does not apply; a
    NUL does not occur in a text diff (``git diff`` writes "Binary files
    differ" instead) and is refused.
    """
    if value is None or value == "":
        return ""
    if not isinstance(value, str):
        raise InvalidInput(what, repr(value)[:80], "must be text")
    size = len(value.encode("utf-8", "surrogateescape"))
    if size > MAX_PATCH:
        raise InvalidInput(what, f"{size:,} bytes", f"is larger than the {MAX_PATCH // (1024 * 1024)} MiB "
                                                     "a cowboy's patch may have")
    if "\0" in value:
        raise InvalidInput(what, "(binary)", "contains a NUL byte; it must be a text diff (git diff)")
    if not _FILE_HEADER.search(value) or not _HUNK.search(value):
        raise InvalidInput(what, value.strip().split("\n")[0][:80], "is not a unified diff (git diff output: "
                                                                    "'diff --git' or '---' lines and '@@' hunks)")
    return value
