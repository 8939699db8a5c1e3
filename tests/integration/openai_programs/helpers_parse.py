"""openai-python helpers.md, "Auto-parsing response content with Pydantic models" (sync).

Source: github.com/openai/openai-python, helpers.md at commit e43b422. Changed: the import, and
the answer's types are msgspec Structs (with ``list[...]``) where the example has pydantic
``BaseModel``s (aiocometapi builds the strict JSON schema from msgspec types, dataclasses and
TypedDicts).
"""

from msgspec import Struct

from aiocometapi import CometAPI as OpenAI


class Step(Struct):
    explanation: str
    output: str


class MathResponse(Struct):
    steps: list[Step]
    final_answer: str


client = OpenAI()
completion = client.chat.completions.parse(
    model="gpt-4o-2024-08-06",
    messages=[
        {"role": "system", "content": "You are a patient maths tutor."},
        {"role": "user", "content": "solve 8x + 31 = 2"},
    ],
    response_format=MathResponse,
)

message = completion.choices[0].message
if message.parsed:
    print(message.parsed.steps)
    print("answer: ", message.parsed.final_answer)
else:
    print(message.refusal)
