"""aiocometapi: an async-first SDK for CometAPI's OpenAI-compatible chat completions."""

from ._client import DEFAULT_BASE_URL, AsyncCometAPI
from ._exceptions import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ClientClosedError,
    CometAPIError,
    CompatibilityError,
    ConfigurationError,
    ConflictError,
    IncompleteStreamError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    StreamError,
    UnprocessableEntityError,
)
from ._fanout import FanOutResult
from ._logs import setup_from_env as _setup_logging
from ._ratelimit import RateState
from ._retry import RetryPolicy, instant_retries
from ._streaming import AsyncStream
from ._transport import Timeout
from ._version import __version__

_setup_logging()

__all__ = [
    "APIConnectionError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncCometAPI",
    "AsyncStream",
    "AuthenticationError",
    "BadRequestError",
    "ClientClosedError",
    "CometAPIError",
    "CompatibilityError",
    "ConfigurationError",
    "ConflictError",
    "FanOutResult",
    "DEFAULT_BASE_URL",
    "IncompleteStreamError",
    "InternalServerError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "RateState",
    "RetryPolicy",
    "StreamError",
    "Timeout",
    "UnprocessableEntityError",
    "__version__",
    "instant_retries",
]
