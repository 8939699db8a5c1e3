"""``client.models``: the models the gateway serves."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Mapping
from typing import Any, Protocol, TypeVar
from urllib.parse import quote

import msgspec

from .._raw_response import RawResponse, raw_call
from .._requester import Requester
from ..types import Model, ModelList

__all__ = ["ModelListRequest", "Models", "ModelsWithRawResponse"]

T = TypeVar("T")

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
        return (await self._get("/models", _decoder))[0]

    async def retrieve(self, model: str) -> Model:
        """``GET /models/{model}``: one model; ``NotFoundError`` if the gateway has no such id."""
        return (await self._get(_model_path(model), _model_decoder))[0]

    async def _get(
        self, path: str, decoder: msgspec.json.Decoder[T]
    ) -> tuple[T, int, Mapping[str, str]]:
        answer = await self._requester.request("GET", path, decoder=decoder)
        return answer.value, answer.status, answer.headers

    @property
    def with_raw_response(self) -> ModelsWithRawResponse:
        """``list`` and ``retrieve`` returning a ``RawResponse`` (headers, status, request id,
        elapsed), whose ``parse()`` gives the ``ModelList`` or ``Model``."""
        return ModelsWithRawResponse(self._get)


def _model_path(model: str) -> str:
    if not isinstance(model, str) or not model.strip():
        raise ValueError(f"model must be a non-empty string, got {model!r}")
    return f"/models/{quote(model, safe='')}"


class _Get(Protocol):
    """``Models._get``, handed to the raw-response methods."""

    def __call__(
        self, path: str, decoder: msgspec.json.Decoder[T]
    ) -> Awaitable[tuple[T, int, Mapping[str, str]]]: ...


class ModelsWithRawResponse:
    """``client.models.with_raw_response``."""

    def __init__(self, get: _Get) -> None:
        self._get = get

    async def list(self) -> RawResponse[ModelList]:
        """``GET /models``, its ``ModelList`` behind ``RawResponse.parse()``."""
        return await raw_call(lambda: self._get("/models", _decoder))

    async def retrieve(self, model: str) -> RawResponse[Model]:
        """``GET /models/{model}``, the ``Model`` behind ``RawResponse.parse()``."""
        path = _model_path(model)
        return await raw_call(lambda: self._get(path, _model_decoder))
