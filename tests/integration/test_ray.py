"""aiocometapi.ray on a real local Ray cluster (2 CPUs, worker actors with fractions of one)
against the project's local server, capacity limits and faults included."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

pytest.importorskip("ray", reason="aiocometapi.ray needs the extra: pip install 'aiocometapi[ray]'")

import ray
import ray.cloudpickle
import ray.data
import ray.util

from aiocometapi import cli
from aiocometapi.ray import ACTOR_PREFIX, chat_completions
from aiocometapi.testing import MockServer
from conftest import FAKE_KEY

MODEL = "gpt-5.4-mini"
pytestmark = pytest.mark.timeout(120)


def prompt(index: int) -> dict[str, Any]:
    return {"model": MODEL, "messages": [{"role": "user", "content": f"prompt {index}"}]}


@pytest.fixture(scope="module", autouse=True)
def cluster() -> Iterator[None]:
    """One local Ray for the module; its workers inherit the key from this environment."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COMETAPI_KEY", FAKE_KEY)
        patch.delenv("COMETAPI_BASE_URL", raising=False)
        patch.setenv("RAY_DEDUP_LOGS", "0")
        # The workers cannot import this test module: its functions travel by value.
        ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
        ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
        ray.data.DataContext.get_current().enable_progress_bars = False
        try:
            yield
        finally:
            ray.shutdown()
            ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """A loop in a thread for the servers, so that the jobs can block this thread."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


@pytest.fixture
def serve(loop: asyncio.AbstractEventLoop) -> Iterator[Callable[..., MockServer]]:
    """Start a MockServer with the given options (closed after the test)."""
    servers: list[MockServer] = []

    def start(**options: Any) -> MockServer:
        server = MockServer(**options)
        asyncio.run_coroutine_threadsafe(server.start(), loop).result(10)
        servers.append(server)
        return server

    yield start
    for server in servers:
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(10)


def run_beside(job: Callable[[], Any], when: Callable[[], bool], act: Callable[[], None]) -> Any:
    """Run ``job`` here while a thread does ``act`` once ``when`` holds; ``job``'s result."""
    acted = threading.Event()
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            if when():
                act()
                acted.set()
                return
            time.sleep(0.01)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        result = job()
    finally:
        stop.set()
        thread.join(5)
    assert acted.is_set(), "the fault was never injected: the job ended first"
    return result


def rate_actors() -> set[str]:
    return {name for name in ray.util.list_named_actors() if name.startswith(ACTOR_PREFIX)}


# --------------------------------------------------------------------------- answers


def test_every_row_is_answered_once_under_a_capacity_limit(
    serve: Callable[..., MockServer],
) -> None:
    """Against a server that admits 60 requests/s, every row gets exactly one answer with its
    usage, request id and whole completion, and its request carries the row's id."""
    server = serve(rps_limit=60)
    rows = [{"id": i, "request": prompt(i)} for i in range(150)]
    before = rate_actors()
    out = chat_completions(
        ray.data.from_items(rows),
        id_column="id",
        workers=3,
        concurrency=16,
        base_url=server.url,
    ).take_all()
    assert sorted(row["id"] for row in out) == list(range(150))
    for row in out:
        assert row["error"] is None
        assert row["content"] == f"Echo: prompt {row['id']}"
        assert row["finish_reason"] == "stop" and row["model"] == MODEL
        assert row["total_tokens"] == row["prompt_tokens"] + row["completion_tokens"] > 0
        assert row["request_id"].startswith("mock-")
        completion = json.loads(row["completion"])
        assert completion["choices"][0]["message"]["content"] == row["content"]
        assert "request_id" not in completion
        assert row["request"]["messages"][0]["content"] == f"prompt {row['id']}"
    sent = [r for r in server.requests if r.path == "/v1/chat/completions"]
    assert {r.body["user"] for r in sent} == {str(i) for i in range(150)}
    assert all(r.headers["x-client-request-id"] == r.body["user"] for r in sent)
    assert all(r.headers["authorization"] == f"Bearer {FAKE_KEY}" for r in sent)
    # One budget for the cluster: the workers leased from one named actor, which heard of
    # every 429 the server sent.
    (name,) = rate_actors() - before
    state = ray.get(ray.get_actor(name).state.remote())
    assert state["workers"] >= 2
    assert state["rate_limited"] == server.stats.rate_limited


def test_a_failed_row_is_an_error_row_and_the_job_goes_on(
    serve: Callable[..., MockServer],
) -> None:
    """A row the server refuses (400) or whose request cannot be built comes back with an
    ``error`` (type, status, message) and null answer columns; the other rows are answered."""
    server = serve()
    rows: list[dict[str, Any]] = [{"id": i, "request": prompt(i)} for i in range(20)]
    rows[3]["request"] = {**prompt(3), "n": 0}
    rows[7]["request"] = {"messages": prompt(7)["messages"]}  # no model
    out = {
        row["id"]: row
        for row in chat_completions(
            ray.data.from_items(rows),
            id_column="id",
            workers=2,
            concurrency=4,
            base_url=server.url,
        ).take_all()
    }
    assert len(out) == 20
    bad_request = out[3]["error"]
    assert bad_request["type"] == "BadRequestError" and bad_request["status"] == 400
    assert "'n'" in bad_request["message"]
    assert out[7]["error"] == {
        "type": "TypeError",
        "status": None,
        "message": "create() missing required keyword arguments: model",
    }
    for index in (3, 7):
        assert out[index]["content"] is None and out[index]["completion"] is None
    assert all(out[i]["error"] is None for i in out if i not in (3, 7))


def test_on_error_raise_fails_the_job(serve: Callable[..., MockServer]) -> None:
    """With ``on_error="raise"`` a failed row fails the whole job with its error."""
    server = serve()
    rows = [{"request": prompt(0)}, {"request": {**prompt(1), "n": 0}}]
    planned = chat_completions(
        ray.data.from_items(rows),
        workers=1,
        concurrency=2,
        base_url=server.url,
        on_error="raise",
    )
    with pytest.raises(Exception, match=r"BadRequestError|'n'"):
        planned.take_all()


def test_request_dicts_of_different_keys_and_request_functions(
    serve: Callable[..., MockServer],
) -> None:
    """Keys that Arrow fills with null when it merges request dicts are not sent; a request
    may also be JSON text, or built by a function of the row."""
    server = serve()
    rows = [
        {"id": 0, "request": {**prompt(0), "temperature": 0.5}},
        {
            "id": 1,
            "request": {
                **prompt(1),
                "messages": [
                    {"role": "system", "content": "be brief", "name": "sys"},
                    {"role": "user", "content": "prompt 1"},
                ],
            },
        },
    ]
    out = chat_completions(
        ray.data.from_items(rows),
        id_column="id",
        workers=1,
        concurrency=2,
        base_url=server.url,
    ).take_all()
    assert sorted(row["content"] for row in out) == ["Echo: prompt 0", "Echo: prompt 1"]
    bodies = {r.body["user"]: r.body for r in server.requests}
    assert "temperature" not in bodies["1"] and bodies["0"]["temperature"] == 0.5
    assert bodies["0"]["messages"] == [{"role": "user", "content": "prompt 0"}]
    assert bodies["1"]["messages"][0] == {"role": "system", "content": "be brief", "name": "sys"}

    texts = [{"q": json.dumps(prompt(i))} for i in range(3)]
    out = chat_completions(
        ray.data.from_items(texts), request="q", workers=1, base_url=server.url
    ).take_all()
    assert sorted(row["content"] for row in out) == [f"Echo: prompt {i}" for i in range(3)]

    def build(row: dict[str, Any]) -> dict[str, Any]:
        return {"model": MODEL, "messages": [{"role": "user", "content": row["text"]}]}

    words = [{"text": word} for word in ("alpha", "beta")]
    out = chat_completions(
        ray.data.from_items(words), request=build, workers=1, base_url=server.url
    ).take_all()
    assert sorted((row["text"], row["content"]) for row in out) == [
        ("alpha", "Echo: alpha"),
        ("beta", "Echo: beta"),
    ]


class Person(msgspec.Struct):
    name: str
    age: int
    tags: list[str]


def test_structured_output_fields_become_columns(serve: Callable[..., MockServer]) -> None:
    """With ``response_format`` a Struct, each field of the parsed answer is a typed column."""
    server = serve()
    planned = chat_completions(
        ray.data.from_items([{"request": prompt(i)} for i in range(4)]),
        workers=1,
        concurrency=4,
        base_url=server.url,
        response_format=Person,
    )
    out = planned.take_all()
    schema = planned.schema()
    assert schema is not None
    types = dict(zip(schema.names, (str(t) for t in schema.types), strict=True))
    assert types["name"] == "string" and types["age"] == "int64"
    assert types["tags"] == "list<item: string>"
    for row in out:
        assert row["error"] is None
        parsed = msgspec.json.decode(row["content"], type=Person)
        assert (row["name"], row["age"], row["tags"]) == (parsed.name, parsed.age, parsed.tags)
    sent = server.requests[0].body["response_format"]
    assert sent["type"] == "json_schema" and sent["json_schema"]["name"] == "Person"


# --------------------------------------------------------------------------- faults


def test_a_worker_killed_mid_job_leaves_each_row_answered_once(
    serve: Callable[..., MockServer],
) -> None:
    """A worker process killed while its requests are in flight is restarted by Ray, which
    runs its batches again: the output still holds each row exactly once (some rows were
    sent twice, and their ``user`` shows it)."""
    server = serve(latency=0.2)

    def build(row: dict[str, Any]) -> dict[str, Any]:
        return {**prompt(row["id"]), "extra_headers": {"X-Worker-Pid": str(os.getpid())}}

    rows = [{"id": i} for i in range(120)]
    planned = chat_completions(
        ray.data.from_items(rows),
        request=build,
        id_column="id",
        workers=3,
        concurrency=8,
        batch_size=8,
        base_url=server.url,
    )
    killed: list[int] = []

    def kill() -> None:
        pid = int(server.requests[-1].headers["x-worker-pid"])
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    out = run_beside(planned.take_all, lambda: len(server.requests) >= 30, kill)
    assert sorted(row["id"] for row in out) == list(range(120))
    assert all(row["error"] is None for row in out)
    sent = Counter(r.body["user"] for r in server.requests)
    assert set(sent) == {str(i) for i in range(120)}
    assert max(sent.values()) >= 2  # the killed worker's rows in flight were sent again
    assert any(r.headers["x-worker-pid"] == str(killed[0]) for r in server.requests)


def test_the_rate_actor_killed_mid_job_loses_nothing(serve: Callable[..., MockServer]) -> None:
    """If the shared budget's actor dies mid-job, the workers go on with their own rate
    control: every row is still answered, none with an error."""
    server = serve(rps_limit=50)
    before = rate_actors()
    planned = chat_completions(
        ray.data.from_items([{"id": i, "request": prompt(i)} for i in range(200)]),
        id_column="id",
        workers=3,
        concurrency=16,
        base_url=server.url,
    )
    (name,) = rate_actors() - before

    def kill() -> None:
        ray.kill(ray.get_actor(name))

    out = run_beside(planned.take_all, lambda: len(server.requests) >= 60, kill)
    assert sorted(row["id"] for row in out) == list(range(200))
    assert [row["error"] for row in out if row["error"] is not None] == []
    assert name not in rate_actors()


def test_the_key_stays_out_of_the_output_and_every_log(
    serve: Callable[..., MockServer], capfd: pytest.CaptureFixture[str]
) -> None:
    """The API key is in no output row, nothing the driver printed, and no file of the Ray
    session's log directory, failures included."""
    server = serve(api_key="sk-another-key-the-workers-do-not-have")
    out = chat_completions(
        ray.data.from_items([{"request": prompt(i)} for i in range(3)]),
        workers=1,
        base_url=server.url,
    ).take_all()
    assert all(row["error"]["status"] == 401 for row in out)
    assert FAKE_KEY not in repr(out)
    captured = capfd.readouterr()
    assert FAKE_KEY not in captured.out + captured.err
    logs = Path("/tmp/ray/session_latest/logs")
    assert logs.is_dir()
    found = [
        str(path)
        for path in logs.rglob("*")
        if path.is_file() and FAKE_KEY.encode() in path.read_bytes()
    ]
    assert found == []


# --------------------------------------------------------------------------- batch --ray


def batch_lines(count: int) -> str:
    return "".join(
        json.dumps(
            {
                "custom_id": f"req-{i}",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": prompt(i),
            }
        )
        + "\n"
        for i in range(count)
    )


def test_batch_file_on_ray_then_resumed(serve: Callable[..., MockServer], tmp_path: Path) -> None:
    """``aiocometapi batch FILE --ray`` answers every line once in the Batch output format; a
    rerun after an interruption sends only the lines not yet answered."""
    server = serve(rps_limit=40)
    source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text(batch_lines(60))
    args = ["batch", str(source), "-o", str(output), "--ray", "--base-url", server.url, "-q"]
    assert cli.main(args) == 0
    answers = [json.loads(line) for line in output.read_text().splitlines()]
    assert sorted(a["custom_id"] for a in answers) == sorted(f"req-{i}" for i in range(60))
    for answer in answers:
        assert answer["error"] is None and answer["response"]["status_code"] == 200
        index = answer["custom_id"].removeprefix("req-")
        assert answer["response"]["body"]["choices"][0]["message"]["content"] == (
            f"Echo: prompt {index}"
        )
    # An interrupted run: the last 21 answers never written, the 40th cut in half.
    kept = output.read_text().splitlines(keepends=True)
    output.write_text("".join(kept[:39]) + kept[39][:30])
    sent = len(server.requests)
    assert cli.main(args) == 0
    assert len(server.requests) - sent == 21
    answers = [json.loads(line) for line in output.read_text().splitlines()]
    assert Counter(a["custom_id"] for a in answers) == Counter(f"req-{i}" for i in range(60))
    sent = len(server.requests)
    assert cli.main(args) == 0
    assert len(server.requests) == sent


def test_batch_on_ray_skips_malformed_lines_and_strict_sends_nothing(
    serve: Callable[..., MockServer], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bad lines (broken JSON, a repeated custom_id) are reported by line number and skipped;
    with ``--strict`` nothing is sent and no output file is left behind."""
    server = serve()
    source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    lines = batch_lines(3).splitlines(keepends=True)
    source.write_text(lines[0] + "{not json\n" + lines[1] + lines[0] + lines[2])
    args = ["batch", str(source), "-o", str(output), "--ray", "--base-url", server.url, "-q"]
    assert cli.main([*args, "--strict"]) == 2
    err = capsys.readouterr().err
    assert f"{source}:2: not valid JSON" in err
    assert f"{source}:4: custom_id 'req-0' repeats line 1" in err
    assert "nothing was sent" in err
    assert len(server.requests) == 0 and not output.exists()
    assert cli.main(args) == 1  # the malformed lines count as not answered
    err = capsys.readouterr().err
    assert "line skipped" in err and "malformed  2" in err
    answers = [json.loads(line) for line in output.read_text().splitlines()]
    assert sorted(a["custom_id"] for a in answers) == ["req-0", "req-1", "req-2"]
    assert len(server.requests) == 3


def test_batch_on_ray_stopped_by_sigterm_keeps_its_answers_and_a_rerun_finishes(
    serve: Callable[..., MockServer], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """SIGTERM mid-run stops ``batch --ray`` with status 143, the answers already written are
    kept whole, and a rerun answers the rest, each ``custom_id`` once."""
    server = serve(latency=0.05)
    count = 300
    source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text(batch_lines(count))
    args = ["batch", str(source), "-o", str(output), "--ray", "-c", "1",
            "--base-url", server.url, "-q"]  # fmt: skip

    def some_written() -> bool:
        return output.exists() and output.read_bytes().count(b"\n") >= 5

    status = run_beside(
        lambda: cli.main(args), some_written, lambda: os.kill(os.getpid(), signal.SIGTERM)
    )
    assert status == 143
    assert "SIGTERM: stopping; answers written so far are kept" in capsys.readouterr().err
    kept = [json.loads(line) for line in output.read_text().splitlines()]
    assert 5 <= len(kept) < count
    assert len({a["custom_id"] for a in kept}) == len(kept)
    assert cli.main(args) == 0
    answers = [json.loads(line) for line in output.read_text().splitlines()]
    assert Counter(a["custom_id"] for a in answers) == Counter(f"req-{i}" for i in range(count))


def test_batch_on_ray_reads_its_input_from_standard_input(
    serve: Callable[..., MockServer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``aiocometapi batch - --ray`` answers the lines piped to it, as without Ray."""
    server = serve()
    output = tmp_path / "out.jsonl"
    piped = io.TextIOWrapper(io.BytesIO(batch_lines(4).encode()))
    monkeypatch.setattr(sys, "stdin", piped)
    args = ["batch", "-", "-o", str(output), "--ray", "--base-url", server.url, "-q"]
    assert cli.main(args) == 0
    answers = [json.loads(line) for line in output.read_text().splitlines()]
    assert sorted(a["custom_id"] for a in answers) == [f"req-{i}" for i in range(4)]
    assert len(server.requests) == 4
