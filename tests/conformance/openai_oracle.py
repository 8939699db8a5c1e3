"""Run openai-python's stream accumulator over corpus streams; print its results as JSON.

``python openai_oracle.py NAME...`` serves each ``streams/NAME.sse`` from a raw local server
to ``openai.AsyncOpenAI``, feeds the chunks to ``ChatCompletionStreamState`` and prints
``{name: completion in the corpus's expected shape, or {"raises": type, "message": text}}``.
The conformance test runs it in a child process: importing openai and pydantic makes every
later ``gc.collect()`` of the test session (one per test) markedly slower.
"""

from __future__ import annotations

import asyncio
import json
import sys
import warnings
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent))  # tests/, for rawserver

import openai  # noqa: E402
from openai.lib.streaming.chat import ChatCompletionStreamState  # noqa: E402

from rawserver import LAST_CHUNK, Conn, RawServer, chunk, sse_head  # noqa: E402


def normalised(snapshot: Any) -> dict[str, Any]:
    """openai-python's accumulated completion in the expected value's shape."""
    usage = snapshot.usage
    choices = []
    for choice in snapshot.choices:
        message = choice.message
        extra = message.model_extra or {}
        calls = message.tool_calls
        choices.append({
            "index": choice.index,
            "finish_reason": choice.finish_reason,
            "role": message.role,
            "content": message.content,
            "refusal": message.refusal,
            "reasoning_content": extra.get("reasoning_content"),
            "reasoning": extra.get("reasoning"),
            "tool_calls": None if not calls else [
                {"id": call.id, "type": call.type, "name": call.function.name,
                 "arguments": call.function.arguments}
                for call in calls
            ],
        })  # fmt: skip
    return {
        "id": snapshot.id,
        "model": snapshot.model,
        "created": snapshot.created,
        "choices": choices,
        "usage": None if usage is None else {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
        },
    }  # fmt: skip


async def accumulate(body: bytes) -> dict[str, Any]:
    """The completion openai-python accumulates from ``body`` (before its parse step, which
    refuses finish_reason "length"), or what it raised."""

    async def script(conn: Conn) -> None:
        await conn.request()
        await conn.send(sse_head() + chunk(body) + LAST_CHUNK)
        await conn.wait(5)

    async with RawServer(script) as server:
        client = openai.AsyncOpenAI(api_key="sk-oracle", base_url=server.url, max_retries=0)
        try:
            state: Any = ChatCompletionStreamState()
            stream = await client.chat.completions.create(
                model="any", messages=[{"role": "user", "content": "hi"}], stream=True
            )
            async for item in stream:
                state.handle_chunk(item)
            return normalised(state.current_completion_snapshot)
        except Exception as exc:  # what openai-python raises is a result here
            return {"raises": type(exc).__name__, "message": str(exc)}
        finally:
            await client.close()


async def main(names: list[str]) -> None:
    results = {}
    for name in names:
        results[name] = await accumulate((HERE / "streams" / f"{name}.sse").read_bytes())
    print(json.dumps(results))


if __name__ == "__main__":
    warnings.simplefilter("ignore")  # pydantic's serializer warnings on off-type content
    asyncio.run(main(sys.argv[1:]))
