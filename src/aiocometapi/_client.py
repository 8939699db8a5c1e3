"""AsyncCometAPI: configuration and lifecycle; it composes the requester its resources use."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import TracebackType

from ._compat import Mode, check_mode
from ._config import (
    DEFAULT_BASE_URL,
    ClientConfig,
    RetryPolicy,
    Timeout,
    check_retries,
    merge_headers,
    normalize_base_url,
)
from ._exceptions import ConfigurationError
from ._prices import Prices
from ._ratelimit import Budget, RateController, RateState
from ._requester import Requester
from ._transport import Transport
from ._usage import UsageMeter
from ._version import __version__
from .resources.chat import Chat
from .resources.models import Models

__all__ = ["DEFAULT_BASE_URL", "AsyncCometAPI", "PoolState"]


@dataclass(frozen=True, slots=True)
class PoolState:
    """A snapshot of a client's connection pool, for diagnostics and tests."""

    in_use: int
    """Connections carrying a request or a stream now."""
    idle: int
    """Open connections waiting in the pool for the next request."""
    limit: int
    """The most connections the pool opens at once (``max_connections``)."""


class AsyncCometAPI:
    """The CometAPI client: ``client.chat.completions`` and ``client.models``.

    Args:
        api_key: The CometAPI key; defaults to the ``COMETAPI_KEY`` environment variable.
        base_url: Defaults to ``COMETAPI_BASE_URL``, else ``https://api.cometapi.com/v1``.
        timeout: Seconds, or a ``Timeout`` with each clock (connect, total, first_event, idle,
            stream_total). Default: ``Timeout()``.
        max_retries: Retries after a retryable failure (default 4: five tries in all).
        retry: A ``RetryPolicy`` for the waits between tries (back-off bounds, the longest
            ``Retry-After`` honoured); ``max_retries``, if given, overrides its count.
        max_connections: Size of the connection pool (default 100).
        default_headers: Headers sent with every request.
        trust_env: Honour ``HTTP(S)_PROXY`` / ``NO_PROXY`` and ``.netrc`` (default True).
        max_event_size: Largest single stream event accepted, in bytes.
        max_body_size: Largest non-streamed answer accepted, in bytes (default 64 MiB).
        requests_per_minute: A budget of requests per minute for this client (default none).
        tokens_per_minute: A budget of tokens per minute, estimated from each request and
            corrected by the usage that comes back (default none).
        compat: How to treat parameters a model's family takes differently (CometAPI's
            per-provider table): ``"warn"`` (default) sends them with a
            ``CompatibilityWarning``, ``"strict"`` raises ``CompatibilityError`` before sending,
            ``"adapt"`` rewrites the request and lists the changes in ``adjustments``,
            ``"off"`` checks nothing.
        prices: Per model, the price of a million tokens, for the cost ``client.usage``
            reports: ``{"gpt-5.4-mini": {"input": 0.2, "cached_input": 0.02, "output": 0.8}}``
            (``reasoning`` too, optionally), or the path of a JSON or TOML price file. No
            prices are built in (they change); without them ``cost`` is ``None``.

    Raises:
        ConfigurationError: no key, a malformed base URL or header, or an unknown compat mode.
    """

    chat: Chat
    models: Models
    usage: UsageMeter
    """What this client's calls spent: ``client.usage.snapshot()``; shared by its
    ``with_options`` copies."""

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float | Timeout | None = None,
        max_retries: int | None = None,
        retry: RetryPolicy | None = None,
        max_connections: int = 100,
        default_headers: Mapping[str, str] | None = None,
        trust_env: bool = True,
        max_event_size: int = 16 * 1024 * 1024,
        max_body_size: int = 64 * 1024 * 1024,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        compat: Mode = "warn",
        prices: Prices | Mapping[str, Mapping[str, float]] | str | os.PathLike[str] | None = None,
    ) -> None:
        key = _key(api_key if api_key is not None else os.environ.get("COMETAPI_KEY"))
        url = base_url or os.environ.get("COMETAPI_BASE_URL") or DEFAULT_BASE_URL
        own = {
            "Authorization": f"Bearer {key}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": f"aiocometapi/{__version__}",
        }
        headers = merge_headers({}, {**own, **(default_headers or {})})
        config = ClientConfig(
            api_key=key,
            base_url=normalize_base_url(url),
            timeout=Timeout.of(timeout),
            policy=_policy(retry or RetryPolicy(), max_retries),
            headers=headers,
            stream_headers={**headers, "Accept": "text/event-stream"},
            max_event_size=max_event_size,
            compat=check_mode(compat),
        )
        rate = RateController(
            requests_per_minute=requests_per_minute, tokens_per_minute=tokens_per_minute
        )
        transport = Transport(
            max_connections=max_connections, trust_env=trust_env, max_body_size=max_body_size
        )
        self._budgets = (requests_per_minute, tokens_per_minute)
        meter = UsageMeter(prices=prices)
        self._init(config, transport, rate, meter, owner=True)

    def _init(
        self,
        config: ClientConfig,
        transport: Transport,
        rate: RateController,
        meter: UsageMeter,
        *,
        owner: bool,
    ) -> None:
        self._config = config
        self._transport = transport
        self._rate = rate
        self._owner = owner
        self.usage = meter
        self._requester = requester = Requester(config, transport, rate, meter)
        self.chat = Chat(requester)
        self.models = Models(requester)

    # ------------------------------------------------------------------ configuration

    @property
    def api_key(self) -> str:
        """The key this client sends (never shown by ``repr()``, logs or errors)."""
        return self._config.api_key

    @property
    def base_url(self) -> str:
        """The API's base URL, without a trailing slash."""
        return self._config.base_url

    @property
    def timeout(self) -> Timeout:
        """The clocks of every request (a call's ``timeout=`` overrides them)."""
        return self._config.timeout

    @property
    def max_retries(self) -> int:
        """Retries after a retryable failure (a call's ``max_retries=`` overrides it)."""
        return self._config.policy.max_retries

    @property
    def compat(self) -> Mode:
        """How calls treat parameters a model's family takes differently (a call's
        ``compat=`` overrides it)."""
        return self._config.compat

    @property
    def retry(self) -> RetryPolicy:
        """The retry policy: how many retries, and the bounds on the waits between them."""
        return self._config.policy

    def with_options(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float | Timeout | None = None,
        max_retries: int | None = None,
        retry: RetryPolicy | None = None,
        default_headers: Mapping[str, str] | None = None,
        compat: Mode | None = None,
    ) -> AsyncCometAPI:
        """A copy with other defaults that shares this client's connection pool.

        The copy borrows the pool: closing it does nothing, closing this client closes the pool.
        Arguments left as ``None`` keep this client's value. A copy with another ``api_key`` or
        ``base_url`` gets a rate controller and a usage meter of its own (with this client's
        budgets and prices), since a gateway's limits and bills are per key; other copies
        share this client's.

        Args:
            api_key: Another key to send.
            base_url: Another API base URL.
            timeout: Seconds, or a ``Timeout`` with each clock.
            max_retries: Retries after a retryable failure.
            retry: A whole ``RetryPolicy`` (waits and caps as well as the count).
            default_headers: Headers added to (or replacing) this client's.
            compat: The provider-parameter mode for the copy's calls.

        Returns:
            The new client.

        Raises:
            ConfigurationError: a blank key, a malformed URL or header, or a bad setting.
        """
        rate = self._rate
        meter = self.usage
        config = self._config
        if api_key is not None or base_url is not None:
            key = config.api_key if api_key is None else _key(api_key)
            url = config.base_url if base_url is None else normalize_base_url(base_url)
            if (key, url) != (config.api_key, config.base_url):
                requests_per_minute, tokens_per_minute = self._budgets
                rate = RateController(
                    requests_per_minute=requests_per_minute, tokens_per_minute=tokens_per_minute
                )
                meter = UsageMeter(prices=self.usage.prices)
            auth = {"Authorization": f"Bearer {key}"}
            config = replace(config.with_headers(auth), api_key=key, base_url=url)
        config = config.with_headers(default_headers)
        if timeout is not None:
            config = replace(config, timeout=Timeout.of(timeout))
        if retry is not None or max_retries is not None:
            config = replace(config, policy=_policy(retry or config.policy, max_retries))
        if compat is not None:
            config = replace(config, compat=check_mode(compat))
        copy = object.__new__(AsyncCometAPI)
        copy._budgets = self._budgets
        copy._init(config, self._transport, rate, meter, owner=False)
        return copy

    # ------------------------------------------------------------------ diagnostics

    def rate_state(self) -> RateState:
        """The shared rate controller's figures: in flight, limits, 429s seen, waits."""
        return self._rate.state()

    def share_rate_budget(self, budget: Budget) -> None:
        """Let a budget shared beyond this process decide when this client's requests start.

        For ``aiocometapi.ray``, whose workers share one rate budget across a cluster; the
        copies made by ``with_options`` (same key) share it too. When the budget is gone the
        client paces itself again, at the rate the budget last allowed.

        Args:
            budget: Admits each request before it starts and hears each answer.
        """
        self._rate.share(budget)

    def pool_state(self) -> PoolState:
        """The connection pool's figures: connections in use, idle, and the limit.

        Shared with ``with_options`` copies; all zero before the first request and after
        ``aclose()``. A stream holds its connection until it ends or is closed.
        """
        in_use, idle = self._transport.pool()
        return PoolState(in_use=in_use, idle=idle, limit=self._transport.max_connections)

    def __repr__(self) -> str:
        return (
            f"AsyncCometAPI(base_url={self._config.base_url!r}, api_key='***', "
            f"state={self._transport.state!r})"
        )

    # ------------------------------------------------------------------ lifecycle

    async def aclose(self) -> None:
        """Close the connection pool (idempotent). A ``with_options`` copy closes nothing."""
        if self._owner:
            await self._transport.aclose()

    async def close(self) -> None:
        """``aclose()`` under the openai package's name for it."""
        await self.aclose()

    async def __aenter__(self) -> AsyncCometAPI:
        self._requester.ensure_open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def _key(key: str | None) -> str:
    if key is None or not key.strip():
        raise ConfigurationError(
            "No API key: pass api_key=... to AsyncCometAPI() or set the COMETAPI_KEY "
            "environment variable (keys are at https://api.cometapi.com/console/token)."
        )
    return key.strip()


def _policy(policy: RetryPolicy, max_retries: int | None) -> RetryPolicy:
    """``policy`` with ``max_retries`` as its count, when given."""
    if max_retries is None:
        return policy
    return replace(policy, max_retries=check_retries(max_retries))
