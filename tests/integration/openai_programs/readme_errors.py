"""openai-python README.md, "Handling errors" (sync).

Source: github.com/openai/openai-python, README.md at commit e43b422. Changed: the imports, the
call (a chat completion: the README's fine-tuning job is not an endpoint CometAPI serves), and
``e.response`` (an httpx response there) read as ``e.headers`` and ``e.body``.
"""

import aiocometapi as openai
from aiocometapi import CometAPI as OpenAI

client = OpenAI()

try:
    client.chat.completions.create(
        model="gpt-5.5",
        messages=[{"role": "user", "content": "hi"}],
    )
except openai.APIConnectionError as e:
    print("The server could not be reached")
    print(e.__cause__)  # the lower-level exception, if one is chained
except openai.RateLimitError:
    print("A 429 status code was received; we should back off a bit.")
except openai.APIStatusError as e:
    print("Another non-200-range status code was received")
    print(e.status_code)
    print(e.headers, e.body)
