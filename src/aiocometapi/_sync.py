"""CometAPI: the sync client, the async client's surface run in an event loop of its own.

Nothing here is a second implementation: each call runs the ``AsyncCometAPI`` call of the same
name as a task of the client's loop (a daemon thread, see ``_sync_loop``) and waits for it.
The client can be shared by any number of threads, called from a thread whose own event loop
is running (a notebook cell, an async framework's sync handler), and interrupted with Ctrl-C.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Mapping
from types import TracebackType

from ._client import AsyncCometAPI, PoolState
from ._compat import Mode
from ._config import RetryPolicy, Timeout
from ._prices import Prices
from ._ratelimit import RateState
from ._sync_loop import EventLoopThread
from ._sync_resources import Chat, Models
from ._usage import UsageMeter

__all__ = ["CometAPI"]


class CometAPI:
    """The CometAPI client for code that does not ``await``: ``client.chat.completions`` and
    ``client.models``, as in ``AsyncCometAPI`` but returning results (and plain iterators).

    It runs an ``AsyncCometAPI`` in an event loop of its own, in a daemon thread started at
    the first call and stopped by ``close()``, the ``with`` block's end, garbage collection
    or the interpreter's exit. One client serves any number of threads at once.

    Args:
        api_key: The CometAPI key; defaults to the ``COMETAPI_KEY`` environment variable.
        base_url: Defaults to ``COMETAPI_BASE_URL``, else ``https://api.cometapi.com/v1``.
        timeout: Seconds, or a ``Timeout`` with each clock.
        max_retries: Retries after a retryable failure (default 4).
        retry: A ``RetryPolicy`` for the waits between tries.
        max_connections: Size of the connection pool (default 100).
        default_headers: Headers sent with every request.
        trust_env: Honour ``HTTP(S)_PROXY`` / ``NO_PROXY`` (default True).
        max_event_size: Largest single stream event accepted, in bytes.
        max_body_size: Largest non-streamed answer accepted, in bytes.
        requests_per_minute: A budget of requests per minute (default none).
        tokens_per_minute: A budget of tokens per minute (default none).
        compat: How to treat parameters a model's family takes differently (``"warn"``,
            ``"strict"``, ``"adapt"`` or ``"off"``); see ``AsyncCometAPI``.
        prices: Per model, the price of a million tokens, for the usage meter's cost (a dict,
            or the path of a JSON or TOML price file); see ``AsyncCometAPI``.

    Raises:
        ConfigurationError: no key, a malformed base URL or header, or an unknown compat mode.
    """

    chat: Chat
    models: Models

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
        client = AsyncCometAPI(
            api_key,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            retry=retry,
            max_connections=max_connections,
            default_headers=default_headers,
            trust_env=trust_env,
            max_event_size=max_event_size,
            max_body_size=max_body_size,
            requests_per_minute=requests_per_minute,
            tokens_per_minute=tokens_per_minute,
            compat=compat,
            prices=prices,
        )
        loop = EventLoopThread()
        self._init(client, loop, parent=None)
        # Neither argument refers to this object, so it can be collected; at exit the loop
        # is still running (its thread is a daemon) and closes the pool cleanly.
        self._finalizer = weakref.finalize(self, loop.stop, client.aclose)

    def _init(self, client: AsyncCometAPI, loop: EventLoopThread, parent: CometAPI | None) -> None:
        self._async = client
        self._loop = loop
        self._parent = parent  # a with_options copy keeps its owner (and the loop) alive
        self.chat = Chat(client, loop)
        self.models = Models(client, loop)

    # ------------------------------------------------------------------ configuration

    @property
    def api_key(self) -> str:
        """The key this client sends (never shown by ``repr()``, logs or errors)."""
        return self._async.api_key

    @property
    def base_url(self) -> str:
        """The API's base URL, without a trailing slash."""
        return self._async.base_url

    @property
    def timeout(self) -> Timeout:
        """The clocks of every request (a call's ``timeout=`` overrides them)."""
        return self._async.timeout

    @property
    def max_retries(self) -> int:
        """Retries after a retryable failure (a call's ``max_retries=`` overrides it)."""
        return self._async.max_retries

    @property
    def compat(self) -> Mode:
        """How calls treat parameters a model's family takes differently."""
        return self._async.compat

    @property
    def retry(self) -> RetryPolicy:
        """The retry policy: how many retries, and the bounds on the waits between them."""
        return self._async.retry

    @property
    def usage(self) -> UsageMeter:
        """The usage meter, shared with ``with_options`` copies (see ``AsyncCometAPI.usage``)."""
        return self._async.usage

    def rate_state(self) -> RateState:
        """The shared rate controller's figures (see ``AsyncCometAPI.rate_state``)."""
        return self._async.rate_state()

    def pool_state(self) -> PoolState:
        """The connection pool's figures (see ``AsyncCometAPI.pool_state``)."""
        return self._async.pool_state()

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
    ) -> CometAPI:
        """A copy with other defaults that shares this client's loop and connection pool.

        The copy borrows both: closing it does nothing, closing this client closes both.
        Arguments left as ``None`` keep this client's value.

        Args:
            api_key: Another key to send (the copy gets a rate controller of its own).
            base_url: Another API base URL (a rate controller of its own too).
            timeout: Seconds, or a ``Timeout`` with each clock.
            max_retries: Retries after a retryable failure.
            retry: A whole ``RetryPolicy``.
            default_headers: Headers added to (or replacing) this client's.
            compat: The provider-parameter mode for the copy's calls.

        Returns:
            The new client.
        """
        copy = object.__new__(CometAPI)
        copy._init(
            self._async.with_options(
                api_key=api_key,
                base_url=base_url,
                timeout=timeout,
                max_retries=max_retries,
                retry=retry,
                default_headers=default_headers,
                compat=compat,
            ),
            self._loop,
            parent=self._parent or self,
        )
        return copy

    def __repr__(self) -> str:
        return f"CometAPI(base_url={self.base_url!r}, api_key='***')"

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Close the connection pool and stop the client's loop (idempotent). A
        ``with_options`` copy closes nothing."""
        if self._parent is None:
            self._finalizer()

    def __enter__(self) -> CometAPI:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
