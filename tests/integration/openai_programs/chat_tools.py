"""A tool call and its result sent back, with a strict function tool given as a dict (sync).

Source: github.com/openai/openai-python, helpers.md at commit e43b422 ("Auto-parsing function
tool calls" and "Differences from .create()": tools as ``{"type": "function", "function":
{..., "strict": True}}``), run through ``create`` and sent back as the API reference's
function-calling flow does: the assistant message appended, then a ``tool`` message per call.
Changed: the import.
"""

import json

from aiocometapi import CometAPI as OpenAI

client = OpenAI()

tools = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The weather now in a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
                "additionalProperties": False,
            },
            "strict": True,
        },
    }
]
messages = [{"role": "user", "content": "What is the weather in Oslo?"}]

completion = client.chat.completions.create(
    model="gpt-4.1", messages=messages, tools=tools, tool_choice="auto"
)
message = completion.choices[0].message
print(completion.choices[0].finish_reason)

messages.append(message)
for tool_call in message.tool_calls or []:
    arguments = json.loads(tool_call.function.arguments)
    print(tool_call.function.name, arguments)
    messages.append(
        {"role": "tool", "tool_call_id": tool_call.id, "content": f"Sunny in {arguments['city']}"}
    )

final = client.chat.completions.create(model="gpt-4.1", messages=messages, tools=tools)
print(final.choices[0].message.content)
