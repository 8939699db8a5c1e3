"""openai-python README.md, "Using types": an answer back to JSON and to a dict (sync); and
``model_dump_json``, which the pydantic models of the openai package have.

Source: github.com/openai/openai-python, README.md at commit e43b422 ("Using types", and the
``print(completion.to_json())`` that ends "Microsoft Azure OpenAI"). Changed: the import.
"""

import json

from aiocometapi import CometAPI as OpenAI

client = OpenAI()

completion = client.chat.completions.create(
    model="gpt-5.5",
    messages=[{"role": "user", "content": "List the files of a directory in Python."}],
)
print(completion.to_json())
as_dict = completion.to_dict()
print(json.dumps(as_dict["choices"][0]["message"]))
print(completion.model_dump_json(indent=2))
print(sorted(completion.model_dump()))
