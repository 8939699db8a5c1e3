"""openai-python README.md, "Async usage" > "With aiohttp" (async).

Source: github.com/openai/openai-python, README.md at commit e43b422. Changed: the import, and
``http_client=DefaultAioHttpClient()`` is left out: aiocometapi runs on aiohttp already.
"""

import asyncio
import os

from aiocometapi import AsyncCometAPI as AsyncOpenAI


async def main() -> None:
    async with AsyncOpenAI(
        api_key=os.environ.get("OPENAI_API_KEY"),
    ) as client:
        chat_completion = await client.chat.completions.create(
            messages=[
                {
                    "role": "user",
                    "content": "Reply that this is a test",
                }
            ],
            model="gpt-5.5",
        )
        print(chat_completion.choices[0].message.content)


asyncio.run(main())
