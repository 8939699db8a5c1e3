"""The client surface openai users reach for: models.list() both ways, and its settings."""

from __future__ import annotations

import gc
import warnings

import pytest

from aiocometapi import AsyncCometAPI, ClientClosedError, CometAPI, ConfigurationError
from aiocometapi.resources.models import ModelListRequest
from aiocometapi.testing import DEFAULT_MODELS, MockServer
from aiocometapi.types import Model, ModelList
from conftest import FAKE_KEY, user

MODEL = "gpt-5.4-mini"


@pytest.mark.anyio
async def test_models_list_awaited(client: AsyncCometAPI, server: MockServer) -> None:
    """await client.models.list() gives the ModelList, as before."""
    models = await client.models.list()
    assert isinstance(models, ModelList)
    assert [m.id for m in models.data] == DEFAULT_MODELS


@pytest.mark.anyio
async def test_models_list_async_iterated(client: AsyncCometAPI, server: MockServer) -> None:
    """async for over client.models.list() gives each Model, with one request."""
    seen = [model async for model in client.models.list()]
    assert all(isinstance(m, Model) for m in seen)
    assert [m.id for m in seen] == DEFAULT_MODELS
    assert [r.path for r in server.requests] == ["/v1/models"]


@pytest.mark.anyio
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


# --------------------------------------------------------------------------- settings


@pytest.mark.anyio
async def test_api_key_and_base_url_are_readable(client: AsyncCometAPI, server: MockServer) -> None:
    """client.api_key and client.base_url read back; repr() still hides the key."""
    assert client.api_key == FAKE_KEY
    assert client.base_url == server.url
    assert client.compat == "warn" and client.with_options(compat="adapt").compat == "adapt"
    assert FAKE_KEY not in repr(client) and FAKE_KEY not in repr(client.with_options())


@pytest.mark.anyio
async def test_with_options_api_key(client: AsyncCometAPI, server: MockServer) -> None:
    """A copy with another key sends that key, and has a rate controller of its own."""
    other = client.with_options(api_key="sk-other-key-fake")
    assert other.api_key == "sk-other-key-fake"
    server.reply_error(429, "slow down", headers={"retry-after-ms": "1"})
    await other.chat.completions.create(model=MODEL, messages=[user("hi")])
    sent = [r.headers["authorization"] for r in server.requests]
    assert sent == ["Bearer sk-other-key-fake"] * 2
    assert other.rate_state().rate_limited == 1
    assert client.rate_state().rate_limited == 0  # limits are per key
    await client.chat.completions.create(model=MODEL, messages=[user("hi")])
    assert server.requests[-1].headers["authorization"] == f"Bearer {FAKE_KEY}"
    same_key = client.with_options(timeout=30)
    server.reply_error(429, "slow down", headers={"retry-after-ms": "1"})
    await same_key.chat.completions.create(model=MODEL, messages=[user("hi")])
    assert client.rate_state().rate_limited == 1  # shared: the same key


@pytest.mark.anyio
async def test_with_options_base_url(client: AsyncCometAPI, server: MockServer) -> None:
    """A copy with another base URL talks to that host, with a rate controller of its own."""
    async with MockServer() as second:
        moved = client.with_options(base_url=second.url)
        await moved.chat.completions.create(model=MODEL, messages=[user("there")])
        assert len(second.requests) == 1 and server.requests == []
        assert moved.base_url == second.url and moved._rate is not client._rate
    with pytest.raises(ConfigurationError):
        client.with_options(base_url="ftp://nowhere/v1")
    with pytest.raises(ConfigurationError):
        client.with_options(api_key="  ")


@pytest.mark.anyio
async def test_close_is_aclose(server: MockServer) -> None:
    """await client.close() closes the client, as openai's AsyncOpenAI.close() does."""
    client = AsyncCometAPI(FAKE_KEY, base_url=server.url)
    await client.chat.completions.create(model=MODEL, messages=[user("hi")])
    await client.close()
    with pytest.raises(ClientClosedError):
        await client.chat.completions.create(model=MODEL, messages=[user("hi")])


def test_sync_client_settings(threaded_server: MockServer) -> None:
    """The sync client reads back its key and URL and takes with_options(api_key=...)."""
    with CometAPI(FAKE_KEY, base_url=threaded_server.url) as client:
        assert (client.api_key, client.base_url) == (FAKE_KEY, threaded_server.url)
        assert client.compat == "warn"
        other = client.with_options(api_key="sk-sync-other-fake", max_retries=0)
        other.chat.completions.create(model=MODEL, messages=[user("hi")])
        assert threaded_server.requests[-1].headers["authorization"] == "Bearer sk-sync-other-fake"
        assert FAKE_KEY not in repr(client)
