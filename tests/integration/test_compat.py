"""compat: CometAPI's per-provider parameter table, applied before a request is sent."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import msgspec
import pytest

from aiocometapi import (
    Adjustment,
    AsyncCometAPI,
    CometAPIError,
    CompatibilityError,
    CompatibilityWarning,
    ConfigurationError,
)
from aiocometapi._compat import FAMILIES, TABLE, Mode, family_of
from aiocometapi.testing import MockServer
from aiocometapi.types import (
    DeveloperMessage,
    JSONSchema,
    ResponseFormatJSONObject,
    ResponseFormatJSONSchema,
    UserMessage,
)
from conftest import FAKE_KEY, user

pytestmark = pytest.mark.anyio

GPT, REASONING, CLAUDE, GEMINI = "gpt-4o", "o3", "claude-sonnet-4-6", "gemini-3-flash-preview"
UNKNOWN = "deepseek-v3.2"
DROPPED: Any = object()
"""In ``Case.sent``: the parameter is left out of the adapted request."""


@contextlib.contextmanager
def recorded() -> Iterator[list[warnings.WarningMessage]]:
    """Every warning raised inside, none filtered out."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught


async def create(client: AsyncCometAPI, **params: Any) -> Any:
    """``client.chat.completions.create(**params)``, for parameters built as dicts."""
    return await cast(Any, client.chat.completions).create(**params)


def compat_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, CompatibilityWarning)]


@dataclass(frozen=True)
class Case:
    """A request that does not fit its family, and what ``adapt`` sends instead."""

    id: str
    model: str
    given: dict[str, Any]
    sent: dict[str, Any]
    action: str
    words: tuple[str, ...]
    """Words the warning and the error name: the parameter, the family, the rule."""
    messages: list[Any] = field(default_factory=lambda: [user("hi")])


DEV = [{"role": "developer", "content": "be terse"}, user("hi")]
AS_SYSTEM = [{"role": "system", "content": "be terse"}, user("hi")]
STOPS = ["a", "b", "c", "d", "e", "f"]

# fmt: off
# One misfit per row and family of the table (rows where every family says "yes" have none).
MISFITS = [
    Case("temperature-gpt", GPT, {"temperature": 2.5}, {"temperature": 2}, "clamped",
         ("temperature=2.5", "OpenAI GPT", "0 to 2")),
    Case("temperature-reasoning", REASONING, {"temperature": 0.2}, {"temperature": DROPPED},
         "dropped", ("temperature=0.2", "OpenAI reasoning", "while they reason",
                     "reasoning_effort='none'")),
    Case("temperature-reasoning-off", "gpt-5.1", {"temperature": -0.5, "reasoning_effort": "none"},
         {"temperature": 0, "reasoning_effort": "none"}, "clamped",
         ("temperature=-0.5", "OpenAI reasoning", "0 to 2")),
    Case("temperature-claude", CLAUDE, {"temperature": 1.5}, {"temperature": 1}, "clamped",
         ("temperature=1.5", "Claude", "0 to 1", "capped")),
    Case("temperature-gemini", GEMINI, {"temperature": 3.0}, {"temperature": 2}, "clamped",
         ("temperature=3.0", "Gemini", "0 to 2")),
    Case("top_p-gpt", GPT, {"top_p": 1.5}, {"top_p": 1}, "clamped", ("top_p=1.5", "OpenAI GPT")),
    Case("top_p-reasoning", "gpt-5-mini", {"top_p": 0.9}, {"top_p": DROPPED}, "dropped",
         ("top_p=0.9", "OpenAI reasoning", "while they reason")),
    Case("top_p-claude", CLAUDE, {"top_p": 1.2}, {"top_p": 1}, "clamped", ("top_p=1.2", "Claude")),
    Case("top_p-gemini", GEMINI, {"top_p": 2}, {"top_p": 1}, "clamped", ("top_p=2", "Gemini")),
    Case("n-gpt", GPT, {"n": 129}, {"n": 128}, "clamped", ("n=129", "OpenAI GPT", "1 to 128")),
    Case("n-reasoning", REASONING, {"n": 130}, {"n": 128}, "clamped",
         ("n=130", "OpenAI reasoning", "1 to 128")),
    Case("n-claude", CLAUDE, {"n": 2}, {"n": 1}, "clamped",
         ("n=2: Claude models accept n=1 only",)),
    Case("n-gemini", GEMINI, {"n": 9}, {"n": 8}, "clamped", ("n=9", "Gemini", "1 to 8")),
    Case("stop-gpt", GPT, {"stop": STOPS[:5]}, {"stop": STOPS[:4]}, "trimmed",
         ("stop has 5", "OpenAI GPT", "up to 4")),
    Case("stop-reasoning", REASONING, {"stop": STOPS[:5]}, {"stop": STOPS[:4]}, "trimmed",
         ("stop has 5", "OpenAI reasoning", "up to 4")),
    Case("stop-claude", CLAUDE, {"stop": STOPS}, {"stop": STOPS[:4]}, "trimmed",
         ("stop has 6", "Claude", "up to 4")),
    Case("stop-gemini", GEMINI, {"stop": STOPS}, {"stop": STOPS[:5]}, "trimmed",
         ("stop has 6", "Gemini", "up to 5")),
    Case("response_format-claude", CLAUDE, {"response_format": {"type": "json_object"}},
         {"response_format": DROPPED}, "dropped", ("response_format", "json_object", "Claude",
                                                   "json_schema only")),
    Case("logprobs-reasoning", REASONING, {"logprobs": True}, {"logprobs": DROPPED}, "dropped",
         ("logprobs=True", "OpenAI reasoning", "while they reason")),
    Case("logprobs-claude", CLAUDE, {"logprobs": True}, {"logprobs": DROPPED}, "dropped",
         ("logprobs", "Claude")),
    Case("logprobs-gemini", GEMINI, {"logprobs": True}, {"logprobs": DROPPED}, "dropped",
         ("logprobs", "Gemini")),
    Case("top_logprobs-claude", CLAUDE, {"top_logprobs": 3}, {"top_logprobs": DROPPED}, "dropped",
         ("top_logprobs", "Claude")),
    Case("top_logprobs-reasoning", "gpt-5", {"top_logprobs": 2}, {"top_logprobs": DROPPED},
         "dropped", ("top_logprobs=2", "OpenAI reasoning")),
    Case("presence_penalty-reasoning", "o4-mini", {"presence_penalty": 0.5},
         {"presence_penalty": DROPPED}, "dropped", ("presence_penalty=0.5", "OpenAI reasoning")),
    Case("frequency_penalty-reasoning", REASONING, {"frequency_penalty": 0.1},
         {"frequency_penalty": DROPPED}, "dropped", ("frequency_penalty=0.1", "OpenAI reasoning")),
    Case("logit_bias-reasoning", "gpt-5.4-mini", {"logit_bias": {"42": -100}},
         {"logit_bias": DROPPED}, "dropped", ("logit_bias", "OpenAI reasoning")),
    Case("reasoning_effort-gpt", GPT, {"reasoning_effort": "low"},
         {"reasoning_effort": DROPPED}, "dropped", ("reasoning_effort", "OpenAI GPT")),
    Case("reasoning_effort-claude", CLAUDE, {"reasoning_effort": "high"},
         {"reasoning_effort": DROPPED}, "dropped", ("reasoning_effort", "Claude")),
    Case("reasoning_effort-gemini", GEMINI, {"reasoning_effort": "low"},
         {"reasoning_effort": DROPPED}, "dropped", ("reasoning_effort", "Gemini", "thinking")),
    Case("max_tokens-o3", REASONING, {"max_tokens": 50},
         {"max_tokens": DROPPED, "max_completion_tokens": 50}, "renamed",
         ("max_tokens=50", "OpenAI reasoning", "max_completion_tokens")),
    Case("max_tokens-gpt-5", "gpt-5", {"max_tokens": 50},
         {"max_tokens": DROPPED, "max_completion_tokens": 50}, "renamed",
         ("max_tokens=50", "OpenAI reasoning", "max_completion_tokens")),
    Case("max_tokens-both-given", "o4-mini", {"max_tokens": 50, "max_completion_tokens": 80},
         {"max_tokens": DROPPED, "max_completion_tokens": 80}, "dropped",
         ("max_tokens=50", "OpenAI reasoning", "max_completion_tokens")),
    Case("developer-gpt", GPT, {}, {"messages": AS_SYSTEM}, "rewritten",
         ("messages[0]", "developer", "OpenAI GPT", "system"), DEV),
    Case("developer-claude", CLAUDE, {}, {"messages": AS_SYSTEM}, "rewritten",
         ("messages[0]", "developer", "Claude", "system"), DEV),
    Case("developer-gemini", GEMINI, {}, {"messages": AS_SYSTEM}, "rewritten",
         ("messages[0]", "developer", "Gemini", "system"), DEV),
]

# The same rows, with values each family takes: no warning, nothing changed.
FITS = [
    (GPT, {"temperature": 2.0, "top_p": 1.0, "n": 128, "stop": STOPS[:4], "logprobs": True,
           "top_logprobs": 5, "max_tokens": 50, "response_format": {"type": "json_object"}}),
    (REASONING, {"temperature": 1, "n": 2, "stop": "END", "reasoning_effort": "high",
                 "max_completion_tokens": 50, "messages": DEV}),
    ("gpt-5.1", {"reasoning_effort": "none", "logprobs": True, "temperature": 0.3, "top_p": 0.5,
                 "presence_penalty": 0.2, "logit_bias": {"42": -100}}),
    ("gpt-5.4-mini", {"temperature": 1.0, "top_p": 1, "logprobs": False}),
    ("gpt-5-mini", {"reasoning_effort": "minimal"}),
    (CLAUDE, {"temperature": 1.0, "top_p": 0.9, "n": 1, "stop": STOPS[:4], "max_tokens": 50,
              "logprobs": False, "response_format": {
                  "type": "json_schema", "json_schema": {"name": "x", "schema": {}}}}),
    (GEMINI, {"temperature": 2.0, "n": 8, "stop": STOPS[:5], "max_tokens": 50,
              "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]}),
]
# fmt: on


async def send(client: AsyncCometAPI, case: Case, mode: Mode) -> tuple[Any, list[str]]:
    with recorded() as caught:
        completion = await create(
            client, model=case.model, messages=case.messages, compat=mode, **case.given
        )
    return completion, compat_warnings(caught)


# --------------------------------------------------------------------------- the four modes


@pytest.mark.parametrize("case", MISFITS, ids=lambda c: c.id)
async def test_warn_sends_unchanged_and_warns(
    client: AsyncCometAPI, server: MockServer, case: Case
) -> None:
    """compat="warn" sends a misfit as given and warns, naming parameter, family and rule."""
    completion, messages = await send(client, case, "warn")
    body = server.requests[-1].body
    assert body["messages"] == case.messages
    for key, value in case.given.items():
        assert body[key] == value
    assert len(messages) == 1
    for word in case.words:
        assert word in messages[0]
    assert "sent unchanged" in messages[0]
    assert completion.adjustments is None


@pytest.mark.parametrize("case", MISFITS, ids=lambda c: c.id)
async def test_strict_raises_before_sending(
    client: AsyncCometAPI, server: MockServer, case: Case
) -> None:
    """compat="strict" raises CompatibilityError, naming the problem, and sends nothing."""
    before = len(server.requests)
    with pytest.raises(CompatibilityError) as raised:
        await send(client, case, "strict")
    assert len(server.requests) == before
    assert isinstance(raised.value, CometAPIError)
    for word in (*case.words, case.model):
        assert word in str(raised.value)


@pytest.mark.parametrize("case", MISFITS, ids=lambda c: c.id)
async def test_adapt_rewrites_and_reports(
    client: AsyncCometAPI, server: MockServer, case: Case
) -> None:
    """compat="adapt" sends what the family takes and lists each change on the completion."""
    completion, messages = await send(client, case, "adapt")
    body = server.requests[-1].body
    for key, value in case.sent.items():
        if value is DROPPED:
            assert key not in body
        else:
            assert body[key] == value
    assert completion.adjustments is not None
    [adjustment] = completion.adjustments
    parameter = "messages" if case.action == "rewritten" else next(iter(case.given))
    assert adjustment.parameter == parameter
    assert adjustment.family == family_of(case.model).id  # type: ignore[union-attr]
    assert adjustment.action == case.action
    for word in case.words:
        assert word in adjustment.message
    assert str(adjustment) == adjustment.message
    assert messages == [f"{adjustment.message} (model {case.model!r})"]


@pytest.mark.parametrize("case", MISFITS, ids=lambda c: c.id)
async def test_off_checks_nothing(client: AsyncCometAPI, server: MockServer, case: Case) -> None:
    """compat="off" sends a misfit as given, without a warning."""
    completion, messages = await send(client, case, "off")
    body = server.requests[-1].body
    assert body["messages"] == case.messages
    for key, value in case.given.items():
        assert body[key] == value
    assert messages == []
    assert completion.adjustments is None


@pytest.mark.parametrize("mode", ["warn", "strict", "adapt", "off"])
@pytest.mark.parametrize(("model", "given"), FITS, ids=lambda v: v if isinstance(v, str) else "")
async def test_fitting_request_passes_untouched(
    client: AsyncCometAPI, server: MockServer, model: str, given: dict[str, Any], mode: Mode
) -> None:
    """A request that fits its family is sent as given, with no warning, in every mode."""
    params = {"messages": [user("hi")], **given}
    with recorded() as caught:
        completion = await create(client, model=model, compat=mode, **params)
    assert caught == []
    assert server.requests[-1].body == {"model": model, **params}
    assert completion.adjustments == ([] if mode == "adapt" else None)


@pytest.mark.parametrize("mode", ["warn", "strict", "adapt", "off"])
@pytest.mark.parametrize("model", [UNKNOWN, "llama-4-maverick", "qwen3-coder", "gpt-oss-120b"])
async def test_unknown_model_is_untouched(
    client: AsyncCometAPI, server: MockServer, model: str, mode: Mode
) -> None:
    """A model outside the table's families is sent as given, with no warning, in every mode."""
    params = {
        "messages": DEV,
        "n": 9,
        "temperature": 2.5,
        "top_p": 1.5,
        "stop": STOPS,
        "logprobs": True,
        "reasoning_effort": "high",
        "max_tokens": 50,
    }
    with recorded() as caught:
        completion = await create(client, model=model, compat=mode, **params)
    assert caught == []
    assert server.requests[-1].body == {"model": model, **params}
    assert completion.adjustments == ([] if mode == "adapt" else None)


async def test_warn_is_the_default(client: AsyncCometAPI, server: MockServer) -> None:
    """Without a compat setting a misfit is sent as given, with a CompatibilityWarning."""
    with pytest.warns(CompatibilityWarning, match=r"n=2: Claude models accept n=1 only"):
        await client.chat.completions.create(model=CLAUDE, messages=[user("hi")], n=2)
    assert server.requests[-1].body["n"] == 2


async def test_warning_is_not_an_error_under_the_project_filters(
    client: AsyncCometAPI, server: MockServer
) -> None:
    """Under the project's pytest filterwarnings a CompatibilityWarning stays a warning."""
    with warnings.catch_warnings(record=True) as caught:  # the filters in force, kept as they are
        await client.chat.completions.create(model=GEMINI, messages=[user("hi")], logprobs=True)
    assert server.requests[-1].body["logprobs"] is True
    assert len(compat_warnings(caught)) <= 1  # 0 if an identical one was already shown here


async def test_warning_points_at_the_callers_line(client: AsyncCometAPI) -> None:
    """The warning is reported at the line that called create(), not inside the SDK."""
    with recorded() as caught:
        await client.chat.completions.create(model=CLAUDE, messages=[user("hi")], n=3)
    [warning] = caught
    assert warning.filename == __file__


async def test_all_misfits_reported_together(client: AsyncCometAPI, server: MockServer) -> None:
    """Several misfits in one request: one warning each, or one error naming them all."""
    params: dict[str, Any] = {"n": 2, "temperature": 1.5, "logprobs": True}
    with recorded() as caught:
        await create(client, model=CLAUDE, messages=[user("hi")], **params)
    assert len(compat_warnings(caught)) == 3
    with pytest.raises(CompatibilityError) as raised:
        await create(client, model=CLAUDE, messages=[user("hi")], compat="strict", **params)
    assert all(name in str(raised.value) for name in params)
    with recorded():
        completion = await create(
            client, model=CLAUDE, messages=[user("hi")], compat="adapt", **params
        )
    assert completion.adjustments is not None
    assert [a.parameter for a in completion.adjustments] == list(params)
    body = server.requests[-1].body
    assert body["n"] == 1 and body["temperature"] == 1 and "logprobs" not in body


# --------------------------------------------------------------------------- settings


async def test_client_setting_and_per_call_override(server: MockServer) -> None:
    """compat set on the client applies to every call; a call's own compat wins."""
    async with AsyncCometAPI(FAKE_KEY, base_url=server.url, compat="strict") as client:
        with pytest.raises(CompatibilityError):
            await client.chat.completions.create(model=CLAUDE, messages=[user("hi")], n=2)
        with recorded() as caught:
            await client.chat.completions.create(
                model=CLAUDE, messages=[user("hi")], n=2, compat="off"
            )
        assert caught == [] and server.requests[-1].body["n"] == 2
        adapting = client.with_options(compat="adapt")
        with recorded():
            completion = await adapting.chat.completions.create(
                model=CLAUDE, messages=[user("hi")], n=2
            )
        assert server.requests[-1].body["n"] == 1 and completion.adjustments
        assert client.with_options(timeout=3)._config.compat == "strict"
    assert "compat" not in server.requests[-1].body


async def test_bad_mode_is_a_configuration_error(client: AsyncCometAPI) -> None:
    """An unknown compat value is refused, on the client, on with_options and per call."""
    with pytest.raises(ConfigurationError, match="compat"):
        AsyncCometAPI(FAKE_KEY, compat="loud")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="compat"):
        client.with_options(compat="quiet")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="compat"):
        await create(client, model=UNKNOWN, messages=[user("hi")], compat="adapted")


async def test_adapt_leaves_the_callers_objects_alone(
    client: AsyncCometAPI, server: MockServer
) -> None:
    """Message Structs are rewritten too, and the caller's own list and dicts stay as they were."""
    messages: list[Any] = [
        DeveloperMessage(content="be terse", name="ops"),
        UserMessage(content="hi"),
    ]
    stop = STOPS.copy()
    with recorded():
        completion = await client.chat.completions.create(
            model=CLAUDE,
            messages=messages,
            stop=stop,
            compat="adapt",
            response_format=ResponseFormatJSONObject(),
        )
    body = server.requests[-1].body
    assert body["messages"][0] == {"role": "system", "content": "be terse", "name": "ops"}
    assert body["stop"] == STOPS[:4] and "response_format" not in body
    assert isinstance(messages[0], DeveloperMessage) and stop == STOPS
    assert completion.adjustments is not None
    assert [a.action for a in completion.adjustments] == ["rewritten", "trimmed", "dropped"]


async def test_struct_response_format_that_fits(client: AsyncCometAPI, server: MockServer) -> None:
    """A json_schema response_format Struct on Claude fits: no warning."""
    schema = ResponseFormatJSONSchema(json_schema=JSONSchema(name="x", schema={"type": "object"}))
    with recorded() as caught:
        await client.chat.completions.create(
            model=CLAUDE, messages=[user("hi")], response_format=schema
        )
    assert caught == []
    assert server.requests[-1].body["response_format"]["type"] == "json_schema"


def test_adjustment_is_a_loggable_value() -> None:
    """An Adjustment prints as its message, compares by value, and cannot be changed."""
    adjustment = Adjustment(
        parameter="n", family="claude", action="clamped", before=2, after=1, message="n=2: ..."
    )
    assert str(adjustment) == "n=2: ..." and f"{adjustment}" == "n=2: ..."
    assert adjustment == Adjustment(
        parameter="n", family="claude", action="clamped", before=2, after=1, message="n=2: ..."
    )
    with pytest.raises(AttributeError):
        adjustment.after = 3  # type: ignore[misc]
    assert msgspec.json.decode(msgspec.json.encode(adjustment))["action"] == "clamped"


# --------------------------------------------------------------------------- streams, fan-out


@pytest.mark.parametrize("mode", ["warn", "strict", "adapt", "off"])
async def test_stream_behaves_as_create(
    client: AsyncCometAPI, server: MockServer, mode: Mode
) -> None:
    """A stream is checked like a plain create(): warned, refused, adapted or left alone."""
    before = len(server.requests)
    with recorded() as caught:
        if mode == "strict":
            with pytest.raises(CompatibilityError, match="n=2"):
                await client.chat.completions.create(
                    model=CLAUDE, messages=[user("hi")], n=2, stream=True, compat=mode
                )
            assert len(server.requests) == before
            return
        stream = await client.chat.completions.create(
            model=CLAUDE, messages=[user("hi")], n=2, stream=True, compat=mode
        )
        async with stream:
            completion = await stream.final()
    body = server.requests[-1].body
    assert body["stream"] is True
    assert body["n"] == (1 if mode == "adapt" else 2)
    assert len(compat_warnings(caught)) == (0 if mode == "off" else 1)
    if mode == "adapt":
        assert stream.adjustments is not None and stream.adjustments[0].action == "clamped"
        assert completion.adjustments == stream.adjustments
        assert len(completion.choices) == 1
    else:
        assert stream.adjustments is None and completion.adjustments is None


@pytest.mark.parametrize("mode", ["warn", "adapt"])
async def test_fan_out_warns_once_per_parameter_and_family(
    client: AsyncCometAPI, server: MockServer, mode: Mode
) -> None:
    """In a fan-out of 50 requests with the same misfit, the warning comes once, not 50 times."""
    requests = [
        {
            "model": CLAUDE,
            "messages": [user(f"q{i}")],
            "n": 2 + i % 3,
            "compat": mode,
            "stream": i % 2 == 0,
        }
        for i in range(50)
    ]
    with recorded() as caught:
        results = [r async for r in client.chat.completions.fan_out(requests, concurrency=10)]
    assert len(compat_warnings(caught)) == 1
    assert all(r.ok for r in results) and len(results) == 50
    sent_n = {r.body["n"] for r in server.requests}
    if mode == "adapt":
        assert sent_n == {1}
        assert all(
            r.completion is not None
            and r.completion.adjustments
            and r.completion.adjustments[0].before == 2 + r.index % 3
            for r in results
        )
    else:
        assert sent_n == {2, 3, 4}
    with recorded() as caught:
        await client.chat.completions.create(model=CLAUDE, messages=[user("hi")], n=2)
    assert len(compat_warnings(caught)) == 1  # outside the fan-out, warnings work as usual


async def test_fan_out_strict_fails_each_request_unsent(
    client: AsyncCometAPI, server: MockServer
) -> None:
    """compat="strict" in a fan-out: every misfit's result is a CompatibilityError, none sent."""
    requests: list[dict[str, Any]] = [{"model": GEMINI, "messages": [user("q")], "logprobs": True}]
    fitting: list[dict[str, Any]] = [{"model": GEMINI, "messages": [user("q")]}]
    async with AsyncCometAPI(FAKE_KEY, base_url=server.url, compat="strict") as strict:
        results = [r async for r in strict.chat.completions.fan_out(requests * 20 + fitting * 5)]
    assert sum(isinstance(r.error, CompatibilityError) for r in results) == 20
    assert sum(r.ok for r in results) == 5
    assert len(server.requests) == 5


# --------------------------------------------------------------------------- the table


@pytest.mark.parametrize(
    ("model", "family"),
    [
        ("gpt-4o", "openai-gpt"),
        ("gpt-4o-mini", "openai-gpt"),
        ("gpt-4o-2024-08-06", "openai-gpt"),
        ("gpt-4.1", "openai-gpt"),
        ("gpt-4.1-nano", "openai-gpt"),
        ("gpt-4-turbo", "openai-gpt"),
        ("gpt-3.5-turbo", "openai-gpt"),
        ("chatgpt-4o-latest", "openai-gpt"),
        ("openai/gpt-4o", "openai-gpt"),
        ("GPT-4o", "openai-gpt"),
        ("o1", "openai-reasoning"),
        ("o1-mini", "openai-reasoning"),
        ("o1-preview", "openai-reasoning"),
        ("o3", "openai-reasoning"),
        ("o3-mini", "openai-reasoning"),
        ("o3-pro", "openai-reasoning"),
        ("o4-mini", "openai-reasoning"),
        ("openai/o4-mini", "openai-reasoning"),
        ("gpt-5", "openai-reasoning"),
        ("gpt-5-mini", "openai-reasoning"),
        ("gpt-5-nano", "openai-reasoning"),
        ("gpt-5.1", "openai-reasoning"),
        ("gpt-5.4-mini", "openai-reasoning"),
        ("claude-sonnet-4-6", "claude"),
        ("claude-3-5-sonnet-20241022", "claude"),
        ("claude-opus-4-1-20250805", "claude"),
        ("anthropic/claude-3-7-sonnet-latest", "claude"),
        ("gemini-3-flash-preview", "gemini"),
        ("gemini-2.5-pro", "gemini"),
        ("google/gemini-2.0-flash", "gemini"),
        ("deepseek-v3.2", None),
        ("deepseek-reasoner", None),
        ("gpt-oss-120b", None),
        ("omni-moderation-latest", None),
        ("o", None),
        ("gemma-3-27b-it", None),
        ("llama-3.1-70b", None),
        ("", None),
    ],
)
def test_family_detection(model: str, family: str | None) -> None:
    """Model ids, with or without a provider prefix or a date suffix, map to their family."""
    found = family_of(model)
    assert (found.id if found else None) == family


def test_table_has_a_column_per_family() -> None:
    """Every row of the table has a rule (or YES) for each of the four families."""
    assert list(FAMILIES) == ["openai-gpt", "openai-reasoning", "claude", "gemini"]
    assert all(len(row) == len(FAMILIES) for row in TABLE.values())
    assert set(FAMILIES["claude"].rules) >= {"temperature", "n", "logprobs", "response_format"}
    assert "reasoning_effort" not in FAMILIES["openai-reasoning"].rules
