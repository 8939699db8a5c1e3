"""``client.models``: the models the gateway serves."""

from __future__ import annotations

from urllib.parse import quote

import msgspec

from .._requester import Requester
from ..types import Model, ModelList

__all__ = ["Models"]

_decoder = msgspec.json.Decoder(ModelList)
_model_decoder = msgspec.json.Decoder(Model)


class Models:
    """``client.models``."""

    def __init__(self, requester: Requester) -> None:
        self._requester = requester

    async def list(self) -> ModelList:
        """``GET /models``: every model id the gateway serves (iterate the result, or ``.data``)."""
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
