"""The client surface openai users reach for: models.list() both ways, and its settings."""

from __future__ import annotations

import gc
import warnings

import pytest

from aiocometapi import AsyncCometAPI
from aiocometapi.resources.models import ModelListRequest
from aiocometapi.testing import DEFAULT_MODELS, MockServer
from aiocometapi.types import Model, ModelList

pytestmark = pytest.mark.anyio


async def test_models_list_awaited(client: AsyncCometAPI, server: MockServer) -> None:
    """await client.models.list() gives the ModelList, as before."""
    models = await client.models.list()
    assert isinstance(models, ModelList)
    assert [m.id for m in models.data] == DEFAULT_MODELS


async def test_models_list_async_iterated(client: AsyncCometAPI, server: MockServer) -> None:
    """async for over client.models.list() gives each Model, with one request."""
    seen = [model async for model in client.models.list()]
    assert all(isinstance(m, Model) for m in seen)
    assert [m.id for m in seen] == DEFAULT_MODELS
    assert [r.path for r in server.requests] == ["/v1/models"]


async def test_models_list_sends_nothing_until_used(
    client: AsyncCometAPI, server: MockServer
) -> None:
    """A list() neither awaited nor iterated sends nothing and leaves no warning behind."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pending = client.models.list()
        assert isinstance(pending, ModelListRequest)
        del pending
        gc.collect()
    assert caught == []
    assert server.requests == []
    request = client.models.list()
    await request
    await request
    assert len(server.requests) == 2  # each await is a request of its own
