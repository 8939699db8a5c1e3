"""The conformance corpus: streams recorded from real providers, replayed through the SDK.

Each ``streams/NAME.sse`` holds a response body as recorded (sources in ``streams/NAME.json``
and README.md). A raw socket server sends it whole and at seeded random splits, and the
completion ``final()`` assembles is compared field by field with the expected value written
beside it. openai-python's own accumulator, fed the same bytes, is a second oracle: where it is
right it must agree; where this SDK differs on purpose, the JSON says why and the test asserts
both results.
"""

from __future__ import annotations

import importlib.util
import json
import random
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from aiocometapi import AsyncCometAPI, StreamError
from aiocometapi.types import ChatCompletion
from conftest import FAKE_KEY, user
from rawserver import LAST_CHUNK, Conn, RawServer, chunk, sse_head

pytestmark = pytest.mark.anyio

STREAMS = Path(__file__).parent / "streams"
NAMES = sorted(path.stem for path in STREAMS.glob("*.sse"))
PIECE_SIZES = (1, 2, 3, 5, 8, 13, 21, 64, 200, 1460, 4096)


def body_of(name: str) -> bytes:
    return (STREAMS / f"{name}.sse").read_bytes()


def meta_of(name: str) -> dict[str, Any]:
    meta: dict[str, Any] = json.loads((STREAMS / f"{name}.json").read_text("utf-8"))
    return meta


def random_pieces(body: bytes, seed: str) -> list[bytes]:
    """``body`` cut at random points, the same for the same seed."""
    rng = random.Random(seed)
    pieces, at = [], 0
    while at < len(body):
        size = rng.choice(PIECE_SIZES)
        pieces.append(body[at : at + size])
        at += size
    return pieces


def normalised(completion: ChatCompletion) -> dict[str, Any]:
    """The fields the corpus states, in the expected value's shape."""
    usage = completion.usage
    return {
        "id": completion.id,
        "model": completion.model,
        "created": completion.created,
        "choices": [
            {
                "index": choice.index,
                "finish_reason": choice.finish_reason,
                "role": choice.message.role,
                "content": choice.message.content,
                "refusal": choice.message.refusal,
                "reasoning_content": choice.message.reasoning_content,
                "reasoning": choice.message.reasoning,
                "tool_calls": None if not choice.message.tool_calls else [
                    {"id": call.id, "type": call.type, "name": call.function.name,
                     "arguments": call.function.arguments}
                    for call in choice.message.tool_calls
                ],
            }
            for choice in completion.choices
        ],
        "usage": None if usage is None else {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
        },
    }  # fmt: skip


def replaying(*bodies: Sequence[bytes]) -> RawServer:
    """A server that answers the n-th request (on whatever connection) with ``bodies[n]``,
    each piece a chunk of the chunked body."""
    queue = list(bodies)

    async def script(conn: Conn) -> None:
        while queue and await conn.request() is not None:
            ok = await conn.send(sse_head())
            for piece in queue.pop(0):
                ok = ok and (not piece or await conn.send(chunk(piece)))
            if not (ok and await conn.send(LAST_CHUNK)):
                return
        await conn.wait(5)

    return RawServer(then=script)


async def replay(*bodies: Sequence[bytes]) -> list[ChatCompletion | StreamError]:
    """What aiocometapi makes of each body: the final completion, or the StreamError raised."""
    outcomes: list[ChatCompletion | StreamError] = []
    async with (
        replaying(*bodies) as server,
        AsyncCometAPI(FAKE_KEY, base_url=server.url, max_retries=0) as client,
    ):
        for _ in bodies:
            stream = await client.chat.completions.create(
                model="any", messages=[user("hi")], stream=True
            )
            async with stream:
                try:
                    outcomes.append(await stream.final())
                except StreamError as exc:
                    outcomes.append(exc)
    return outcomes


def check(name: str, outcome: ChatCompletion | StreamError) -> None:
    expected = meta_of(name)["expected"]
    if "error" in expected:
        assert isinstance(outcome, StreamError), f"{name}: no StreamError, got {outcome!r}"
        assert expected["error"]["message"] in str(outcome)
        assert outcome.code == expected["error"]["code"]
        assert outcome.partial is not None
        assert normalised(outcome.partial) == expected["partial"]
    else:
        assert not isinstance(outcome, StreamError), f"{name}: {outcome!r}"
        assert normalised(outcome) == expected


def test_corpus_size_and_sources() -> None:
    """The corpus holds at least 40 streams, each naming where its recording comes from."""
    assert len(NAMES) >= 40, NAMES
    assert sorted(path.stem for path in STREAMS.glob("*.json")) == NAMES
    for name in NAMES:
        meta = meta_of(name)
        assert meta["about"], name
        source = meta["source"]
        assert source["repository"].count("/") == 1, name
        assert source["path"] and source["where"] and source["body"], name
        assert len(source["commit"]) == 40 and int(source["commit"], 16) >= 0, name


@pytest.mark.parametrize("name", NAMES)
async def test_replayed_whole_and_at_random_splits(name: str) -> None:
    """A recorded stream assembles into the completion it recorded, sent in one piece and cut
    at random points (seeded per stream)."""
    body = body_of(name)
    whole, split = await replay([body], random_pieces(body, name))
    check(name, whole)
    check(name, split)


# --------------------------------------------------------------------------- openai-python


@pytest.fixture(scope="module")
def openai_results() -> dict[str, Any]:
    """openai-python's result for every stream, from one child process (see openai_oracle)."""
    if importlib.util.find_spec("openai") is None:  # found, not imported: see openai_oracle
        pytest.skip("openai-python (the bench extra) is the second oracle")
    done = subprocess.run(
        [sys.executable, str(Path(__file__).parent / "openai_oracle.py"), *NAMES],
        capture_output=True,
        check=True,
        timeout=300,
    )
    results: dict[str, Any] = json.loads(done.stdout)
    return results


def with_values(value: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``value`` (a deep copy) with each dotted path ("choices.0.role") set as in ``changes``."""
    result: dict[str, Any] = json.loads(json.dumps(value))
    for path, new in changes.items():
        parent, _, last = path.rpartition(".")
        target = at(result, parent) if parent else result
        target[int(last) if isinstance(target, list) else last] = new
    return result


def at(value: Any, path: str) -> Any:
    for step in path.split("."):
        value = value[int(step)] if isinstance(value, list) else value[step]
    return value


@pytest.mark.parametrize("name", NAMES)
async def test_openai_python_agrees_or_differs_on_purpose(
    name: str, openai_results: dict[str, Any]
) -> None:
    """openai-python, fed the same bytes, gives the expected completion; where this SDK differs
    on purpose (a role joined into "assistantassistant", an Azure preamble's empty header, tool
    calls indexed from 1 or without an index) its own result is asserted beside ours."""
    meta = meta_of(name)
    expected = meta["expected"]
    theirs = openai_results[name]
    note = meta.get("openai")
    if note is None:
        assert theirs == expected
    elif "raises" in note:
        assert theirs.get("raises") == note["raises"], theirs
        assert note["message"] in theirs["message"]
        (ours,) = await replay([body_of(name)])
        check(name, ours)
    else:
        assert theirs == with_values(expected, note["theirs"])
        (ours,) = await replay([body_of(name)])
        assert isinstance(ours, ChatCompletion)
        for path, value in note["theirs"].items():
            assert at(normalised(ours), path) == at(expected, path) != value, path
