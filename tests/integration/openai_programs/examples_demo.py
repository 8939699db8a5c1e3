"""openai-python examples/demo.py (sync): a plain request, a streamed one, and the headers of a
raw response.

Source: github.com/openai/openai-python, examples/demo.py at commit e43b422. Changed: the import.
"""

from aiocometapi import CometAPI as OpenAI

# the key comes from the environment
client = OpenAI()

# A plain request:
print("----- standard request -----")
completion = client.chat.completions.create(
    model="gpt-5.5",
    messages=[
        {
            "role": "user",
            "content": "Reply that this is a test",
        },
    ],
)
print(completion.choices[0].message.content)

# A streamed one:
print("----- streaming request -----")
stream = client.chat.completions.create(
    model="gpt-5.5",
    messages=[
        {
            "role": "user",
            "content": "How do I list every file of a directory in Python?",
        },
    ],
    stream=True,
)
for chunk in stream:
    if not chunk.choices:
        continue

    print(chunk.choices[0].delta.content, end="")
print()

# The response behind an answer:
print("----- custom response headers test -----")
response = client.chat.completions.with_raw_response.create(
    model="gpt-5.5",
    messages=[
        {
            "role": "user",
            "content": "Reply that this is a test",
        }
    ],
)
completion = response.parse()
print(response.request_id)
print(completion.choices[0].message.content)
