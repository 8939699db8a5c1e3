"""openai-python examples/streaming.py (sync, then async): one chunk taken by hand, then the
rest, each printed with ``to_json()``.

Source: github.com/openai/openai-python, examples/streaming.py at commit e43b422.
Changed: the import, and the calls are chat completions (the example uses the legacy
Completions API, ``completions.create(prompt=...)``, which aiocometapi does not have).
"""

import asyncio

from aiocometapi import AsyncCometAPI as AsyncOpenAI
from aiocometapi import CometAPI as OpenAI


def sync_main() -> None:
    client = OpenAI()
    response = client.chat.completions.create(
        model="gpt-5.5",
        messages=[{"role": "user", "content": "1,2,3,"}],
        max_completion_tokens=5,
        stream=True,
    )

    # One chunk by hand...
    first = next(response)
    print(f"got response data: {first.to_json()}")

    # ... then every other one, until the stream ends.
    for data in response:
        print(data.to_json())


async def async_main() -> None:
    client = AsyncOpenAI()
    response = await client.chat.completions.create(
        model="gpt-5.5",
        messages=[{"role": "user", "content": "1,2,3,"}],
        max_completion_tokens=5,
        stream=True,
    )

    # One chunk by hand (anext(response) does the same)...
    first = await response.__anext__()
    print(f"got response data: {first.to_json()}")

    # ... then every other one, until the stream ends.
    async for data in response:
        print(data.to_json())


sync_main()

asyncio.run(async_main())
