"""The usage meter against the local server: totals, failures, retries, streams, sharing."""

from __future__ import annotations

import json

import pytest

from aiocometapi import AsyncCometAPI, BadRequestError, UsageSnapshot
from aiocometapi.testing import MockServer
from aiocometapi.types import ChatCompletion
from conftest import FAKE_KEY

pytestmark = pytest.mark.anyio

HI = [{"role": "user", "content": "Say something short and cheerful, please."}]


def _tokens(completions: list[ChatCompletion]) -> tuple[int, int, int]:
    prompt = completion = total = 0
    for c in completions:
        assert c.usage is not None
        prompt += c.usage.prompt_tokens
        completion += c.usage.completion_tokens
        total += c.usage.total_tokens
    return prompt, completion, total


async def test_meter_totals_equal_the_answers_usage_over_a_mixed_run(
    client: AsyncCometAPI, server: MockServer
) -> None:
    """Over plain, n>1, streamed, failed and retried calls the meter's tokens are the answers'."""
    answers: list[ChatCompletion] = []
    answers.append(await client.chat.completions.create(model="gpt-4o-mini", messages=HI))
    answers.append(await client.chat.completions.create(model="gpt-4o-mini", messages=HI, n=2))
    stream = await client.chat.completions.create(model="gpt-4o-mini", messages=HI, stream=True)
    async with stream:
        answers.append(await stream.final())
    server.reply_error(429, "slow down")
    answers.append(await client.chat.completions.create(model="claude-sonnet-4-5", messages=HI))
    server.reply_error(500, "hiccup")
    stream = await client.chat.completions.create(
        model="claude-sonnet-4-5", messages=HI, stream=True
    )
    async with stream:
        answers.append(await stream.final())
    server.reply_error(400, "bad", type="invalid_request_error")
    with pytest.raises(BadRequestError):
        await client.chat.completions.create(model="gpt-4o-mini", messages=HI)

    snap = client.usage.snapshot()
    prompt, completion, total = _tokens(answers)
    assert (snap.total.prompt_tokens, snap.total.completion_tokens) == (prompt, completion)
    assert snap.total.total_tokens == total
    assert snap.total.requests == 6
    assert snap.total.answered == 5
    assert snap.total.failed == 1
    assert snap.total.errors == {"BadRequestError": 1}
    assert snap.total.retries == 2
    assert snap.total.rate_limited == 1
    assert snap.total.usage_missing == 0
    gpt, claude = snap.by_model["gpt-4o-mini"], snap.by_model["claude-sonnet-4-5"]
    assert (gpt.requests, gpt.answered, gpt.failed) == (4, 3, 1)
    assert (claude.requests, claude.answered, claude.retries, claude.rate_limited) == (2, 2, 2, 1)
    assert claude.total_tokens == _tokens(answers[3:5])[2]
    assert snap.total.seconds > 0


async def test_a_stream_without_usage_is_counted_as_missing_not_as_zero(
    client: AsyncCometAPI,
) -> None:
    """A stream whose usage chunk never came counts in usage_missing, with no tokens added."""
    # A model no family of the compat table claims is not asked for its usage.
    stream = await client.chat.completions.create(model="my-own-model", messages=HI, stream=True)
    async with stream:
        completion = await stream.final()
    assert completion.usage is None
    figures = client.usage.snapshot().by_model["my-own-model"]
    assert (figures.answered, figures.usage_missing, figures.total_tokens) == (1, 1, 0)


async def test_streams_ask_for_usage_where_the_family_takes_it(
    client: AsyncCometAPI, server: MockServer
) -> None:
    """A stream to a known family asks for include_usage; the caller's stream_options win."""
    for model, options in [
        ("gpt-4o-mini", None),
        ("gemini-2.5-flash", None),
        ("my-own-model", None),
        ("gpt-4o-mini", {"include_usage": False}),
    ]:
        extra = {} if options is None else {"stream_options": options}
        stream = await client.chat.completions.create(
            model=model, messages=HI, stream=True, **extra
        )
        async with stream:
            await stream.final()
    sent = [request.body.get("stream_options") for request in server.requests]
    assert sent == [
        {"include_usage": True},
        {"include_usage": True},
        None,
        {"include_usage": False},
    ]
    assert client.usage.snapshot().total.usage_missing == 2


async def test_a_stream_left_early_counts_as_left(client: AsyncCometAPI) -> None:
    """Leaving a stream before its end counts it as left, neither answered nor failed."""
    stream = await client.chat.completions.create(model="gpt-4o-mini", messages=HI, stream=True)
    async with stream:
        async for _ in stream:
            break
    total = client.usage.snapshot().total
    assert (total.requests, total.answered, total.failed, total.left) == (1, 0, 0, 1)


async def test_copies_share_the_meter_and_reset_starts_over(client: AsyncCometAPI) -> None:
    """A with_options copy counts into the same meter; reset() zeroes it."""
    copy = client.with_options(max_retries=0)
    assert copy.usage is client.usage
    await copy.chat.completions.create(model="gpt-4o-mini", messages=HI)
    await client.chat.completions.create(model="gpt-4o-mini", messages=HI)
    assert client.usage.snapshot().total.answered == 2
    client.usage.reset()
    snap = client.usage.snapshot()
    assert snap.total.requests == 0 and snap.by_model == {}


async def test_a_separate_client_has_its_own_meter(server: MockServer) -> None:
    """Two clients (say, two keys) count apart."""
    async with (
        AsyncCometAPI(FAKE_KEY, base_url=server.url) as one,
        AsyncCometAPI(FAKE_KEY + "2", base_url=server.url) as two,
    ):
        await one.chat.completions.create(model="gpt-4o-mini", messages=HI)
        assert one.usage.snapshot().total.requests == 1
        assert two.usage.snapshot().total.requests == 0


async def test_the_snapshot_is_immutable_and_serialisable(client: AsyncCometAPI) -> None:
    """A snapshot is frozen and round-trips through JSON."""
    await client.chat.completions.create(model="gpt-4o-mini", messages=HI)
    snap = client.usage.snapshot()
    with pytest.raises(AttributeError):
        snap.total.requests = 5  # type: ignore[misc]
    data = json.loads(snap.to_json())
    assert data["by_model"]["gpt-4o-mini"]["requests"] == 1
    assert data == snap.to_dict()
    assert isinstance(snap, UsageSnapshot)
    await client.chat.completions.create(model="gpt-4o-mini", messages=HI)
    assert snap.total.requests == 1  # a snapshot does not move with the meter


def test_importing_the_package_imports_no_opentelemetry() -> None:
    """import aiocometapi (client, meter and all) loads nothing of OpenTelemetry."""
    import subprocess
    import sys

    code = (
        "import sys, aiocometapi\n"
        "aiocometapi.AsyncCometAPI(api_key='k', base_url='http://127.0.0.1:9').usage.snapshot()\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


async def test_a_recorded_stream_counts_its_reasoning_and_cached_tokens() -> None:
    """A real xAI stream's usage chunk (recorded in the conformance corpus) reaches the meter."""
    from pathlib import Path

    from rawserver import LAST_CHUNK, Conn, RawServer, chunk, sse_head

    # vercel/ai packages/xai/src/__fixtures__/xai-text.chunks.txt at ed857f50 (see its .json).
    body = (Path(__file__).parents[1] / "conformance/streams/vercel-ai-xai-text.sse").read_bytes()

    async def script(conn: Conn) -> None:
        if await conn.request() is not None:
            await conn.send(sse_head())
            await conn.send(chunk(body))
            await conn.send(LAST_CHUNK)
        await conn.wait(5)

    async with (
        RawServer(then=script) as server,
        AsyncCometAPI(FAKE_KEY, base_url=server.url, max_retries=0) as client,
    ):
        stream = await client.chat.completions.create(model="grok-3-mini", messages=HI, stream=True)
        async with stream:
            await stream.final()
        figures = client.usage.snapshot().by_model["grok-3-mini"]
    assert (figures.prompt_tokens, figures.completion_tokens, figures.total_tokens) == (12, 1, 303)
    assert (figures.reasoning_tokens, figures.cached_tokens) == (290, 11)


async def test_a_stream_reopened_before_its_first_chunk_counts_one_call(
    client: AsyncCometAPI, server: MockServer
) -> None:
    """A stream cut before its first chunk and sent again is one call with one retry."""
    from aiocometapi.testing import Drop

    server.reply_stream([Drop()], done=False)
    stream = await client.chat.completions.create(model="gpt-4o-mini", messages=HI, stream=True)
    async with stream:
        completion = await stream.final()
    assert completion.usage is not None
    total = client.usage.snapshot().total
    assert (total.requests, total.answered, total.retries) == (1, 1, 1)
    assert total.total_tokens == completion.usage.total_tokens


async def test_a_stream_whose_reopening_fails_counts_as_failed(
    client: AsyncCometAPI, server: MockServer
) -> None:
    """A stream cut before its first chunk whose second try is refused ends the call as failed."""
    from aiocometapi.testing import Drop

    server.reply_stream([Drop()], done=False)
    server.reply_error(400, "bad", type="invalid_request_error")
    stream = await client.chat.completions.create(model="gpt-4o-mini", messages=HI, stream=True)
    with pytest.raises(BadRequestError):
        async with stream:
            await stream.final()
    total = client.usage.snapshot().total
    assert (total.requests, total.answered, total.failed, total.retries) == (1, 0, 1, 1)
    assert total.errors == {"BadRequestError": 1}


async def test_a_cancelled_call_counts_as_left_not_failed(
    client: AsyncCometAPI, server: MockServer
) -> None:
    """A call the caller cancels while it waits for its answer is counted as left."""
    import anyio

    server.reply_error(500, "slow", delay=5.0)  # never reached: the call is cancelled first
    with anyio.move_on_after(0.3):
        await client.chat.completions.create(model="gpt-4o-mini", messages=HI)
    total = client.usage.snapshot().total
    assert (total.requests, total.answered, total.failed, total.left) == (1, 0, 0, 1)
