"""How the mock server puts replies on the wire: JSON responses, SSE streams, dropped links."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import msgspec
from aiohttp import web

from ._values import Drop, MockStats, Pause

if TYPE_CHECKING:
    from ._exchange import Exchange

__all__ = [
    "DONE",
    "JSON_CONTENT_TYPE",
    "Dropped",
    "encode",
    "error_body",
    "response",
    "sse",
    "write_stream",
]

DONE = b"data: [DONE]\n\n"
JSON_CONTENT_TYPE = "application/json"
_SSE_CONTENT_TYPE = "text/event-stream; charset=utf-8"
_BATCH_BYTES = 64 * 1024
encode = msgspec.json.Encoder().encode


class Dropped(Exception):
    """Raised inside a handler to have the connection closed with no (further) response."""


def error_body(
    message: str, type: str | None, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    """An OpenAI-style ``{"error": {...}}`` body."""
    return {"error": {"message": message, "type": type, "code": code, "param": param}}


def sse(event: Any) -> bytes:
    """One ``data:`` event holding ``event`` as JSON."""
    return b"data: " + encode(event) + b"\n\n"


def _headers(content_type: str, request_id: str, extra: Mapping[str, str] | None) -> dict[str, str]:
    merged = {"Content-Type": content_type, "X-Request-Id": request_id}
    for name, value in (extra or {}).items():
        for same in [key for key in merged if key.lower() == name.lower()]:
            del merged[same]
        merged[name] = value
    return merged


def response(
    request_id: str,
    status: int,
    body: Any,
    *,
    content_type: str = JSON_CONTENT_TYPE,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """A whole response: ``body`` as JSON, or bytes and str as they are."""
    if isinstance(body, str):
        data = body.encode()
    elif isinstance(body, (bytes, bytearray, memoryview)):
        data = bytes(body)
    else:
        data = encode(body)
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


async def write_stream(
    ex: Exchange,
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
    stats: MockStats = ex.stats
    stats.count_status(status)
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
            raise Dropped
    await _write(resp, pending, split)
    await resp.write_eof()
    return resp
