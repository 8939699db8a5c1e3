"""openai-python README.md, "Usage": the Chat Completions example (sync).

Source: github.com/openai/openai-python, README.md at commit e43b422. Changed: the import.
"""

from aiocometapi import CometAPI as OpenAI

client = OpenAI()

completion = client.chat.completions.create(
    model="gpt-5.5",
    messages=[
        {"role": "developer", "content": "Answer as a ship's cook would."},
        {
            "role": "user",
            "content": "Which Python call tells whether an object is an instance of a class?",
        },
    ],
)

print(completion.choices[0].message.content)
