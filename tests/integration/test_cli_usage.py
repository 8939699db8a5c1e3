"""The command line shows usage: batch budgets, tokens and cost; chat --usage."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from aiocometapi import cli
from aiocometapi.testing import MockServer
from conftest import FAKE_KEY

MODEL = "gpt-5.4-mini"


def _input(path: Path, count: int) -> Path:
    with path.open("w") as file:
        for i in range(count):
            body = {
                "model": MODEL,
                "messages": [{"role": "user", "content": f"question {i}"}],
                "max_tokens": 20,
            }
            line = {
                "custom_id": f"r{i}",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": body,
            }
            file.write(json.dumps(line) + "\n")
    return path


def _ids(path: Path) -> list[str]:
    return [json.loads(line)["custom_id"] for line in path.read_text().splitlines()]


def _prices(path: Path) -> Path:
    path.write_text(json.dumps({MODEL: {"input": 1_000_000.0, "output": 1_000_000.0}}))
    return path


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMETAPI_KEY", FAKE_KEY)
    monkeypatch.delenv("COMETAPI_BASE_URL", raising=False)


def _batch(server: MockServer, inp: Path, out: Path, *flags: str) -> int:
    return cli.main(["batch", str(inp), "-o", str(out), "--base-url", server.url, "-c", "4",
                     *flags])  # fmt: skip


@pytest.mark.usefixtures("env")
def test_a_batch_stops_at_its_token_budget_and_a_rerun_resumes(
    threaded_server: MockServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--max-tokens-total stops sending; the lines not sent stay unanswered; a rerun ends them."""
    inp, out = _input(tmp_path / "in.jsonl", 30), tmp_path / "out.jsonl"
    assert _batch(threaded_server, inp, out, "--max-tokens-total", "60") == 1
    err = capsys.readouterr().err
    answered = _ids(out)
    assert 0 < len(answered) < 30
    assert len(threaded_server.requests) == len(answered)
    assert f"stopped at its budget after {len(answered)} request(s)" in err
    assert "max_tokens_total=60 reached" in err
    assert f"not run    {30 - len(answered)}" in err
    assert _batch(threaded_server, inp, out) == 0
    assert sorted(_ids(out)) == sorted(f"r{i}" for i in range(30))


@pytest.mark.usefixtures("env")
def test_a_batch_shows_tokens_and_cost_with_a_price_file(
    threaded_server: MockServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With --prices the summary shows the run's tokens and their cost."""
    inp, out = _input(tmp_path / "in.jsonl", 5), tmp_path / "out.jsonl"
    prices = _prices(tmp_path / "prices.json")
    assert _batch(threaded_server, inp, out, "--prices", str(prices)) == 0
    err = capsys.readouterr().err
    tokens = sum(
        json.loads(line)["response"]["body"]["usage"]["total_tokens"]
        for line in out.read_text().splitlines()
    )
    assert tokens > 0
    assert f"tokens     {tokens:,}" in err
    assert f"cost       {float(tokens):.6g}" in err


@pytest.mark.usefixtures("env")
def test_a_batch_stops_at_its_cost_budget(
    threaded_server: MockServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--max-cost with --prices stops sending at the cost budget."""
    inp, out = _input(tmp_path / "in.jsonl", 30), tmp_path / "out.jsonl"
    prices = _prices(tmp_path / "prices.json")
    assert _batch(threaded_server, inp, out, "--prices", str(prices), "--max-cost", "100") == 1
    err = capsys.readouterr().err
    assert "max_cost=100 reached" in err
    assert 0 < len(_ids(out)) < 30


@pytest.mark.usefixtures("env")
def test_max_cost_without_prices_is_a_usage_error(
    threaded_server: MockServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--max-cost without --prices exits 2 before sending anything."""
    inp, out = _input(tmp_path / "in.jsonl", 3), tmp_path / "out.jsonl"
    assert _batch(threaded_server, inp, out, "--max-cost", "1") == 2
    assert "--max-cost needs --prices" in capsys.readouterr().err
    assert threaded_server.requests == []


@pytest.mark.parametrize("stream", [True, False])
def test_chat_usage_prints_tokens_and_cost(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], stream: bool
) -> None:
    """chat --usage prints each answer's tokens (and its cost with --prices) on stderr."""
    prices = _prices(tmp_path / "prices.json")
    flags: list[Any] = [] if stream else ["--no-stream"]
    assert cli.main(["chat", "--mock", "-m", MODEL, "--usage", "--prices", str(prices), *flags,
                     "Hello there"]) == 0  # fmt: skip
    captured = capsys.readouterr()
    [line] = [line for line in captured.err.splitlines() if line.startswith("usage:")]
    assert "prompt" in line and "completion" in line and "tokens, cost " in line
    assert "usage:" not in captured.out
