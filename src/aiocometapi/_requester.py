"""What resources use to reach the API: request, stream, options, ensure-open, compat, estimate.

A resource (``client.chat``, ``client.models``, any later one) holds a ``Requester`` and nothing
else of the client's. Every call goes the same way::

    ensure_open -> options -> retries (_retry) -> per try: Slot (rate controller) -> transport
                                                           -> answered(status) -> decode (_decode)

``Slot`` is one try's place in the client-wide rate controller: taken before sending, answered
exactly once (status, ``Retry-After``, tokens used), or released as failed if the try raised.
It also times and logs the try, so a per-request observer (a usage meter, tracing) belongs there.
What a resource does with an answer (a chat completion's request id, its token usage) stays in
the resource: it passes ``tokens_used`` and reads ``Answer.headers``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Generic, TypeVar

import msgspec

from . import _retry
from ._compat import Mode
from ._config import ClientConfig, RequestOptions
from ._decode import decode_answer, status_error
from ._exceptions import (
    APIResponseValidationError,
    APITimeoutError,
    CometAPIError,
    StreamError,
    redact,
    request_id_from_headers,
)
from ._logs import log
from ._observe import CallObserver, end_with, start_call
from ._prices import Prices
from ._ratelimit import RateController
from ._streaming import AsyncStream
from ._transport import StreamBody, Transport, deadline
from ._usage import UsageMeter
from .types import ChatCompletionChunk

__all__ = ["Answer", "Requester", "Slot"]

T = TypeVar("T")
ChunkT = TypeVar("ChunkT", bound=ChatCompletionChunk)


class Answer(Generic[T]):
    """A decoded 2xx answer with its status, headers and the raw body it was decoded from."""

    __slots__ = ("body", "headers", "status", "value")

    def __init__(self, value: T, status: int, headers: Mapping[str, str], body: bytes) -> None:
        self.value = value
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def request_id(self) -> str | None:
        """The request id the headers carry, if any."""
        return request_id_from_headers(self.headers)


class Slot:
    """One try's place in the rate controller: ``with await Slot.take(...) as slot:`` takes it,
    ``answered`` gives it back with what the server said; leaving the block unanswered (an
    exception) gives it back as a try that got no answer."""

    __slots__ = ("_answered", "_call", "_label", "_rate", "_started", "_tokens")

    def __init__(
        self, rate: RateController, tokens: int, label: str, call: CallObserver | None = None
    ) -> None:
        self._rate = rate
        self._tokens = tokens
        self._label = label
        self._call = call
        self._answered = False
        self._started = time.perf_counter() if log.isEnabledFor(logging.DEBUG) else 0.0

    @classmethod
    async def take(
        cls, rate: RateController, tokens: int, label: str, call: CallObserver | None = None
    ) -> Slot:
        """Wait until the rate controller lets a try start; the slot is then held."""
        await rate.acquire(tokens)
        if call is not None:
            call.on_attempt()
        # Nothing awaits between here and the caller's ``with``: the slot cannot leak.
        return cls(rate, tokens, label, call)

    def __enter__(self) -> Slot:
        return self

    def answered(
        self, status: int, headers: Mapping[str, str], *, tokens_used: int | None = None
    ) -> None:
        """The server answered ``status``; ``tokens_used`` from the answer's usage, if known."""
        if self._answered:
            return
        self._answered = True
        self._rate.release(
            status=status,
            retry_after=_retry.retry_after(headers) if status == 429 else None,
            tokens_estimated=self._tokens,
            tokens_used=tokens_used,
        )
        if self._call is not None:
            self._call.on_status(status)
        if self._started:
            log.debug(
                "%s -> %d in %.1f ms (request id %s)",
                self._label,
                status,
                (time.perf_counter() - self._started) * 1000,
                request_id_from_headers(headers),
            )

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._answered:
            return
        self._answered = True
        self._rate.release(status=None)
        if self._started and exc is not None:
            log.debug("%s failed: %s: %s", self._label, type(exc).__name__, exc)


class Requester:
    """The one interface between the client and its resources (see the module docstring).

    A client and each of its ``with_options`` copies has one; copies share the transport and
    the rate controller, and differ in ``ClientConfig``.
    """

    __slots__ = ("_config", "_defaults", "_meter", "_rate", "_secret", "_transport")

    def __init__(
        self,
        config: ClientConfig,
        transport: Transport,
        rate: RateController,
        meter: UsageMeter | None = None,
    ) -> None:
        self._config = config
        self._transport = transport
        self._rate = rate
        self._meter = meter
        self._secret = config.api_key.encode()
        self._defaults = (
            RequestOptions(config, stream=False),
            RequestOptions(config, stream=True),
        )

    def __repr__(self) -> str:
        return f"Requester(base_url={self._config.base_url!r})"

    @property
    def compat(self) -> Mode:
        """The client's compat mode, for calls that do not give their own."""
        return self._config.compat

    @property
    def needs_estimate(self) -> bool:
        """Whether calls should pass a token estimate (a tokens-per-minute budget is set)."""
        return self._rate.needs_estimate

    @property
    def prices(self) -> Prices:
        """The client's price table (empty when it was given none)."""
        return self._meter.prices if self._meter is not None else Prices()

    def start_call(
        self, model: str, params: Mapping[str, Any], *, stream: bool
    ) -> CallObserver | None:
        """Start observing one call: the client's usage meter and any ``otel`` instrumentation.

        Pass the result as ``call=`` to ``request``/``stream``; they report its tries, its
        answer or error, and (a stream) its first chunk and end.
        """
        return start_call(self._meter, model, params, stream=stream, base_url=self._config.base_url)

    def ensure_open(self) -> None:
        """Raise ``ClientClosedError`` if the client was closed (``request``/``stream`` do too)."""
        self._transport.ensure_open()

    def options(self, params: Mapping[str, Any] | None = None, *, stream: bool) -> RequestOptions:
        """The request options for a call's parameters (the client's own when it gives none).

        Raises:
            ConfigurationError: a malformed header, timeout or retry count.
        """
        if not params or not RequestOptions.given(params):
            return self._defaults[stream]
        return RequestOptions.of(self._config, params, stream=stream)

    async def request(
        self,
        method: str,
        path: str,
        *,
        decoder: msgspec.json.Decoder[T],
        options: RequestOptions | None = None,
        body: bytes | None = None,
        tokens: int = 0,
        tokens_used: Callable[[T], int | None] | None = None,
        call: CallObserver | None = None,
    ) -> Answer[T]:
        """Send a request (with retries) and decode its JSON answer.

        Args:
            tokens: The request's token estimate, for a tokens-per-minute budget.
            tokens_used: Reads the tokens an answer used, to correct that estimate.
            call: The call's observer (``start_call``), told of each try and of an error;
                the resource tells it of the answer, which it decodes.

        Raises:
            ClientClosedError, APIStatusError, APIConnectionError, APIResponseValidationError.
        """
        self._transport.ensure_open()
        if options is None:
            options = self._defaults[False]
        transport = self._transport
        rate = self._rate
        url = self._config.base_url + path
        label = f"{method} {path}"
        secret = self._secret

        async def attempt() -> Answer[T]:
            with await Slot.take(rate, tokens, label, call) as slot:
                reply = await transport.send(
                    method,
                    url,
                    headers=options.headers,
                    body=body,
                    timeout=options.timeout,
                    params=options.params,
                )
                status = reply.status
                if status >= 300:
                    slot.answered(status, reply.headers)
                    raise status_error(status, reply.headers, redact(reply.body, secret))
                value = decode_answer(
                    decoder, reply.body, status=status, headers=reply.headers, secret=secret
                )
                slot.answered(
                    status, reply.headers, tokens_used=tokens_used(value) if tokens_used else None
                )
                return Answer(value, status, reply.headers, reply.body)

        if call is None:
            return await _retry.run_with_retries(attempt, options.policy, label=label)
        try:
            return await _retry.run_with_retries(attempt, options.policy, label=label)
        except BaseException as exc:
            end_with(call, exc)
            raise

    async def stream(
        self,
        path: str,
        *,
        decoder: msgspec.json.Decoder[ChunkT],
        body: bytes,
        options: RequestOptions | None = None,
        tokens: int = 0,
        call: CallObserver | None = None,
    ) -> AsyncStream[ChunkT]:
        """Send a streaming request (with retries) and return once its headers arrived.

        Raises:
            ClientClosedError, APIStatusError, APIConnectionError, APIResponseValidationError,
            StreamError: as ``request``; ``StreamError`` for a JSON error answered with 2xx.
        """
        self._transport.ensure_open()
        if options is None:
            options = self._defaults[True]
        transport = self._transport
        rate = self._rate
        url = self._config.base_url + path
        label = f"POST {path} (stream)"
        secret = self._secret
        timeout = options.timeout
        headers_deadline = min(
            (t for t in (timeout.first_event, timeout.stream_total) if t is not None),
            default=None,
        )

        async def attempt() -> tuple[StreamBody, Mapping[str, str], str | None]:
            # A stream holds its slot until its headers: that is when a 429 would come.
            with await Slot.take(rate, tokens, label, call) as slot:
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
                    which = (
                        "first_event" if headers_deadline == timeout.first_event else "stream_total"
                    )
                    raise APITimeoutError(
                        f"No response headers within {headers_deadline:g} s (the '{which}' clock).",
                        which=which,
                    ) from exc
                status = source.status
                slot.answered(status, source.headers)
            if status < 300:
                content_type = source.headers.get("Content-Type", "")
                if content_type.startswith(("application/json", "text/html")):
                    raise await _not_a_stream(source, content_type, secret)
                return source, source.headers, request_id_from_headers(source.headers)
            try:
                raw = redact(await source.read_all(), secret)
            finally:
                source.abort()
            raise status_error(status, source.headers, raw)

        started = asyncio.get_running_loop().time()
        retries = _retry.Retries(options.policy, label=label)
        try:
            source, headers, request_id = await retries.run(attempt)
        except BaseException as exc:
            if call is not None:
                end_with(call, exc)
            raise
        return AsyncStream(
            source,
            decoder=decoder,
            timeout=timeout,
            started=started,
            headers=headers,
            request_id=request_id,
            max_event_size=self._config.max_event_size,
            reopen=attempt,
            retries=retries,
            secret=secret,
            call=call,
        )


async def _not_a_stream(source: StreamBody, content_type: str, secret: bytes) -> CometAPIError:
    """The error for a 2xx answer to a stream request that is plainly not a stream.

    Not retried: a JSON completion or error may already have been paid for.
    """
    try:
        raw = redact(await source.read_all(), secret)
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
