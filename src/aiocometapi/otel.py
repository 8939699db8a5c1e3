"""OpenTelemetry for every call: a GenAI span and the GenAI client metrics (extra: ``otel``).

``instrument()`` makes each ``create()`` of every client a span named ``chat {model}`` and
records ``gen_ai.client.operation.duration``, ``gen_ai.client.token.usage`` and, for streams,
``gen_ai.client.operation.time_to_first_chunk``, following the OpenTelemetry GenAI semantic
conventions (open-telemetry/semantic-conventions, docs/gen-ai/gen-ai-spans.md and
gen-ai-metrics.md at commit 01d94504d2ec9a5653a5bde13908bc933d96ff29: the version that names
the provider ``gen_ai.provider.name``).

One span per call, not per try: the conventions' inference span is the operation the caller
asked for, and the metrics count operations. Each try after the first is a ``retry`` event on
that span and each answer a ``response`` event with its status, so retries and 429s show
without splitting one operation into several. Nothing of the prompt or the answer is recorded
unless ``capture_content=True``; the API key never is.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from opentelemetry import metrics, trace
from opentelemetry.metrics import Histogram, MeterProvider
from opentelemetry.metrics._internal import _ProxyMeterProvider
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer, TracerProvider

from . import _observe
from ._version import __version__
from .types import ChatCompletion

__all__ = ["PROVIDER_NAME", "instrument", "is_instrumented", "uninstrument"]

PROVIDER_NAME = "cometapi"
"""The ``gen_ai.provider.name`` the spans carry. CometAPI is none of the conventions'
well-known providers (it routes one OpenAI-shaped API to many), so it names itself, as the
conventions allow; ``gen_ai.request.model`` and ``server.address`` tell the routes apart."""

_DURATION_BUCKETS = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92
)  # fmt: skip
_TOKEN_BUCKETS = (
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864
)  # fmt: skip

# create() parameter -> span attribute, for the request's sampling parameters.
_REQUEST_ATTRIBUTES = (
    ("temperature", "gen_ai.request.temperature", float),
    ("top_p", "gen_ai.request.top_p", float),
    ("frequency_penalty", "gen_ai.request.frequency_penalty", float),
    ("presence_penalty", "gen_ai.request.presence_penalty", float),
    ("seed", "gen_ai.request.seed", int),
)


class _Instruments:
    """The tracer and histograms of one (tracer provider, meter provider) pair."""

    __slots__ = ("duration", "first_chunk", "meter_provider", "tokens", "tracer", "tracer_provider")

    def __init__(self, tracer_provider: TracerProvider, meter_provider: MeterProvider) -> None:
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self.tracer: Tracer = tracer_provider.get_tracer("aiocometapi", __version__)
        meter = meter_provider.get_meter("aiocometapi", __version__)
        self.duration: Histogram = meter.create_histogram(
            "gen_ai.client.operation.duration",
            unit="s",
            description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
        )
        self.tokens: Histogram = meter.create_histogram(
            "gen_ai.client.token.usage",
            unit="{token}",
            description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=_TOKEN_BUCKETS,
        )
        self.first_chunk: Histogram = meter.create_histogram(
            "gen_ai.client.operation.time_to_first_chunk",
            unit="s",
            description="Time to receive the first chunk of a streamed response.",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
        )


_NO_TRACING = (trace.ProxyTracerProvider, trace.NoOpTracerProvider)
_NO_METRICS = (_ProxyMeterProvider, metrics.NoOpMeterProvider)


class _Observer:
    """Starts a ``_Call`` per call; registered with ``aiocometapi._observe`` by ``instrument``."""

    def __init__(
        self,
        tracer_provider: TracerProvider | None,
        meter_provider: MeterProvider | None,
        capture_content: bool,
    ) -> None:
        self._tracer_provider = tracer_provider
        self._meter_provider = meter_provider
        self.capture_content = capture_content
        self._instruments: _Instruments | None = None
        self._servers: dict[str, dict[str, Any]] = {}

    def _current(self) -> _Instruments | None:
        tracer_provider = self._tracer_provider or trace.get_tracer_provider()
        meter_provider = self._meter_provider or metrics.get_meter_provider()
        if isinstance(tracer_provider, _NO_TRACING) and isinstance(meter_provider, _NO_METRICS):
            return None  # nothing configured: no span, no measurement, no cost
        found = self._instruments
        if (
            found is None
            or found.tracer_provider is not tracer_provider
            or found.meter_provider is not meter_provider
        ):
            found = self._instruments = _Instruments(tracer_provider, meter_provider)
        return found

    def _server(self, base_url: str) -> dict[str, Any]:
        found = self._servers.get(base_url)
        if found is None:
            parts = urlsplit(base_url)
            found = {}
            if parts.hostname:
                found["server.address"] = parts.hostname
                found["server.port"] = parts.port or (443 if parts.scheme == "https" else 80)
            if len(self._servers) < 64:
                self._servers[base_url] = found
        return found

    def on_start(
        self, model: str, params: Mapping[str, Any], *, stream: bool, base_url: str
    ) -> _Call | None:
        instruments = self._current()
        if instruments is None:
            return None  # the call goes unobserved: no span, nothing measured
        common: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": PROVIDER_NAME,
            "gen_ai.request.model": model,
            **self._server(base_url),
        }
        attributes = dict(common)
        attributes.update(_request_attributes(params))
        if self.capture_content:
            attributes["gen_ai.input.messages"] = _input_messages(params.get("messages"))
        span = instruments.tracer.start_span(
            f"chat {model}", kind=SpanKind.CLIENT, attributes=attributes
        )
        return _Call(instruments, span, common, stream=stream, capture=self.capture_content)


def _request_attributes(params: Mapping[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name, attribute, kind in _REQUEST_ATTRIBUTES:
        value = params.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            found[attribute] = kind(value)
    cap = params.get("max_completion_tokens") or params.get("max_tokens")
    if isinstance(cap, int) and not isinstance(cap, bool):
        found["gen_ai.request.max_tokens"] = cap
    n = params.get("n")
    if isinstance(n, int) and not isinstance(n, bool) and n != 1:
        found["gen_ai.request.choice.count"] = n
    stop = params.get("stop")
    if isinstance(stop, str):
        found["gen_ai.request.stop_sequences"] = [stop]
    elif isinstance(stop, Sequence) and all(isinstance(s, str) for s in stop):
        found["gen_ai.request.stop_sequences"] = list(stop)
    response_format = params.get("response_format")
    if isinstance(response_format, Mapping):
        output = response_format.get("type")
    else:
        config = getattr(type(response_format), "__struct_config__", None)
        output = getattr(config, "tag", None)
    if output in ("json_schema", "json_object"):
        found["gen_ai.output.type"] = "json"
    elif output == "text":
        found["gen_ai.output.type"] = "text"
    return found


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        texts = [
            part.get("text") if isinstance(part, Mapping) else getattr(part, "text", None)
            for part in content
        ]
        return "".join(t for t in texts if isinstance(t, str))
    return ""


def _input_messages(messages: Any) -> str:
    """The conventions' ``gen_ai.input.messages`` (role and text parts), as a JSON string."""
    found = []
    for message in messages if isinstance(messages, Sequence) else ():
        if isinstance(message, Mapping):
            role, content = message.get("role"), message.get("content")
        else:
            role, content = getattr(message, "role", None), getattr(message, "content", None)
        found.append({"role": role, "parts": [{"type": "text", "content": _text_of(content)}]})
    return json.dumps(found, ensure_ascii=False)


def _output_messages(completion: ChatCompletion) -> str:
    found = []
    for choice in completion.choices:
        parts: list[dict[str, Any]] = []
        if choice.message.content:
            parts.append({"type": "text", "content": choice.message.content})
        for call in choice.message.tool_calls or ():
            parts.append(
                {
                    "type": "tool_call",
                    "id": call.id,
                    "name": call.function.name,
                    "arguments": call.function.arguments,
                }
            )
        found.append(
            {"role": choice.message.role, "parts": parts, "finish_reason": choice.finish_reason}
        )
    return json.dumps(found, ensure_ascii=False)


class _Call:
    """One call's span and measurements."""

    __slots__ = ("_capture", "_common", "_ended", "_first", "_instruments", "_span", "_started",
                 "_stream", "_tries")  # fmt: skip

    def __init__(
        self,
        instruments: _Instruments,
        span: Span,
        common: dict[str, Any],
        *,
        stream: bool,
        capture: bool,
    ) -> None:
        self._instruments = instruments
        self._span = span
        self._common = common
        self._stream = stream
        self._capture = capture
        self._tries = 0
        self._first: float | None = None
        self._ended = False
        self._started = time.perf_counter()

    def on_attempt(self) -> None:
        self._tries += 1
        if self._tries > 1:
            self._span.add_event("retry", {"aiocometapi.attempt": self._tries})

    def on_status(self, status: int) -> None:
        self._span.add_event(
            "response",
            {"aiocometapi.attempt": self._tries, "http.response.status_code": status},
        )

    def on_first_chunk(self) -> None:
        self._first = seconds = time.perf_counter() - self._started
        self._span.add_event("first_chunk")
        self._span.set_attribute("aiocometapi.time_to_first_chunk", seconds)

    def _finish(self, completion: ChatCompletion | None, error: BaseException | None) -> None:
        if self._ended:
            return
        self._ended = True
        span = self._span
        attributes = dict(self._common)
        span.set_attribute("aiocometapi.attempts", self._tries)
        if completion is not None:
            if completion.model:
                attributes["gen_ai.response.model"] = completion.model
                span.set_attribute("gen_ai.response.model", completion.model)
            if completion.id:
                span.set_attribute("gen_ai.response.id", completion.id)
            reasons = [c.finish_reason for c in completion.choices if c.finish_reason]
            if reasons:
                span.set_attribute("gen_ai.response.finish_reasons", reasons)
            usage = completion.usage
            if usage is not None:
                span.set_attribute("gen_ai.usage.input_tokens", usage.prompt_tokens)
                span.set_attribute("gen_ai.usage.output_tokens", usage.completion_tokens)
                tokens = self._instruments.tokens
                tokens.record(usage.prompt_tokens, {**attributes, "gen_ai.token.type": "input"})
                tokens.record(
                    usage.completion_tokens, {**attributes, "gen_ai.token.type": "output"}
                )
            if self._capture and error is None:
                span.set_attribute("gen_ai.output.messages", _output_messages(completion))
        if error is not None:
            kind = type(error).__name__
            attributes["error.type"] = kind
            span.set_attribute("error.type", kind)
            span.set_status(Status(StatusCode.ERROR, kind))
        if self._first is not None:
            self._instruments.first_chunk.record(self._first, attributes)
        self._instruments.duration.record(time.perf_counter() - self._started, attributes)
        span.end()

    def on_answer(self, completion: ChatCompletion) -> None:
        self._finish(completion, None)

    def on_error(self, exc: BaseException) -> None:
        partial = getattr(exc, "partial", None)
        self._finish(partial if isinstance(partial, ChatCompletion) else None, exc)

    def on_left(self) -> None:
        if not self._ended:
            self._span.add_event("left_early")
        self._finish(None, None)


_installed: _Observer | None = None


def instrument(
    *,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
    capture_content: bool = False,
) -> None:
    """Trace and measure every chat completion of every client from now on.

    Calling it again replaces the previous settings.

    Args:
        tracer_provider: Where spans go; default the global one (``trace.set_tracer_provider``).
        meter_provider: Where metrics go; default the global one.
        capture_content: Record the messages sent and the answers received on the span
            (``gen_ai.input.messages``, ``gen_ai.output.messages``); off by default, since
            prompts and answers may hold personal or secret data.
    """
    global _installed
    uninstrument()
    _installed = _Observer(tracer_provider, meter_provider, capture_content)
    _observe.add_observer(_installed)


def uninstrument() -> None:
    """Stop tracing and measuring (calls already started still end their spans)."""
    global _installed
    if _installed is not None:
        _observe.remove_observer(_installed)
        _installed = None


def is_instrumented() -> bool:
    """Whether ``instrument()`` is in effect."""
    return _installed is not None
