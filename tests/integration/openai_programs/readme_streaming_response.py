"""openai-python README.md, ".with_streaming_response" (sync), as aiocometapi writes it.

Source: github.com/openai/openai-python, README.md at commit e43b422. Changed: the import, and
``with_streaming_response.create(...)`` with ``iter_lines()`` over the raw body becomes
``create(..., stream=True)``, whose stream has the headers at once and gives parsed chunks.
"""

from aiocometapi import CometAPI as OpenAI

client = OpenAI()

with client.chat.completions.create(
    messages=[
        {
            "role": "user",
            "content": "Reply that this is a test",
        }
    ],
    model="gpt-5.5",
    stream=True,
) as response:
    print(response.headers.get("X-My-Header"))

    for chunk in response:
        print(chunk.to_json(indent=None))
