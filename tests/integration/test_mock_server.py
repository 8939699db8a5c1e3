"""The mock server itself, driven by a plain aiohttp client."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from aiocometapi.testing import Comment, Drop, MockServer, Pause, mock_words

MODEL = "gpt-5.4-mini"
AUTH = {"Authorization": "Bearer sk-test"}

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def chat(text: str = "hello world", **extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "messages": [{"role": "user", "content": text}], **extra}


async def post(
    server: MockServer, body: Any, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """POST to /chat/completions on a fresh session: status, lower-cased headers, body."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            server.url + "/chat/completions",
            json=body,
            headers=AUTH if headers is None else headers,
            allow_redirects=False,
        ) as resp,
    ):
        return resp.status, {k.lower(): v for k, v in resp.headers.items()}, await resp.read()


def data_events(raw: bytes) -> list[str]:
    """The payloads of the ``data:`` lines of an SSE body."""
    return [line[6:] for line in raw.decode().split("\n") if line.startswith("data: ")]


def chunks(raw: bytes) -> list[dict[str, Any]]:
    return [json.loads(event) for event in data_events(raw) if event != "[DONE]"]


async def eventually(condition: Callable[[], bool], timeout: float = 2.0) -> None:
    """Wait until ``condition()`` holds, failing after ``timeout`` seconds."""
    for _ in range(int(timeout / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    assert condition()


def content_of(raw: bytes) -> str:
    return "".join(
        c["choices"][0]["delta"].get("content") or "" for c in chunks(raw) if c["choices"]
    )


# --------------------------------------------------------------------------- default replies


async def test_default_reply_and_usage() -> None:
    """The default reply echoes the last user text, honours n, and counts plausible usage."""
    async with MockServer() as server:
        body = {
            "model": "o3",
            "n": 2,
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": [{"type": "text", "text": "first"}]},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "hello"},
                        {"type": "image_url", "image_url": {"url": "x"}},
                    ],
                },
            ],
        }
        status, headers, raw = await post(server, body)
    reply = json.loads(raw)
    assert status == 200 and headers["content-type"] == "application/json"
    assert headers["x-request-id"] == "mock-1" and reply["id"] == "chatcmpl-mock-1"
    assert reply["object"] == "chat.completion" and reply["model"] == "o3"
    assert [c["message"]["content"] for c in reply["choices"]] == ["Echo: hello"] * 2
    assert [c["index"] for c in reply["choices"]] == [0, 1]
    assert reply["choices"][0]["finish_reason"] == "stop"
    assert reply["usage"] == {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9}
    assert server.stats.responses_by_status == {200: 1}


async def test_default_stream_with_usage() -> None:
    """A streamed default reply has a role chunk, one chunk per word, stop, usage and [DONE]."""
    async with MockServer() as server:
        body = chat("one two  three", stream=True, stream_options={"include_usage": True})
        status, headers, raw = await post(server, body)
    assert status == 200 and headers["content-type"].startswith("text/event-stream")
    assert data_events(raw)[-1] == "[DONE]"
    parsed = chunks(raw)
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == MODEL for c in parsed)
    assert parsed[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    words = [c["choices"][0]["delta"]["content"] for c in parsed[1:5]]
    assert words == ["Echo: ", "one ", "two  ", "three"]
    assert parsed[5]["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": "stop",
    }
    assert parsed[6]["choices"] == [] and parsed[6]["usage"]["completion_tokens"] == 4
    assert len(parsed) == 7


async def test_stream_without_include_usage_has_no_usage_chunk() -> None:
    """Without stream_options.include_usage no usage chunk is sent."""
    async with MockServer() as server:
        _, _, raw = await post(server, chat("hi", stream=True))
    assert all(c["choices"] for c in chunks(raw))
    assert content_of(raw) == "Echo: hi"


async def test_mock_words() -> None:
    """{"mock": {"words": N}} gives exactly N words, one content chunk each, cheaply."""
    async with MockServer() as server:
        _, _, raw = await post(server, chat(stream=True, mock={"words": 20_000}))
        _, _, plain = await post(server, chat(mock={"words": 3}))
    events = data_events(raw)
    assert len(events) == 1 + 20_000 + 1 + 1 and events[-1] == "[DONE]"
    words = [json.loads(e)["choices"][0]["delta"]["content"] for e in events[1:-2]]
    assert "".join(words) == mock_words(20_000) and len(mock_words(20_000).split()) == 20_000
    assert json.loads(plain)["choices"][0]["message"]["content"] == "alpha bravo charlie"


async def test_chunk_delay_and_latency() -> None:
    """latency delays the reply and chunk_delay separates the streamed words."""
    async with MockServer(latency=0.05, chunk_delay=0.03) as server:
        started = time.monotonic()
        _, _, raw = await post(server, chat("a b", stream=True))
    assert time.monotonic() - started >= 0.05 + 3 * 0.03
    assert content_of(raw) == "Echo: a b"


# --------------------------------------------------------------------------- scripted replies


TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "add",
            "parameters": {
                "type": "object",
                "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                "required": ["a", "b"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "where",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
            },
        },
    },
]


async def test_default_reply_calls_offered_tools() -> None:
    """Offered tools, the server calls them with made-up arguments, then reads the results."""
    async with MockServer() as server:
        _, _, raw = await post(server, chat("go", tools=TOOLS))
        message = json.loads(raw)["choices"][0]["message"]
        calls = [
            (c["function"]["name"], json.loads(c["function"]["arguments"]))
            for c in message["tool_calls"]
        ]
        assert calls == [("add", {"a": 1, "b": 1}), ("where", {"city": "example", "unit": "c"})]
        assert json.loads(raw)["choices"][0]["finish_reason"] == "tool_calls"

        named = {"type": "function", "function": {"name": "where"}}
        _, _, raw = await post(server, chat("go", tools=TOOLS, tool_choice=named, stream=True))
        deltas = [c["choices"][0]["delta"] for c in chunks(raw) if c["choices"]]
        names = {d["tool_calls"][0]["function"].get("name") for d in deltas if "tool_calls" in d}
        assert names - {None} == {"where"}

        _, _, raw = await post(server, chat("go", tools=TOOLS, tool_choice="none"))
        assert json.loads(raw)["choices"][0]["message"]["content"] == "Echo: go"

        after = chat("go", tools=TOOLS)
        after["messages"] += [
            {"role": "assistant", "tool_calls": message["tool_calls"]},
            {"role": "tool", "tool_call_id": "call_1_0", "content": "2"},
            {"role": "tool", "tool_call_id": "call_1_1", "content": "sunny"},
        ]
        _, _, raw = await post(server, after)
        assert json.loads(raw)["choices"][0]["message"]["content"] == "Tool results: 2; sunny"


async def test_default_reply_fits_a_json_schema() -> None:
    """A json_schema response format is answered with JSON that fits it, $refs and all."""
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "age": {"anyOf": [{"type": "integer", "minimum": 18}, {"type": "null"}]},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2},
            "kind": {"enum": ["a", "b"]},
            "score": {"type": ["number", "null"]},
            "ok": {"type": "boolean"},
            "home": {"$ref": "#/$defs/Place"},
            "tree": {"$ref": "#/$defs/Node"},
        },
        "$defs": {
            "Place": {"type": "object", "properties": {"city": {"const": "Oslo"}}},
            "Node": {
                "type": "object",
                "properties": {"child": {"anyOf": [{"$ref": "#/$defs/Node"}, {"type": "null"}]}},
            },
        },
    }
    response_format = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
    async with MockServer() as server:
        _, _, raw = await post(server, chat(response_format=response_format))
        streamed = await post(server, chat(response_format=response_format, stream=True))
    answer = json.loads(json.loads(raw)["choices"][0]["message"]["content"])
    assert {k: answer[k] for k in ("name", "age", "tags", "kind", "score", "ok", "home")} == {
        "name": "example",
        "age": 18,
        "tags": ["example", "example"],
        "kind": "a",
        "score": 1.5,
        "ok": True,
        "home": {"city": "Oslo"},
    }
    depth, node = 0, answer["tree"]
    while node is not None:  # a recursive schema is cut off, not followed forever
        depth, node = depth + 1, node["child"]
    assert 1 <= depth <= 16
    assert json.loads(content_of(streamed[2])) == answer


async def test_reply_json_error_and_raw() -> None:
    """Scripted JSON, error and raw replies are served in order, then the default again."""
    async with MockServer() as server:
        server.reply_json({"choices": []}, status=201, headers={"X-Extra": "1"})
        server.reply_error(
            400,
            "bad",
            type="invalid_request_error",
            code="c",
            param="p",
            headers={"X-Request-Id": "hdr-1"},
        )
        server.reply_raw(502, "<html>502</html>", content_type="text/html")
        server.reply_raw(301, b"", headers={"Location": "https://elsewhere/v1"})
        server.reply_json(b'{"pre": "encoded"}')
        replies = [await post(server, chat()) for _ in range(6)]
    (s1, h1, b1), (s2, h2, b2), (s3, h3, b3), (s4, h4, _), (_, _, b5), (_, _, b6) = replies
    assert (s1, json.loads(b1), h1["x-extra"]) == (201, {"choices": []}, "1")
    assert h1["x-request-id"].startswith("mock-")
    assert s2 == 400 and h2["x-request-id"] == "hdr-1"
    assert json.loads(b2) == {
        "error": {"message": "bad", "type": "invalid_request_error", "code": "c", "param": "p"}
    }
    assert (s3, h3["content-type"], b3) == (502, "text/html", b"<html>502</html>")
    assert (s4, h4["location"]) == (301, "https://elsewhere/v1")
    assert b5 == b'{"pre": "encoded"}'
    assert json.loads(b6)["choices"][0]["message"]["content"] == "Echo: hello world"


async def test_delay_and_clear() -> None:
    """A scripted delay holds the reply back; clear() forgets what was scripted."""
    async with MockServer() as server:
        server.reply_json({"late": True}, delay=0.1)
        started = time.monotonic()
        _, _, raw = await post(server, chat())
        assert json.loads(raw) == {"late": True} and time.monotonic() - started >= 0.1
        server.reply_error(500)
        server.clear()
        status, _, _ = await post(server, chat())
    assert status == 200


async def test_reply_drop() -> None:
    """reply_drop closes the connection unanswered; the next request gets the default reply."""
    async with MockServer() as server:
        server.reply_drop()
        with pytest.raises(aiohttp.ClientConnectionError):
            await post(server, chat())
        status, _, _ = await post(server, chat())
        assert status == 200
        assert server.stats.dropped == 1 and server.stats.responses_by_status == {200: 1}


async def test_reply_stream_event_kinds() -> None:
    """Dicts, strings, raw bytes, comments and pauses are written as given, then [DONE]."""
    async with MockServer() as server:
        server.reply_stream(
            [{"a": 1}, Comment("ping"), "not json", Pause(0.05), b"event: error\ndata: {}\n\n"],
            headers={"X-Stream": "yes"},
        )
        server.reply_stream(["[DONE]"], done=False, status=500)
        started = time.monotonic()
        status, headers, raw = await post(server, chat(stream=True))
        assert time.monotonic() - started >= 0.05
        second = await post(server, chat(stream=True))
    assert status == 200 and headers["x-stream"] == "yes"
    assert headers["content-type"].startswith("text/event-stream")
    assert raw == (
        b'data: {"a":1}\n\n: ping\n\ndata: not json\n\nevent: error\ndata: {}\n\ndata: [DONE]\n\n'
    )
    assert second[0] == 500 and second[2] == b"data: [DONE]\n\n"


async def test_drop_mid_stream_truncates_the_body() -> None:
    """Drop() cuts a stream after the events before it: the client sees a payload error."""
    async with MockServer() as server, aiohttp.ClientSession() as session:
        server.reply_stream([{"n": 1}, Drop(), {"n": 2}])
        async with session.post(
            server.url + "/chat/completions", json=chat(stream=True), headers=AUTH
        ) as resp:
            assert resp.status == 200
            assert await resp.content.readuntil(b"\n\n") == b'data: {"n":1}\n\n'
            with pytest.raises(aiohttp.ClientPayloadError):
                await resp.read()
        assert server.stats.dropped == 1


async def test_split_writes_small_pieces() -> None:
    """split=k sends the stream in pieces of at most k bytes that add up to the same bytes."""
    async with MockServer() as server, aiohttp.ClientSession() as session:
        server.reply_stream([{"text": "héllo"}, Comment(), "x"], split=3)
        async with session.post(
            server.url + "/chat/completions", json=chat(stream=True), headers=AUTH
        ) as resp:
            pieces = [piece async for piece in resp.content.iter_chunked(1 << 16)]
    assert b"".join(pieces) == (
        'data: {"text":"héllo"}\n\n: keep-alive\n\ndata: x\n\ndata: [DONE]\n\n'.encode()
    )
    assert len(pieces) > 5 and max(len(p) for p in pieces) <= 3


async def test_reply_turn_json() -> None:
    """A non-streaming request gets the scripted turn as one completion."""
    async with MockServer() as server:
        server.reply_turn(
            content="Let me check.",
            tool_calls=[("get_weather", {"city": "Paris"})],
            reasoning_content="thinking",
            usage={"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
        )
        _, _, raw = await post(server, chat())
    choice = json.loads(raw)["choices"][0]
    message = choice["message"]
    assert choice["finish_reason"] == "tool_calls"
    assert (message["content"], message["reasoning_content"]) == ("Let me check.", "thinking")
    [call] = message["tool_calls"]
    assert call["id"] and call["type"] == "function"
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}
    assert json.loads(raw)["usage"]["total_tokens"] == 3


async def test_reply_turn_streamed_fragments() -> None:
    """Streamed, content comes in several deltas and each call's arguments in 3+ fragments."""
    calls = [("get_weather", {"city": "Paris", "unit": "celsius"}), ("get_time", {"tz": "CET"})]
    async with MockServer() as server:
        server.reply_turn(content="Here you go", tool_calls=calls, tool_call_index_base=1)
        _, _, raw = await post(server, chat(stream=True, stream_options={"include_usage": True}))
    parsed = chunks(raw)
    deltas = [c["choices"][0]["delta"] for c in parsed if c["choices"]]
    assert deltas[0] == {"role": "assistant", "content": ""}
    assert len([d for d in deltas if d.get("content")]) >= 3
    assert content_of(raw) == "Here you go"
    assembled: dict[int, dict[str, Any]] = {}
    fragments: dict[int, int] = {}
    for delta in deltas:
        for tc in delta.get("tool_calls", []):
            call = assembled.setdefault(tc["index"], {"id": None, "name": None, "arguments": ""})
            call["id"] = tc.get("id") or call["id"]
            call["name"] = tc["function"].get("name") or call["name"]
            call["arguments"] += tc["function"].get("arguments", "")
            fragments[tc["index"]] = fragments.get(tc["index"], 0) + 1
    assert sorted(assembled) == [1, 2] and all(n >= 4 for n in fragments.values())
    got = [(assembled[i]["name"], json.loads(assembled[i]["arguments"])) for i in (1, 2)]
    assert got == calls
    assert assembled[1]["id"] != assembled[2]["id"]
    assert parsed[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert parsed[-1]["choices"] == [] and parsed[-1]["usage"]["total_tokens"] > 0


async def test_reply_turn_without_index() -> None:
    """omit_tool_call_index sends each call whole in one delta with no index, content null."""
    async with MockServer() as server:
        server.reply_turn(tool_calls=[("a", {}), ("b", {"x": 1})], omit_tool_call_index=True)
        _, _, raw = await post(server, chat(stream=True))
    deltas = [c["choices"][0]["delta"] for c in chunks(raw)]
    assert deltas[0] == {"role": "assistant", "content": None}
    calls = [tc for d in deltas for tc in d.get("tool_calls", [])]
    assert [(c["function"]["name"], c["function"]["arguments"]) for c in calls] == [
        ("a", "{}"),
        ("b", '{"x":1}'),
    ]
    assert all("index" not in c and c["id"] for c in calls)


async def test_reply_turn_refusal() -> None:
    """A refusal turn streams refusal deltas with null content and finishes with stop."""
    async with MockServer() as server:
        server.reply_turn(refusal="I can't help with that.")
        _, _, raw = await post(server, chat(stream=True))
    deltas = [c["choices"][0]["delta"] for c in chunks(raw)]
    assert "".join(d.get("refusal", "") for d in deltas) == "I can't help with that."
    assert chunks(raw)[-1]["choices"][0]["finish_reason"] == "stop"


# --------------------------------------------------------------------------- server behaviour


async def test_auth() -> None:
    """A set api_key must match; without one any non-empty bearer token passes."""
    error = {
        "message": "Invalid API key",
        "type": "invalid_request_error",
        "code": "invalid_api_key",
        "param": None,
    }
    async with MockServer(api_key="sk-right") as server:
        status, _, raw = await post(server, chat(), {"Authorization": "Bearer sk-wrong"})
        assert (status, json.loads(raw)) == (401, {"error": error})
        status, _, _ = await post(server, chat(), {"Authorization": "Bearer sk-right"})
        assert status == 200
    async with MockServer() as server:
        assert (await post(server, chat(), {}))[0] == 401
        assert (await post(server, chat(), {"Authorization": "Bearer "}))[0] == 401
        assert (await post(server, chat(), {"Authorization": "Basic abc"}))[0] == 401
        assert (await post(server, chat(), {"Authorization": "Bearer anything"}))[0] == 200


async def test_rps_limit() -> None:
    """Above rps_limit a 429 says how long to wait in Retry-After and retry-after-ms."""
    async with MockServer(rps_limit=2) as server:
        results = [await post(server, chat()) for _ in range(3)]
        assert [status for status, _, _ in results] == [200, 200, 429]
        _, headers, raw = results[2]
        assert headers["retry-after"] == "1" and 0 < int(headers["retry-after-ms"]) <= 1000
        error = json.loads(raw)["error"]
        assert error["type"] == "rate_limit_error" and error["code"] == "rate_limit_exceeded"
        assert error["message"].startswith("Rate limit reached")
        assert server.stats.rate_limited == 1
        await asyncio.sleep(int(headers["retry-after-ms"]) / 1000)
        assert (await post(server, chat()))[0] == 200
    async with MockServer(rps_limit=1, retry_after=2.5) as server:
        await post(server, chat())
        _, headers, _ = await post(server, chat())
        assert (headers["retry-after"], headers["retry-after-ms"]) == ("3", "2500")


async def test_stats_route() -> None:
    """GET /v1/mock/stats gives the counters as JSON, for a client in another process."""
    async with MockServer(rps_limit=1) as server, aiohttp.ClientSession(headers=AUTH) as session:
        assert [(await post(server, chat()))[0] for _ in range(2)] == [200, 429]
        async with session.get(server.url + "/mock/stats") as resp:
            assert resp.status == 200
            stats = json.loads(await resp.read())
        assert stats["rate_limited"] == 1 and stats["requests"] == 3
        assert stats["responses_by_status"] == {"200": 1, "429": 1}
        async with session.post(server.url + "/mock/stats") as resp:
            assert resp.status == 405


async def test_max_in_flight() -> None:
    """With max_in_flight=1 a second concurrent request is refused while the first runs."""
    async with MockServer(max_in_flight=1, latency=0.2) as server:
        first = asyncio.ensure_future(post(server, chat()))
        await asyncio.sleep(0.05)
        second = await post(server, chat())
        assert (await first)[0] == 200
        assert second[0] == 429 and int(second[1]["retry-after"]) >= 1
        assert server.stats.max_in_flight_seen == 1 and server.stats.in_flight == 0


async def outcomes(seed: int) -> tuple[list[str], MockServer]:
    async with MockServer(seed=seed, fail_rate=0.3, drop_rate=0.2) as server:
        seen = []
        for _ in range(20):
            try:
                status, _, raw = await post(server, chat())
            except aiohttp.ClientConnectionError:
                seen.append("drop")
                continue
            seen.append(str(status))
            if status == 500:
                error = json.loads(raw)["error"]
                assert error["type"] == "server_error" and error["code"] == "internal_error"
                assert "(request id: mock-" in error["message"]
    return seen, server


async def test_failure_injection_is_seeded() -> None:
    """The same seed gives the same sequence of 500s and drops; another seed a different one."""
    first, server = await outcomes(7)
    again, _ = await outcomes(7)
    other, _ = await outcomes(8)
    assert first == again and first != other
    assert {"200", "500", "drop"} == set(first)
    stats = server.stats
    assert stats.injected_failures == first.count("500") + first.count("drop")
    assert stats.dropped == first.count("drop")


async def test_injected_failure_leaves_the_script_alone() -> None:
    """An injected 500 does not consume the scripted reply, which goes to the next request."""
    async with MockServer(seed=1, fail_rate=0.5) as server:
        server.reply_json({"scripted": True})
        seen = [await post(server, chat()) for _ in range(6)]
    statuses = [status for status, _, _ in seen]
    assert 500 in statuses
    first_ok = statuses.index(200)
    assert json.loads(seen[first_ok][2]) == {"scripted": True}


async def test_slow_rate() -> None:
    """slow_rate=1 delays every chat request by slow_delay and counts it."""
    async with MockServer(slow_rate=1.0, slow_delay=0.1) as server:
        started = time.monotonic()
        assert (await post(server, chat()))[0] == 200
        assert time.monotonic() - started >= 0.1 and server.stats.slowed == 1


async def test_connections_counted_and_released() -> None:
    """Keep-alive reuses one connection; it is gone from open_connections once the client closes."""
    async with MockServer() as server:
        async with aiohttp.ClientSession() as session:
            for _ in range(3):
                async with session.post(
                    server.url + "/chat/completions", json=chat(), headers=AUTH
                ) as resp:
                    await resp.read()
            assert (server.open_connections, server.connections_total) == (1, 1)
        await eventually(lambda: server.open_connections == 0)
        assert server.connections_total == 1


async def test_stalled_stream_released_when_client_leaves() -> None:
    """A client leaving during a Pause frees the connection and the in-flight slot at once."""
    async with MockServer() as server:
        server.reply_stream([{"n": 1}, Pause(30)])
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                server.url + "/chat/completions", json=chat(stream=True), headers=AUTH
            ) as resp,
        ):
            await resp.content.readuntil(b"\n\n")
            resp.close()
        await eventually(lambda: server.open_connections == 0 and server.stats.in_flight == 0)


async def test_requests_recorded() -> None:
    """Every request is recorded with method, path, query, lower-cased headers and body."""
    async with MockServer() as server, aiohttp.ClientSession() as session:
        async with session.post(
            server.url + "/chat/completions?debug=1",
            json=chat(),
            headers={**AUTH, "X-Trace": "t-1"},
        ) as resp:
            await resp.read()
        async with session.post(
            server.url + "/chat/completions", data=b"not json", headers=AUTH
        ) as resp:
            assert resp.status == 400
        async with session.get(server.url + "/nowhere", headers=AUTH) as resp:
            assert resp.status == 404
            assert json.loads(await resp.read())["error"]["message"].startswith("Invalid URL")
    first, second, third = server.requests
    assert (first.method, first.path) == ("POST", "/v1/chat/completions")
    assert first.query == {"debug": "1"}
    assert first.headers["x-trace"] == "t-1" and first.headers["authorization"] == "Bearer sk-test"
    assert first.body == chat() and json.loads(first.raw) == chat()
    assert (second.body, second.raw) == (None, b"not json")
    assert (third.method, third.path, third.body) == ("GET", "/v1/nowhere", None)
    assert server.stats.requests == 3
    assert server.stats.responses_by_status == {200: 1, 400: 1, 404: 1}


async def test_invalid_chat_bodies() -> None:
    """Bodies that are not JSON objects or lack model or messages get a 400."""
    async with MockServer() as server:
        for body, param in [
            ([1, 2], None),
            ({"messages": []}, "model"),
            ({"model": MODEL}, "messages"),
            (chat(n=0), "n"),
        ]:
            status, _, raw = await post(server, body)
            error = json.loads(raw)["error"]
            assert (status, error["type"], error["param"]) == (400, "invalid_request_error", param)


async def test_models() -> None:
    """GET /v1/models lists the configured ids; GET /v1/models/{id} finds one or 404s."""
    async with (
        MockServer(models=["m-1", "claude-x"]) as server,
        aiohttp.ClientSession(headers=AUTH) as session,
    ):
        async with session.get(server.url + "/models") as resp:
            listing = json.loads(await resp.read())
        async with session.get(server.url + "/models/claude-x") as resp:
            one = json.loads(await resp.read())
        async with session.get(server.url + "/models/nope") as resp:
            assert resp.status == 404
        async with session.get(server.url + "/chat/completions") as resp:
            assert resp.status == 405
    assert listing["object"] == "list"
    assert [m["id"] for m in listing["data"]] == ["m-1", "claude-x"]
    assert all(m["object"] == "model" for m in listing["data"])
    assert one["owned_by"] == "anthropic" and isinstance(one["created"], int)


async def test_start_and_close_are_idempotent() -> None:
    """start() and close() may be called twice; the port is known once started."""
    server = MockServer()
    with pytest.raises(RuntimeError):
        _ = server.url
    await server.start()
    await server.start()
    assert server.url == f"http://127.0.0.1:{server.port}/v1"
    await server.close()
    await server.close()
    assert server.open_connections == 0


def test_run_serves_until_sigterm() -> None:
    """run() prints its URL once listening, answers, and exits cleanly on SIGTERM."""
    code = "from aiocometapi.testing import run; run(port=0, latency=0.0)"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env
    ) as proc:
        assert proc.stdout is not None
        try:
            line = proc.stdout.readline().strip()
            assert line.startswith("aiocometapi mock server listening on http://127.0.0.1:")
            url = line.rsplit(" ", 1)[1]
            assert url.endswith("/v1")

            async def get_models() -> int:
                async with (
                    aiohttp.ClientSession(headers=AUTH) as session,
                    session.get(url + "/models") as resp,
                ):
                    return resp.status

            assert asyncio.run(get_models()) == 200
        finally:
            proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
