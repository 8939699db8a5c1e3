"""openai-python README.md, "Retries" (sync): ``max_retries`` per client and per request.

Source: github.com/openai/openai-python, README.md at commit e43b422. Changed: the import.
"""

from aiocometapi import CometAPI as OpenAI

# No retries unless a call asks for them:
client = OpenAI(
    max_retries=0,
)

# This call may be tried up to six times:
completion = client.with_options(max_retries=5).chat.completions.create(
    messages=[
        {
            "role": "user",
            "content": "What gives the name of today's weekday in JavaScript?",
        }
    ],
    model="gpt-5.5",
)
print(completion.choices[0].message.content)
