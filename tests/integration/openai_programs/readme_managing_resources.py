"""openai-python README.md, "Managing HTTP resources" (sync): a client closed by ``with``.

Source: github.com/openai/openai-python, README.md at commit e43b422. Changed: the import; the
block makes one request where the README has ``...``.
"""

from aiocometapi import CometAPI as OpenAI

with OpenAI() as client:
    # requests go here
    print(
        client.chat.completions.create(
            model="gpt-5.5", messages=[{"role": "user", "content": "one request"}]
        )
        .choices[0]
        .message.content
    )

# the connections are closed now
