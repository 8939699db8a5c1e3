"""openai-python README.md, "Accessing raw response data (e.g. headers)" (sync).

Source: github.com/openai/openai-python, README.md at commit e43b422. Changed: the import.
"""

from aiocometapi import CometAPI as OpenAI

client = OpenAI()
response = client.chat.completions.with_raw_response.create(
    messages=[
        {
            "role": "user",
            "content": "Reply that this is a test",
        }
    ],
    model="gpt-5.5",
)
print(response.headers.get("X-My-Header"))

completion = response.parse()  # what chat.completions.create() returns
print(completion)
