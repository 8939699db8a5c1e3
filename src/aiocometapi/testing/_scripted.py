"""The replies a test scripts on a MockServer, used one per chat request, first in first out."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from ._exchange import Exchange
from ._providers import signs_tool_calls, thought_signature, wants_reasoning_back
from ._text import count_words, fragments, slices, usage
from ._values import Comment, Drop, Pause, StreamEvent
from ._wire import DONE, Dropped, encode, response, sse, write_stream

__all__ = ["BodyReply", "DropReply", "Scripted", "StreamReply", "TurnReply"]


@dataclass
class Scripted:
    delay: float

    async def send(self, ex: Exchange) -> web.StreamResponse:
        raise NotImplementedError


@dataclass
class BodyReply(Scripted):
    status: int
    body: Any
    content_type: str
    headers: Mapping[str, str] | None

    async def send(self, ex: Exchange) -> web.StreamResponse:
        return response(
            ex.request_id,
            self.status,
            self.body,
            content_type=self.content_type,
            headers=self.headers,
        )


@dataclass
class DropReply(Scripted):
    async def send(self, ex: Exchange) -> web.StreamResponse:
        raise Dropped


@dataclass
class StreamReply(Scripted):
    events: list[StreamEvent]
    done: bool
    split: int | None
    status: int
    headers: Mapping[str, str] | None

    def pieces(self) -> Iterator[bytes | Pause | Drop]:
        for event in self.events:
            if isinstance(event, (Pause, Drop)):
                yield event
            elif isinstance(event, Comment):
                yield b": " + event.text.encode() + b"\n\n"
            elif isinstance(event, bytes):
                yield event
            elif isinstance(event, str):
                yield b"data: " + event.encode() + b"\n\n"
            else:
                yield sse(event)
        if self.done:
            yield DONE

    async def send(self, ex: Exchange) -> web.StreamResponse:
        return await write_stream(
            ex,
            self.pieces(),
            status=self.status,
            headers=self.headers,
            coalesce=False,
            split=self.split,
        )


@dataclass
class TurnReply(Scripted):
    content: str | None
    tool_calls: list[tuple[str, Mapping[str, Any] | str]]
    refusal: str | None
    reasoning_content: str | None
    finish_reason: str | None
    usage: Mapping[str, Any] | None
    index_base: int
    omit_index: bool

    def calls(self, ex: Exchange) -> list[tuple[str, str, str]]:
        return [
            (
                f"call_{ex.number}_{i}",
                name,
                arguments if isinstance(arguments, str) else encode(arguments).decode(),
            )
            for i, (name, arguments) in enumerate(self.tool_calls)
        ]

    def turnusage(self, ex: Exchange, calls: list[tuple[str, str, str]]) -> Mapping[str, Any]:
        if self.usage is not None:
            return self.usage
        texts = (self.content, self.refusal, self.reasoning_content)
        arguments = sum(math.ceil(len(a) / 4) for *_, a in calls)
        completion = sum(count_words(t) for t in texts) + arguments
        return usage(ex.prompt_tokens, max(1, completion))

    @staticmethod
    def signed(ex: Exchange, call: dict[str, Any], position: int) -> dict[str, Any]:
        """``call`` with Gemini 3's thought signature, on the first call of a turn."""
        if position == 0 and signs_tool_calls(ex.model):
            signature = {"google": {"thought_signature": thought_signature(call["id"])}}
            return {**call, "extra_content": signature}
        return call

    def finish(self) -> str:
        if self.finish_reason is not None:
            return self.finish_reason
        return "tool_calls" if self.tool_calls else "stop"

    def message(self, ex: Exchange, calls: list[tuple[str, str, str]]) -> dict[str, Any]:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": self.content,
            "refusal": self.refusal,
        }
        if self.reasoning_content is not None:
            message["reasoning_content"] = self.reasoning_content
        if calls:
            message["tool_calls"] = [
                self.signed(
                    ex,
                    {"id": id, "type": "function", "function": {"name": name, "arguments": args}},
                    i,
                )
                for i, (id, name, args) in enumerate(calls)
            ]
        return message

    def events(self, ex: Exchange, calls: list[tuple[str, str, str]]) -> Iterator[bytes]:
        yield sse(ex.chunk({"role": "assistant", "content": None if self.content is None else ""}))
        for key in ("reasoning_content", "content", "refusal"):
            text = getattr(self, key)
            for piece in fragments(text) if text else ():
                yield sse(ex.chunk({key: piece}))
        for i, (id, name, args) in enumerate(calls):
            function = {"name": name, "arguments": args}
            if self.omit_index:
                whole = {"id": id, "type": "function", "function": function}
                yield sse(ex.chunk({"tool_calls": [self.signed(ex, whole, i)]}))
                continue
            index = self.index_base + i
            first = {
                "index": index,
                "id": id,
                "type": "function",
                "function": {"name": name, "arguments": ""},
            }
            yield sse(ex.chunk({"tool_calls": [self.signed(ex, first, i)]}))
            for fragment in slices(args, max(3, len(args) // 12)):
                delta = {"tool_calls": [{"index": index, "function": {"arguments": fragment}}]}
                yield sse(ex.chunk(delta))
        yield sse(ex.chunk({}, self.finish()))
        if ex.include_usage:
            yield sse(ex.usage_chunk(self.turnusage(ex, calls)))
        yield DONE

    async def send(self, ex: Exchange) -> web.StreamResponse:
        calls = self.calls(ex)
        if self.reasoning_content and calls and wants_reasoning_back(ex.model):
            for id, *_ in calls:  # DeepSeek's thinking mode wants it back with these calls
                ex.reasoned[id] = self.reasoning_content
        if ex.stream:
            return await write_stream(ex, self.events(ex, calls), coalesce=False)
        body = ex.completion([self.message(ex, calls)], self.finish(), self.turnusage(ex, calls))
        return response(ex.request_id, 200, body)
