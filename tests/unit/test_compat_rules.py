"""CometAPI's parameter table applied to parameters alone: each kind of rule, in each mode.

The same rules through ``create()``, ``stream=True`` and ``fan_out`` against the local server are
in tests/integration/test_compat.py.
"""

from __future__ import annotations

import warnings
from typing import Any

import pytest

from aiocometapi import CompatibilityError, CompatibilityWarning, ConfigurationError
from aiocometapi._compat import check, family_of

USER = {"role": "user", "content": "hi"}


def adapt(**params: Any) -> tuple[dict[str, Any], list[tuple[str, str, Any, Any]]]:
    """``check(params, "adapt")``: what would be sent, and (parameter, action, before, after)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CompatibilityWarning)
        sent, adjustments = check({"messages": [USER], **params}, "adapt")
    assert adjustments is not None
    return dict(sent), [(a.parameter, a.action, a.before, a.after) for a in adjustments]


def test_a_range_is_clamped() -> None:
    """A number outside a family's range is clamped to its nearest end."""
    sent, changes = adapt(model="gpt-4o", temperature=3)
    assert sent["temperature"] == 2 and changes == [("temperature", "clamped", 3, 2)]
    sent, changes = adapt(model="claude-sonnet-4-6", temperature=1.5)
    assert sent["temperature"] == 1 and changes == [("temperature", "clamped", 1.5, 1)]


def test_a_list_too_long_is_trimmed() -> None:
    """More stop sequences than the family takes: the first ones are kept."""
    sent, changes = adapt(model="gemini-2.5-pro", stop=list("abcdef"))
    assert sent["stop"] == list("abcde") and changes[0][:2] == ("stop", "trimmed")


def test_a_parameter_the_family_ignores_is_dropped_unless_false() -> None:
    """logprobs on Claude is left out; logprobs=False asks nothing and stays."""
    sent, changes = adapt(model="claude-sonnet-4-6", logprobs=True)
    assert "logprobs" not in sent and changes == [("logprobs", "dropped", True, None)]
    sent, changes = adapt(model="claude-sonnet-4-6", logprobs=False)
    assert sent["logprobs"] is False and changes == []


def test_sampling_while_reasoning() -> None:
    """A reasoning model drops temperature, keeps 1, and takes it with reasoning_effort='none'."""
    sent, changes = adapt(model="gpt-5.4-mini", temperature=0.2)
    assert "temperature" not in sent and changes[0][:2] == ("temperature", "dropped")
    assert adapt(model="gpt-5.4-mini", temperature=1)[1] == []
    sent, changes = adapt(model="gpt-5.4-mini", temperature=3, reasoning_effort="none")
    assert sent["temperature"] == 2 and changes[0][:2] == ("temperature", "clamped")


def test_a_legacy_name_is_renamed_or_dropped_beside_the_new_one() -> None:
    """max_tokens on a reasoning model goes as max_completion_tokens, unless that is given."""
    sent, changes = adapt(model="o3", max_tokens=500)
    assert sent.get("max_completion_tokens") == 500 and "max_tokens" not in sent
    assert changes == [("max_tokens", "renamed", 500, 500)]
    sent, changes = adapt(model="o3", max_tokens=500, max_completion_tokens=800)
    assert sent["max_completion_tokens"] == 800 and "max_tokens" not in sent
    assert changes[0][:2] == ("max_tokens", "dropped")


def test_a_response_format_the_family_lacks_is_dropped() -> None:
    """json_object on Claude (json_schema only) is left out; json_schema stays."""
    sent, changes = adapt(model="claude-sonnet-4-6", response_format={"type": "json_object"})
    assert "response_format" not in sent and changes[0][:2] == ("response_format", "dropped")
    schema = {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}
    assert adapt(model="claude-sonnet-4-6", response_format=schema)[1] == []


def test_a_developer_message_becomes_a_system_one() -> None:
    """Before o1, GPT models get a developer message as the system message it acts as."""
    developer = {"role": "developer", "content": "be brief"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CompatibilityWarning)
        sent, adjustments = check({"model": "gpt-4o", "messages": [developer, USER]}, "adapt")
    assert sent["messages"] == [{"role": "system", "content": "be brief"}, USER]
    assert adjustments is not None and adjustments[0].action == "rewritten"


def test_adapt_leaves_the_given_parameters_alone() -> None:
    """adapt returns new parameters; the caller's dict and lists are not changed."""
    params = {"model": "gemini-2.5-pro", "messages": [USER], "stop": list("abcdef")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CompatibilityWarning)
        sent, _ = check(params, "adapt")
    assert params["stop"] == list("abcdef") and sent is not params


def test_strict_refuses_every_misfit_at_once() -> None:
    """strict raises one CompatibilityError naming every parameter that does not fit."""
    params = {"model": "claude-sonnet-4-6", "messages": [USER], "n": 2, "logprobs": True}
    with pytest.raises(CompatibilityError, match="n=2") as info:
        check(params, "strict")
    assert "logprobs" in str(info.value) and "Nothing was sent" in str(info.value)


def test_warn_sends_as_given_and_warns_per_parameter() -> None:
    """warn returns the parameters unchanged and one CompatibilityWarning per misfit."""
    params = {"model": "claude-sonnet-4-6", "messages": [USER], "n": 2, "logprobs": True}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sent, adjustments = check(params, "warn")
    assert sent is params and adjustments is None
    assert [w.category for w in caught] == [CompatibilityWarning, CompatibilityWarning]


def test_unknown_models_and_off_check_nothing() -> None:
    """A model outside the table, or compat 'off', passes anything as given."""
    params = {"model": "llama-4-maverick", "messages": [USER], "n": 99}
    assert check(params, "strict") == (params, None)
    assert check({**params, "model": "claude-sonnet-4-6"}, "off")[1] is None


def test_an_unknown_mode_is_a_configuration_error() -> None:
    """A mode that is not one of the four is refused."""
    with pytest.raises(ConfigurationError, match="compat must be one of"):
        check({"model": "gpt-4o", "messages": [USER]}, "loose")


@pytest.mark.parametrize(
    ("model", "family"),
    [
        ("openai/gpt-4o", "openai-gpt"),
        ("GPT-5.1", "openai-reasoning"),
        ("anthropic/claude-sonnet-4-6", "claude"),
        ("gemini-3-pro-preview", "gemini"),
        ("gpt-oss-120b", None),
    ],
)
def test_family_from_model_id(model: str, family: str | None) -> None:
    """The family is read from the id, any provider prefix and letter case aside."""
    found = family_of(model)
    assert (found.id if found else None) == family
