"""A local CometAPI look-alike, a real aiohttp server, for tests, benchmarks and offline demos.

``MockServer`` answers chat completions and model listings on 127.0.0.1, records every request
(``RecordedRequest``) and counts what it did (``MockStats``). Tests script its replies; a scripted
stream is made of ``StreamEvent`` items, among them ``Comment``, ``Pause`` and ``Drop``.
``mock_words`` is the default reply to a benchmark's ``{"mock": {"words": n}}``;
``thought_signature`` is what the server signs a ``gemini-3`` model's tool calls with, and wants
back with them; ``run`` serves a server until stopped (``aiocometapi mock-server``).
"""

from ._providers import thought_signature
from ._server import DEFAULT_MODELS as DEFAULT_MODELS
from ._server import MockServer, run
from ._text import mock_words
from ._values import Comment, Drop, MockStats, Pause, RecordedRequest, StreamEvent

__all__ = [
    "Comment",
    "Drop",
    "MockServer",
    "MockStats",
    "Pause",
    "RecordedRequest",
    "StreamEvent",
    "mock_words",
    "run",
    "thought_signature",
]
