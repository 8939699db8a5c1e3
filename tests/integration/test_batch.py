"""``aiocometapi batch``: OpenAI Batch API files in and out, resumable after any stop."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aiocometapi import AsyncCometAPI, cli
from aiocometapi.batch import BatchOptions, run_batch
from aiocometapi.testing import MockServer
from conftest import FAKE_KEY, serve_in_thread

MODEL = "gpt-5.4-mini"
URL = "/v1/chat/completions"


def request_line(custom_id: str, text: str = "hello", **body: Any) -> dict[str, Any]:
    body = {"model": MODEL, "messages": [{"role": "user", "content": text}], **body}
    return {"custom_id": custom_id, "method": "POST", "url": URL, "body": body}


def write_input(path: Path, lines: list[dict[str, Any] | str]) -> Path:
    with path.open("w") as file:
        for line in lines:
            file.write((line if isinstance(line, str) else json.dumps(line)) + "\n")
    return path


def read_output(path: Path) -> list[dict[str, Any]]:
    """Every line of the output, each checked to be whole JSON ending in a newline."""
    data = path.read_bytes()
    assert not data or data.endswith(b"\n")
    return [json.loads(line) for line in data.splitlines()]


def custom_ids(path: Path) -> list[str]:
    return [answer["custom_id"] for answer in read_output(path)]


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMETAPI_KEY", FAKE_KEY)
    monkeypatch.delenv("COMETAPI_BASE_URL", raising=False)


def batch(server: MockServer, inp: Path, out: Path, *flags: str) -> int:
    return cli.main(["batch", str(inp), "-o", str(out), "--base-url", server.url, *flags])


# --------------------------------------------------------------------------- formats


@pytest.mark.usefixtures("env")
def test_answers_every_line_in_openai_batch_format(
    threaded_server: MockServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each input line gets one output line shaped like OpenAI's batch output, and exit 0."""
    inp = write_input(tmp_path / "in.jsonl", [request_line(f"r{i}", f"hi {i}") for i in range(5)])
    out = tmp_path / "out.jsonl"
    assert batch(threaded_server, inp, out) == 0
    answers = read_output(out)
    assert sorted(a["custom_id"] for a in answers) == [f"r{i}" for i in range(5)]
    for answer in answers:
        assert list(answer) == ["id", "custom_id", "response", "error"]
        assert answer["id"].startswith("batch_req_")
        assert answer["error"] is None
        response = answer["response"]
        assert response["status_code"] == 200
        assert response["request_id"].startswith("mock-")
        body = response["body"]
        assert body["object"] == "chat.completion"
        assert "request_id" not in body and "parsed" not in body["choices"][0]["message"]
        number = answer["custom_id"][1:]
        assert body["choices"][0]["message"]["content"] == f"Echo: hi {number}"
        assert body["usage"]["total_tokens"] > 0
    assert len({a["id"] for a in answers}) == 5
    err = capsys.readouterr().err
    assert "finished" in err and "succeeded  5" in err


@pytest.mark.usefixtures("env")
def test_body_is_sent_as_given_without_stream(threaded_server: MockServer, tmp_path: Path) -> None:
    """stream and stream_options are dropped; other body keys, known or not, are sent as given."""
    line = request_line("a", seed=5, stream=True, stream_options={"include_usage": True})
    line["body"]["vendor_option"] = {"x": 1}
    line["url"] = "/chat/completions"
    no_model = request_line("b")
    del no_model["body"]["model"]
    inp = write_input(tmp_path / "in.jsonl", [line, no_model])
    out = tmp_path / "out.jsonl"
    assert batch(threaded_server, inp, out, "-m", "claude-sonnet-4-6", "-c", "1") == 0
    first, second = (r.body for r in threaded_server.requests)
    assert "stream" not in first and "stream_options" not in first
    assert first["seed"] == 5 and first["vendor_option"] == {"x": 1}
    assert second["model"] == "claude-sonnet-4-6"
    assert sorted(custom_ids(out)) == ["a", "b"]


@pytest.mark.usefixtures("env")
def test_http_error_is_an_answer_with_its_status(
    threaded_server: MockServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An HTTP error is written as OpenAI does: response.status_code and the error body; exit 1."""
    threaded_server.reply_error(400, "bad value", type="invalid_request_error", code="bad_value")
    inp = write_input(tmp_path / "in.jsonl", [request_line("bad"), request_line("good")])
    out = tmp_path / "out.jsonl"
    assert batch(threaded_server, inp, out, "-c", "1") == 1
    answers = {a["custom_id"]: a for a in read_output(out)}
    bad = answers["bad"]
    assert bad["error"] is None
    assert bad["response"]["status_code"] == 400
    assert bad["response"]["request_id"].startswith("mock-")
    assert bad["response"]["body"]["error"]["message"] == "bad value"
    assert bad["response"]["body"]["error"]["code"] == "bad_value"
    assert answers["good"]["response"]["status_code"] == 200
    assert "failed     1 (400: 1)" in capsys.readouterr().err


@pytest.mark.usefixtures("env")
def test_connection_failure_is_an_error_line(threaded_server: MockServer, tmp_path: Path) -> None:
    """A request that got no answer is written with response null and an error code."""
    threaded_server.reply_turn(content="fine")
    threaded_server.reply_drop()
    inp = write_input(tmp_path / "in.jsonl", [request_line("good"), request_line("dropped")])
    out = tmp_path / "out.jsonl"
    assert batch(threaded_server, inp, out, "--max-retries", "0", "-c", "1") == 1
    answers = {a["custom_id"]: a for a in read_output(out)}
    assert answers["good"]["error"] is None
    answer = answers["dropped"]
    assert answer["response"] is None
    assert answer["error"]["code"] == "connection_error"
    assert answer["error"]["message"]


@pytest.mark.usefixtures("env")
def test_key_never_appears_in_output_or_stderr(
    threaded_server: MockServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A server that echoes the key in an error gets it blanked out of the output and stderr."""
    threaded_server.reply_error(400, f"Bad request sent with key {FAKE_KEY}")
    inp = write_input(tmp_path / "in.jsonl", [request_line("a")])
    out = tmp_path / "out.jsonl"
    assert batch(threaded_server, inp, out) == 1
    captured = capsys.readouterr()
    assert FAKE_KEY not in out.read_text() and "***" in out.read_text()
    assert FAKE_KEY not in captured.err + captured.out


# --------------------------------------------------------------------------- early stop


RIGHT_KEY = "sk-the-right-key-0123456789"


def stop_line(err: str) -> str:
    """The line of the summary that says why the run stopped; checked to be the only one."""
    [line] = [line for line in err.splitlines() if "stopped after" in line]
    return line


@pytest.mark.usefixtures("env")
def test_refused_key_stops_the_batch_and_a_rerun_resumes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a refused key the run stops after one wave, writes nothing, and a rerun resumes all."""
    inp = write_input(tmp_path / "in.jsonl", [request_line(f"r{i}") for i in range(320)])
    out = tmp_path / "out.jsonl"
    with serve_in_thread(MockServer(api_key=RIGHT_KEY)) as server:
        started = time.monotonic()
        assert batch(server, inp, out, "-c", "16") == 3
        elapsed = time.monotonic() - started
        sent = len(server.requests)
        assert sent <= 16 and elapsed < 5
        assert not out.exists()
        err = capsys.readouterr().err
        line = stop_line(err)
        assert f"stopped after {sent} request(s)" in line
        assert "refused with 401: Invalid API key" in line
        assert "not run    320 (fix the cause, then rerun" in err

        monkeypatch.setenv("COMETAPI_KEY", RIGHT_KEY)
        assert batch(server, inp, out, "-c", "16") == 0
        assert len(server.requests) == sent + 320
    assert sorted(custom_ids(out)) == sorted(f"r{i}" for i in range(320))


@pytest.mark.usefixtures("env")
def test_unreachable_host_stops_the_batch_and_a_rerun_resumes(
    threaded_server: MockServer,
    closed_port: int,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Against a closed port the run stops at once, writes nothing; a rerun elsewhere resumes."""
    inp = write_input(tmp_path / "in.jsonl", [request_line(f"r{i}") for i in range(320)])
    out = tmp_path / "out.jsonl"
    url = f"http://127.0.0.1:{closed_port}/v1"
    started = time.monotonic()
    assert cli.main(["batch", str(inp), "-o", str(out), "--base-url", url, "-c", "16"]) == 3
    assert time.monotonic() - started < 5
    assert not out.exists()
    line = stop_line(capsys.readouterr().err)
    assert "no request so far got an answer: Could not connect" in line
    assert str(closed_port) in line
    sent = int(line.split("stopped after ")[1].split()[0])
    assert 1 <= sent <= 16

    assert batch(threaded_server, inp, out, "-c", "16") == 0
    assert sorted(custom_ids(out)) == sorted(f"r{i}" for i in range(320))


@pytest.mark.usefixtures("env")
def test_same_client_error_on_the_first_lines_stops_the_batch(
    threaded_server: MockServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same 4xx on the first 8 answers stops the run within concurrency + 7 requests."""
    inp = write_input(tmp_path / "in.jsonl", [request_line(f"r{i}") for i in range(320)])
    out = tmp_path / "out.jsonl"
    url = threaded_server.url.removesuffix("/v1")
    assert cli.main(["batch", str(inp), "-o", str(out), "--base-url", url, "-c", "16"]) == 3
    assert 8 <= len(threaded_server.requests) <= 16 + 7
    assert not out.exists()
    assert "the first 8 answers were all 404" in stop_line(capsys.readouterr().err)


@pytest.mark.usefixtures("env")
def test_keep_going_sends_every_line_and_names_the_common_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--keep-going answers every line; the summary quotes the most common error message."""
    inp = write_input(tmp_path / "in.jsonl", [request_line(f"r{i}") for i in range(40)])
    out = tmp_path / "out.jsonl"
    with serve_in_thread(MockServer(api_key=RIGHT_KEY)) as server:
        assert batch(server, inp, out, "-c", "8", "--keep-going") == 1
        assert len(server.requests) == 40
    assert len(custom_ids(out)) == 40
    err = capsys.readouterr().err
    assert "failed     40 (401: 40)" in err
    assert "most often (40): 401: Invalid API key" in err


@pytest.mark.usefixtures("env")
def test_summary_names_the_most_common_failure(
    threaded_server: MockServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Among failed lines of several kinds the summary quotes the message seen most often."""
    threaded_server.reply_turn(content="fine")
    for message in ["context too long", "bad value", "context too long"]:
        threaded_server.reply_error(400, message)
    inp = write_input(tmp_path / "in.jsonl", [request_line(f"r{i}") for i in range(4)])
    out = tmp_path / "out.jsonl"
    assert batch(threaded_server, inp, out, "-c", "1") == 1
    assert len(custom_ids(out)) == 4
    err = capsys.readouterr().err
    assert "failed     3 (400: 3)" in err and "most often (2): 400: context too long" in err


@pytest.mark.usefixtures("env")
def test_failures_that_stop_nothing_are_all_written(
    threaded_server: MockServer, tmp_path: Path
) -> None:
    """Failed answers held back while a stop was possible are written once it is not."""
    for i in range(12):
        threaded_server.reply_error(400, f"bad {i}", code=f"code_{i % 3}")
    inp = write_input(tmp_path / "in.jsonl", [request_line(f"r{i}") for i in range(30)])
    out = tmp_path / "out.jsonl"
    assert batch(threaded_server, inp, out, "-c", "2") == 1
    answers = read_output(out)
    assert len(answers) == 30
    assert sum(a["response"]["status_code"] == 400 for a in answers) == 12


# --------------------------------------------------------------------------- malformed input


MALFORMED: list[dict[str, Any] | str] = [
    request_line("a"),
    '{"custom_id": "x", "method": "POST",',
    "",
    request_line("b"),
    {**request_line("e"), "url": "/v1/embeddings"},
    {"method": "POST", "url": URL, "body": request_line("z")["body"]},
    request_line("a", "again"),
    {"custom_id": "m", "method": "POST", "url": URL, "body": {"model": MODEL}},
]


@pytest.mark.usefixtures("env")
def test_malformed_lines_are_reported_by_number_and_skipped(
    threaded_server: MockServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bad JSON, unsupported url, missing fields, repeated custom_id: named by line, skipped."""
    inp = write_input(tmp_path / "in.jsonl", MALFORMED)
    out = tmp_path / "out.jsonl"
    assert batch(threaded_server, inp, out) == 1
    assert sorted(custom_ids(out)) == ["a", "b"]
    err = capsys.readouterr().err
    for number, words in [
        (2, "not valid JSON"),
        (5, "'/v1/embeddings'"),
        (6, "custom_id"),
        (7, "repeats line 1"),
        (8, "messages"),
    ]:
        assert f"{inp}:{number}: " in err and words in err
    assert "malformed  5" in err


@pytest.mark.usefixtures("env")
def test_strict_stops_before_anything_is_sent(
    threaded_server: MockServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With --strict a malformed line is fatal (exit 2) and no request is made."""
    inp = write_input(tmp_path / "in.jsonl", MALFORMED)
    out = tmp_path / "out.jsonl"
    assert batch(threaded_server, inp, out, "--strict") == 2
    assert threaded_server.requests == []
    assert not out.exists()
    err = capsys.readouterr().err
    assert f"{inp}:2: " in err and f"{inp}:8: " in err and "nothing was sent" in err


@pytest.mark.usefixtures("env")
def test_usage_errors_exit_2(
    threaded_server: MockServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A missing input, the input as output, no key, or a bad concurrency: exit status 2."""
    inp = write_input(tmp_path / "in.jsonl", [request_line("a")])
    out = tmp_path / "out.jsonl"
    assert batch(threaded_server, tmp_path / "missing.jsonl", out) == 2
    assert batch(threaded_server, inp, inp) == 2
    assert batch(threaded_server, inp, out, "--concurrency", "0") == 2
    monkeypatch.delenv("COMETAPI_KEY")
    assert batch(threaded_server, inp, out) == 2
    assert threaded_server.requests == []


def test_mock_flag_runs_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """--mock answers from the built-in server and needs no key."""
    monkeypatch.delenv("COMETAPI_KEY", raising=False)
    inp = write_input(tmp_path / "in.jsonl", [request_line(f"r{i}") for i in range(3)])
    out = tmp_path / "out.jsonl"
    assert cli.main(["batch", str(inp), "-o", str(out), "--mock"]) == 0
    assert sorted(custom_ids(out)) == ["r0", "r1", "r2"]


# --------------------------------------------------------------------------- resume


@pytest.mark.usefixtures("env")
def test_rerun_skips_custom_ids_already_answered(
    threaded_server: MockServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A rerun sends only the lines not yet in the output and appends their answers."""
    inp = write_input(tmp_path / "in.jsonl", [request_line(f"r{i}") for i in range(3)])
    out = tmp_path / "out.jsonl"
    assert batch(threaded_server, inp, out) == 0
    write_input(inp, [request_line(f"r{i}") for i in range(5)])
    capsys.readouterr()
    assert batch(threaded_server, inp, out) == 0
    assert len(threaded_server.requests) == 5
    assert sorted(custom_ids(out)) == [f"r{i}" for i in range(5)]
    assert "skipped    3 already answered" in capsys.readouterr().err


@pytest.mark.usefixtures("env")
def test_failed_answers_keep_a_rerun_at_exit_1(
    threaded_server: MockServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A line answered with an error is not sent again, and the exit status still says 1."""
    threaded_server.reply_error(400, "no")
    inp = write_input(tmp_path / "in.jsonl", [request_line("a")])
    out = tmp_path / "out.jsonl"
    assert batch(threaded_server, inp, out) == 1
    assert batch(threaded_server, inp, out) == 1
    assert len(threaded_server.requests) == 1
    err = capsys.readouterr().err
    assert "(1 of them failed: --retry-failed sends those again)" in err


@pytest.mark.usefixtures("env")
def test_incomplete_last_line_is_removed(
    threaded_server: MockServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A last line cut short by a crash is removed, and its custom_id answered again."""
    inp = write_input(tmp_path / "in.jsonl", [request_line(f"r{i}") for i in range(2)])
    out = tmp_path / "out.jsonl"
    assert batch(threaded_server, inp, out) == 0
    whole = out.read_bytes()
    cut = json.dumps({"id": "batch_req_x", "custom_id": "r2", "response": None})[:30]
    out.write_bytes(whole + cut.encode())
    write_input(inp, [request_line(f"r{i}") for i in range(3)])
    assert batch(threaded_server, inp, out) == 0
    assert out.read_bytes().startswith(whole)
    assert sorted(custom_ids(out)) == ["r0", "r1", "r2"]
    assert "removed an incomplete last line" in capsys.readouterr().err


@pytest.mark.usefixtures("env")
def test_whole_last_line_without_newline_is_kept(
    threaded_server: MockServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A last line that lacks only its newline is kept (newline added), not answered again."""
    inp = write_input(tmp_path / "in.jsonl", [request_line("a")])
    out = tmp_path / "out.jsonl"
    assert batch(threaded_server, inp, out) == 0
    out.write_bytes(out.read_bytes().rstrip(b"\n"))
    assert batch(threaded_server, inp, out) == 0
    assert len(threaded_server.requests) == 1
    assert custom_ids(out) == ["a"]
    assert "added one" in capsys.readouterr().err


@pytest.mark.skipif(sys.platform == "win32", reason="the output lock uses flock")
@pytest.mark.usefixtures("env")
def test_second_run_on_the_same_output_is_refused(
    threaded_server: MockServer, tmp_path: Path
) -> None:
    """While one run holds the output, another one exits 2 instead of answering lines twice."""
    import fcntl

    inp = write_input(tmp_path / "in.jsonl", [request_line("a")])
    out = tmp_path / "out.jsonl"
    with out.open("ab") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        assert batch(threaded_server, inp, out) == 2
    assert threaded_server.requests == []


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.anyio
async def test_progress_line_redrawn_on_a_terminal(tmp_path: Path) -> None:
    """On a terminal the progress line (done/total, rate, ETA, 429s, tokens) is redrawn in place."""
    inp = write_input(tmp_path / "in.jsonl", [request_line(f"r{i}") for i in range(8)])
    stderr = _Terminal()
    async with (
        MockServer(latency=0.15) as server,
        AsyncCometAPI(FAKE_KEY, base_url=server.url) as client,
    ):
        options = BatchOptions(concurrency=2, stderr=stderr)
        summary = await run_batch(client, str(inp), str(tmp_path / "out.jsonl"), options=options)
    assert summary.exit_status == 0 and summary.succeeded == 8
    text = stderr.getvalue()
    assert "\rbatch " in text and "/8 " in text
    for part in ("/s", "ETA", "429s", "tokens"):
        assert part in text


# --------------------------------------------------------------------------- stopped mid-run


SUBPROCESS_KEY = "sk-subprocess-0123456789-fake"


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    """`aiocometapi mock-server` in a process of its own, each reply 20 ms late."""
    command = [
        sys.executable,
        "-m",
        "aiocometapi",
        "mock-server",
        "--port",
        "0",
        "--latency",
        "0.02",
    ]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert "listening on" in line, line
        yield line.split("listening on", 1)[1].strip()
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def start_batch(inp: Path, out: Path, url: str) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "aiocometapi",
        "batch",
        str(inp),
        "-o",
        str(out),
        "--base-url",
        url,
        "--concurrency",
        "8",
    ]
    env = {**os.environ, "COMETAPI_KEY": SUBPROCESS_KEY}
    env.pop("COMETAPI_BASE_URL", None)
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for_lines(out: Path, count: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if out.exists() and out.read_bytes().count(b"\n") >= count:
            return
        assert process.poll() is None, "the batch finished before it could be stopped"
        time.sleep(0.005)
    pytest.fail(f"fewer than {count} lines written in time")


def finish_and_check(inp: Path, out: Path, url: str, total: int) -> str:
    """Rerun to completion; every custom_id then appears exactly once, every line whole."""
    rerun = start_batch(inp, out, url)
    try:
        _, err = rerun.communicate(timeout=30)
    finally:
        if rerun.poll() is None:
            rerun.kill()
            rerun.wait()
    text = err.decode()
    assert rerun.returncode == 0, text
    ids = custom_ids(out)
    assert len(ids) == total and sorted(ids) == sorted(f"r{i}" for i in range(total))
    assert SUBPROCESS_KEY not in text and SUBPROCESS_KEY not in out.read_text()
    return text


@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_resume_after_a_stop_mid_run(server_url: str, tmp_path: Path, stop: int) -> None:
    """Killed (or Ctrl-C'd) mid-run then rerun: every custom_id answered exactly once, all valid."""
    total = 400
    lines = [request_line(f"r{i}", f"n {i}") for i in range(total)]
    inp = write_input(tmp_path / "in.jsonl", lines)
    out = tmp_path / "out.jsonl"
    process = start_batch(inp, out, server_url)
    try:
        wait_for_lines(out, 40, process)
        process.send_signal(stop)
        _, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    written = len(custom_ids(out))
    assert 40 <= written < total
    if stop == signal.SIGKILL:
        assert process.returncode == -signal.SIGKILL
    else:
        text = err.decode()
        assert process.returncode == 130, text
        assert "interrupted by SIGINT" in text and "not run" in text
        assert f"succeeded  {written}" in text
    text = finish_and_check(inp, out, server_url, total)
    assert f"skipped    {written} already answered" in text


@pytest.mark.usefixtures("env")
def test_retry_failed_replaces_failed_answers(
    threaded_server: MockServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--retry-failed sends failed lines again; each custom_id ends with one, good answer."""
    threaded_server.reply_error(400, "no")
    inp = write_input(tmp_path / "in.jsonl", [request_line(f"r{i}") for i in range(3)])
    out = tmp_path / "out.jsonl"
    assert batch(threaded_server, inp, out, "-c", "1") == 1
    first = read_output(out)
    [failed] = [a["custom_id"] for a in first if a["response"]["status_code"] != 200]
    lines = out.read_bytes().splitlines(keepends=True)
    kept = [line for line in lines if failed.encode() not in line]
    capsys.readouterr()

    assert batch(threaded_server, inp, out, "--retry-failed") == 0
    assert len(threaded_server.requests) == 4
    answers = read_output(out)
    assert sorted(a["custom_id"] for a in answers) == ["r0", "r1", "r2"]
    assert all(a["response"]["status_code"] == 200 for a in answers)
    assert out.read_bytes().startswith(b"".join(kept))  # the good answers, as they were
    assert "took out the failed answers of 1 custom_id(s)" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


@pytest.mark.usefixtures("env")
def test_retry_failed_with_nothing_failed_leaves_the_output_alone(
    threaded_server: MockServer, tmp_path: Path
) -> None:
    """With no failed answer in the output, --retry-failed rewrites nothing and sends nothing."""
    inp = write_input(tmp_path / "in.jsonl", [request_line("a")])
    out = tmp_path / "out.jsonl"
    assert batch(threaded_server, inp, out) == 0
    before = out.stat()
    assert batch(threaded_server, inp, out, "--retry-failed") == 0
    after = out.stat()
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (
        before.st_ino,
        before.st_size,
        before.st_mtime_ns,
    )
    assert len(threaded_server.requests) == 1


@pytest.mark.skipif(sys.platform == "win32", reason="the output lock uses flock")
def test_rewritten_output_is_locked(tmp_path: Path) -> None:
    """After taking failed answers out, the run holds the lock on the new file."""
    import fcntl

    from aiocometapi.batch.output import Output

    out = tmp_path / "out.jsonl"
    lines: list[dict[str, Any] | str] = [
        {"id": "1", "custom_id": "a", "response": {"status_code": 200, "body": {}}, "error": None},
        {"id": "2", "custom_id": "b", "response": {"status_code": 500, "body": {}}, "error": None},
    ]
    write_input(out, lines)
    os.chmod(out, 0o640)
    warnings: list[str] = []
    output = Output(str(out), warnings.append, retry_failed=True)
    try:
        assert output.done == {"a": True}
        assert custom_ids(out) == ["a"]
        assert out.stat().st_mode & 0o777 == 0o640
        with out.open("ab") as other, pytest.raises(BlockingIOError):
            fcntl.flock(other.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        output.close()
