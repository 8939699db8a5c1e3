"""The sync client, CometAPI: the async surface from plain code, threads and running loops."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from collections.abc import Callable, Iterator

import msgspec
import pytest

from aiocometapi import (
    ClientClosedError,
    CometAPI,
    CompatibilityWarning,
    FanOutResult,
    NotFoundError,
    ParsedStream,
    Stream,
    SystemicFailureError,
)
from aiocometapi.testing import DEFAULT_MODELS, MockServer
from aiocometapi.types import ChatCompletion, ChatCompletionChunk, ModelList
from conftest import FAKE_KEY, user

MODEL = "gpt-5.4-mini"


@pytest.fixture
def client(threaded_server: MockServer) -> Iterator[CometAPI]:
    with CometAPI(FAKE_KEY, base_url=threaded_server.url) as api:
        yield api


def loop_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "aiocometapi-sync"]


def wait_for(condition: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


def test_create_returns_the_completion(client: CometAPI, threaded_server: MockServer) -> None:
    """create() returns the ChatCompletion, request id and usage included."""
    completion = client.chat.completions.create(model=MODEL, messages=[user("hi")])
    assert isinstance(completion, ChatCompletion)
    assert completion.choices[0].message.content == "Echo: hi"
    assert completion.request_id is not None and completion.request_id.startswith("mock-")
    assert completion.usage is not None and completion.usage.total_tokens > 0


def test_stream_is_a_plain_iterator(client: CometAPI) -> None:
    """stream=True gives a Stream to iterate in a with block, with its request id and headers."""
    with client.chat.completions.create(
        model=MODEL, messages=[user("one two three")], stream=True
    ) as stream:
        assert isinstance(stream, Stream)
        chunks = list(stream)
    assert all(isinstance(c, ChatCompletionChunk) for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Echo: one two three"
    assert stream.completion.choices[0].message.content == text
    assert stream.request_id == stream.headers["x-request-id"]


def test_stream_text_and_final(client: CometAPI) -> None:
    """text() yields the content pieces; final() assembles the completion."""
    stream = client.chat.completions.create(model=MODEL, messages=[user("a b")], stream=True)
    with stream:
        assert "".join(stream.text()) == "Echo: a b"
    stream = client.chat.completions.create(model=MODEL, messages=[user("c d")], stream=True)
    with stream:
        assert stream.final().choices[0].message.content == "Echo: c d"


def test_leaving_a_stream_early_frees_its_connection(
    client: CometAPI, threaded_server: MockServer
) -> None:
    """Breaking out of a with block over a stream closes its connection at once."""
    with client.chat.completions.create(
        model=MODEL, messages=[user(" ".join(["word"] * 5000))], stream=True
    ) as stream:
        next(iter(stream))
    assert client._async._transport.pool()[0] == 0  # nothing in use
    completion = client.chat.completions.create(model=MODEL, messages=[user("next")])
    assert completion.choices[0].message.content == "Echo: next"


class Person(msgspec.Struct):
    name: str
    age: int


def test_parse_plain_and_streamed(client: CometAPI) -> None:
    """parse() returns the parsed answer; parse(stream=True) a ParsedStream whose final() parses."""
    parsed = client.chat.completions.parse(
        model=MODEL, messages=[user("who?")], response_format=Person
    )
    assert isinstance(parsed.choices[0].message.parsed, Person)
    with client.chat.completions.parse(
        model=MODEL, messages=[user("who?")], response_format=Person, stream=True
    ) as stream:
        assert isinstance(stream, ParsedStream)
        assert isinstance(stream.final().choices[0].message.parsed, Person)


def test_run_tools_with_sync_tools(client: CometAPI) -> None:
    """run_tools() runs plain functions (off the caller's thread) until the model answers."""
    ran_in: list[str] = []

    def add(a: int, b: int) -> int:
        """Add two numbers."""
        ran_in.append(threading.current_thread().name)
        return a + b

    run = client.chat.completions.run_tools(model=MODEL, messages=[user("add")], tools=[add])
    assert run.turns == 2
    assert run.completion.choices[0].message.content is not None
    assert run.completion.choices[0].message.content.startswith("Tool results: ")
    assert ran_in and threading.current_thread().name not in ran_in
    events = list(
        client.chat.completions.run_tools_stream(model=MODEL, messages=[user("add")], tools=[add])
    )
    assert type(events[-1]).__name__ == "RunCompleted"


def test_fan_out_is_a_plain_iterator(client: CometAPI) -> None:
    """fan_out() yields one result per input; closing it early cancels the rest."""
    requests = [{"model": MODEL, "messages": [user(f"n{i}")]} for i in range(40)]
    with client.chat.completions.fan_out(requests, concurrency=8) as results:
        seen = list(results)
    assert sorted(r.index for r in seen) == list(range(40))
    assert all(isinstance(r, FanOutResult) and r.ok for r in seen)
    ordered = client.chat.completions.fan_out(requests, concurrency=8, ordered=True)
    with ordered:
        first = next(ordered)
    assert first.index == 0
    assert first.completion is not None
    assert first.completion.choices[0].message.content == "Echo: n0"


def test_fan_out_stops_on_a_systemic_failure(threaded_server: MockServer) -> None:
    """With stop_on_systemic_failure, a fan-out whose requests are all refused stops early."""
    refused = MockServer(api_key="sk-the-only-good-key")
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(refused.start(), loop).result(5)
    try:
        requests = ({"model": MODEL, "messages": [user(f"n{i}")]} for i in range(1000))
        with (
            CometAPI(FAKE_KEY, base_url=refused.url) as client,
            pytest.raises(SystemicFailureError),
            client.chat.completions.fan_out(
                requests, concurrency=4, stop_on_systemic_failure=True
            ) as results,
        ):
            for result in results:
                assert result.error is not None
        assert len(refused.requests) < 100
    finally:
        asyncio.run_coroutine_threadsafe(refused.close(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


def test_models(client: CometAPI) -> None:
    """models.list() and retrieve() return what the async client's do; errors keep their class."""
    models = client.models.list()
    assert isinstance(models, ModelList)
    assert [m.id for m in models] == DEFAULT_MODELS
    assert client.models.retrieve(MODEL).id == MODEL
    with pytest.raises(NotFoundError):
        client.models.retrieve("no-such-model")


def test_retries_keep_the_callers_settings(
    client: CometAPI, threaded_server: MockServer, retry_waits: list[float]
) -> None:
    """A retried request succeeds, its back-off made instant by the test's own context."""
    threaded_server.reply_error(500, "try again")
    completion = client.chat.completions.create(model=MODEL, messages=[user("again")])
    assert completion.choices[0].message.content == "Echo: again"
    assert len(retry_waits) == 1  # instant_retries() seen across the thread hop


def test_compat_warning_points_at_the_caller(client: CometAPI) -> None:
    """A CompatibilityWarning names this file and line, not the client's thread."""
    with pytest.warns(CompatibilityWarning) as caught:
        client.chat.completions.create(model="claude-sonnet-4-6", messages=[user("x")], n=2)
    assert caught[0].filename == __file__
    with pytest.warns(CompatibilityWarning):
        adapted = client.chat.completions.create(
            model="claude-sonnet-4-6", messages=[user("x")], n=2, compat="adapt"
        )
    assert adapted.adjustments is not None and adapted.adjustments[0].parameter == "n"


def test_with_options_shares_the_loop_and_closes_nothing(threaded_server: MockServer) -> None:
    """A with_options copy works, outlives nothing it needs, and closing it closes nothing."""
    owner = CometAPI(FAKE_KEY, base_url=threaded_server.url)
    copy = owner.with_options(timeout=5, max_retries=0)
    assert copy.timeout.total == 5 and copy.max_retries == 0
    copy.close()
    assert copy.chat.completions.create(model=MODEL, messages=[user("c")]).choices
    assert len(loop_threads()) == 1
    owner.close()
    with pytest.raises(ClientClosedError):
        copy.chat.completions.create(model=MODEL, messages=[user("c")])
    wait_for(lambda: loop_threads() == [])
    one_liner = CometAPI(FAKE_KEY, base_url=threaded_server.url).with_options(max_retries=1)
    gc.collect()  # the unnamed owner stays alive as long as its copy
    assert one_liner.chat.completions.create(model=MODEL, messages=[user("d")]).choices
    del one_liner
    gc.collect()
    wait_for(lambda: loop_threads() == [])


def test_close_stops_the_thread(threaded_server: MockServer) -> None:
    """close() closes the pool and ends the loop's thread; later calls raise ClientClosedError."""
    client = CometAPI(FAKE_KEY, base_url=threaded_server.url)
    assert loop_threads() == []  # started at the first call only
    client.chat.completions.create(model=MODEL, messages=[user("hi")])
    assert len(loop_threads()) == 1
    client.close()
    client.close()
    assert loop_threads() == []
    wait_for(lambda: threaded_server.open_connections == 0)
    with pytest.raises(ClientClosedError):
        client.models.list()


def test_dropped_client_cleans_up(threaded_server: MockServer) -> None:
    """A client dropped without close() ends its thread and its connections once collected."""
    client = CometAPI(FAKE_KEY, base_url=threaded_server.url)
    client.chat.completions.create(model=MODEL, messages=[user("hi")])
    assert threaded_server.open_connections == 1
    del client
    gc.collect()
    wait_for(lambda: loop_threads() == [] and threaded_server.open_connections == 0)


def test_many_threads_share_one_client(client: CometAPI) -> None:
    """Sixteen threads calling at once all get their own answers, through one loop thread."""
    answers: dict[int, list[str | None]] = {}

    def work(n: int) -> None:
        answers[n] = [
            client.chat.completions.create(model=MODEL, messages=[user(f"{n}-{i}")])
            .choices[0]
            .message.content
            for i in range(10)
        ]

    threads = [threading.Thread(target=work, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert answers == {n: [f"Echo: {n}-{i}" for i in range(10)] for n in range(16)}
    assert len(loop_threads()) == 1


def test_called_from_inside_a_running_loop(client: CometAPI) -> None:
    """Sync calls from a coroutine (a notebook cell, an async framework's sync code) work."""

    async def cell() -> tuple[str | None, str]:
        completion = client.chat.completions.create(model=MODEL, messages=[user("cell")])
        with client.chat.completions.create(
            model=MODEL, messages=[user("streamed")], stream=True
        ) as stream:
            text = "".join(stream.text())
        await asyncio.sleep(0)  # the cell's own loop is unharmed
        return completion.choices[0].message.content, text

    assert asyncio.run(cell()) == ("Echo: cell", "Echo: streamed")


def test_usage_meter_and_budget_from_the_sync_client(threaded_server: MockServer) -> None:
    """The sync client meters its calls (cost from its prices) and its fan-out stops at a
    token budget, as the async client does."""
    from aiocometapi import BudgetExceededError

    prices = {MODEL: {"input": 1.0, "output": 2.0}}
    with CometAPI(FAKE_KEY, base_url=threaded_server.url, prices=prices) as client:
        completion = client.chat.completions.create(model=MODEL, messages=[user("hi")])
        assert completion.usage is not None
        figures = client.usage.snapshot().by_model[MODEL]
        assert (figures.requests, figures.answered) == (1, 1)
        assert figures.total_tokens == completion.usage.total_tokens
        assert figures.cost is not None and figures.cost > 0
        assert client.with_options(timeout=5).usage is client.usage
        requests = (
            {"model": MODEL, "messages": [user(f"question {i}")], "max_tokens": 20}
            for i in range(40)
        )
        answered = 0
        with pytest.raises(BudgetExceededError) as stop:
            for result in client.chat.completions.fan_out(
                requests, concurrency=4, max_tokens_total=100
            ):
                answered += result.completion is not None
        assert 0 < answered == stop.value.taken < 40
