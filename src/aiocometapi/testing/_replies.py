"""The mock server's replies: completions and chunks built, streams written, for one request."""

from __future__ import annotations

import asyncio
import base64
import math
import re
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec
from aiohttp import web

from ._examples import example
from ._values import Drop, MockStats, Pause

__all__ = ["mock_words", "thought_signature"]

_VOCABULARY = (
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf",
    "hotel", "india", "juliet", "kilo", "lima", "mike",
)
_BATCH_BYTES = 64 * 1024
_DONE = b"data: [DONE]\n\n"
_SSE_CONTENT_TYPE = "text/event-stream; charset=utf-8"
_JSON_CONTENT_TYPE = "application/json"
_MODELS_CREATED = 1_700_000_000
_encode = msgspec.json.Encoder().encode


def mock_words(n: int) -> str:
    """The reply content the server gives to a request whose body has ``{"mock": {"words": n}}``."""
    size = len(_VOCABULARY)
    return " ".join(_VOCABULARY[i % size] for i in range(n))


def thought_signature(call_id: str) -> str:
    """The thought signature the server gives the Gemini 3 tool call ``call_id``, and wants back.

    As Gemini 3 does behind CometAPI, for a model whose id starts with ``gemini-3`` the first
    tool call of each scripted turn carries ``"extra_content": {"google": {"thought_signature":
    ...}}``, and a later request whose history holds that call without the same signature is
    refused with a 400.
    """
    return base64.b64encode(f"mock-thought:{call_id}".encode()).decode()


def _signs_tool_calls(model: str) -> bool:
    return model.startswith("gemini-3")


def _wants_reasoning_back(model: str) -> bool:
    return model.startswith("deepseek")


_MOCK_CALL_ID = re.compile(r"call_\d+_0")  # the first call of a scripted turn


def _missing_signature(messages: list[Any]) -> str | None:
    """Gemini 3's complaint about a signed tool call sent back without its signature."""
    for position, message in enumerate(messages):
        calls = message.get("tool_calls") if isinstance(message, dict) else None
        if message.get("role") != "assistant" or not isinstance(calls, list) or not calls:
            continue
        first = calls[0]
        call_id = first.get("id") if isinstance(first, dict) else None
        if not isinstance(call_id, str) or not _MOCK_CALL_ID.fullmatch(call_id):
            continue  # not a call this server signed
        extra = first.get("extra_content")
        google = extra.get("google") if isinstance(extra, dict) else None
        sent = google.get("thought_signature") if isinstance(google, dict) else None
        if sent != thought_signature(call_id):
            name = (first.get("function") or {}).get("name")
            return (
                "Function call is missing a thought_signature in functionCall parts. This is "
                "required for tools to work correctly, and missing thought_signature may lead "
                f"to degraded model performance. Additional data, function call `{name}` , "
                f"position {position + 1}. Please refer to "
                "https://ai.google.dev/gemini-api/docs/thought-signatures for more details."
            )
    return None


# --------------------------------------------------------------------------- reply builders


class _Dropped(Exception):
    """Raised inside a handler to have the connection closed with no (further) response."""


def _error_body(
    message: str, type: str | None, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": type, "code": code, "param": param}}


def _sse(event: Any) -> bytes:
    return b"data: " + _encode(event) + b"\n\n"


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [
            part["text"]
            for part in content
            if isinstance(part, dict) and part.get("type") == "text"
            and isinstance(part.get("text"), str)
        ]
        return " ".join(texts)
    return ""


def _word_pieces(text: str) -> list[str]:
    """Words with the whitespace after them, so that the pieces add up to ``text`` exactly."""
    return re.findall(r"\s*\S+\s*|\s+", text)


def _slices(text: str, parts: int) -> list[str]:
    parts = max(1, min(parts, len(text)))
    size = math.ceil(len(text) / parts) if text else 1
    return [text[i : i + size] for i in range(0, len(text), size)] or [text]


def _fragments(text: str) -> list[str]:
    """``text`` cut into several deltas: by words, or by characters when it has under three."""
    pieces = _word_pieces(text)
    return pieces if len(pieces) >= 3 else _slices(text, 3)


def _words(text: str | None) -> int:
    return len(text.split()) if text else 0


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _headers(content_type: str, request_id: str, extra: Mapping[str, str] | None) -> dict[str, str]:
    merged = {"Content-Type": content_type, "X-Request-Id": request_id}
    for name, value in (extra or {}).items():
        for same in [key for key in merged if key.lower() == name.lower()]:
            del merged[same]
        merged[name] = value
    return merged


def _invalid(body: Any) -> tuple[str, str | None] | None:
    """Why a chat request body cannot be answered, and the parameter at fault; None if it can."""
    if not isinstance(body, dict):
        return "We could not parse the JSON body of your request.", None
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "you must provide a model parameter", "model"
    if not isinstance(body.get("messages"), list):
        return "Missing required parameter: 'messages'.", "messages"
    n = body.get("n", 1)
    if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 1):
        return f"{n!r} is not a valid value for 'n': it must be an integer of at least 1.", "n"
    if _signs_tool_calls(body["model"]):
        missing = _missing_signature(body["messages"])
        if missing is not None:
            return missing, "messages"
    return None


@dataclass
class _Exchange:
    """One admitted chat request and what the replies need to know about it."""

    request: web.BaseRequest
    stats: MockStats
    number: int
    body: dict[str, Any]
    reasoned: dict[str, str] = field(default_factory=dict)
    """Call id -> the reasoning of the DeepSeek turn that made the call (shared by the server)."""
    created: int = field(default_factory=lambda: int(time.time()))

    @property
    def request_id(self) -> str:
        return f"mock-{self.number}"

    @property
    def completion_id(self) -> str:
        return f"chatcmpl-mock-{self.number}"

    @property
    def model(self) -> str:
        return str(self.body["model"])

    @property
    def stream(self) -> bool:
        return self.body.get("stream") is True

    @property
    def include_usage(self) -> bool:
        options = self.body.get("stream_options")
        return isinstance(options, dict) and options.get("include_usage") is True

    @property
    def n(self) -> int:
        n = self.body.get("n")
        return n if isinstance(n, int) else 1

    @property
    def messages(self) -> list[dict[str, Any]]:
        return [m for m in self.body["messages"] if isinstance(m, dict)]

    @property
    def prompt_tokens(self) -> int:
        chars = sum(len(_text_of(m.get("content"))) for m in self.messages)
        return max(1, math.ceil(chars / 4))

    def default_tool_calls(self) -> list[tuple[str, Mapping[str, Any]]]:
        """The calls a model would make unasked-for: the tools offered (the one named by
        ``tool_choice``, else each, up to four), with arguments made up from their schemas,
        when the last message is the user's and ``tool_choice`` is not ``"none"``."""
        tools = self.body.get("tools")
        choice = self.body.get("tool_choice")
        messages = self.messages
        if not isinstance(tools, list) or not tools or choice == "none" or not messages:
            return []
        if messages[-1].get("role") != "user":
            return []
        functions = [
            tool["function"] for tool in tools
            if isinstance(tool, dict) and isinstance(tool.get("function"), dict)
            and isinstance(tool["function"].get("name"), str)
        ]
        if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
            functions = [f for f in functions if f["name"] == choice["function"].get("name")]
        return [(f["name"], example(f.get("parameters") or {})) for f in functions[:4]]

    def missing_reasoning(self) -> str | None:
        """DeepSeek's thinking-mode complaint about a tool-calling turn sent back without its
        ``reasoning_content``, or ``None``."""
        if not _wants_reasoning_back(self.model):
            return None
        for position, message in enumerate(self.messages):
            calls = message.get("tool_calls")
            if message.get("role") != "assistant" or not isinstance(calls, list) or not calls:
                continue
            call_id = calls[0].get("id") if isinstance(calls[0], dict) else None
            wanted = self.reasoned.get(call_id) if isinstance(call_id, str) else None
            if wanted is not None and message.get("reasoning_content") != wanted:
                return (
                    "Missing `reasoning_content` field in the assistant message at message "
                    f"index {position}"
                )
        return None

    def json_schema(self) -> Any:
        """The schema of a ``json_schema`` response format, or ``None``."""
        response_format = self.body.get("response_format")
        if not isinstance(response_format, dict) or response_format.get("type") != "json_schema":
            return None
        spec = response_format.get("json_schema")
        return spec.get("schema", {}) if isinstance(spec, dict) else {}

    def tool_results(self) -> list[str]:
        """The contents of the tool messages that end the conversation, in order."""
        results: list[str] = []
        for message in reversed(self.messages):
            if message.get("role") != "tool":
                break
            results.append(_text_of(message.get("content")))
        return results[::-1]

    def last_user_text(self) -> str:
        for message in reversed(self.messages):
            if message.get("role") == "user":
                return _text_of(message.get("content"))
        return ""

    def chunk(
        self, delta: dict[str, Any], finish_reason: str | None = None, index: int = 0
    ) -> dict[str, Any]:
        return {
            "id": self.completion_id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [
                {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            ],
        }

    def usage_chunk(self, usage: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "id": self.completion_id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [],
            "usage": dict(usage),
        }

    def completion(
        self, messages: list[dict[str, Any]], finish_reason: str, usage: Mapping[str, Any]
    ) -> dict[str, Any]:
        return {
            "id": self.completion_id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [
                {"index": i, "message": m, "logprobs": None, "finish_reason": finish_reason}
                for i, m in enumerate(messages)
            ],
            "usage": dict(usage),
        }


def _response(
    request_id: str,
    status: int,
    body: Any,
    *,
    content_type: str = _JSON_CONTENT_TYPE,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    if isinstance(body, str):
        data = body.encode()
    elif isinstance(body, (bytes, bytearray, memoryview)):
        data = bytes(body)
    else:
        data = _encode(body)
    return web.Response(
        status=status, body=data, headers=_headers(content_type, request_id, headers)
    )


async def _write(resp: web.StreamResponse, chunks: list[bytes], split: int | None) -> None:
    data = b"".join(chunks)
    if not data:
        return
    if split is None:
        await resp.write(data)
        return
    for start in range(0, len(data), split):
        await resp.write(data[start : start + split])
        # Two turns of the loop let an in-process client read each piece on its own.
        await asyncio.sleep(0)
        await asyncio.sleep(0)


async def _write_stream(
    ex: _Exchange,
    pieces: Iterable[bytes | Pause | Drop],
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    coalesce: bool = True,
    split: int | None = None,
) -> web.StreamResponse:
    """Send ``pieces`` as a chunked body; ``coalesce`` batches events into few large writes."""
    resp = web.StreamResponse(
        status=status, headers=_headers(_SSE_CONTENT_TYPE, ex.request_id, headers)
    )
    resp.headers.setdefault("Cache-Control", "no-cache")
    resp.enable_chunked_encoding()
    await resp.prepare(ex.request)
    ex.stats.count_status(status)
    pending: list[bytes] = []
    size = 0
    for piece in pieces:
        if isinstance(piece, bytes):
            pending.append(piece)
            size += len(piece)
            if split is None and (not coalesce or size >= _BATCH_BYTES):
                await _write(resp, pending, None)
                pending.clear()
                size = 0
            continue
        await _write(resp, pending, split)
        pending.clear()
        size = 0
        if isinstance(piece, Pause):
            await asyncio.sleep(piece.seconds)
        else:
            raise _Dropped
    await _write(resp, pending, split)
    await resp.write_eof()
    return resp


def _default_stream(
    ex: _Exchange, content: str, usage: Mapping[str, Any], chunk_delay: float
) -> Iterator[bytes | Pause]:
    n = ex.n
    for index in range(n):
        yield _sse(ex.chunk({"role": "assistant", "content": ""}, index=index))
    # Content chunks differ only in their text: encode the frame once and splice the text in.
    head = _sse(ex.chunk({"content": "\x00"}))
    before, _, after = head.rpartition(b'"\\u0000"')
    prefixes = [before.replace(b'"index":0', b'"index":%d' % i, 1) for i in range(n)]
    encoded: dict[str, bytes] = {}
    for word in _word_pieces(content):
        text = encoded.get(word)
        if text is None:
            text = encoded[word] = _encode(word)
        for prefix in prefixes:
            yield prefix + text + after
        if chunk_delay > 0:
            yield Pause(chunk_delay)
    for index in range(n):
        yield _sse(ex.chunk({}, "stop", index=index))
    if ex.include_usage:
        yield _sse(ex.usage_chunk(usage))
    yield _DONE


# --------------------------------------------------------------------------- default replies


def _default_content(ex: _Exchange) -> str:
    mock = ex.body.get("mock")
    words = mock.get("words") if isinstance(mock, dict) else None
    if isinstance(words, int) and not isinstance(words, bool) and words >= 0:
        return mock_words(words)
    schema = ex.json_schema()
    if schema is not None:
        return _encode(example(schema)).decode()
    results = ex.tool_results()
    if results:
        return "Tool results: " + "; ".join(results)
    return f"Echo: {ex.last_user_text()}"


async def _default_reply(ex: _Exchange, chunk_delay: float) -> web.StreamResponse:
    """The answer to a chat request with no scripted reply (tool calls aside, which the
    server answers with a turn): ``mock_words``, JSON that fits a ``json_schema`` response
    format, the results of the tools just run, or an echo of the last user message."""
    content = _default_content(ex)
    usage = _usage(ex.prompt_tokens, _words(content) * ex.n)
    if ex.stream:
        return await _write_stream(ex, _default_stream(ex, content, usage, chunk_delay))
    message = {"role": "assistant", "content": content, "refusal": None}
    return _response(ex.request_id, 200, ex.completion([message] * ex.n, "stop", usage))


def _models_reply(request_id: str, path: str, model_ids: list[str]) -> web.Response:
    """The answer to ``GET /v1/models`` or ``GET /v1/models/{id}``."""

    def model(id: str) -> dict[str, Any]:
        return {"id": id, "object": "model", "created": _MODELS_CREATED, "owned_by": _owner(id)}

    if path == "/v1/models":
        models = {"object": "list", "data": [model(id) for id in model_ids]}
        return _response(request_id, 200, models)
    wanted = path.removeprefix("/v1/models/")
    if wanted in model_ids:
        return _response(request_id, 200, model(wanted))
    message = f"The model '{wanted}' does not exist"
    body = _error_body(message, "invalid_request_error", "model_not_found", "model")
    return _response(request_id, 404, body)


def _owner(model: str) -> str:
    owners = {"gpt": "openai", "o": "openai", "claude": "anthropic", "gemini": "google"}
    prefix = re.split(r"[-\d]", model, maxsplit=1)[0]
    return owners.get(prefix, prefix or "cometapi")
