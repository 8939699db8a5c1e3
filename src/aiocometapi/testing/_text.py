"""The text the mock server makes up: reply words, delta fragments, token counts."""

from __future__ import annotations

import math
import re
from typing import Any

__all__ = [
    "count_words",
    "fragments",
    "mock_words",
    "slices",
    "text_of",
    "usage",
    "word_pieces",
]

_VOCABULARY = (
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliet",
    "kilo",
    "lima",
    "mike",
)


def mock_words(n: int) -> str:
    """The reply content the server gives to a request whose body has ``{"mock": {"words": n}}``."""
    size = len(_VOCABULARY)
    return " ".join(_VOCABULARY[i % size] for i in range(n))


def text_of(content: Any) -> str:
    """The text of a message's content: a string, or the text parts joined by spaces."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [
            part["text"]
            for part in content
            if isinstance(part, dict)
            and part.get("type") == "text"
            and isinstance(part.get("text"), str)
        ]
        return " ".join(texts)
    return ""


def word_pieces(text: str) -> list[str]:
    """Words with the whitespace after them, so that the pieces add up to ``text`` exactly."""
    return re.findall(r"\s*\S+\s*|\s+", text)


def slices(text: str, parts: int) -> list[str]:
    """``text`` cut into about ``parts`` pieces of equal length."""
    parts = max(1, min(parts, len(text)))
    size = math.ceil(len(text) / parts) if text else 1
    return [text[i : i + size] for i in range(0, len(text), size)] or [text]


def fragments(text: str) -> list[str]:
    """``text`` cut into several deltas: by words, or by characters when it has under three."""
    pieces = word_pieces(text)
    return pieces if len(pieces) >= 3 else slices(text, 3)


def count_words(text: str | None) -> int:
    """The words of ``text``: the mock's token count."""
    return len(text.split()) if text else 0


def usage(prompt: int, completion: int) -> dict[str, int]:
    """A ``usage`` object."""
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
