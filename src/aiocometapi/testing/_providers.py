"""Provider behaviours the mock server imitates: Gemini 3's thought signatures on tool calls,
and DeepSeek's thinking mode, which wants a tool-calling turn's reasoning back."""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from typing import Any

__all__ = [
    "missing_reasoning",
    "missing_signature",
    "signs_tool_calls",
    "thought_signature",
    "wants_reasoning_back",
]

_MOCK_CALL_ID = re.compile(r"call_\d+_0")  # the first call of a scripted turn


def thought_signature(call_id: str) -> str:
    """The thought signature the server gives the Gemini 3 tool call ``call_id``, and wants back.

    As Gemini 3 does behind CometAPI, for a model whose id starts with ``gemini-3`` the first
    tool call of each scripted turn carries ``"extra_content": {"google": {"thought_signature":
    ...}}``, and a later request whose history holds that call without the same signature is
    refused with a 400.
    """
    return base64.b64encode(f"mock-thought:{call_id}".encode()).decode()


def signs_tool_calls(model: str) -> bool:
    """Whether the server signs this model's tool calls (Gemini 3)."""
    return model.startswith("gemini-3")


def wants_reasoning_back(model: str) -> bool:
    """Whether this model wants a tool-calling turn's reasoning back (DeepSeek)."""
    return model.startswith("deepseek")


def missing_signature(messages: list[Any]) -> str | None:
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


def missing_reasoning(
    model: str, messages: list[dict[str, Any]], reasoned: Mapping[str, str]
) -> str | None:
    """DeepSeek's thinking-mode complaint about a tool-calling turn sent back without its
    ``reasoning_content`` (``reasoned``: call id -> the reasoning of the turn that made it)."""
    if not wants_reasoning_back(model):
        return None
    for position, message in enumerate(messages):
        calls = message.get("tool_calls")
        if message.get("role") != "assistant" or not isinstance(calls, list) or not calls:
            continue
        call_id = calls[0].get("id") if isinstance(calls[0], dict) else None
        wanted = reasoned.get(call_id) if isinstance(call_id, str) else None
        if wanted is not None and message.get("reasoning_content") != wanted:
            return (
                "Missing `reasoning_content` field in the assistant message at message "
                f"index {position}"
            )
    return None
