"""What the mock server answers when no reply is scripted: like a model, and model listings."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from aiohttp import web

from ._examples import example
from ._exchange import Exchange
from ._text import count_words, mock_words, usage, word_pieces
from ._values import Pause
from ._wire import DONE, encode, error_body, response, sse, write_stream

__all__ = ["default_reply", "models_reply"]

_MODELS_CREATED = 1_700_000_000


def _default_stream(
    ex: Exchange, content: str, counted: Mapping[str, Any], chunk_delay: float
) -> Iterator[bytes | Pause]:
    n = ex.n
    for index in range(n):
        yield sse(ex.chunk({"role": "assistant", "content": ""}, index=index))
    # Content chunks differ only in their text: encode the frame once and splice the text in.
    head = sse(ex.chunk({"content": "\x00"}))
    before, _, after = head.rpartition(b'"\\u0000"')
    prefixes = [before.replace(b'"index":0', b'"index":%d' % i, 1) for i in range(n)]
    encoded: dict[str, bytes] = {}
    for word in word_pieces(content):
        text = encoded.get(word)
        if text is None:
            text = encoded[word] = encode(word)
        for prefix in prefixes:
            yield prefix + text + after
        if chunk_delay > 0:
            yield Pause(chunk_delay)
    for index in range(n):
        yield sse(ex.chunk({}, "stop", index=index))
    if ex.include_usage:
        yield sse(ex.usage_chunk(counted))
    yield DONE


def _default_content(ex: Exchange) -> str:
    mock = ex.body.get("mock")
    words = mock.get("words") if isinstance(mock, dict) else None
    if isinstance(words, int) and not isinstance(words, bool) and words >= 0:
        return mock_words(words)
    schema = ex.json_schema()
    if schema is not None:
        return encode(example(schema)).decode()
    results = ex.tool_results()
    if results:
        return "Tool results: " + "; ".join(results)
    return f"Echo: {ex.last_user_text()}"


async def default_reply(ex: Exchange, chunk_delay: float) -> web.StreamResponse:
    """The answer to a chat request with no scripted reply (tool calls aside, which the
    server answers with a turn): ``mock_words``, JSON that fits a ``json_schema`` response
    format, the results of the tools just run, or an echo of the last user message."""
    content = _default_content(ex)
    counted = usage(ex.prompt_tokens, count_words(content) * ex.n)
    if ex.stream:
        return await write_stream(ex, _default_stream(ex, content, counted, chunk_delay))
    message = {"role": "assistant", "content": content, "refusal": None}
    return response(ex.request_id, 200, ex.completion([message] * ex.n, "stop", counted))


def models_reply(request_id: str, path: str, model_ids: list[str]) -> web.Response:
    """The answer to ``GET /v1/models`` or ``GET /v1/models/{id}``."""

    def model(id: str) -> dict[str, Any]:
        return {"id": id, "object": "model", "created": _MODELS_CREATED, "owned_by": _owner(id)}

    if path == "/v1/models":
        models = {"object": "list", "data": [model(id) for id in model_ids]}
        return response(request_id, 200, models)
    wanted = path.removeprefix("/v1/models/")
    if wanted in model_ids:
        return response(request_id, 200, model(wanted))
    message = f"The model '{wanted}' does not exist"
    body = error_body(message, "invalid_request_error", "model_not_found", "model")
    return response(request_id, 404, body)


def _owner(model: str) -> str:
    owners = {"gpt": "openai", "o": "openai", "claude": "anthropic", "gemini": "google"}
    prefix = re.split(r"[-\d]", model, maxsplit=1)[0]
    return owners.get(prefix, prefix or "cometapi")
