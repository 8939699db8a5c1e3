"""The errors aiocometapi raises; every one is a ``CometAPIError``.

::

    CometAPIError
    ├── ConfigurationError          bad client set-up: no key, bad base URL, bad header
    ├── ClientClosedError           a call on a client after aclose()
    ├── CompatibilityError          compat="strict": a parameter the model family does not take
    ├── APIError                    a call to the API went wrong (``openai.APIError``'s place)
    │   ├── APIConnectionError          the request did not get an answer
    │   │   └── APITimeoutError         ... because a clock ran out (``which`` names it)
    │   ├── APIStatusError              the server answered with an error status
    │   │   ├── BadRequestError             400
    │   │   ├── AuthenticationError         401
    │   │   ├── PermissionDeniedError       403
    │   │   ├── NotFoundError               404
    │   │   ├── ConflictError               409
    │   │   ├── UnprocessableEntityError    422
    │   │   ├── RateLimitError              429
    │   │   └── InternalServerError         5xx
    │   ├── APIResponseValidationError  a 2xx body that is not the expected JSON
    │   └── StreamError                 an error inside a stream (error event, bad chunk)
    │       └── IncompleteStreamError   the stream ended early; ``partial`` holds what came
    ├── ContentParseError           parse(): the answer does not fit the requested type
    ├── ToolCallError               a tool call names no tool that was given
    │   └── ToolArgumentsError      ... or its arguments do not fit the function's parameters
    └── MaxTurnsExceededError       run_tools(): the model still called tools at ``max_turns``

Foreign exceptions (aiohttp, msgspec, asyncio timeouts) are converted where they arise and
chained with ``from``; none escapes to the caller.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .types import ChatCompletion, Message

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ClientClosedError",
    "CometAPIError",
    "CompatibilityError",
    "ConfigurationError",
    "ConflictError",
    "ContentParseError",
    "IncompleteStreamError",
    "InternalServerError",
    "MaxTurnsExceededError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "StreamError",
    "ToolArgumentsError",
    "ToolCallError",
    "UnprocessableEntityError",
]

_REQUEST_ID_SUFFIX = re.compile(r"\(request id: ?([^)\s]+)\)")


def redact(data: bytes, secret: bytes) -> bytes:
    """``data`` with every copy of ``secret`` (the API key) replaced by ``***``.

    Servers and proxies sometimes echo request headers back in an error body; nothing built
    from such a body (messages, ``body`` attributes, logs) may carry the key on.
    """
    return data.replace(secret, b"***") if secret and secret in data else data


def request_id_from_message(message: str | None) -> str | None:
    """Return the id in CometAPI's "(request id: ...)" message suffix, if there is one."""
    if not message or "request id" not in message:
        return None
    found = _REQUEST_ID_SUFFIX.search(message)
    return found.group(1) if found else None


class CometAPIError(Exception):
    """Base of every error this package raises.

    Attributes:
        message: What went wrong; ``str()`` of the error gives it (for an
            ``APIStatusError``, after the status code).
    """

    message: str

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class APIError(CometAPIError):
    """Base of the errors about a call to the API: no answer, an error status, an answer that is
    not what the API promises, or an error inside a stream. It takes the place of
    ``openai.APIError``, so code that catches that name keeps working.

    Args:
        message: What went wrong.
    """


class ConfigurationError(CometAPIError, ValueError):
    """The client cannot be built as asked (no API key, a malformed base URL or header)."""


class ClientClosedError(CometAPIError, RuntimeError):
    """A request was made on a client whose ``aclose()`` already ran.

    Args:
        message: What happened; the default says to create a new client.
    """

    def __init__(
        self, message: str = "This client was closed with aclose(); create a new one."
    ) -> None:
        super().__init__(message)


class CompatibilityError(CometAPIError, ValueError):
    """``compat="strict"``: the request uses a parameter its model family does not accept."""


class APIConnectionError(APIError):
    """No usable answer arrived: refused, reset, dropped or otherwise failed connection.

    Attributes:
        message: What happened, e.g. "Connection error: ..." with the cause.
        request_id: The server's request id, when an answer had started to arrive.
    """

    def __init__(self, message: str = "Connection error.", *, request_id: str | None = None):
        super().__init__(message)
        self.request_id = request_id


class APITimeoutError(APIConnectionError):
    """A clock ran out. ``which`` is one of ``connect``, ``total``, ``first_event``, ``idle``,
    ``stream_total`` (see ``Timeout``).

    Attributes:
        message: Which clock ran out, after how many seconds.
        which: The name of the clock.
    """

    def __init__(self, message: str = "Request timed out.", *, which: str = "total") -> None:
        super().__init__(message)
        self.which = which


class APIResponseValidationError(APIError):
    """A successful status whose body is not the JSON the API promises; ``body`` is the raw text.

    Attributes:
        message: Why the body was refused, and how it starts.
        body: The body as text (its first 2,000 characters), the API key masked.
        status_code: The HTTP status of the answer.
        request_id: The server's request id, if it gave one.
    """

    def __init__(
        self, message: str, *, body: str, status_code: int = 200, request_id: str | None = None
    ) -> None:
        super().__init__(message)
        self.body = body
        self.status_code = status_code
        self.request_id = request_id


class APIStatusError(APIError):
    """The server answered with an error status (4xx or 5xx, or an unexpected 3xx).

    A subclass names the status where there is one (``RateLimitError`` for 429, ...).

    Attributes:
        message: The error body's ``error.message``, or the start of the body's text.
        status_code: The HTTP status.
        headers: The response headers (``Retry-After`` and the request id among them).
        body: The error body, decoded from JSON where it is JSON, else its text.
        code: The body's ``error.code`` (as text), e.g. ``"model_not_found"``.
        type: The body's ``error.type``, e.g. ``"invalid_request_error"``.
        param: The body's ``error.param``: the parameter at fault, if named.
        request_id: From the ``x-request-id`` header, else CometAPI's ``(request id: ...)``
            message suffix.
    """

    status_code: int

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
        code: str | None = None,
        type: str | None = None,
        param: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.headers: Mapping[str, str] = headers if headers is not None else {}
        self.body = body
        self.code = code
        self.type = type
        self.param = param
        self.request_id = request_id

    def __str__(self) -> str:
        return f"Error code: {self.status_code} - {self.message}"


class BadRequestError(APIStatusError):
    """400: the request is malformed or has a bad parameter."""


class AuthenticationError(APIStatusError):
    """401: the API key is missing, wrong or revoked."""


class PermissionDeniedError(APIStatusError):
    """403: the key may not use this model or endpoint."""


class NotFoundError(APIStatusError):
    """404: no such path or model."""


class ConflictError(APIStatusError):
    """409: the request conflicts with the server's state (retried)."""


class UnprocessableEntityError(APIStatusError):
    """422: the request is well-formed but cannot be processed."""


class RateLimitError(APIStatusError):
    """429: too many requests or tokens; ``headers`` holds the server's ``Retry-After``."""


class InternalServerError(APIStatusError):
    """5xx: the gateway or the provider behind it failed."""


_STATUS_CLASSES: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}


def status_error_class(status: int) -> type[APIStatusError]:
    """The most specific ``APIStatusError`` subclass for an HTTP status."""
    if status >= 500:
        return InternalServerError
    return _STATUS_CLASSES.get(status, APIStatusError)


class StreamError(APIError):
    """An error inside a streamed response: an error event, or a chunk that is not valid JSON.

    Attributes:
        message: The error event's message, or what was wrong with the chunk.
        code: The error event's ``code``, if it had one.
        type: The error event's ``type``, if it had one.
        param: The error event's ``param``, if it had one.
        request_id: The request id of the stream's response.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        type: str | None = None,
        param: str | None = None,
        request_id: str | None = None,
        partial: ChatCompletion | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.type = type
        self.param = param
        self.request_id = request_id
        self.partial = partial
        """What had been assembled from the chunks received before the error."""


class IncompleteStreamError(StreamError):
    """The stream ended before ``data: [DONE]``; ``partial`` is the completion assembled so far."""


class ContentParseError(CometAPIError, ValueError):
    """``parse()``: a choice's content is not JSON of the requested type.

    The message shows the content (cut to 500 characters) and where decoding failed.

    Attributes:
        choice_index: The index of the choice whose content failed.
    """

    def __init__(
        self,
        message: str,
        *,
        content: str,
        completion: ChatCompletion,
        choice_index: int,
        detail: str,
    ) -> None:
        super().__init__(message)
        self.content = content
        """The whole content that failed."""
        self.completion = completion
        """The completion as received, unparsed."""
        self.choice_index = choice_index
        self.detail = detail
        """msgspec's account, e.g. "Expected `int`, got `str` - at `$.count`"."""


class ToolCallError(CometAPIError):
    """The model called a tool that cannot be run as asked: here, one that was not given.

    Attributes:
        message: What was wrong with the call.
        tool_name: The name of the tool the model called.
    """

    def __init__(self, message: str, *, tool_name: str, arguments: str) -> None:
        super().__init__(message)
        self.tool_name = tool_name
        self.arguments = arguments
        """The raw JSON arguments of the call."""


class ToolArgumentsError(ToolCallError, ValueError):
    """A tool call's arguments are not JSON that fits the function's parameters.

    Attributes:
        message: The tool, the raw arguments and where they failed.
        tool_name: The name of the tool whose arguments failed.
    """

    def __init__(self, message: str, *, tool_name: str, arguments: str, detail: str) -> None:
        super().__init__(message, tool_name=tool_name, arguments=arguments)
        self.detail = detail
        """msgspec's account, e.g. "Expected `int`, got `str` - at `$.count`"."""


class MaxTurnsExceededError(CometAPIError, RuntimeError):
    """``run_tools()``: the model still asked for tools in its last allowed turn.

    The tools of that turn were run, so ``messages`` ends with their results and can be
    passed to another ``run_tools()`` call to go on.

    Attributes:
        message: How many turns ran.
    """

    def __init__(
        self, message: str, *, messages: list[Message], completions: list[ChatCompletion]
    ) -> None:
        super().__init__(message)
        self.messages = messages
        """The whole conversation so far: the messages given, then every turn's."""
        self.completions = completions
        """Every turn's completion, in order."""


_REQUEST_ID_HEADERS = ("x-request-id", "request-id", "x-oneapi-request-id", "cf-ray")


def request_id_from_headers(headers: Mapping[str, str]) -> str | None:
    """The request id a response's headers carry, if any (header names are case-insensitive)."""
    for name in _REQUEST_ID_HEADERS:
        value = headers.get(name)
        if value:
            return value
    return None
