"""The one decoding place: invalid UTF-8 read as U+FFFD, then drift repaired, then the error."""

from __future__ import annotations

import msgspec
import pytest

from aiocometapi import APIResponseValidationError
from aiocometapi._decode import (
    DECODE_ERRORS,
    decode,
    decode_answer,
    error_envelope,
    recover,
    status_error,
)
from aiocometapi.types import ChatCompletion, ChatCompletionChunk

ANSWERS = msgspec.json.Decoder(ChatCompletion)
CHUNKS = msgspec.json.Decoder(ChatCompletionChunk)
CAFE = b'{"choices": [{"index": 0, "message": {"role": "assistant", "content": "caf\xe9"}}]}'


def content(completion: ChatCompletion) -> str | None:
    return completion.choices[0].message.content


def test_invalid_utf8_reads_as_replacement_character() -> None:
    """An answer whose text holds a byte that is not UTF-8 is kept, that byte read as U+FFFD."""
    assert content(decode(ANSWERS, CAFE, what="an answer")) == "caf\ufffd"


@pytest.mark.parametrize(
    "failure",
    [
        UnicodeDecodeError("utf-8", b"\xe9", 0, 1, "invalid continuation byte"),
        msgspec.DecodeError("Invalid UTF-8 encoded string"),
        msgspec.DecodeError("any other wording a later msgspec may choose"),
    ],
    ids=["msgspec<0.23", "msgspec-0.23", "other-text"],
)
def test_recovery_does_not_depend_on_how_msgspec_reports_utf8(failure: Exception) -> None:
    """Whichever exception (and text) msgspec raises for invalid UTF-8, the answer is read."""
    assert content(recover(ANSWERS, CAFE, failure, what="an answer")) == "caf\ufffd"


def test_invalid_utf8_and_drift_in_one_answer() -> None:
    """Invalid UTF-8 and a provider's type drift in the same answer are both mended."""
    body = (
        b'{"created": 1700000000.0, "choices": [{"index": "0", '
        b'"message": {"role": "assistant", "content": "na\xefve"}}]}'
    )
    completion = decode(ANSWERS, body, what="an answer")
    assert completion.created == 1700000000 and completion.choices[0].index == 0
    assert content(completion) == "na\ufffdve"


def test_invalid_utf8_and_drift_in_one_chunk() -> None:
    """A stream chunk with both invalid UTF-8 and drift is read, as a whole answer would be."""
    data = b'{"choices": [{"index": 0.0, "delta": {"content": "\xff ok"}}]}'
    chunk = decode(CHUNKS, data, what="a stream chunk")
    assert chunk.choices[0].index == 0 and chunk.choices[0].delta.content == "\ufffd ok"


@pytest.mark.parametrize(
    "body",
    [b'{"choices": [', b"<html>502</html>", b'{"choices": "\xff"}', b'{"choices": 5}'],
    ids=["truncated", "html", "bad-utf8-and-wrong-type", "wrong-type"],
)
def test_what_cannot_be_read_raises_a_decode_error(body: bytes) -> None:
    """Data that is not the JSON expected, even read leniently, raises one of DECODE_ERRORS."""
    with pytest.raises(DECODE_ERRORS):
        decode(ANSWERS, body, what="an answer")


def test_an_unreadable_answer_is_a_validation_error_without_the_key() -> None:
    """decode_answer raises the documented APIResponseValidationError, the key blanked out."""
    secret = b"sk-secret-0123456789"
    with pytest.raises(APIResponseValidationError) as info:
        decode_answer(
            ANSWERS,
            b"not json " + secret,
            status=200,
            headers={"x-request-id": "req-1"},
            secret=secret,
        )
    assert info.value.request_id == "req-1" and info.value.status_code == 200
    assert "sk-secret" not in str(info.value) and "sk-secret" not in info.value.body


def test_error_envelope_with_invalid_utf8() -> None:
    """An error event whose message holds invalid UTF-8 is still read as an error."""
    envelope = error_envelope(b'{"error": {"message": "Ung\xfcltig", "code": 400}}')
    assert envelope is not None and envelope.error is not None
    assert not isinstance(envelope.error, str) and envelope.error.message == "Ung\ufffdltig"


def test_error_envelope_of_something_else_is_none() -> None:
    """Data that is not JSON is not taken for an error envelope."""
    assert error_envelope(b"data that is not json") is None


def test_status_error_reads_an_error_body_with_invalid_utf8() -> None:
    """A 400 whose body holds invalid UTF-8 gives its message with U+FFFD and its code."""
    error = status_error(400, {}, b'{"error": {"message": "caf\xe9", "code": "bad"}}')
    assert error.status_code == 400 and error.message == "caf\ufffd" and error.code == "bad"
    assert error.body == {"error": {"message": "caf\ufffd", "code": "bad"}}
