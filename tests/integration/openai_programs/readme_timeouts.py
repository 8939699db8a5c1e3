"""openai-python README.md, "Timeouts" (sync): a client-wide timeout, a finer one, and one per
request through ``with_options``.

Source: github.com/openai/openai-python, README.md at commit e43b422. Changed: the import, and
``httpx2.Timeout(60.0, read=5.0, write=10.0, connect=2.0)`` written as aiocometapi's ``Timeout``
(its clocks are a request's total, connect, and a stream's first event, idle gap and total).
"""

from aiocometapi import CometAPI as OpenAI
from aiocometapi import Timeout

# Every request of this client: 20 seconds at most.
client = OpenAI(
    timeout=20.0,
)

# Finer: each clock on its own.
client = OpenAI(
    timeout=Timeout(total=60.0, idle=5.0, connect=2.0),
)

# One request, with its own limit:
completion = client.with_options(timeout=5.0).chat.completions.create(
    messages=[
        {
            "role": "user",
            "content": "How do I list every file of a directory in Python?",
        }
    ],
    model="gpt-5.5",
)
print(completion.choices[0].message.content)
