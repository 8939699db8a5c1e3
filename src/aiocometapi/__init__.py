"""aiocometapi: an async-first SDK for CometAPI's OpenAI-compatible chat completions."""

from ._budget import BudgetExceededError
from ._client import DEFAULT_BASE_URL, AsyncCometAPI, PoolState
from ._compat import CompatibilityWarning
from ._config import RetryPolicy, Timeout
from ._exceptions import (
    APIConnectionError,
    APIError,
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
    ContentParseError,
    IncompleteStreamError,
    InternalServerError,
    MaxTurnsExceededError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    StreamError,
    ToolArgumentsError,
    ToolCallError,
    UnprocessableEntityError,
)
from ._fanout import FanOutResult
from ._logs import setup_from_env as _setup_logging
from ._parsed_stream import ParsedAsyncStream
from ._prices import Price, Prices, load_prices
from ._ratelimit import RateState
from ._raw_response import RawResponse
from ._retry import instant_retries
from ._streaming import AsyncStream
from ._structured import to_strict_json_schema
from ._sync import CometAPI
from ._sync_streams import ParsedStream, Stream
from ._systemic import SystemicFailureError
from ._tool_runner import (
    RunCompleted,
    TextDelta,
    ToolCallCompleted,
    ToolCallRequested,
    ToolRun,
    ToolRunEvent,
)
from ._tools import Tool, custom_tool, function_tool
from ._usage import UsageFigures, UsageMeter, UsageSnapshot
from ._version import __version__
from .types import Adjustment

_setup_logging()

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "Adjustment",
    "AsyncCometAPI",
    "AsyncStream",
    "AuthenticationError",
    "BadRequestError",
    "BudgetExceededError",
    "ClientClosedError",
    "CometAPI",
    "CometAPIError",
    "CompatibilityError",
    "CompatibilityWarning",
    "ConfigurationError",
    "ConflictError",
    "ContentParseError",
    "DEFAULT_BASE_URL",
    "FanOutResult",
    "IncompleteStreamError",
    "InternalServerError",
    "MaxTurnsExceededError",
    "NotFoundError",
    "ParsedAsyncStream",
    "ParsedStream",
    "PermissionDeniedError",
    "PoolState",
    "Price",
    "Prices",
    "RateLimitError",
    "RateState",
    "RawResponse",
    "RetryPolicy",
    "RunCompleted",
    "Stream",
    "StreamError",
    "SystemicFailureError",
    "TextDelta",
    "Timeout",
    "Tool",
    "ToolArgumentsError",
    "ToolCallCompleted",
    "ToolCallError",
    "ToolCallRequested",
    "ToolRun",
    "ToolRunEvent",
    "UnprocessableEntityError",
    "UsageFigures",
    "UsageMeter",
    "UsageSnapshot",
    "__version__",
    "custom_tool",
    "function_tool",
    "instant_retries",
    "load_prices",
    "to_strict_json_schema",
]
