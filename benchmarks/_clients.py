"""The four clients the benchmarks compare, each behind the same two calls: stream and complete."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from types import ModuleType
from typing import Any

import aiohttp
import msgspec
import yarl

from aiocometapi import AsyncCometAPI
from aiocometapi.types import ChatCompletion, ChatCompletionChunk

__all__ = [
    "API_KEY",
    "CLIENTS",
    "CLIENT_NAMES",
    "MODEL",
    "POOL",
    "BenchClient",
    "CometClient",
    "import_openai",
    "make_client",
    "opened_clients",
]

MODEL = "gpt-5.4-mini"
POOL = 200  # connections per client: at least the highest concurrency any case uses
API_KEY = "sk-fake"  # the mock server takes any bearer token

STREAM_MESSAGES = [{"role": "user", "content": "Tell me a long story."}]


def _mock(words: int) -> dict[str, Any]:
    return {"mock": {"words": words}}


def import_openai() -> tuple[ModuleType, ModuleType]:
    """``openai`` and ``httpx2``, imported when an openai client is first used, so that the
    aiocometapi and floor clients run without the ``bench`` extra."""
    try:
        import httpx2
        import openai
    except ImportError as exc:
        raise SystemExit(
            f"the openai clients need the bench extra: pip install -e '.[bench]' ({exc})"
        ) from None
    return openai, httpx2


class BenchClient:
    """What a benchmark needs from a client. Counts are returned so that none go unchecked."""

    name: str

    async def open(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def stream(self, words: int) -> tuple[int, int]:
        """Stream a reply of ``words`` words: (chunks received, chunks carrying content)."""
        raise NotImplementedError

    async def complete(self, prompt: str) -> str | None:
        """A non-streamed completion of ``prompt``; the reply's content."""
        raise NotImplementedError


class _SDKClient(BenchClient):
    """Both SDKs are called the same way; only how they are opened and closed differs."""

    _client: Any

    async def stream(self, words: int) -> tuple[int, int]:
        # Both SDKs send the same body: aiocometapi asks for the usage chunk by default (for the
        # usage meter), the openai package does not, so the benchmark says which it wants.
        stream = await self._client.chat.completions.create(
            model=MODEL,
            messages=STREAM_MESSAGES,
            stream=True,
            extra_body=_mock(words),
            stream_options={"include_usage": False},
        )
        chunks = content = 0
        async with stream:
            async for chunk in stream:
                chunks += 1
                if chunk.choices and chunk.choices[0].delta.content:
                    content += 1
        return chunks, content

    async def complete(self, prompt: str) -> str | None:
        completion = await self._client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": prompt}]
        )
        content: str | None = completion.choices[0].message.content
        return content


class CometClient(_SDKClient):
    """``AsyncCometAPI(max_connections=POOL, max_retries=0)``; ``options`` adds or overrides."""

    def __init__(
        self, base_url: str, *, name: str = "aiocometapi", options: Mapping[str, Any] | None = None
    ) -> None:
        self.name = name
        self._base_url = base_url
        self._options = {"max_connections": POOL, "max_retries": 0, **(options or {})}

    async def open(self) -> None:
        self._client = AsyncCometAPI(api_key=API_KEY, base_url=self._base_url, **self._options)

    async def close(self) -> None:
        await self._client.aclose()

    @property
    def sdk(self) -> AsyncCometAPI:
        """The open ``AsyncCometAPI``, for cases that call more of it than ``create``."""
        client: AsyncCometAPI = self._client
        return client


class OpenAIClient(_SDKClient):
    """``openai.AsyncOpenAI`` on its default httpx transport, or on its aiohttp one."""

    def __init__(self, base_url: str, *, use_aiohttp: bool) -> None:
        self._base_url = base_url
        self._use_aiohttp = use_aiohttp
        self.name = "openai-aiohttp" if use_aiohttp else "openai"

    async def open(self) -> None:
        # openai's own defaults are 1000 connections / 100 kept alive; pin both to POOL so
        # every client in the comparison has the same pool.
        openai, httpx2 = import_openai()
        limits = httpx2.Limits(max_connections=POOL, max_keepalive_connections=POOL)
        if self._use_aiohttp:
            # Its transport builds aiohttp.TCPConnector(limit=limits.max_connections).
            self._http = openai.DefaultAioHttpClient(limits=limits)
        else:
            self._http = openai.DefaultAsyncHttpxClient(limits=limits)
        self._client = openai.AsyncOpenAI(
            api_key=API_KEY, base_url=self._base_url, max_retries=0, http_client=self._http
        )

    async def close(self) -> None:
        await self._client.close()
        await self._http.aclose()  # idempotent; the line above already closed it


_encode = msgspec.json.encode
_chunk_decoder = msgspec.json.Decoder(ChatCompletionChunk)
_completion_decoder = msgspec.json.Decoder(ChatCompletion)


class FloorClient(BenchClient):
    """Raw aiohttp + a minimal SSE line splitter + one reused msgspec decoder: the floor.

    It does what any client must (encode the body, send it, split the stream into lines,
    decode each chunk into the typed Struct, hand the connection back to the pool) and
    nothing else: no retries, no timeouts, no error events, no validation beyond the status.
    """

    name = "floor"

    def __init__(self, base_url: str) -> None:
        self._url = yarl.URL(base_url + "/chat/completions")

    async def open(self) -> None:
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=POOL))
        auth = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
        self._json_headers = {**auth, "Accept": "application/json"}
        self._sse_headers = {**auth, "Accept": "text/event-stream"}

    async def close(self) -> None:
        await self._session.close()

    async def stream(self, words: int) -> tuple[int, int]:
        body = _encode(
            {"model": MODEL, "messages": STREAM_MESSAGES, "stream": True, "mock": {"words": words}}
        )
        decode = _chunk_decoder.decode
        chunks = content = 0
        async with self._session.post(self._url, data=body, headers=self._sse_headers) as resp:
            if resp.status != 200:
                raise RuntimeError(f"floor: HTTP {resp.status}: {await resp.text()}")
            read = resp.content.readany
            tail = b""
            while True:
                data = await read()
                if not data:
                    raise RuntimeError("floor: the stream ended before 'data: [DONE]'")
                if tail:
                    data = tail + data
                lines = data.split(b"\n")
                tail = lines.pop()
                for line in lines:
                    if line[:6] == b"data: ":
                        payload = line[6:]
                        if payload == b"[DONE]":
                            while await read():  # the rest of the body: keep the connection
                                pass
                            return chunks, content
                        chunk = decode(payload)
                        chunks += 1
                        if chunk.choices and chunk.choices[0].delta.content:
                            content += 1

    async def complete(self, prompt: str) -> str | None:
        body = _encode({"model": MODEL, "messages": [{"role": "user", "content": prompt}]})
        async with self._session.post(self._url, data=body, headers=self._json_headers) as resp:
            data = await resp.read()
            if resp.status != 200:
                raise RuntimeError(f"floor: HTTP {resp.status}: {data[:200]!r}")
        return _completion_decoder.decode(data).choices[0].message.content


# The registry: a name and how to build that client for a base URL. A new client is a
# BenchClient subclass (or a CometClient with other options) and one line here; every script's
# --only flag and table pick it up. E.g. the usage meter switched off, once it has a switch:
#     "aiocometapi-no-meter": lambda url: CometClient(url, name=..., options={...}),
CLIENTS: dict[str, Callable[[str], BenchClient]] = {
    "aiocometapi": CometClient,
    "openai": lambda url: OpenAIClient(url, use_aiohttp=False),
    "openai-aiohttp": lambda url: OpenAIClient(url, use_aiohttp=True),
    "floor": FloorClient,
}
CLIENT_NAMES = tuple(CLIENTS)


def make_client(name: str, base_url: str) -> BenchClient:
    """The registered client ``name``, not yet opened."""
    try:
        factory = CLIENTS[name]
    except KeyError:
        raise ValueError(f"unknown client {name!r}; registered: {', '.join(CLIENTS)}") from None
    return factory(base_url)


@contextlib.asynccontextmanager
async def opened_clients(
    names: Sequence[str], base_url: str
) -> AsyncIterator[dict[str, BenchClient]]:
    """The named clients, opened against ``base_url``; all closed on the way out."""
    async with contextlib.AsyncExitStack() as stack:
        clients: dict[str, BenchClient] = {}
        for name in names:
            client = make_client(name, base_url)
            await client.open()
            stack.push_async_callback(client.close)
            clients[name] = client
        yield clients
