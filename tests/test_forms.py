"""The force forms lpdeploy makes: every field a person can type in is checked by an input rule.

Fast checks of the form definitions; ``test_e2e_forms.py`` posts bad values
to a real master.
"""

from __future__ import annotations

import warnings

import pytest

with warnings.catch_warnings():
    # forcesched imports buildbot.util.ssl, which touches an API Twisted 26.10 deprecates; once
    # buildbot.test is imported (by any earlier test module) that warning is an error
    warnings.simplefilter("ignore", DeprecationWarning)
    from buildbot.schedulers.forcesched import (
        BooleanParameter,
        FixedParameter,
        ForceScheduler,
        NestedParameter,
        ValidationError,
    )

    from lpdeploy import configurator
from lpdeploy.core.settings import parse_settings

SETTINGS = parse_settings({"repository": {"url": "file:///srv/lp.git"},
                           "servers": [{"name": "app1", "deploy_command": ["true"]}]})
SECURITY_FORMS = ("security-build", "merge-back")  # another issue rewrites these


def forms() -> dict[str, ForceScheduler]:
    c: dict = {}
    configurator.apply(c, SETTINGS)
    return {s.name: s for s in c["schedulers"] if isinstance(s, ForceScheduler)}


def leaves(params):
    for p in params:
        if isinstance(p, NestedParameter):
            yield from leaves(p.fields)
        else:
            yield p


def test_every_field_of_lpdeploys_forms_is_fixed_or_checked_by_a_rule():
    found = forms()
    assert {"promote", "deploy", "cowboy-add", "cowboy-remove", "freeze", "thaw"} <= set(found)
    for name, form in found.items():
        if name in SECURITY_FORMS:
            continue
        kwargs = form._config_kwargs
        fields = [kwargs["reason"], kwargs["priority"], *leaves(kwargs["codebases"]), *kwargs["properties"]]
        for field in fields:
            assert isinstance(field, (configurator.CheckedText, FixedParameter, BooleanParameter,
                                      configurator.NoPriority)), (name, field.name, type(field).__name__)


@pytest.mark.parametrize(("form", "field", "value"), [
    ("promote", "reason", "two\nlines"), ("deploy", "servers", "app9"), ("deploy", "target_revision", "HEAD"),
    ("cowboy-remove", "cowboy_id", "x"), ("freeze", "freeze_reason", "x" * 201), ("thaw", "reason", {"a": 1}),
])
def test_a_bad_value_is_buildbots_validation_error_which_the_api_answers_with_400(form, field, value):
    param = next(p for p in _params(forms()[form]) if p.name == field)
    with pytest.raises(ValidationError):
        param.getFromKwargs({param.fullName: [value]})


def test_a_good_value_is_stored_as_the_rule_returns_it():
    found = forms()
    reason = found["freeze"]._config_kwargs["reason"]
    assert reason.getFromKwargs({"reason": ["  party  "]}) == "party"
    assert reason.getFromKwargs({}) == "lpdeploy freeze"
    cowboy_id = next(p for p in _params(found["cowboy-remove"]) if p.name == "cowboy_id")
    assert cowboy_id.getFromKwargs({"cowboy_id": ["#7"]}) == "7"
    assert found["thaw"]._config_kwargs["priority"].getFromKwargs({"priority": ["99999999999"]}) == 0


def _params(form: ForceScheduler):
    return [form._config_kwargs["reason"], *form._config_kwargs["properties"]]
