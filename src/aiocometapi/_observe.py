"""The observer interface: what a usage meter or a tracer is told about each call.

A call is one ``create()``: it may take several tries (retries, a stream reopened before its
first chunk) and ends exactly once, with an answer, an error, or (a stream) left early by the
caller. The resource starts it, the requester's ``Slot`` reports each try and its status, the
stream reports its first chunk and its end::

    observer.on_start(model, params, stream=...) -> call
    call.on_attempt()           once per try, before it is sent
    call.on_status(status)      the server answered a try (429s and retried 5xx included)
    call.on_first_chunk()       a stream's first chunk reached the caller
    call.on_answer(completion)  the call ended with an answer (a stream: at ``[DONE]``)
    call.on_error(exc)          the call ended with an error, after its retries
    call.on_left()              the caller left a stream before its end

Observers registered here (``aiocometapi.otel.instrument()`` registers one) see the calls of
every client; each client's usage meter sees its own. With none registered a call costs one
check of an empty tuple.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from .types import ChatCompletion

__all__ = [
    "CallObserver",
    "Observer",
    "add_observer",
    "end_with",
    "observers",
    "remove_observer",
    "start_call",
]


class CallObserver(Protocol):
    """Told what happens to one call (see the module docstring for the order)."""

    def on_attempt(self) -> None: ...
    def on_status(self, status: int) -> None: ...
    def on_first_chunk(self) -> None: ...
    def on_answer(self, completion: ChatCompletion) -> None: ...
    def on_error(self, exc: BaseException) -> None: ...
    def on_left(self) -> None: ...


class Observer(Protocol):
    """Starts a ``CallObserver`` for each call a client makes (``None``: not this one)."""

    def on_start(
        self, model: str, params: Mapping[str, Any], *, stream: bool, base_url: str
    ) -> CallObserver | None: ...


_observers: tuple[Observer, ...] = ()


def observers() -> tuple[Observer, ...]:
    """The process-wide observers, in the order they were added."""
    return _observers


def add_observer(observer: Observer) -> None:
    """Have ``observer`` see the calls of every client from now on (once, however often added)."""
    global _observers
    if observer not in _observers:
        _observers = (*_observers, observer)


def remove_observer(observer: Observer) -> None:
    """Stop ``observer`` seeing calls (calls already started still report to it)."""
    global _observers
    _observers = tuple(o for o in _observers if o is not observer)


class _Calls:
    """Several call observers told the same things, in order."""

    __slots__ = ("_calls",)

    def __init__(self, calls: tuple[CallObserver, ...]) -> None:
        self._calls = calls

    def on_attempt(self) -> None:
        for call in self._calls:
            call.on_attempt()

    def on_status(self, status: int) -> None:
        for call in self._calls:
            call.on_status(status)

    def on_first_chunk(self) -> None:
        for call in self._calls:
            call.on_first_chunk()

    def on_answer(self, completion: ChatCompletion) -> None:
        for call in self._calls:
            call.on_answer(completion)

    def on_error(self, exc: BaseException) -> None:
        for call in self._calls:
            call.on_error(exc)

    def on_left(self) -> None:
        for call in self._calls:
            call.on_left()


def start_call(
    own: Observer | None,
    model: str,
    params: Mapping[str, Any],
    *,
    stream: bool,
    base_url: str,
) -> CallObserver | None:
    """Start a call with the client's own observer (its meter) and the process-wide ones."""
    extra = _observers
    if not extra:
        if own is None:
            return None
        return own.on_start(model, params, stream=stream, base_url=base_url)
    every = extra if own is None else (own, *extra)
    calls = tuple(
        call
        for o in every
        if (call := o.on_start(model, params, stream=stream, base_url=base_url)) is not None
    )
    if len(calls) > 1:
        return _Calls(calls)
    return calls[0] if calls else None


def end_with(call: CallObserver, exc: BaseException) -> None:
    """End ``call`` by ``exc``: an error, or the caller leaving (cancellation, interrupt)."""
    if isinstance(exc, Exception):
        call.on_error(exc)
    else:
        call.on_left()
