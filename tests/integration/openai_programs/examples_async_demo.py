"""openai-python examples/async_demo.py (async): a module-level client streaming in asyncio.run.

Source: github.com/openai/openai-python, examples/async_demo.py at commit e43b422.
Changed: the import.
"""

import asyncio

from aiocometapi import AsyncCometAPI as AsyncOpenAI

# the key comes from the environment
client = AsyncOpenAI()


async def main() -> None:
    stream = await client.chat.completions.create(
        model="gpt-5.5",
        messages=[
            {
                "role": "user",
                "content": "Reply that this is a test",
            },
        ],
        stream=True,
    )
    async for chunk in stream:
        if not chunk.choices:
            continue

        print(chunk.choices[0].delta.content, end="")
    print()


asyncio.run(main())
