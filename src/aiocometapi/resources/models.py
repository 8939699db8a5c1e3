"""``client.models``: the models the gateway serves."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from typing import Any
from urllib.parse import quote

import msgspec

from .._requester import Requester
from ..types import Model, ModelList

__all__ = ["ModelListRequest", "Models"]

_decoder = msgspec.json.Decoder(ModelList)
_model_decoder = msgspec.json.Decoder(Model)


class ModelListRequest:
    """What ``client.models.list()`` returns: ``await`` it for the ``ModelList``, or
    ``async for`` over it for each ``Model``, as with the openai package's paginators.

    Nothing is sent until it is awaited or iterated; each of those sends ``GET /models``.
    """

    __slots__ = ("_fetch",)

    def __init__(self, fetch: Callable[[], Awaitable[ModelList]]) -> None:
        self._fetch = fetch

    def __await__(self) -> Generator[Any, None, ModelList]:
        return self._fetch().__await__()

    async def __aiter__(self) -> AsyncIterator[Model]:
        for model in await self._fetch():
            yield model


class Models:
    """``client.models``."""

    def __init__(self, requester: Requester) -> None:
        self._requester = requester

    def list(self) -> ModelListRequest:
        """``GET /models``: every model id the gateway serves.

        ``await client.models.list()`` gives a ``ModelList`` (iterate it, or ``.data``);
        ``async for model in client.models.list()`` gives each ``Model``.
        """
        return ModelListRequest(self._list)

    async def _list(self) -> ModelList:
        answer = await self._requester.request("GET", "/models", decoder=_decoder)
        return answer.value

    async def retrieve(self, model: str) -> Model:
        """``GET /models/{model}``: one model; ``NotFoundError`` if the gateway has no such id."""
        if not isinstance(model, str) or not model.strip():
            raise ValueError(f"model must be a non-empty string, got {model!r}")
        answer = await self._requester.request(
            "GET", f"/models/{quote(model, safe='')}", decoder=_model_decoder
        )
        return answer.value
