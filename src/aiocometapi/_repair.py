"""Answers that miss the types only by provider drift, repaired instead of lost.

Gateways and the providers behind them do not always send the JSON types OpenAI documents: a
``null`` where a string belongs, ``created`` as a float, token counts as ``1.0``, an index as
``"0"``, message content as a list of text parts (Mistral's Magistral mixes in thinking parts,
read as ``reasoning``), tool-call arguments as an object instead of a JSON string. The answer
itself is fine, and it was paid for. When the typed decoder refuses one, ``repair`` decodes it
loosely and fixes it where msgspec's error points, one place at a time, with the fixes below;
anything else still fails as before. Nothing of this runs on the normal path: only once a typed
decode has failed.
"""

from __future__ import annotations

import math
import re
from typing import Any, TypeVar

import msgspec

from ._logs import log

__all__ = ["repair"]

T = TypeVar("T")

_MAX_FIXES = 32
"""More misfits than this in one answer, and it is not drift: give up."""

_ERROR = re.compile(
    r"Expected `(?P<expected>[^`]+)`, got `(?P<got>[^`]+)` - at `\$(?P<path>[^`]*)`"
)
_STEP = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")


def repair(
    data: bytes | str, decoder: msgspec.json.Decoder[T], what: str, *, quiet: bool = False
) -> T | None:
    """``data`` decoded as the decoder's type with drift fixed, or ``None`` if it cannot be.

    ``what`` names the answer in the log line that lists the fixes (paths and kinds only,
    never values: bodies are not logged); ``quiet`` leaves the line out.
    """
    try:
        value = msgspec.json.decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return None
    fixes: list[str] = []
    for _ in range(_MAX_FIXES):
        try:
            result: T = msgspec.convert(value, decoder.type, strict=False)
        except msgspec.ValidationError as exc:
            fix = _fix(value, str(exc))
            if fix is None:
                return None
            fixes.append(fix)
            continue
        except RecursionError:
            return None
        if not quiet:
            done = "; ".join(fixes) or "numbers or booleans sent as strings, read as such"
            log.info("repaired %s that did not fit its type: %s", what, done)
        return result
    return None


def _fix(root: Any, error: str) -> str | None:
    """Change ``root`` where ``error`` points; describe the change, or ``None`` if none fits."""
    match = _ERROR.fullmatch(error)
    if match is None:
        return None
    path = match["path"]
    steps = [name if name else int(index) for name, index in _STEP.findall(path)]
    if not steps or "".join(f".{s}" if isinstance(s, str) else f"[{s}]" for s in steps) != path:
        return None  # the root itself, or a path this parser does not read
    parent: Any = root
    for step in steps[:-1]:
        parent = parent[step]
    key = steps[-1]
    if not isinstance(parent, (dict, list)):
        return None
    got, expected = match["got"], match["expected"]
    old = parent[key]
    if got == "null":
        del parent[key]
        return f"${path}: null left out"
    if got == "array" and steps[-1] == "content" and _thinking_read(parent):
        return f"${path}: thinking parts read as reasoning"
    new = _converted(old, got, set(expected.split(" | ")))
    if new is _NO_FIX:
        return None
    parent[key] = new
    return f"${path}: {got} read as {expected.split(' | ')[0]}"


_NO_FIX: Any = object()


def _converted(old: Any, got: str, expected: set[str]) -> Any:
    if "int" in expected and got in ("float", "bool"):
        if isinstance(old, float) and not math.isfinite(old):
            return _NO_FIX
        return int(old)
    if "str" in expected:
        if got == "array" and all(_is_text_part(part) for part in old):
            return "".join(part if isinstance(part, str) else part["text"] for part in old)
        if got in ("object", "array", "int", "float", "bool"):
            return msgspec.json.encode(old).decode()
    if "array" in expected and got == "object":
        return [old]
    return _NO_FIX


def _thinking_read(message: Any) -> bool:
    """Mistral's Magistral: ``message["content"]`` holds thinking parts beside text parts.
    Make the text the content and the thinking the ``reasoning``; ``False`` if it does not."""
    if not isinstance(message, dict):
        return False
    split = _thinking_split(message["content"])
    if split is None:
        return False
    message["content"], thinking = split
    before = message.get("reasoning")
    message["reasoning"] = (before if isinstance(before, str) else "") + thinking
    return True


def _thinking_split(parts: list[Any]) -> tuple[str, str] | None:
    """(text, thinking) of content parts that include ``{"type": "thinking", "thinking": [text
    parts]}`` blocks beside text parts; ``None`` for any other list."""
    text: list[str] = []
    thinking: list[str] = []
    for part in parts:
        if _is_text_part(part):
            text.append(part if isinstance(part, str) else part["text"])
        elif isinstance(part, dict) and part.get("type") == "thinking":
            inner = part.get("thinking")
            inner = [inner] if isinstance(inner, str) else inner
            if not isinstance(inner, list) or not all(_is_text_part(p) for p in inner):
                return None
            thinking.extend(p if isinstance(p, str) else p["text"] for p in inner)
        else:
            return None
    return ("".join(text), "".join(thinking)) if thinking else None


def _is_text_part(part: Any) -> bool:
    return isinstance(part, str) or (
        isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str)
    )
