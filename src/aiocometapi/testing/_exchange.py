"""One chat request the mock server admitted: what its replies need to know, and build from."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from ._examples import example
from ._providers import missing_reasoning, missing_signature, signs_tool_calls
from ._text import text_of
from ._values import MockStats

__all__ = ["Exchange", "invalid"]


def invalid(body: Any) -> tuple[str, str | None] | None:
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
    if signs_tool_calls(body["model"]):
        missing = missing_signature(body["messages"])
        if missing is not None:
            return missing, "messages"
    return None


@dataclass
class Exchange:
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
        chars = sum(len(text_of(m.get("content"))) for m in self.messages)
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
            tool["function"]
            for tool in tools
            if isinstance(tool, dict)
            and isinstance(tool.get("function"), dict)
            and isinstance(tool["function"].get("name"), str)
        ]
        if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
            functions = [f for f in functions if f["name"] == choice["function"].get("name")]
        return [(f["name"], example(f.get("parameters") or {})) for f in functions[:4]]

    def missing_reasoning(self) -> str | None:
        """DeepSeek's thinking-mode complaint about a tool-calling turn sent back without its
        ``reasoning_content``, or ``None``."""
        return missing_reasoning(self.model, self.messages, self.reasoned)

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
            results.append(text_of(message.get("content")))
        return results[::-1]

    def last_user_text(self) -> str:
        for message in reversed(self.messages):
            if message.get("role") == "user":
                return text_of(message.get("content"))
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
