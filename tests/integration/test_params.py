"""The body parameters of OpenAI's current reference: accepted, sent, and checked per family."""

from __future__ import annotations

import warnings
from typing import Any, cast

import pytest

from aiocometapi import AsyncCometAPI, CompatibilityError, CompatibilityWarning
from aiocometapi.resources.chat import CompletionCreateParams
from aiocometapi.testing import MockServer
from conftest import user

pytestmark = pytest.mark.anyio

# The body parameters of CompletionCreateParamsBase in openai-python's
# src/openai/types/chat/completion_create_params.py, commit e43b422 (August 2026).
OPENAI_REFERENCE = [
    "audio", "frequency_penalty", "function_call", "functions", "logit_bias", "logprobs",
    "max_completion_tokens", "max_tokens", "messages", "metadata", "modalities", "model",
    "moderation", "n", "parallel_tool_calls", "prediction", "presence_penalty",
    "prompt_cache_key", "prompt_cache_options", "prompt_cache_retention", "reasoning_effort",
    "response_format", "safety_identifier", "seed", "service_tier", "stop", "store",
    "stream_options", "temperature", "tool_choice", "tools", "top_logprobs", "top_p", "user",
    "verbosity", "web_search_options",
]  # fmt: skip

# A value for each parameter this round added, as OpenAI's reference shapes it.
NEW_VALUES: dict[str, Any] = {
    "store": True,
    "metadata": {"ticket": "T-1"},
    "verbosity": "low",
    "modalities": ["text", "audio"],
    "audio": {"voice": "alloy", "format": "wav"},
    "prediction": {"type": "content", "content": "def f(): pass"},
    "web_search_options": {"search_context_size": "low"},
    "prompt_cache_key": "user-42",
    "prompt_cache_retention": "24h",
    "prompt_cache_options": {"mode": "implicit", "ttl": "30m"},
    "safety_identifier": "b7f1c0",
    "service_tier": "flex",
    "moderation": {"model": "omni-moderation-latest"},
    "function_call": "auto",
    "functions": [{"name": "f", "parameters": {"type": "object", "properties": {}}}],
    "reasoning_effort": "xhigh",
    "stream_options": {"include_usage": True, "include_obfuscation": False},
}


async def create(client: AsyncCometAPI, **params: Any) -> Any:
    return await cast(Any, client.chat.completions).create(**params)


def test_every_reference_parameter_is_named() -> None:
    """Each body parameter of OpenAI's reference is a typed keyword argument of create()."""
    named = set(CompletionCreateParams.__annotations__) | {"stream"}
    assert set(OPENAI_REFERENCE) - named == set()
    assert set(NEW_VALUES) <= named


async def test_new_parameters_are_sent_as_given(client: AsyncCometAPI, server: MockServer) -> None:
    """The new parameters reach the server as given (compat off: nothing checked)."""
    stream = await create(
        client,
        model="gpt-5.4-mini",
        messages=[user("hi")],
        stream=True,
        compat="off",
        **NEW_VALUES,
    )
    async with stream:
        await stream.final()
    body = server.requests[-1].body
    for name, value in NEW_VALUES.items():
        assert body[name] == value, name


async def test_unknown_parameter_names_extra_body(
    client: AsyncCometAPI, server: MockServer
) -> None:
    """An unknown parameter is refused before sending, by name, pointing at extra_body."""
    with pytest.raises(TypeError) as raised:
        await create(client, model="claude-sonnet-4-6", messages=[user("hi")], thinking={})
    message = str(raised.value)
    assert "'thinking'" in message
    assert "extra_body={'thinking': ...}" in message
    assert server.requests == []
    await create(
        client,
        model="claude-sonnet-4-6",
        messages=[user("hi")],
        extra_body={"thinking": {"type": "enabled"}},
    )
    assert server.requests[-1].body["thinking"] == {"type": "enabled"}


async def test_misspelt_parameter_gets_a_suggestion(client: AsyncCometAPI) -> None:
    """A near miss of a known name is answered with that name; several are all listed."""
    with pytest.raises(TypeError, match=r"did you mean 'max_tokens'\?"):
        await create(client, model="gpt-4o", messages=[user("hi")], max_token=5)
    with pytest.raises(TypeError, match=r"arguments 'safety_id', 'verbose'"):
        await create(client, model="gpt-4o", messages=[user("hi")], verbose=1, safety_id="x")


# --------------------------------------------------------------------------- compat rules

# (model, parameters, words the warning names): each a parameter its model does not take.
MISFITS = [
    ("gpt-4o", {"audio": {"voice": "alloy", "format": "wav"}}, ("audio", "OpenAI audio models")),
    ("claude-sonnet-4-6", {"modalities": ["text", "audio"]}, ("modalities", "audio models")),
    ("gemini-3-flash-preview", {"modalities": ["audio"]}, ("modalities", "audio models")),
    ("gpt-4o", {"verbosity": "low"}, ("verbosity='low'", "GPT-5 models")),
    ("o3", {"verbosity": "high"}, ("verbosity='high'", "GPT-5 models")),
    ("claude-sonnet-4-6", {"verbosity": "low"}, ("verbosity", "GPT-5 models")),
    ("gpt-4o", {"web_search_options": {}}, ("web_search_options", "search models")),
    ("o3", {"prediction": {"type": "content", "content": "x"}},
     ("prediction", "OpenAI reasoning", "GPT-4o and GPT-4.1")),
    ("claude-sonnet-4-6", {"prediction": {"type": "content", "content": "x"}},
     ("prediction", "Claude")),
    ("claude-sonnet-4-6", {"store": True}, ("store=True", "Claude")),
    ("claude-sonnet-4-6", {"metadata": {"a": "b"}}, ("metadata", "Claude")),
    ("claude-sonnet-4-6", {"service_tier": "flex"}, ("service_tier='flex'", "Claude")),
]  # fmt: skip

FITS = [
    ("gpt-4o-audio-preview", {"audio": {"voice": "alloy", "format": "wav"},
                              "modalities": ["text", "audio"]}),
    ("gpt-audio", {"modalities": ["text", "audio"]}),
    ("openai/gpt-5.1", {"verbosity": "low"}),
    ("gpt-5-mini", {"verbosity": "high", "store": True, "metadata": {"a": "b"}}),
    ("gpt-4o-search-preview", {"web_search_options": {"search_context_size": "low"}}),
    ("gpt-4.1", {"prediction": {"type": "content", "content": "x"}, "service_tier": "flex"}),
    ("claude-sonnet-4-6", {"modalities": ["text"], "store": False}),
    ("gemini-3-flash-preview", {"modalities": ("text",), "store": True}),
]  # fmt: skip


def misfit_id(case: Any) -> str:
    return f"{next(iter(case[1]))}-{case[0]}"


def record_compat(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, CompatibilityWarning)]


@pytest.mark.parametrize("case", MISFITS, ids=misfit_id)
async def test_misfit_in_each_mode(
    client: AsyncCometAPI, server: MockServer, case: tuple[str, dict[str, Any], tuple[str, ...]]
) -> None:
    """warn sends and warns, strict refuses unsent, adapt leaves it out and says so, off sends."""
    model, given, words = case
    [(name, value)] = given.items()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        await create(client, model=model, messages=[user("hi")], compat="warn", **given)
    assert server.requests[-1].body[name] == value
    [warned] = record_compat(caught)
    assert all(word in warned for word in words), warned

    before = len(server.requests)
    with pytest.raises(CompatibilityError) as raised:
        await create(client, model=model, messages=[user("hi")], compat="strict", **given)
    assert len(server.requests) == before
    assert all(word in str(raised.value) for word in words)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        adapted = await create(client, model=model, messages=[user("hi")], compat="adapt", **given)
    assert name not in server.requests[-1].body
    [adjustment] = adapted.adjustments
    assert (adjustment.parameter, adjustment.action, adjustment.after) == (name, "dropped", None)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        await create(client, model=model, messages=[user("hi")], compat="off", **given)
    assert server.requests[-1].body[name] == value
    assert record_compat(caught) == []


@pytest.mark.parametrize(("model", "given"), FITS, ids=lambda v: v if isinstance(v, str) else "")
async def test_fitting_values_pass_in_every_mode(
    client: AsyncCometAPI, server: MockServer, model: str, given: dict[str, Any]
) -> None:
    """A model that takes the parameter gets it unchanged, with no warning, in every mode."""
    for mode in ("warn", "strict", "adapt"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            completion = await create(
                client, model=model, messages=[user("hi")], compat=mode, **given
            )
        assert record_compat(caught) == [], mode
        body = server.requests[-1].body
        for name, value in given.items():
            assert body[name] == (list(value) if isinstance(value, tuple) else value)
        assert completion.adjustments == ([] if mode == "adapt" else None)
