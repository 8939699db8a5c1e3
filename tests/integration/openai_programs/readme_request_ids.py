"""openai-python README.md, "Request IDs" (async): ``_request_id`` on an answer, and
``request_id`` on the error of a failed request.

Source: github.com/openai/openai-python, README.md at commit e43b422. Changed: the imports, and
the first call is a chat completion (the README's is the Responses API, which is not served).
"""

import asyncio

import aiocometapi as openai
from aiocometapi import AsyncCometAPI as AsyncOpenAI

client = AsyncOpenAI()


async def main() -> None:
    response = await client.chat.completions.create(
        model="gpt-5.5",
        messages=[{"role": "user", "content": "Reply 'this is a test'."}],
    )
    print(response._request_id)

    try:
        completion = await client.chat.completions.create(
            messages=[{"role": "user", "content": "Reply that this is a test"}], model="gpt-5.5"
        )
        print(completion.choices[0].message.content)
    except openai.APIStatusError as exc:
        print(exc.request_id)
        raise exc


asyncio.run(main())
