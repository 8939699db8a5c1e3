"""TypedDicts for the nested request parameters of OpenAI's chat-completions reference.

Named after the reference's fields; the shapes follow openai-python's
``src/openai/types/chat/completion_create_params.py`` (commit e43b422). Plain dicts of the
same shape are what users write; these only let a type checker see the keys.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any, Literal, TypedDict

if sys.version_info >= (3, 11):
    from typing import Required
else:  # pragma: no cover
    from typing_extensions import Required

__all__ = [
    "AudioParam",
    "FunctionCallOption",
    "ModerationParam",
    "PredictionParam",
    "PromptCacheOptions",
    "ReasoningEffort",
    "ServiceTier",
    "Verbosity",
    "VoiceID",
    "WebSearchLocation",
    "WebSearchOptions",
    "WebSearchUserLocation",
]

ReasoningEffort = Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"]
"""``reasoning_effort``: how much a reasoning model thinks (not every model takes every value)."""
ServiceTier = Literal["auto", "default", "flex", "scale", "priority", "fast"]
"""``service_tier``: the processing tier asked for; the answer says which one served it."""
Verbosity = Literal["low", "medium", "high"]
"""``verbosity``: how long a GPT-5 model's answer runs (``"medium"`` when not given)."""


class VoiceID(TypedDict):
    """A custom voice for ``audio``."""

    id: str
    """A custom voice, e.g. ``"voice_1234"``."""


class AudioParam(TypedDict):
    """``audio``: the spoken answer of an audio model (with ``modalities=["text", "audio"]``)."""

    format: Literal["wav", "aac", "mp3", "flac", "opus", "pcm16"]
    voice: str | VoiceID
    """A built-in voice (``alloy``, ``ash``, ``coral``, ``marin``, ...) or a custom one."""


class _TextPart(TypedDict):
    type: Literal["text"]
    text: str


class PredictionParam(TypedDict):
    """``prediction``: content the answer is expected to repeat (Predicted Outputs)."""

    type: Literal["content"]
    content: str | Sequence[_TextPart]


class WebSearchLocation(TypedDict, total=False):
    """Where the user is, roughly, for a search model's results."""

    city: str
    country: str
    """Two-letter ISO country code."""
    region: str
    timezone: str
    """IANA time zone, e.g. ``"Europe/Oslo"``."""


class WebSearchUserLocation(TypedDict):
    """``web_search_options.user_location``: an approximate location."""

    type: Literal["approximate"]
    approximate: WebSearchLocation


class WebSearchOptions(TypedDict, total=False):
    """``web_search_options``: for search models (``gpt-4o-search-preview`` and the like)."""

    search_context_size: Literal["low", "medium", "high"]
    user_location: WebSearchUserLocation | None


class ModerationParam(TypedDict, total=False):
    """``moderation``: moderation of the request's input and the generated output."""

    model: Required[str]
    policy: dict[str, Any] | None
    """``{"input": {"mode": "score" | "block"}, "output": {...}}``."""


class PromptCacheOptions(TypedDict, total=False):
    """``prompt_cache_options``: how the prompt cache places its breakpoints, and for how long."""

    mode: Literal["implicit", "explicit"]
    ttl: Literal["30m"]


class FunctionCallOption(TypedDict):
    """``function_call`` naming one function (deprecated: ``tool_choice`` replaces it)."""

    name: str
