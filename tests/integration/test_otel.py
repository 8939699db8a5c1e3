"""OpenTelemetry: spans and metrics checked attribute by attribute against the GenAI conventions."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from conftest import FAKE_KEY

pytest.importorskip("opentelemetry.sdk", reason="the OpenTelemetry SDK (dev extra) is missing")

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from aiocometapi import AsyncCometAPI, RateLimitError, otel
from aiocometapi.testing import MockServer

pytestmark = pytest.mark.anyio

SECRET = "The password is swordfish."
HI = [{"role": "user", "content": SECRET}]


class Telemetry:
    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def finished(self) -> list[ReadableSpan]:
        return list(self.spans.get_finished_spans())

    def points(self, name: str) -> list[HistogramDataPoint]:
        data = self.reader.get_metrics_data()
        found: list[HistogramDataPoint] = []
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        found.extend(metric.data.data_points)  # type: ignore[arg-type]
        return found


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    t = Telemetry()
    otel.instrument(tracer_provider=t.tracer_provider, meter_provider=t.meter_provider)
    try:
        yield t
    finally:
        otel.uninstrument()


def _everything(span: ReadableSpan) -> list[Any]:
    values: list[Any] = [span.name, *dict(span.attributes or {}).values()]
    for event in span.events:
        values += [event.name, *dict(event.attributes or {}).values()]
    return values


async def test_a_completion_is_one_span_with_the_conventions_attributes(
    client: AsyncCometAPI, server: MockServer, telemetry: Telemetry
) -> None:
    """A plain call gives a CLIENT span 'chat {model}' with request, response and usage."""
    c = await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=HI,
        temperature=0.5,
        top_p=0.9,
        max_tokens=100,
        stop=["END"],
        seed=7,
        n=2,
        frequency_penalty=0.1,
        presence_penalty=0.2,
    )
    [span] = telemetry.finished()
    assert span.name == "chat gpt-4o-mini"
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    attributes = dict(span.attributes or {})
    assert c.usage is not None
    assert attributes == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "cometapi",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.request.temperature": 0.5,
        "gen_ai.request.top_p": 0.9,
        "gen_ai.request.max_tokens": 100,
        "gen_ai.request.stop_sequences": ("END",),
        "gen_ai.request.seed": 7,
        "gen_ai.request.choice.count": 2,
        "gen_ai.request.frequency_penalty": 0.1,
        "gen_ai.request.presence_penalty": 0.2,
        "server.address": "127.0.0.1",
        "server.port": server.port,
        "gen_ai.response.model": c.model,
        "gen_ai.response.id": c.id,
        "gen_ai.response.finish_reasons": ("stop", "stop"),
        "gen_ai.usage.input_tokens": c.usage.prompt_tokens,
        "gen_ai.usage.output_tokens": c.usage.completion_tokens,
        "aiocometapi.attempts": 1,
    }


async def test_metrics_follow_the_conventions(client: AsyncCometAPI, telemetry: Telemetry) -> None:
    """Duration and token usage are histograms with the conventions' attributes and buckets."""
    c = await client.chat.completions.create(model="gpt-4o-mini", messages=HI)
    assert c.usage is not None
    [duration] = telemetry.points("gen_ai.client.operation.duration")
    assert duration.count == 1
    assert list(duration.explicit_bounds) == [
        0.01,
        0.02,
        0.04,
        0.08,
        0.16,
        0.32,
        0.64,
        1.28,
        2.56,
        5.12,
        10.24,
        20.48,
        40.96,
        81.92,
    ]
    common = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "cometapi",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.model": c.model,
        "server.address": "127.0.0.1",
    }
    attributes = dict(duration.attributes or {})
    assert attributes.pop("server.port") > 0
    assert attributes == common
    tokens = {
        dict(p.attributes or {})["gen_ai.token.type"]: p
        for p in telemetry.points("gen_ai.client.token.usage")
    }
    assert tokens["input"].sum == c.usage.prompt_tokens
    assert tokens["output"].sum == c.usage.completion_tokens
    assert list(tokens["input"].explicit_bounds)[:3] == [1, 4, 16]
    assert list(tokens["input"].explicit_bounds)[-1] == 67108864
    assert telemetry.points("gen_ai.client.operation.time_to_first_chunk") == []


async def test_no_content_and_no_key_by_default(
    client: AsyncCometAPI, telemetry: Telemetry
) -> None:
    """Without capture_content no prompt or answer text, and never the key, is recorded."""
    c = await client.chat.completions.create(model="gpt-4o-mini", messages=HI)
    stream = await client.chat.completions.create(model="gpt-4o-mini", messages=HI, stream=True)
    async with stream:
        await stream.final()
    answer = c.choices[0].message.content
    assert answer
    for span in telemetry.finished():
        for value in _everything(span):
            text = str(value)
            assert SECRET not in text and answer not in text and FAKE_KEY not in text


async def test_capture_content_records_the_messages(
    client: AsyncCometAPI, telemetry: Telemetry
) -> None:
    """With capture_content=True the span holds the input and output messages, still no key."""
    otel.instrument(
        tracer_provider=telemetry.tracer_provider,
        meter_provider=telemetry.meter_provider,
        capture_content=True,
    )
    c = await client.chat.completions.create(model="gpt-4o-mini", messages=HI)
    [span] = telemetry.finished()
    attributes = dict(span.attributes or {})
    assert SECRET in str(attributes["gen_ai.input.messages"])
    assert str(c.choices[0].message.content) in str(attributes["gen_ai.output.messages"])
    assert all(FAKE_KEY not in str(v) for v in _everything(span))


async def test_retries_are_events_on_one_span(
    client: AsyncCometAPI, server: MockServer, telemetry: Telemetry
) -> None:
    """A call retried after a 429 is one span with a response event per try and a retry event."""
    server.reply_error(429, "slow down")
    await client.chat.completions.create(model="gpt-4o-mini", messages=HI)
    [span] = telemetry.finished()
    events = [(e.name, dict(e.attributes or {})) for e in span.events]
    assert events == [
        ("response", {"aiocometapi.attempt": 1, "http.response.status_code": 429}),
        ("retry", {"aiocometapi.attempt": 2}),
        ("response", {"aiocometapi.attempt": 2, "http.response.status_code": 200}),
    ]
    assert dict(span.attributes or {})["aiocometapi.attempts"] == 2


async def test_an_error_sets_error_type_and_status(
    server: MockServer, telemetry: Telemetry
) -> None:
    """A call that fails ends its span with error.type, ERROR status and the duration metric."""
    async with AsyncCometAPI(FAKE_KEY, base_url=server.url, max_retries=0) as client:
        server.reply_error(429, "slow down")
        with pytest.raises(RateLimitError):
            await client.chat.completions.create(model="gpt-4o-mini", messages=HI)
    [span] = telemetry.finished()
    assert dict(span.attributes or {})["error.type"] == "RateLimitError"
    assert span.status.status_code is StatusCode.ERROR
    [duration] = telemetry.points("gen_ai.client.operation.duration")
    assert dict(duration.attributes or {})["error.type"] == "RateLimitError"


async def test_a_stream_ends_its_span_at_its_end_with_time_to_first_chunk(
    client: AsyncCometAPI, telemetry: Telemetry
) -> None:
    """A stream's span ends when the stream does, with usage and time to first chunk."""
    stream = await client.chat.completions.create(model="gpt-4o-mini", messages=HI, stream=True)
    async with stream:
        async for _ in stream:
            assert telemetry.finished() == []  # still open while the chunks come
        c = stream.completion
    [span] = telemetry.finished()
    attributes = dict(span.attributes or {})
    assert c.usage is not None
    assert attributes["gen_ai.usage.output_tokens"] == c.usage.completion_tokens
    assert attributes["aiocometapi.time_to_first_chunk"] > 0
    [first] = telemetry.points("gen_ai.client.operation.time_to_first_chunk")
    assert first.count == 1


async def test_a_stream_left_early_ends_its_span(
    client: AsyncCometAPI, telemetry: Telemetry
) -> None:
    """Leaving a stream after one chunk ends its span, marked left early, not as an error."""
    stream = await client.chat.completions.create(model="gpt-4o-mini", messages=HI, stream=True)
    async with stream:
        async for _ in stream:
            break
    [span] = telemetry.finished()
    assert [e.name for e in span.events][-1] == "left_early"
    assert span.status.status_code is StatusCode.UNSET


async def test_uninstrument_stops_the_spans(client: AsyncCometAPI, telemetry: Telemetry) -> None:
    """After uninstrument() calls make no span."""
    otel.uninstrument()
    assert not otel.is_instrumented()
    await client.chat.completions.create(model="gpt-4o-mini", messages=HI)
    assert telemetry.finished() == []


async def test_with_no_provider_configured_nothing_is_started(client: AsyncCometAPI) -> None:
    """Instrumented with no tracer or meter provider anywhere, a call starts no span."""
    from opentelemetry import metrics, trace

    if not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        pytest.skip("a global tracer provider was set in this process")
    otel.instrument()
    try:
        observer = otel._installed
        assert observer is not None
        call = observer.on_start("gpt-4o-mini", {}, stream=False, base_url=client.base_url)
        assert call is None
        assert isinstance(metrics.get_meter_provider(), otel._NO_METRICS)
        await client.chat.completions.create(model="gpt-4o-mini", messages=HI)
    finally:
        otel.uninstrument()
