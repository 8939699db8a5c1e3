"""Plain configuration: clocks, retry policy, client settings and per-call options (no I/O)."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypedDict
from urllib.parse import urlsplit

from ._callsite import warn
from ._compat import Mode
from ._exceptions import ConfigurationError

__all__ = [
    "CALL_OPTIONS",
    "DEFAULT_BASE_URL",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_TIMEOUT",
    "CallOptions",
    "ClientConfig",
    "RequestOptions",
    "RetryPolicy",
    "Timeout",
    "check_retries",
    "merge_headers",
    "normalize_base_url",
]

DEFAULT_BASE_URL = "https://api.cometapi.com/v1"
"""Where requests go when neither ``base_url`` nor ``COMETAPI_BASE_URL`` says otherwise."""
DEFAULT_MAX_RETRIES = 4
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})


@dataclass(frozen=True, slots=True)
class Timeout:
    """The clocks of a request, in seconds; ``None`` switches a clock off.

    A plain number given where a ``Timeout`` is expected means "nothing takes longer than this":
    ``Timeout.of(30)`` caps every clock, the whole of a stream included, at 30 s.
    """

    total: float | None = 600.0
    """A non-streaming request, from sending to the last byte of its answer."""
    connect: float | None = 10.0
    """Getting a connection from the pool or opening one."""
    first_event: float | None = 120.0
    """A stream, from sending the request to its first data event (keep-alive comments do not
    count)."""
    idle: float | None = 60.0
    """A stream, the longest wait for the next data event while the caller waits for it."""
    stream_total: float | None = None
    """A stream, from sending the request to its end."""

    @classmethod
    def of(cls, value: float | Timeout | None) -> Timeout:
        """A ``Timeout`` from a ``Timeout``, a number of seconds, or ``None`` (the defaults).

        Args:
            value: A ``Timeout`` (returned as is), seconds capping every clock, or ``None``.

        Raises:
            ConfigurationError: a number that is not positive.
        """
        if value is None:
            return DEFAULT_TIMEOUT
        if isinstance(value, Timeout):
            return value
        seconds = float(value)
        if seconds <= 0:
            raise ConfigurationError(f"timeout must be positive, got {value!r}")
        return cls(
            total=seconds,
            connect=min(seconds, 10.0),
            first_event=seconds,
            idle=seconds,
            stream_total=seconds,
        )


DEFAULT_TIMEOUT = Timeout()


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How many times to retry, and the bounds on the waits in between (seconds).

    Give one to ``AsyncCometAPI(retry=...)`` or ``with_options(retry=...)`` to change the waits;
    ``max_retries`` given beside it (to the client, a copy or a call) overrides its count.
    """

    max_retries: int = DEFAULT_MAX_RETRIES
    """Retries after the first try: 4 gives CometAPI's recommended 5 tries in all."""
    initial_wait: float = 0.5
    """The back-off before the first retry; it doubles for each later one."""
    max_wait: float = 8.0
    """The longest back-off between two tries."""
    max_retry_after: float = 60.0
    """A server's ``Retry-After`` longer than this is cut to it."""

    def __post_init__(self) -> None:
        check_retries(self.max_retries)
        for name in ("initial_wait", "max_wait", "max_retry_after"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ConfigurationError(f"{name} must be a non-negative number, got {value!r}")


def check_retries(value: object) -> int:
    """``value`` if it is a retry count; else ``ConfigurationError``."""
    if not isinstance(value, int) or value < 0:
        raise ConfigurationError(f"max_retries must be a non-negative int, got {value!r}")
    return value


def _check_header(name: str, value: str) -> None:
    for text in (name, value):
        if any((ord(c) < 0x20 and c != "\t") or ord(c) == 0x7F for c in text):
            raise ConfigurationError(
                f"Header {name!r} contains a control character (CR, LF or similar); refused."
            )


def merge_headers(base: Mapping[str, str], extra: Mapping[str, str] | None) -> Mapping[str, str]:
    """``base`` with ``extra`` on top, each of ``extra``'s checked for CR, LF and the like.

    Returns ``base`` itself when there is nothing to add.

    Raises:
        ConfigurationError: a name or value holds a control character (header injection).
    """
    if not extra:
        return base
    for name, value in extra.items():
        _check_header(name, value)
    return {**base, **extra}


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def normalize_base_url(url: str) -> str:
    """``url`` without its trailing slash, once checked; plain http off loopback warns.

    Raises:
        ConfigurationError: not an http(s) URL with a host, or it holds whitespace.
    """
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in url):
        raise ConfigurationError("base_url contains whitespace or a control character; refused.")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(
            f"base_url must be an http(s) URL such as {DEFAULT_BASE_URL!r}, got {url!r}"
        )
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        warn(
            UserWarning(
                f"base_url {url!r} is plain http: the API key would cross the network unencrypted."
            )
        )
    return url.rstrip("/")


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """What a client and its ``with_options`` copies may differ in."""

    api_key: str = field(repr=False)
    base_url: str
    timeout: Timeout
    policy: RetryPolicy
    headers: Mapping[str, str] = field(repr=False)
    """Sent with every plain request (the key's ``Authorization`` among them)."""
    stream_headers: Mapping[str, str] = field(repr=False)
    """Sent with every stream request: ``headers`` asking for an event stream."""
    max_event_size: int
    compat: Mode = "warn"

    def with_headers(self, extra: Mapping[str, str] | None) -> ClientConfig:
        """A copy sending ``extra`` headers too (checked as ``merge_headers`` does)."""
        if not extra:
            return self
        return replace(
            self,
            headers=merge_headers(self.headers, extra),
            stream_headers=merge_headers(self.stream_headers, extra),
        )


class CallOptions(TypedDict, total=False):
    """Per-call settings that are not part of the body."""

    extra_headers: Mapping[str, str]
    extra_query: Mapping[str, str]
    extra_body: Mapping[str, Any]
    """Merged into the JSON body last: for provider parameters this SDK does not name."""
    timeout: float | Timeout
    max_retries: int
    compat: Mode
    """How to treat parameters the model's family takes differently (default: the client's)."""


CALL_OPTIONS: frozenset[str] = frozenset(CallOptions.__annotations__)
"""The names of the per-call options, which never go into a request body as they are."""

_RESOLVED = CALL_OPTIONS - {"extra_body", "compat"}
"""The call options that ``RequestOptions`` resolves (the other two shape the body)."""


class RequestOptions:
    """Per-call settings resolved against the client's: headers, query, timeout, retries."""

    __slots__ = ("headers", "params", "policy", "timeout")

    def __init__(
        self,
        config: ClientConfig,
        *,
        stream: bool,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, str] | None = None,
        timeout: float | Timeout | None = None,
        max_retries: int | None = None,
    ) -> None:
        self.headers = merge_headers(
            config.stream_headers if stream else config.headers, extra_headers
        )
        self.params = extra_query or None
        self.timeout = config.timeout if timeout is None else Timeout.of(timeout)
        self.policy = config.policy
        if max_retries is not None:
            self.policy = replace(config.policy, max_retries=check_retries(max_retries))

    @classmethod
    def of(cls, config: ClientConfig, params: Mapping[str, Any], *, stream: bool) -> RequestOptions:
        """The options a call's parameters ask for (its body parameters are ignored)."""
        return cls(
            config,
            stream=stream,
            extra_headers=params.get("extra_headers"),
            extra_query=params.get("extra_query"),
            timeout=params.get("timeout"),
            max_retries=params.get("max_retries"),
        )

    @staticmethod
    def given(params: Mapping[str, Any]) -> bool:
        """Whether ``params`` set any option ``RequestOptions`` resolves."""
        return not params.keys().isdisjoint(_RESOLVED)
