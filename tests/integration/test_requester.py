"""The requester seam against a server: the closed check, the retry policy, the pool.

The rate slot alone is tested in tests/unit/test_slot.py.
"""

from __future__ import annotations

import msgspec
import pytest

from aiocometapi import (
    AsyncCometAPI,
    ClientClosedError,
    ConfigurationError,
    InternalServerError,
    RateLimitError,
    RetryPolicy,
)
from aiocometapi._requester import Requester
from aiocometapi.testing import MockServer, Pause
from aiocometapi.types import ModelList
from conftest import FAKE_KEY, user

pytestmark = pytest.mark.anyio

MODEL = "gpt-5.4-mini"


def _chunk(text: str) -> dict[str, object]:
    return {"choices": [{"index": 0, "delta": {"content": text}}]}


class _Echoes:
    """A resource as a later one would be written: it holds the requester and nothing else."""

    def __init__(self, requester: Requester) -> None:
        self._requester = requester

    async def models(self) -> ModelList:
        answer = await self._requester.request(
            "GET", "/models", decoder=msgspec.json.Decoder(ModelList)
        )
        return answer.value


async def test_a_new_resource_gets_the_closed_check_for_free(server: MockServer) -> None:
    """A resource that never checks for a closed client still refuses to send after aclose()."""
    client = AsyncCometAPI(FAKE_KEY, base_url=server.url)
    resource = _Echoes(client._requester)
    assert (await resource.models()).data
    await client.aclose()
    with pytest.raises(ClientClosedError, match="closed with aclose"):
        await resource.models()
    assert len(server.requests) == 1


async def test_closed_client_refuses_every_entry_point(server: MockServer) -> None:
    """After aclose(), create, stream, models and a new ``async with`` raise ClientClosedError."""
    client = AsyncCometAPI(FAKE_KEY, base_url=server.url)
    await client.aclose()
    calls = [
        client.chat.completions.create(model=MODEL, messages=[user("hi")]),
        client.chat.completions.create(model=MODEL, messages=[user("hi")], stream=True),
        client.models.list(),
        client.models.retrieve(MODEL),
        client.with_options(timeout=3).models.list(),
    ]
    for call in calls:
        with pytest.raises(ClientClosedError, match="closed with aclose"):
            await call
    with pytest.raises(ClientClosedError, match="closed with aclose"):
        async with client:
            pass
    assert server.requests == []


# --------------------------------------------------------------------------- the retry policy


async def test_retry_policy_sets_the_waits(server: MockServer, retry_waits: list[float]) -> None:
    """AsyncCometAPI(retry=RetryPolicy(...)) changes the back-off between tries."""
    policy = RetryPolicy(max_retries=2, initial_wait=3.0, max_wait=3.0)
    async with AsyncCometAPI(FAKE_KEY, base_url=server.url, retry=policy) as client:
        assert client.retry == policy and client.max_retries == 2
        for _ in range(3):
            server.reply_error(500, "boom")
        with pytest.raises(InternalServerError):
            await client.chat.completions.create(model=MODEL, messages=[user("hi")])
    assert len(server.requests) == 3
    assert len(retry_waits) == 2 and all(2.25 <= wait <= 3.0 for wait in retry_waits)


async def test_max_retries_beside_a_policy_wins(server: MockServer) -> None:
    """max_retries given with a RetryPolicy overrides the policy's count, not its waits."""
    policy = RetryPolicy(max_retries=3, max_retry_after=1.0)
    async with AsyncCometAPI(FAKE_KEY, base_url=server.url, retry=policy, max_retries=0) as client:
        assert client.max_retries == 0 and client.retry.max_retry_after == 1.0
        server.reply_error(429, "slow")
        with pytest.raises(RateLimitError):
            await client.chat.completions.create(model=MODEL, messages=[user("hi")])
    assert len(server.requests) == 1


async def test_with_options_takes_a_retry_policy(
    client: AsyncCometAPI, server: MockServer, retry_waits: list[float]
) -> None:
    """with_options(retry=...) applies to the copy only; the Retry-After cap is the policy's."""
    copy = client.with_options(retry=RetryPolicy(max_retries=1, max_retry_after=5.0))
    assert copy.max_retries == 1 and client.max_retries == 4
    server.reply_error(429, "slow", headers={"Retry-After": "30"})
    await copy.chat.completions.create(model=MODEL, messages=[user("hi")])
    server.reply_error(429, "slow", headers={"Retry-After": "30"})
    await client.chat.completions.create(model=MODEL, messages=[user("hi")])
    assert retry_waits == [5.0, 30.0]


@pytest.mark.parametrize(
    "fields",
    [{"max_retries": -1}, {"initial_wait": -0.5}, {"max_wait": "8"}, {"max_retry_after": None}],
)
def test_a_malformed_retry_policy_is_refused(fields: dict[str, object]) -> None:
    """A RetryPolicy with a negative or non-numeric field is a ConfigurationError."""
    with pytest.raises(ConfigurationError):
        RetryPolicy(**fields)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- the pool


async def test_pool_state_follows_requests_and_streams(server: MockServer) -> None:
    """pool_state() shows no connection before a request, one in use during a stream, then idle."""
    async with AsyncCometAPI(FAKE_KEY, base_url=server.url, max_connections=7) as client:
        state = client.pool_state()
        assert (state.in_use, state.idle, state.limit) == (0, 0, 7)
        await client.chat.completions.create(model=MODEL, messages=[user("hi")])
        assert (client.pool_state().in_use, client.pool_state().idle) == (0, 1)
        server.reply_stream([_chunk("a"), Pause(0.05), _chunk("b")])
        stream = await client.chat.completions.create(
            model=MODEL, messages=[user("hi")], stream=True
        )
        async with stream:
            await anext(stream)  # the server pauses after this chunk: the body is not all in
            assert client.with_options(timeout=5).pool_state().in_use == 1
            await stream.final()
        assert (client.pool_state().in_use, client.pool_state().idle) == (0, 1)
    assert client.pool_state().in_use == 0 and client.pool_state().idle == 0
