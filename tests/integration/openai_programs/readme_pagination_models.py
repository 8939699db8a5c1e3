"""openai-python README.md, "Pagination" (sync, then async), over the model list.

Source: github.com/openai/openai-python, README.md at commit e43b422. Changed: the imports, and
the list is ``client.models.list()`` (the README lists fine-tuning jobs, which CometAPI does not
serve; the model list comes in one page, so it takes no ``limit``).
"""

import asyncio

from aiocometapi import AsyncCometAPI as AsyncOpenAI
from aiocometapi import CometAPI as OpenAI

client = OpenAI()

all_models = []
for model in client.models.list():
    all_models.append(model.id)
print(all_models)


async def main() -> None:
    client = AsyncOpenAI()
    all_models = []
    async for model in client.models.list():
        all_models.append(model.id)
    print(all_models)

    first_page = await client.models.list()
    for model in first_page.data:
        print(model.id)


asyncio.run(main())
