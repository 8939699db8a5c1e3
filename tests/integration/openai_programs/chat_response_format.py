"""Structured Outputs through ``response_format`` given as a dict to ``create`` (async).

Source: github.com/openai/openai-python at commit e43b422,
src/openai/types/chat/completion_create_params.py, the ``response_format`` parameter:
``{"type": "json_schema", "json_schema": {...}}`` makes the answer match the schema.
Changed: the import.
"""

import asyncio
import json

from aiocometapi import AsyncCometAPI as AsyncOpenAI

client = AsyncOpenAI()


async def main() -> None:
    completion = await client.chat.completions.create(
        model="gpt-5.5",
        messages=[{"role": "user", "content": "Name a city and its country."}],
        response_format={
            "type": "json_schema",
            "json_schema": {
                "name": "place",
                "strict": True,
                "schema": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
                    "required": ["city", "country"],
                    "additionalProperties": False,
                },
            },
        },
    )
    place = json.loads(completion.choices[0].message.content or "{}")
    print(sorted(place))


asyncio.run(main())
