"""``client.models``: the models the gateway serves."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote

import msgspec

from ..types import Model, ModelList

if TYPE_CHECKING:
    from .._client import AsyncCometAPI

__all__ = ["Models"]

_decoder = msgspec.json.Decoder(ModelList)
_model_decoder = msgspec.json.Decoder(Model)


class Models:
    """``client.models``."""

    def __init__(self, client: AsyncCometAPI) -> None:
        self._client = client

    async def list(self) -> ModelList:
        """``GET /models``: every model id the gateway serves (iterate the result, or ``.data``)."""
        client = self._client
        client._check_open()
        return await client._request(
            "GET", "/models", decoder=_decoder, options=client._default_options[False]
        )

    async def retrieve(self, model: str) -> Model:
        """``GET /models/{model}``: one model; ``NotFoundError`` if the gateway has no such id."""
        if not isinstance(model, str) or not model.strip():
            raise ValueError(f"model must be a non-empty string, got {model!r}")
        client = self._client
        client._check_open()
        return await client._request(
            "GET",
            f"/models/{quote(model, safe='')}",
            decoder=_model_decoder,
            options=client._default_options[False],
        )
