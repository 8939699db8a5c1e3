"""The command line, run the way a user runs it."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest

from aiocometapi import __version__
from aiocometapi.cli import main
from aiocometapi.testing import MockServer

SECRET = "sk-cli-secret-0123456789"


def test_chat_mock_streams_the_reply(capsys: pytest.CaptureFixture[str]) -> None:
    """`chat --mock "Hello"` prints the mock's reply and exits 0."""
    assert main(["chat", "--mock", "Hello"]) == 0
    assert capsys.readouterr().out == "Echo: Hello\n"


def test_chat_no_stream_with_system(capsys: pytest.CaptureFixture[str]) -> None:
    """--no-stream waits for the whole reply; --system is accepted."""
    assert main(["chat", "--mock", "--no-stream", "--system", "be brief", "Hi there"]) == 0
    assert capsys.readouterr().out == "Echo: Hi there\n"


def test_interactive_chat_keeps_history(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a prompt, each line from stdin is a turn of one conversation."""
    monkeypatch.setattr(sys, "stdin", io.StringIO("first\n\nsecond\n/exit\nnever\n"))
    assert main(["chat", "--mock"]) == 0
    assert capsys.readouterr().out == "Echo: first\nEcho: second\n"


def test_models_mock(capsys: pytest.CaptureFixture[str]) -> None:
    """`models --mock` lists one model id per line."""
    assert main(["models", "--mock"]) == 0
    assert "gpt-5.4-mini" in capsys.readouterr().out.splitlines()


def test_missing_key_is_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a key the CLI prints one error line naming COMETAPI_KEY and exits 1."""
    monkeypatch.delenv("COMETAPI_KEY", raising=False)
    assert main(["chat", "hi"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "COMETAPI_KEY" in err and "Traceback" not in err


def test_errors_never_show_the_key() -> None:
    """A failing request prints one line without traceback or key, via `python -m`."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "aiocometapi",
            "chat",
            "--base-url",
            "http://127.0.0.1:9/v1",
            "--max-retries",
            "0",
            "hi",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={"COMETAPI_KEY": SECRET, "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("aiocometapi: error: APIConnectionError")
    assert result.stderr.count("\n") == 1
    assert SECRET not in result.stderr and "Traceback" not in result.stderr


# --------------------------------------------------------------------------- for people


def request_line(custom_id: str, **body: Any) -> str:
    body = {"model": "gpt-5.4-mini", "messages": [{"role": "user", "content": "hi"}], **body}
    line = {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body}
    return json.dumps(line) + "\n"


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_version() -> None:
    """`aiocometapi --version` prints the package's version with Python's and aiohttp's."""
    result = subprocess.run(
        [sys.executable, "-m", "aiocometapi", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0
    assert result.stdout.startswith(f"aiocometapi {__version__} (")
    assert "aiohttp " in result.stdout and "msgspec " in result.stdout


def test_warning_is_one_plain_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A compat warning shows as `warning: ...` on one line, with no file path or class name."""
    inp = tmp_path / "in.jsonl"
    inp.write_text(request_line("a", model="claude-sonnet-4-6", n=2))
    original = warnings.showwarning
    assert main(["batch", str(inp), "-o", str(tmp_path / "out.jsonl"), "--mock", "-q"]) == 0
    assert warnings.showwarning is original  # the library keeps Python's own display
    err = capsys.readouterr().err
    [line] = [line for line in err.splitlines() if "n=2" in line]
    assert line.startswith("warning: n=2: Claude models accept n=1 only")
    assert ".py" not in err and "CompatibilityWarning" not in err


def test_batch_compat_strict_refuses_without_sending(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`batch --compat strict` answers a line the model family refuses with an error, unsent."""
    inp = tmp_path / "in.jsonl"
    inp.write_text(request_line("bad", model="claude-sonnet-4-6", n=2) + request_line("good"))
    out = tmp_path / "out.jsonl"
    assert main(["batch", str(inp), "-o", str(out), "--mock", "-q", "--compat", "strict"]) == 1
    answers = {a["custom_id"]: a for a in map(json.loads, out.read_text().splitlines())}
    assert answers["good"]["response"]["status_code"] == 200
    assert answers["bad"]["response"] is None
    assert answers["bad"]["error"]["code"] == "invalid_request"
    assert "compat='strict'" in answers["bad"]["error"]["message"]
    assert "warning:" not in capsys.readouterr().err


def test_batch_reads_stdin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`batch - -o OUT` reads the requests from standard input."""
    data = "".join(request_line(f"r{i}") for i in range(3)).encode()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    out = tmp_path / "out.jsonl"
    assert main(["batch", "-", "-o", str(out), "--mock", "-q"]) == 0
    ids = sorted(json.loads(line)["custom_id"] for line in out.read_text().splitlines())
    assert ids == ["r0", "r1", "r2"]
    assert "lines      3 in <stdin>" in capsys.readouterr().err


def test_batch_directory_input_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A directory given as the input is called a directory, with exit status 2."""
    assert main(["batch", str(tmp_path), "-o", str(tmp_path / "out.jsonl"), "--mock"]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path} is a directory" in err and err.count("\n") == 1
    assert not (tmp_path / "out.jsonl").exists()


def test_interactive_chat_says_how_to_leave_and_quit_is_a_command(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a terminal chat shows how to leave; `quit` alone leaves instead of being sent."""
    monkeypatch.setattr(sys, "stdin", _Terminal("first\n/help\nquit\nnever\n"))
    assert main(["chat", "--mock"]) == 0
    out = capsys.readouterr().out
    assert out.count("Type /quit or press Ctrl-D to leave") == 2
    assert "Echo: first" in out
    assert "Echo: quit" not in out and "never" not in out


@pytest.mark.parametrize("word", ["/exit", "exit", "QUIT"])
def test_chat_leave_words(
    word: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """/exit, exit and quit (any case) end the chat; nothing after them is sent."""
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"one\n{word}\ntwo\n"))
    assert main(["chat", "--mock"]) == 0
    assert capsys.readouterr().out == "Echo: one\n"


def test_base_url_without_v1_gets_a_hint(
    threaded_server: MockServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A 404 from a base URL without /v1 suggests the URL with /v1."""
    monkeypatch.setenv("COMETAPI_KEY", SECRET)
    base = threaded_server.url.removesuffix("/v1")
    assert main(["chat", "--base-url", base, "--max-retries", "0", "hi"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("aiocometapi: error: NotFoundError (404)")
    assert err.rstrip().endswith(f"(did you mean {base}/v1?)") and err.count("\n") == 1


def test_batch_stop_on_404_suggests_v1(
    threaded_server: MockServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A batch stopped by 404s from a base URL without /v1 says which URL was meant."""
    monkeypatch.setenv("COMETAPI_KEY", SECRET)
    inp = tmp_path / "in.jsonl"
    inp.write_text("".join(request_line(f"r{i}") for i in range(40)))
    base = threaded_server.url.removesuffix("/v1")
    assert main(["batch", str(inp), "-o", str(tmp_path / "o.jsonl"), "--base-url", base]) == 3
    [line] = [x for x in capsys.readouterr().err.splitlines() if "stopped after" in x]
    assert "all 404" in line and line.endswith(f"(did you mean {base}/v1?)")


def test_mock_server_help_shows_the_default_port(capsys: pytest.CaptureFixture[str]) -> None:
    """`mock-server --help` says which port it listens on by default."""
    with pytest.raises(SystemExit) as exited:
        main(["mock-server", "--help"])
    assert exited.value.code == 0
    assert "(default: 8000)" in capsys.readouterr().out


@pytest.mark.parametrize("command", [["chat", "hi"], ["models"], ["batch", "x.jsonl", "-o", "y"]])
def test_missing_key_names_the_ways_to_give_one(
    command: list[str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """Without a key the message names COMETAPI_KEY, --api-key and --mock, not library calls."""
    monkeypatch.delenv("COMETAPI_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.jsonl").write_text(request_line("a"))
    assert main(command) == (2 if command[0] == "batch" else 1)
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    for words in ("COMETAPI_KEY", "--api-key", "--mock"):
        assert words in err
    assert "AsyncCometAPI" not in err and "api_key=" not in err
    assert not (tmp_path / "y").exists()


def test_api_key_flag(
    threaded_server: MockServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """--api-key is sent as the bearer token when COMETAPI_KEY is not set."""
    monkeypatch.delenv("COMETAPI_KEY", raising=False)
    assert main(["chat", "--api-key", SECRET, "--base-url", threaded_server.url, "hi"]) == 0
    assert capsys.readouterr().out == "Echo: hi\n"
    assert threaded_server.requests[-1].headers["authorization"] == f"Bearer {SECRET}"


def test_batch_against_a_mock_server_that_wants_another_key(tmp_path: Path) -> None:
    """`mock-server --api-key` refuses other keys; `batch - < file` then stops in one wave."""
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aiocometapi",
            "mock-server",
            "--port",
            "0",
            "--api-key",
            "sk-the-right-key-0123",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().split("listening on", 1)[1].strip()
        out = tmp_path / "out.jsonl"
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "aiocometapi",
                "batch",
                "-",
                "-o",
                str(out),
                "-c",
                "16",
                "--base-url",
                url,
                "-q",
            ],
            input="".join(request_line(f"r{i}") for i in range(320)),
            capture_output=True,
            text=True,
            timeout=60,
            env={"COMETAPI_KEY": SECRET, "PATH": "/usr/bin:/bin"},
        )
    finally:
        server.terminate()
        server.wait(10)
        if server.stdout is not None:
            server.stdout.close()
    assert result.returncode == 3, result.stderr
    first = result.stderr.splitlines()[0]
    assert first.startswith("aiocometapi batch: stopped after ")
    assert first.endswith("refused with 401: Invalid API key")
    assert int(first.split("stopped after ")[1].split()[0]) <= 16
    assert "not run    320" in result.stderr and not out.exists()
    assert SECRET not in result.stderr
