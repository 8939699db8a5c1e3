"""The client: configuration, lifecycle, requests, responses, errors and retries."""

from __future__ import annotations

import socket
import time
from email.utils import formatdate
from typing import Any

import pytest

import aiocometapi
from aiocometapi import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AsyncCometAPI,
    ClientClosedError,
    ConfigurationError,
    InternalServerError,
    NotFoundError,
    RateLimitError,
    Timeout,
)
from aiocometapi.testing import MockServer
from aiocometapi.types import (
    AssistantMessage,
    DeveloperMessage,
    Function,
    ImagePart,
    ImageURL,
    InputAudio,
    InputAudioPart,
    SystemMessage,
    TextPart,
    ToolCall,
    ToolMessage,
    UserMessage,
)
from conftest import FAKE_KEY, user

pytestmark = pytest.mark.anyio

MODEL = "gpt-5.4-mini"

# --------------------------------------------------------------------------- configuration


def test_key_missing_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a key argument or COMETAPI_KEY the error says how to set one."""
    monkeypatch.delenv("COMETAPI_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="COMETAPI_KEY"):
        AsyncCometAPI()


def test_blank_key_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A key of only whitespace counts as missing."""
    monkeypatch.setenv("COMETAPI_KEY", "   ")
    with pytest.raises(ConfigurationError, match="api_key"):
        AsyncCometAPI()


async def test_key_and_base_url_from_environment(
    server: MockServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """COMETAPI_KEY and COMETAPI_BASE_URL configure a client built with no arguments."""
    monkeypatch.setenv("COMETAPI_KEY", FAKE_KEY)
    monkeypatch.setenv("COMETAPI_BASE_URL", server.url)
    async with AsyncCometAPI() as client:
        await client.chat.completions.create(model=MODEL, messages=[user("hi")])
    assert server.requests[-1].headers["authorization"] == f"Bearer {FAKE_KEY}"


def test_default_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    """With nothing set, the client talks to CometAPI's public endpoint."""
    monkeypatch.delenv("COMETAPI_BASE_URL", raising=False)
    assert AsyncCometAPI(FAKE_KEY).base_url == "https://api.cometapi.com/v1"


@pytest.mark.parametrize("suffix", ["", "/"])
async def test_trailing_slash_or_none(server: MockServer, suffix: str) -> None:
    """A base URL with or without a trailing slash reaches the same path."""
    async with AsyncCometAPI(FAKE_KEY, base_url=server.url + suffix) as client:
        await client.chat.completions.create(model=MODEL, messages=[user("hi")])
    assert server.requests[-1].path == "/v1/chat/completions"


@pytest.mark.parametrize("url", ["ftp://x/v1", "api.cometapi.com", "https://x/v1\r\nX: y"])
def test_bad_base_url_refused(url: str) -> None:
    """A base URL that is not http(s), or carries control characters, is refused."""
    with pytest.raises(ConfigurationError):
        AsyncCometAPI(FAKE_KEY, base_url=url)


def test_header_with_newline_refused() -> None:
    """Header values with CR or LF are refused before anything is sent."""
    with pytest.raises(ConfigurationError, match="control character"):
        AsyncCometAPI(FAKE_KEY, default_headers={"X-Tag": "a\r\nInjected: 1"})


async def test_key_not_in_repr(client: AsyncCometAPI) -> None:
    """repr() of the client never shows the key."""
    assert FAKE_KEY not in repr(client)
    assert FAKE_KEY not in repr(client._config)


async def test_proxy_from_environment(server: MockServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """HTTP_PROXY is honoured (trust_env): requests go through the proxy it names."""
    for name in ("NO_PROXY", "no_proxy", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{server.port}")
    unreachable = "http://127.0.0.2:9/v1"
    async with AsyncCometAPI(FAKE_KEY, base_url=unreachable, max_retries=0) as client:
        completion = await client.chat.completions.create(model=MODEL, messages=[user("hi")])
    assert completion.choices[0].message.content == "Echo: hi"
    async with AsyncCometAPI(
        FAKE_KEY, base_url=unreachable, max_retries=0, trust_env=False
    ) as client:
        with pytest.raises(APIConnectionError):
            await client.chat.completions.create(model=MODEL, messages=[user("hi")])


# --------------------------------------------------------------------------- lifecycle


async def test_session_is_lazy_and_close_is_idempotent(server: MockServer) -> None:
    """No session before the first request; aclose() twice is fine; a call after is an error."""
    client = AsyncCometAPI(FAKE_KEY, base_url=server.url)
    assert "unopened" in repr(client)
    await client.chat.completions.create(model=MODEL, messages=[user("hi")])
    assert "opened" in repr(client)
    await client.aclose()
    await client.aclose()
    with pytest.raises(ClientClosedError, match="closed"):
        await client.chat.completions.create(model=MODEL, messages=[user("hi")])


async def test_with_options_shares_the_pool(client: AsyncCometAPI, server: MockServer) -> None:
    """A with_options copy reuses the parent's connections, and closing it closes nothing."""
    copy = client.with_options(timeout=5, max_retries=1)
    assert copy.max_retries == 1 and copy.timeout.total == 5
    assert client.max_retries == 4
    await client.chat.completions.create(model=MODEL, messages=[user("a")])
    await copy.chat.completions.create(model=MODEL, messages=[user("b")])
    assert server.connections_total == 1
    await copy.aclose()
    await client.chat.completions.create(model=MODEL, messages=[user("c")])


# --------------------------------------------------------------------------- requests


async def test_omitted_parameters_are_absent(client: AsyncCometAPI, server: MockServer) -> None:
    """Only the parameters given reach the server's JSON; None counts as not given."""
    await client.chat.completions.create(
        model=MODEL,
        messages=[user("hi")],
        seed=None,
        user="u-1",  # type: ignore[typeddict-item]
    )
    assert server.requests[-1].body == {
        "model": MODEL,
        "messages": [{"role": "user", "content": "hi"}],
        "user": "u-1",
    }


async def test_every_body_parameter_is_sent(client: AsyncCometAPI, server: MockServer) -> None:
    """Each documented body parameter is sent under its API name."""
    params = dict(
        temperature=0.5,
        top_p=0.9,
        n=1,
        stop=["END"],
        max_tokens=10,
        max_completion_tokens=20,
        presence_penalty=0.1,
        frequency_penalty=0.2,
        logit_bias={"42": -100},
        user="u-1",
        response_format={"type": "json_object"},
        tools=[{"type": "function", "function": {"name": "f", "parameters": {}}}],
        tool_choice="auto",
        parallel_tool_calls=True,
        logprobs=True,
        top_logprobs=2,
        reasoning_effort="low",
        seed=7,
        service_tier="default",
        stream_options={"include_usage": True},
        metadata={"k": "v"},
    )
    # compat="off": the body must carry every parameter as given, whatever the model takes.
    await client.chat.completions.create(model=MODEL, messages=[user("hi")], compat="off", **params)  # type: ignore[arg-type]
    body = server.requests[-1].body
    for key, value in params.items():
        assert body[key] == value


async def test_messages_as_structs(client: AsyncCometAPI, server: MockServer) -> None:
    """Message Structs of every role and content part encode to the API's JSON shapes."""
    messages = [
        SystemMessage(content="be brief"),
        DeveloperMessage(content="dev rules"),
        UserMessage(
            content=[
                TextPart(text="look"),
                ImagePart(image_url=ImageURL(url="https://x/cat.png", detail="low")),
                InputAudioPart(input_audio=InputAudio(data="UklGRg==", format="wav")),
            ]
        ),
        AssistantMessage(
            tool_calls=[ToolCall(id="call_1", function=Function(name="f", arguments="{}"))]
        ),
        ToolMessage(content="42", tool_call_id="call_1"),
        {"role": "user", "content": "and a dict"},
    ]
    await client.chat.completions.create(model=MODEL, messages=messages)
    sent = server.requests[-1].body["messages"]
    assert sent[0] == {"role": "system", "content": "be brief"}
    assert sent[1] == {"role": "developer", "content": "dev rules"}
    assert sent[2]["content"] == [
        {"type": "text", "text": "look"},
        {"type": "image_url", "image_url": {"url": "https://x/cat.png", "detail": "low"}},
        {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
    ]
    assert sent[3]["role"] == "assistant"
    assert sent[3]["tool_calls"] == [
        {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    ]
    assert sent[4] == {"role": "tool", "content": "42", "tool_call_id": "call_1"}
    assert sent[5] == {"role": "user", "content": "and a dict"}


async def test_an_answer_goes_back_as_the_next_assistant_turn(
    client: AsyncCometAPI, server: MockServer
) -> None:
    """As with the openai package, the answer's message can be appended to messages as is:
    it is sent as an assistant message, without the SDK's own fields; its reasoning goes
    with it only when it called tools (DeepSeek wants it back then, and ignores it else)."""
    server.reply_turn(
        content="Let me add.",
        reasoning_content="thinking...",
        tool_calls=[("add", {"a": 1, "b": 2})],
    )
    first = await client.chat.completions.create(model=MODEL, messages=[user("sum")])
    message = first.choices[0].message
    assert message.reasoning_content == "thinking..."
    history: list[Any] = [
        user("sum"),
        message,
        {"role": "tool", "content": "3", "tool_call_id": "call_1_0"},
    ]
    await client.chat.completions.create(model=MODEL, messages=history)
    sent = server.requests[-1].body["messages"][1]
    assert sent == {
        "role": "assistant",
        "content": "Let me add.",
        "tool_calls": [
            {
                "id": "call_1_0",
                "type": "function",
                "function": {"name": "add", "arguments": '{"a":1,"b":2}'},
            }
        ],
        "reasoning_content": "thinking...",
    }
    assert history[1] is message  # the caller's list is not changed
    server.reply_turn(content="3", reasoning_content="easy")
    answer = (await client.chat.completions.create(model=MODEL, messages=history)).choices[0]
    assert answer.message.reasoning_content == "easy"
    assert answer.message.to_message() == AssistantMessage(content="3")


async def test_extra_headers_query_and_body(client: AsyncCometAPI, server: MockServer) -> None:
    """Per-call extra headers, query parameters and body fields reach the server."""
    await client.chat.completions.create(
        model=MODEL,
        messages=[user("hi")],
        extra_headers={"X-Trace": "t-1"},
        extra_query={"debug": "1"},
        extra_body={"thinking": {"budget": 100}},
    )
    received = server.requests[-1]
    assert received.headers["x-trace"] == "t-1"
    assert received.query == {"debug": "1"}
    assert received.body["thinking"] == {"budget": 100}


async def test_unknown_parameter_is_a_type_error(client: AsyncCometAPI) -> None:
    """A misspelt parameter fails at once, as a Python call with a bad keyword would."""
    with pytest.raises(TypeError, match="temprature"):
        await client.chat.completions.create(
            model=MODEL,
            messages=[user("hi")],
            temprature=1,  # type: ignore[call-overload]
        )


async def test_missing_model_is_a_type_error(client: AsyncCometAPI) -> None:
    """Leaving out model says which argument is missing."""
    with pytest.raises(TypeError, match="model"):
        await client.chat.completions.create(messages=[user("hi")])  # type: ignore[call-overload]


async def test_unencodable_message_is_a_type_error(client: AsyncCometAPI) -> None:
    """A message that cannot be JSON-encoded fails before sending, naming the problem."""
    with pytest.raises(TypeError, match="JSON"):
        await client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": object()}]
        )


# --------------------------------------------------------------------------- responses


async def test_default_reply_and_request_id(client: AsyncCometAPI, server: MockServer) -> None:
    """A completion decodes with content, usage and the request id from the headers."""
    completion = await client.chat.completions.create(model=MODEL, messages=[user("ping")])
    assert completion.choices[0].message.content == "Echo: ping"
    assert completion.usage is not None and completion.usage.total_tokens > 0
    assert completion.request_id is not None and completion.request_id.startswith("mock-")


async def test_unknown_and_missing_fields_tolerated(
    client: AsyncCometAPI, server: MockServer
) -> None:
    """Extra gateway fields are ignored and absent optional fields default to None."""
    server.reply_json(
        {
            "id": "c-1",
            "object": "chat.completion",
            "model": MODEL,
            "obfuscation": "xyz",
            "provider": {"name": "p"},
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": "ok",
                        "reasoning_content": "thought",
                        "latency_checkpoint": 3,
                    },
                }
            ],
        }
    )
    completion = await client.chat.completions.create(model=MODEL, messages=[user("hi")])
    message = completion.choices[0].message
    assert message.content == "ok" and message.reasoning_content == "thought"
    assert completion.usage is None and completion.choices[0].finish_reason is None


async def test_body_that_does_not_fit_is_a_validation_error(
    client: AsyncCometAPI, server: MockServer
) -> None:
    """A 200 whose body is not a completion raises APIResponseValidationError with the text."""
    server.reply_raw(200, "<html>maintenance</html>", content_type="text/html")
    with pytest.raises(APIResponseValidationError) as info:
        await client.chat.completions.create(model=MODEL, messages=[user("hi")])
    assert "<html>maintenance</html>" in info.value.body
    assert not isinstance(info.value.__cause__, APIResponseValidationError)
    server.reply_json({"choices": "not a list"})
    with pytest.raises(APIResponseValidationError, match="choices"):
        await client.chat.completions.create(model=MODEL, messages=[user("hi")])


async def test_models_retrieve(client: AsyncCometAPI, server: MockServer) -> None:
    """models.retrieve() returns one model; an unknown id is a NotFoundError."""
    model = await client.models.retrieve(MODEL)
    assert (model.id, model.owned_by) == (MODEL, "openai")
    assert server.requests[-1].path == f"/v1/models/{MODEL}"
    with pytest.raises(NotFoundError, match="does not exist"):
        await client.models.retrieve("no-such-model")
    with pytest.raises(ValueError, match="non-empty"):
        await client.models.retrieve(" ")


async def test_models_list(client: AsyncCometAPI, server: MockServer) -> None:
    """models.list() returns the ids the server serves."""
    models = await client.models.list()
    ids = [m.id for m in models]
    assert MODEL in ids and len(models) == len(ids)
    assert server.requests[-1].path == "/v1/models"


# --------------------------------------------------------------------------- errors

STATUS_CLASSES = [
    (400, aiocometapi.BadRequestError),
    (401, aiocometapi.AuthenticationError),
    (403, aiocometapi.PermissionDeniedError),
    (404, aiocometapi.NotFoundError),
    (409, aiocometapi.ConflictError),
    (422, aiocometapi.UnprocessableEntityError),
    (429, aiocometapi.RateLimitError),
    (500, aiocometapi.InternalServerError),
    (502, aiocometapi.InternalServerError),
    (418, aiocometapi.APIStatusError),
]


@pytest.mark.parametrize(("status", "cls"), STATUS_CLASSES)
async def test_error_class_per_status(
    server: MockServer, status: int, cls: type[APIStatusError]
) -> None:
    """Each error status raises its class, with the body's message, code, type and param."""
    async with AsyncCometAPI(FAKE_KEY, base_url=server.url, max_retries=0) as client:
        server.reply_error(status, "bad things", type="some_type", code="some_code", param="p")
        with pytest.raises(cls) as info:
            await client.chat.completions.create(model=MODEL, messages=[user("hi")])
    error = info.value
    assert type(error) is cls
    assert (error.status_code, error.message, error.code, error.type, error.param) == (
        status,
        "bad things",
        "some_code",
        "some_type",
        "p",
    )
    assert error.body["error"]["message"] == "bad things"
    assert FAKE_KEY not in str(error) and FAKE_KEY not in repr(error)


async def test_html_error_page(server: MockServer) -> None:
    """An HTML 502 from a proxy gives InternalServerError showing the start of the page."""
    page = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
    server.reply_raw(502, page, content_type="text/html")
    async with AsyncCometAPI(FAKE_KEY, base_url=server.url, max_retries=0) as client:
        with pytest.raises(InternalServerError, match="502 Bad Gateway") as info:
            await client.chat.completions.create(model=MODEL, messages=[user("hi")])
    assert info.value.body == page


async def test_request_id_from_header(server: MockServer) -> None:
    """An error's request id comes from the x-request-id header."""
    async with AsyncCometAPI(FAKE_KEY, base_url=server.url, max_retries=0) as client:
        server.reply_error(400, "nope", headers={"X-Request-Id": "hdr-123"})
        with pytest.raises(APIStatusError) as info:
            await client.chat.completions.create(model=MODEL, messages=[user("hi")])
        assert info.value.request_id == "hdr-123"


async def test_request_id_suffix_when_no_header(server: MockServer) -> None:
    """With no request-id header at all, the id is read from the message suffix."""
    from aiocometapi._decode import status_error

    error = status_error(
        500, {}, b'{"error": {"message": "upstream failed (request id: 20251117abc)"}}'
    )
    assert error.request_id == "20251117abc"


async def test_connection_refused() -> None:
    """A refused connection is an APIConnectionError, not an aiohttp error."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with AsyncCometAPI(
        FAKE_KEY, base_url=f"http://127.0.0.1:{port}/v1", max_retries=0
    ) as client:
        with pytest.raises(APIConnectionError, match="connect") as info:
            await client.chat.completions.create(model=MODEL, messages=[user("hi")])
    assert info.value.__cause__ is not None
    assert type(info.value.__cause__).__module__.startswith("aiohttp")


# --------------------------------------------------------------------------- retries


async def test_429_retried_after_the_given_wait(
    client: AsyncCometAPI, server: MockServer, retry_waits: list[float]
) -> None:
    """A 429 with Retry-After: 2 is retried after a 2 s wait, and then succeeds."""
    server.reply_error(429, "slow down", headers={"Retry-After": "2"})
    completion = await client.chat.completions.create(model=MODEL, messages=[user("hi")])
    assert completion.choices[0].message.content == "Echo: hi"
    assert retry_waits == [2.0]
    assert len(server.requests) == 2


async def test_retry_after_ms_and_http_date(
    client: AsyncCometAPI, server: MockServer, retry_waits: list[float]
) -> None:
    """retry-after-ms wins over Retry-After; an HTTP date is a wait until then; waits are capped."""
    server.reply_error(429, "slow", headers={"retry-after-ms": "250", "Retry-After": "9"})
    in_30_s = formatdate(time.time() + 30, usegmt=True)
    server.reply_error(503, "busy", headers={"Retry-After": in_30_s})
    server.reply_error(429, "very slow", headers={"Retry-After": "86400"})
    await client.chat.completions.create(model=MODEL, messages=[user("hi")])
    assert retry_waits[0] == 0.25
    assert 25 <= retry_waits[1] <= 30
    assert retry_waits[2] == 60.0


@pytest.mark.parametrize(("status", "code"), [(500, "invalid_request"), (503, "model_not_found")])
async def test_client_errors_sent_as_5xx_not_retried(
    client: AsyncCometAPI, server: MockServer, status: int, code: str
) -> None:
    """CometAPI's invalid_request (500) and model_not_found (503) are not retried."""
    server.reply_error(status, "your request is wrong", code=code)
    with pytest.raises(InternalServerError) as info:
        await client.chat.completions.create(model=MODEL, messages=[user("hi")])
    assert info.value.code == code
    assert len(server.requests) == 1


async def test_5xx_retried_until_attempts_run_out(
    client: AsyncCometAPI, server: MockServer, retry_waits: list[float]
) -> None:
    """A persistent 500 is tried five times in all, with growing back-off, then raised."""
    for _ in range(6):
        server.reply_error(500, "boom")
    with pytest.raises(InternalServerError):
        await client.chat.completions.create(model=MODEL, messages=[user("hi")])
    assert len(server.requests) == 5
    assert len(retry_waits) == 4
    assert retry_waits == sorted(retry_waits) and retry_waits[-1] <= 8.0


@pytest.mark.parametrize("status", [408, 409, 502])
async def test_retryable_statuses(client: AsyncCometAPI, server: MockServer, status: int) -> None:
    """408, 409 and 5xx answers are retried."""
    server.reply_error(status, "transient")
    await client.chat.completions.create(model=MODEL, messages=[user("hi")])
    assert len(server.requests) == 2


async def test_400_not_retried(client: AsyncCometAPI, server: MockServer) -> None:
    """A 400 is raised at once."""
    server.reply_error(400, "bad")
    with pytest.raises(aiocometapi.BadRequestError):
        await client.chat.completions.create(model=MODEL, messages=[user("hi")])
    assert len(server.requests) == 1


async def test_max_retries_per_call(client: AsyncCometAPI, server: MockServer) -> None:
    """max_retries=0 on a call turns retries off for that call only."""
    server.reply_error(429, "slow")
    with pytest.raises(RateLimitError):
        await client.chat.completions.create(model=MODEL, messages=[user("hi")], max_retries=0)
    server.reply_error(429, "slow")
    await client.chat.completions.create(model=MODEL, messages=[user("hi")])
    assert len(server.requests) == 3


async def test_dropped_connection_retried(client: AsyncCometAPI, server: MockServer) -> None:
    """A connection closed without an answer is retried like any connection error."""
    server.reply_drop()
    completion = await client.chat.completions.create(model=MODEL, messages=[user("hi")])
    assert completion.choices[0].message.content == "Echo: hi"


# --------------------------------------------------------------------------- timeouts


async def test_total_timeout(server: MockServer) -> None:
    """A reply slower than the total clock raises APITimeoutError('total') on time."""
    server.reply_json({"choices": []}, delay=5)
    async with AsyncCometAPI(
        FAKE_KEY, base_url=server.url, timeout=Timeout(total=0.05), max_retries=0
    ) as client:
        started = time.monotonic()
        with pytest.raises(APITimeoutError) as info:
            await client.chat.completions.create(model=MODEL, messages=[user("hi")])
    assert info.value.which == "total"
    assert time.monotonic() - started < 2


async def test_per_call_timeout(client: AsyncCometAPI, server: MockServer) -> None:
    """timeout= on one call overrides the client's clocks."""
    server.reply_json({"choices": []}, delay=5)
    with pytest.raises(APITimeoutError):
        await client.chat.completions.create(
            model=MODEL, messages=[user("hi")], timeout=0.05, max_retries=0
        )
