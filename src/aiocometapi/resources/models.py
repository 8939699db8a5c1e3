"""``client.models``: the models the gateway serves."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from ..types import ModelList

if TYPE_CHECKING:
    from .._client import AsyncCometAPI

__all__ = ["Models"]

_decoder = msgspec.json.Decoder(ModelList)


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
