"""Every JSON decode of an answer, a stream chunk or an error body, with its one fallback path.

The fast path is the caller's own ``decoder.decode(data)``: nothing here runs while answers
fit their types. When a decode fails, ``recover`` takes the one slow path, in this order:

1. invalid UTF-8 inside the JSON reads as U+FFFD (as the SSE rules say for streams), and the
   decode is tried once more;
2. an answer that misses its type only by provider drift is repaired (see ``_repair``);
3. else the last failure is raised, and the caller turns it into its documented error
   (``APIResponseValidationError`` for an answer, ``StreamError`` for a chunk).

Which exception msgspec raises for invalid UTF-8 changed between versions (``UnicodeDecodeError``
up to 0.22, ``msgspec.DecodeError`` from 0.23), so step 1 asks the bytes themselves whether they
are valid UTF-8 instead of reading the exception's type or text.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import msgspec

from ._exceptions import (
    APIResponseValidationError,
    APIStatusError,
    redact,
    request_id_from_headers,
    request_id_from_message,
    status_error_class,
)
from ._repair import repair
from .types import ErrorObject

__all__ = [
    "DECODE_ERRORS",
    "ErrorEnvelope",
    "decode",
    "decode_answer",
    "error_envelope",
    "recover",
    "status_error",
]

T = TypeVar("T")

DECODE_ERRORS = (msgspec.DecodeError, UnicodeDecodeError, RecursionError)
"""What a decoder may raise: not JSON, not the type (``msgspec.ValidationError`` is a
``DecodeError``), invalid UTF-8 (msgspec before 0.23), or nested deeper than msgspec goes."""


def _valid_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def recover(
    decoder: msgspec.json.Decoder[T],
    data: bytes | str,
    failure: BaseException,
    *,
    what: str,
    quiet: bool = False,
) -> T:
    """The slow path after ``decoder.decode(data)`` raised ``failure`` (one of ``DECODE_ERRORS``).

    Args:
        what: Names the data in the log line of a repair ("an answer", "a stream chunk").
        quiet: Repair without that log line (a stream logs its first repair only).

    Returns:
        The decoded value, read with U+FFFD for invalid UTF-8 and/or repaired.

    Raises:
        msgspec.DecodeError, msgspec.ValidationError, RecursionError: the data cannot be read
            as the decoder's type even so (the last failure met).
    """
    if (
        isinstance(data, bytes)
        and isinstance(failure, (msgspec.DecodeError, UnicodeDecodeError))
        and not _valid_utf8(data)
    ):
        data = data.decode("utf-8", "replace")
        try:
            return decoder.decode(data)
        except DECODE_ERRORS as exc:
            failure = exc
    if isinstance(failure, msgspec.ValidationError):
        repaired = repair(data, decoder, what, quiet=quiet)
        if repaired is not None:
            return repaired
    raise failure


def decode(
    decoder: msgspec.json.Decoder[T], data: bytes | str, *, what: str, quiet: bool = False
) -> T:
    """``decoder.decode(data)``, through ``recover`` if that fails (see there)."""
    try:
        return decoder.decode(data)
    except DECODE_ERRORS as exc:
        return recover(decoder, data, exc, what=what, quiet=quiet)


def decode_answer(
    decoder: msgspec.json.Decoder[T],
    body: bytes,
    *,
    status: int,
    headers: Mapping[str, str],
    secret: bytes,
) -> T:
    """A 2xx answer's body decoded as ``decoder``'s type.

    Raises:
        APIResponseValidationError: the body is not that JSON, even read leniently; its
            ``body`` holds the start of the text, the key blanked out.
    """
    try:
        return decoder.decode(body)
    except DECODE_ERRORS as exc:
        failure: BaseException = exc
    try:
        return recover(decoder, body, failure, what="an answer")
    except DECODE_ERRORS as exc:
        text = redact(body, secret)[:2000].decode("utf-8", errors="replace")
        raise APIResponseValidationError(
            f"The response is not the JSON the API promises ({exc}); it starts: {text[:200]!r}",
            body=text,
            status_code=status,
            request_id=request_id_from_headers(headers),
        ) from exc


# --------------------------------------------------------------------------- error bodies


class ErrorEnvelope(msgspec.Struct):
    """An error body, or an error inside a stream: ``{"error": {...}}``, ``{"error": "..."}``
    or ``{"message": "..."}``."""

    error: ErrorObject | str | None = None
    message: str | None = None


_envelope_decoder = msgspec.json.Decoder(ErrorEnvelope)
_any_decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder()


def error_envelope(data: bytes | str) -> ErrorEnvelope | None:
    """``data`` read as an error envelope, or ``None`` if it is not JSON of that shape."""
    try:
        return decode(_envelope_decoder, data, what="an error")
    except DECODE_ERRORS:
        return None


def status_error(status: int, headers: Mapping[str, str], body: bytes) -> APIStatusError:
    """The error for an error answer, from its ``{"error": {...}}`` body or its raw text.

    ``body`` must already have the key blanked out (``redact``).
    """
    text = body.decode("utf-8", errors="replace")
    decoded: Any = None
    envelope: ErrorEnvelope | None = None
    try:
        decoded = decode(_any_decoder, body, what="an error body")
        envelope = msgspec.convert(decoded, ErrorEnvelope)
    except DECODE_ERRORS:  # msgspec.ValidationError is one of them
        decoded = envelope = None
    message = code = type_ = param = None
    if envelope is not None and isinstance(envelope.error, ErrorObject):
        error = envelope.error
        message = error.message
        code = None if error.code is None else str(error.code)
        type_, param = error.type, error.param
    elif envelope is not None and isinstance(envelope.error, str):
        message = envelope.error
    elif envelope is not None and envelope.message:
        message = envelope.message
    if not message:
        snippet = " ".join(text[:300].split())
        message = snippet or "(empty body)"
        if 300 <= status < 400:
            message = f"unexpected redirect to {headers.get('location', '?')}: {message}"
    request_id = request_id_from_headers(headers) or request_id_from_message(message)
    return status_error_class(status)(
        message,
        status_code=status,
        headers=headers,
        body=decoded if decoded is not None else text,
        code=code,
        type=type_,
        param=param,
        request_id=request_id,
    )
