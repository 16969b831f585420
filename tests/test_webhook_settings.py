"""``[webhook] secret_file``: read when the site file is read, refused when missing, weak or shared."""

from __future__ import annotations

from pathlib import Path

import pytest

from lpdeploy.core.errors import SettingsError
from lpdeploy.core.settings import load_settings

SITE = '[repository]\nurl = "https://git.example.org/lp.git"\n'
SECRET = "a-webhook-secret-of-32-characters"


def site(tmp_path: Path, webhook: str) -> Path:
    path = tmp_path / "site.toml"
    path.write_text(SITE + webhook, encoding="utf-8")
    return path


def secret_file(tmp_path: Path, text: str = SECRET + "\n", mode: int = 0o600) -> Path:
    path = tmp_path / "hook-secret"
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


def refusal(tmp_path: Path, webhook: str) -> SettingsError:
    with pytest.raises(SettingsError) as e:
        load_settings(site(tmp_path, webhook))
    return e.value


def test_no_webhook_table_means_the_hook_is_off(tmp_path):
    assert load_settings(site(tmp_path, "")).webhook is None


def test_the_secret_is_read_relative_to_the_site_file_without_its_newline(tmp_path):
    secret_file(tmp_path)
    s = load_settings(site(tmp_path, '[webhook]\nsecret_file = "hook-secret"\n'))
    assert s.webhook is not None
    assert s.webhook.secret == SECRET
    assert s.webhook.secret_file == str((tmp_path / "hook-secret").resolve())
    assert SECRET not in repr(s) and SECRET not in repr(s.webhook)


def test_a_webhook_table_needs_its_secret_file(tmp_path):
    assert refusal(tmp_path, "[webhook]\n").key == "webhook.secret_file"


def test_a_missing_secret_file_is_named(tmp_path):
    e = refusal(tmp_path, '[webhook]\nsecret_file = "nowhere"\n')
    assert e.key == "webhook.secret_file" and "no such file" in e.problem


def test_unknown_keys_in_webhook_are_refused(tmp_path):
    secret_file(tmp_path)
    e = refusal(tmp_path, '[webhook]\nsecret_file = "hook-secret"\nsecret = "inline"\n')
    assert e.key == "webhook.secret"


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620])
def test_a_secret_others_may_read_or_write_is_refused(tmp_path, mode):
    secret_file(tmp_path, mode=mode)
    e = refusal(tmp_path, '[webhook]\nsecret_file = "hook-secret"\n')
    assert e.key == "webhook.secret_file" and "chmod 600" in e.problem


@pytest.mark.parametrize("text", ["short-secret\n", "", "two words in a long secret\n", "x" * 20 + "\x1b"])
def test_a_weak_or_strange_secret_is_refused(tmp_path, text):
    secret_file(tmp_path, text)
    e = refusal(tmp_path, '[webhook]\nsecret_file = "hook-secret"\n')
    assert e.key == "webhook.secret_file" and "at least 16" in e.problem


def test_sixteen_characters_are_enough(tmp_path):
    secret_file(tmp_path, "0123456789abcdef")
    s = load_settings(site(tmp_path, '[webhook]\nsecret_file = "hook-secret"\n'))
    assert s.webhook is not None and s.webhook.secret == "0123456789abcdef"
