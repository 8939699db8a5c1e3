"""The command line, run the way a user runs it."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest

from aiocometapi.cli import main

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
        [sys.executable, "-m", "aiocometapi", "chat", "--base-url", "http://127.0.0.1:9/v1",
         "--max-retries", "0", "hi"],
        capture_output=True, text=True, timeout=60,
        env={"COMETAPI_KEY": SECRET, "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("aiocometapi: error: APIConnectionError")
    assert result.stderr.count("\n") == 1
    assert SECRET not in result.stderr and "Traceback" not in result.stderr
