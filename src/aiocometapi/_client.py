"""AsyncCometAPI: configuration, lifecycle, and the request path every resource goes through."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar, cast
from urllib.parse import urlsplit

import msgspec

from . import _retry
from ._compat import Mode, check_mode
from ._exceptions import (
    APIResponseValidationError,
    APITimeoutError,
    ClientClosedError,
    CometAPIError,
    ConfigurationError,
    StreamError,
    redact,
    request_id_from_headers,
    status_error,
)
from ._logs import log
from ._ratelimit import RateController, RateState
from ._repair import repair
from ._streaming import AsyncStream
from ._transport import StreamBody, Timeout, Transport, deadline
from ._version import __version__
from .types import ChatCompletion, ChatCompletionChunk

if TYPE_CHECKING:
    from .resources.chat import Chat
    from .resources.models import Models

__all__ = ["DEFAULT_BASE_URL", "AsyncCometAPI", "RequestOptions"]

T = TypeVar("T")


DEFAULT_BASE_URL = "https://api.cometapi.com/v1"
DEFAULT_MAX_RETRIES = 4
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})


def decode_json(decoder: msgspec.json.Decoder[T], body: bytes) -> T:
    """Decode an answer; invalid UTF-8 inside its strings reads as U+FFFD, as in a stream, and
    an answer that misses its type only by provider drift is repaired (see ``_repair``).

    Raises:
        msgspec.DecodeError, msgspec.ValidationError: not the JSON expected.
        RecursionError: nested deeper than msgspec goes.
    """
    try:
        return decoder.decode(body)
    except UnicodeDecodeError:
        return decode_json(decoder, body.decode("utf-8", "replace").encode())
    except msgspec.ValidationError:
        repaired = repair(body, cast("type[T]", decoder.type), "an answer")
        if repaired is None:
            raise
        return repaired


def _check_header(name: str, value: str) -> None:
    for text in (name, value):
        if any((ord(c) < 0x20 and c != "\t") or ord(c) == 0x7F for c in text):
            raise ConfigurationError(
                f"Header {name!r} contains a control character (CR, LF or similar); refused."
            )


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _normalize_base_url(url: str) -> str:
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in url):
        raise ConfigurationError("base_url contains whitespace or a control character; refused.")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(
            f"base_url must be an http(s) URL such as {DEFAULT_BASE_URL!r}, got {url!r}"
        )
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        warnings.warn(
            f"base_url {url!r} is plain http: the API key would cross the network unencrypted.",
            UserWarning,
            stacklevel=3,
        )
    return url.rstrip("/")


@dataclass(frozen=True, slots=True)
class _Config:
    """What a client and its ``with_options`` copies may differ in."""

    api_key: str = field(repr=False)
    base_url: str
    timeout: Timeout
    policy: _retry.RetryPolicy
    headers: Mapping[str, str] = field(repr=False)
    stream_headers: Mapping[str, str] = field(repr=False)
    max_event_size: int
    compat: Mode = "warn"


class RequestOptions:
    """Per-call settings resolved against the client's: headers, query, timeout, retries."""

    __slots__ = ("headers", "params", "policy", "timeout")

    def __init__(
        self,
        config: _Config,
        *,
        stream: bool,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, str] | None = None,
        timeout: float | Timeout | None = None,
        max_retries: int | None = None,
    ) -> None:
        headers = config.stream_headers if stream else config.headers
        if extra_headers:
            for name, value in extra_headers.items():
                _check_header(name, value)
            headers = {**headers, **extra_headers}
        self.headers = headers
        self.params = extra_query or None
        self.timeout = config.timeout if timeout is None else Timeout.of(timeout)
        self.policy = config.policy
        if max_retries is not None:
            self.policy = replace(config.policy, max_retries=_check_retries(max_retries))


def _check_retries(value: int) -> int:
    if not isinstance(value, int) or value < 0:
        raise ConfigurationError(f"max_retries must be a non-negative int, got {value!r}")
    return value


class AsyncCometAPI:
    """The CometAPI client: ``client.chat.completions`` and ``client.models``.

    Args:
        api_key: The CometAPI key; defaults to the ``COMETAPI_KEY`` environment variable.
        base_url: Defaults to ``COMETAPI_BASE_URL``, else ``https://api.cometapi.com/v1``.
        timeout: Seconds, or a ``Timeout`` with each clock (connect, total, first_event, idle,
            stream_total). Default: ``Timeout()``.
        max_retries: Retries after a retryable failure (default 4: five tries in all).
        max_connections: Size of the connection pool (default 100).
        default_headers: Headers sent with every request.
        trust_env: Honour ``HTTP(S)_PROXY`` / ``NO_PROXY`` and ``.netrc`` (default True).
        max_event_size: Largest single stream event accepted, in bytes.
        max_body_size: Largest non-streamed answer accepted, in bytes (default 64 MiB).
        requests_per_minute: A budget of requests per minute for this client (default none).
        tokens_per_minute: A budget of tokens per minute, estimated from each request and
            corrected by the usage that comes back (default none).
        compat: How to treat parameters a model's family takes differently (CometAPI's
            per-provider table): ``"warn"`` (default) sends them with a
            ``CompatibilityWarning``, ``"strict"`` raises ``CompatibilityError`` before sending,
            ``"adapt"`` rewrites the request and lists the changes in ``adjustments``,
            ``"off"`` checks nothing.

    Raises:
        ConfigurationError: no key, a malformed base URL or header, or an unknown compat mode.
    """

    chat: Chat
    models: Models

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float | Timeout | None = None,
        max_retries: int | None = None,
        max_connections: int = 100,
        default_headers: Mapping[str, str] | None = None,
        trust_env: bool = True,
        max_event_size: int = 16 * 1024 * 1024,
        max_body_size: int = 64 * 1024 * 1024,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        compat: Mode = "warn",
    ) -> None:
        key = api_key if api_key is not None else os.environ.get("COMETAPI_KEY")
        if key is None or not key.strip():
            raise ConfigurationError(
                "No API key: pass api_key=... to AsyncCometAPI() or set the COMETAPI_KEY "
                "environment variable (keys are at https://api.cometapi.com/console/token)."
            )
        key = key.strip()
        url = base_url or os.environ.get("COMETAPI_BASE_URL") or DEFAULT_BASE_URL
        headers = {
            "Authorization": f"Bearer {key}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": f"aiocometapi/{__version__}",
        }
        for name, value in (default_headers or {}).items():
            _check_header(name, value)
            headers[name] = value
        _check_header("Authorization", headers["Authorization"])
        config = _Config(
            api_key=key,
            base_url=_normalize_base_url(url),
            timeout=Timeout.of(timeout),
            policy=_retry.RetryPolicy(
                max_retries=_check_retries(
                    DEFAULT_MAX_RETRIES if max_retries is None else max_retries
                )
            ),
            headers=headers,
            stream_headers={**headers, "Accept": "text/event-stream"},
            max_event_size=max_event_size,
            compat=check_mode(compat),
        )
        rate = RateController(
            requests_per_minute=requests_per_minute, tokens_per_minute=tokens_per_minute
        )
        transport = Transport(
            max_connections=max_connections, trust_env=trust_env, max_body_size=max_body_size
        )
        self._init(config, transport, rate, True)

    def _init(
        self, config: _Config, transport: Transport, rate: RateController, owner: bool
    ) -> None:
        from .resources.chat import Chat
        from .resources.models import Models

        self._config = config
        self._secret = config.api_key.encode()
        self._transport = transport
        self._rate = rate
        self._owner = owner
        self._default_options = (
            RequestOptions(config, stream=False),
            RequestOptions(config, stream=True),
        )
        self.chat = Chat(self)
        self.models = Models(self)

    # ------------------------------------------------------------------ configuration

    @property
    def base_url(self) -> str:
        return self._config.base_url

    @property
    def timeout(self) -> Timeout:
        return self._config.timeout

    @property
    def max_retries(self) -> int:
        return self._config.policy.max_retries

    def with_options(
        self,
        *,
        timeout: float | Timeout | None = None,
        max_retries: int | None = None,
        default_headers: Mapping[str, str] | None = None,
        compat: Mode | None = None,
    ) -> AsyncCometAPI:
        """A copy with other defaults that shares this client's connection pool.

        The copy borrows the pool: closing it does nothing, closing this client closes both.
        """
        config = self._config
        if timeout is not None:
            config = replace(config, timeout=Timeout.of(timeout))
        if max_retries is not None:
            config = replace(
                config, policy=replace(config.policy, max_retries=_check_retries(max_retries))
            )
        if default_headers:
            for name, value in default_headers.items():
                _check_header(name, value)
            config = replace(
                config,
                headers={**config.headers, **default_headers},
                stream_headers={**config.stream_headers, **default_headers},
            )
        if compat is not None:
            config = replace(config, compat=check_mode(compat))
        copy = object.__new__(AsyncCometAPI)
        copy._init(config, self._transport, self._rate, False)
        return copy

    def rate_state(self) -> RateState:
        """The shared rate controller's figures: in flight, limits, 429s seen, waits."""
        return self._rate.state()

    def __repr__(self) -> str:
        return (
            f"AsyncCometAPI(base_url={self._config.base_url!r}, api_key='***', "
            f"state={self._transport.state!r})"
        )

    # ------------------------------------------------------------------ lifecycle

    async def aclose(self) -> None:
        """Close the connection pool (idempotent). A ``with_options`` copy closes nothing."""
        if self._owner:
            await self._transport.aclose()

    async def __aenter__(self) -> AsyncCometAPI:
        if self._transport.state == "closed":
            raise ClientClosedError("This client was closed with aclose(); create a new one.")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ the request path

    def _options(
        self,
        *,
        stream: bool = False,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, str] | None = None,
        timeout: float | Timeout | None = None,
        max_retries: int | None = None,
    ) -> RequestOptions:
        return RequestOptions(
            self._config,
            stream=stream,
            extra_headers=extra_headers,
            extra_query=extra_query,
            timeout=timeout,
            max_retries=max_retries,
        )

    async def _request(
        self,
        method: str,
        path: str,
        *,
        decoder: msgspec.json.Decoder[T],
        options: RequestOptions,
        body: bytes | None = None,
        tokens: int = 0,
    ) -> T:
        """Send a request (with retries) and decode its JSON answer."""
        transport = self._transport
        rate = self._rate
        url = self._config.base_url + path
        label = f"{method} {path}"
        debug = log.isEnabledFor(logging.DEBUG)
        secret = self._secret

        async def attempt() -> T:
            await rate.acquire(tokens)
            started = time.perf_counter() if debug else 0.0
            try:
                reply = await transport.send(
                    method,
                    url,
                    headers=options.headers,
                    body=body,
                    timeout=options.timeout,
                    params=options.params,
                )
            except BaseException as exc:
                rate.release(status=None)
                if debug:
                    log.debug("%s failed: %s: %s", label, type(exc).__name__, exc)
                raise
            status = reply.status
            if debug:
                log.debug(
                    "%s -> %d in %.1f ms (request id %s)", label, status,
                    (time.perf_counter() - started) * 1000, request_id_from_headers(reply.headers),
                )
            if status >= 300:
                rate.release(status=status, retry_after=_retry.retry_after(reply.headers))
                raise status_error(status, reply.headers, redact(reply.body, secret))
            try:
                result = decode_json(decoder, reply.body)
            except (msgspec.DecodeError, msgspec.ValidationError, RecursionError) as exc:
                rate.release(status=None)
                text = redact(reply.body, secret)[:2000].decode("utf-8", errors="replace")
                raise APIResponseValidationError(
                    f"The response is not the JSON the API promises ({exc}); it starts: "
                    f"{text[:200]!r}",
                    body=text,
                    status_code=status,
                    request_id=request_id_from_headers(reply.headers),
                ) from exc
            if isinstance(result, ChatCompletion):
                result.request_id = request_id_from_headers(reply.headers)
                result._raw_json = reply.body  # by reference: for raw_json and extra
                usage = result.usage
                rate.release(
                    status=status,
                    tokens_estimated=tokens,
                    tokens_used=usage.total_tokens if usage is not None else None,
                )
            else:
                rate.release(status=status)
            return result

        return await _retry.run_with_retries(attempt, options.policy, label=label)

    async def _stream(
        self,
        path: str,
        *,
        decoder: msgspec.json.Decoder[Any],
        options: RequestOptions,
        body: bytes,
        tokens: int = 0,
    ) -> AsyncStream[ChatCompletionChunk]:
        """Send a streaming request (with retries) and return once its headers arrived."""
        transport = self._transport
        rate = self._rate
        url = self._config.base_url + path
        timeout = options.timeout
        headers_deadline = min(
            (t for t in (timeout.first_event, timeout.stream_total) if t is not None),
            default=None,
        )

        async def attempt() -> tuple[StreamBody, Mapping[str, str], str | None]:
            await rate.acquire(tokens)
            # A stream counts as in flight until its headers: that is when a 429 would come.
            try:
                async with deadline(headers_deadline):
                    source = await transport.open(
                        "POST",
                        url,
                        headers=options.headers,
                        body=body,
                        timeout=timeout,
                        params=options.params,
                    )
            except TimeoutError as exc:
                rate.release(status=None)
                which = "first_event" if headers_deadline == timeout.first_event else "stream_total"
                raise APITimeoutError(
                    f"No response headers within {headers_deadline:g} s (the '{which}' clock).",
                    which=which,
                ) from exc
            except BaseException:
                rate.release(status=None)
                raise
            status = source.status
            if status < 300:
                rate.release(status=status)
                content_type = source.headers.get("Content-Type", "")
                if content_type.startswith(("application/json", "text/html")):
                    raise await self._not_a_stream(source, content_type)
                return source, source.headers, request_id_from_headers(source.headers)
            rate.release(status=status, retry_after=_retry.retry_after(source.headers))
            try:
                raw = redact(await source.read_all(), self._secret)
            finally:
                source.abort()
            raise status_error(status, source.headers, raw)

        started = asyncio.get_running_loop().time()
        source, headers, request_id = await _retry.run_with_retries(
            attempt, options.policy, label=f"POST {path} (stream)"
        )
        if log.isEnabledFor(logging.DEBUG):
            log.debug("POST %s (stream) -> %s (request id %s)", path, source.status, request_id)
        return AsyncStream(
            source,
            decoder=decoder,
            timeout=timeout,
            started=started,
            headers=headers,
            request_id=request_id,
            max_event_size=self._config.max_event_size,
            reopen=attempt,
            policy=options.policy,
            secret=self._secret,
        )

    async def _not_a_stream(self, source: StreamBody, content_type: str) -> CometAPIError:
        """The error for a 2xx answer to a stream request that is plainly not a stream.

        Not retried: a JSON completion or error may already have been paid for.
        """
        try:
            raw = redact(await source.read_all(), self._secret)
        finally:
            source.abort()
        request_id = request_id_from_headers(source.headers)
        found = status_error(source.status, source.headers, raw)
        if isinstance(found.body, dict) and "error" in found.body:
            return StreamError(
                f"The server answered a stream request with an error: {found.message}",
                code=found.code,
                type=found.type,
                param=found.param,
                request_id=request_id,
            )
        text = raw[:2000].decode("utf-8", "replace")
        return APIResponseValidationError(
            f"Asked for a stream, got {content_type!r}; it starts: {text[:200]!r}",
            body=text,
            status_code=source.status,
            request_id=request_id,
        )

    def _check_open(self) -> None:
        if self._transport.state == "closed":
            raise ClientClosedError("This client was closed with aclose(); create a new one.")
