"""Sans-I/O decoder for Server-Sent Events: bytes in, events out, per the WHATWG HTML spec."""

from __future__ import annotations

from typing import NoReturn

__all__ = ["EventTooLargeError", "SSEDecoder", "ServerSentEvent"]

_BOM = b"\xef\xbb\xbf"


class ServerSentEvent:
    """One dispatched event.

    ``event`` is ``"message"`` when the stream gave no event type, ``data`` is the event's
    data lines joined with ``"\\n"``, ``id`` is the last event ID in force when the event
    was dispatched (it persists across events, ``None`` if never set) and ``retry`` is the
    reconnection time given inside this event's block, if any.
    """

    __slots__ = ("data", "event", "id", "retry")

    def __init__(
        self,
        event: str = "message",
        data: str = "",
        id: str | None = None,
        retry: int | None = None,
    ) -> None:
        self.event = event
        self.data = data
        self.id = id
        self.retry = retry

    def __repr__(self) -> str:
        return (
            f"ServerSentEvent(event={self.event!r}, data={self.data!r}, "
            f"id={self.id!r}, retry={self.retry!r})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ServerSentEvent):
            return NotImplemented
        return (
            self.event == other.event
            and self.data == other.data
            and self.id == other.id
            and self.retry == other.retry
        )


class EventTooLargeError(ValueError):
    """One event buffered more bytes than the decoder's ``max_event_size`` allows."""


class SSEDecoder:
    """Incremental event-stream parser: call :meth:`feed` with each chunk, :meth:`end` at EOF.

    Line ends may be CRLF, LF or CR, also split across chunks; a leading UTF-8 BOM is
    dropped; lines are decoded as UTF-8 (invalid bytes become U+FFFD) once complete.

    The size of an event is the byte length of its ``data`` lines received so far (whole
    lines, field name included) plus the line currently being received. When it would
    exceed ``max_event_size``, :meth:`feed` raises :class:`EventTooLargeError`; the
    decoder's state is then undefined and the stream must be abandoned.
    """

    __slots__ = (
        "_data",
        "_data_size",
        "_ended",
        "_event",
        "_event_retry",
        "_head",
        "_id",
        "_last_event_id",
        "_max_event_size",
        "_partial",
        "_partial_size",
        "_prelude",
        "_retry",
        "_skip_lf",
        "_truncated",
    )

    def __init__(self, *, max_event_size: int = 16 * 1024 * 1024) -> None:
        if max_event_size < 1:
            raise ValueError(f"max_event_size must be positive, got {max_event_size}")
        self._max_event_size = max_event_size
        # Bytes from the stream's start held back until we know whether they are a BOM.
        self._head: bytes | None = b""
        self._skip_lf = False
        self._partial: list[bytes] = []
        self._partial_size = 0
        self._data: list[str] = []
        self._data_size = 0
        self._event = ""
        self._event_retry: int | None = None
        self._id: str | None = None
        self._last_event_id: str | None = None
        self._retry: int | None = None
        self._ended = False
        self._truncated = False
        # Set while any of the rare states handled by _prepare() is pending.
        self._prelude = True

    @property
    def last_event_id(self) -> str | None:
        """The ID to resume from (``Last-Event-ID``), ``None`` until an ``id`` field is seen.

        As the spec has it, an ``id`` takes effect here at the blank line ending its block,
        so an ``id`` in an event cut off by the end of the stream does not count.
        """
        return self._last_event_id

    @property
    def retry(self) -> int | None:
        """The last valid reconnection time, in milliseconds, seen on the stream."""
        return self._retry

    @property
    def truncated(self) -> bool:
        """After :meth:`end`: whether a partial line or an undispatched event was discarded."""
        return self._truncated

    def feed(self, data: bytes) -> list[ServerSentEvent]:
        """Consume the next chunk of the stream; return the events it completes.

        Args:
            data: The next bytes of the body, split anywhere (inside a line or a UTF-8
                character too).

        Raises:
            EventTooLargeError: an event grew past ``max_event_size``.
        """
        return self._feed(data, False)  # type: ignore[return-value]

    def _feed_payloads(self, data: bytes) -> list[bytes | ServerSentEvent]:
        # feed() for the stream's hot path, which parses each event's data from bytes. A plain
        # event (type "message", one data line, no other field, no event ID in force) may come
        # back as its raw data bytes: exactly ServerSentEvent(data=raw.decode("utf-8",
        # "replace")), spared an event object and a str. tests/unit/test_sse.py proves the two
        # equal.
        return self._feed(data, True)

    def _feed(self, data: bytes, raw: bool) -> list[bytes | ServerSentEvent]:
        if self._prelude:
            data = self._prepare(data)
        if 13 in data:  # b"\r"; an int operand takes the fast memchr path
            if data[-1] == 13:
                # That CR ends a line; an LF opening the next chunk is its CRLF, not a blank line.
                self._skip_lf = self._prelude = True
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")

        events: list[bytes | ServerSentEvent] = []
        if self._partial or self._data or self._event or self._event_retry is not None:
            # An event is under way: finish it line by line, up to its blank line.
            if not self._partial and data[:1] == b"\n":
                end = 1
            else:
                end = data.find(b"\n\n") + 2
                if end < 2:
                    self._general(data, events)
                    return events
            self._general(data[:end], events)
            data = data[end:]
        # Whole events with nothing buffered before them. Splitting on the blank line *and* the
        # next event's "data: " hands back each single-line data event's payload with no
        # further slicing; any piece holding another line break goes through _lines.
        cut = data.rfind(b"\n\n")
        if 0 <= cut <= self._max_event_size:
            pieces = data[:cut].split(b"\n\ndata: ")
            first = pieces[0]
            if first[:6] == b"data: " and 10 not in first:
                pieces[0] = first[6:]
            else:
                self._block(first, events)
                del pieces[0]
            # Raw bytes carry no event ID: with one in force, every event is an object.
            raw = raw and self._id is None
            for payload in pieces:
                if 10 in payload:
                    self._block(b"data: " + payload, events)
                    raw = raw and self._id is None
                elif raw:
                    events.append(payload)
                else:
                    events.append(
                        ServerSentEvent("message", payload.decode("utf-8", "replace"), self._id)
                    )
            self._last_event_id = self._id
            data = data[cut + 2 :]
        if data:
            self._general(data, events)
        return events

    def _block(self, block: bytes, events: list[bytes | ServerSentEvent]) -> None:
        """Parse one whole block: its lines, then the blank line that ended it."""
        lines = block.split(b"\n")
        lines.append(b"")
        self._lines(lines, events, False)

    def _general(self, data: bytes, events: list[bytes | ServerSentEvent]) -> None:
        # Every line of this chunk, and the data buffered with it, fits within this sum,
        # so the per-line size checks are only needed when it is over the limit.
        check = len(data) + self._partial_size + self._data_size > self._max_event_size
        lines = data.split(b"\n")
        tail = lines.pop()
        partial = self._partial
        if partial and lines:
            partial.append(lines[0])
            lines[0] = b"".join(partial)
            partial = self._partial = []
            self._partial_size = 0
        if tail:
            partial.append(tail)
            self._partial_size += len(tail)
        self._lines(lines, events, check)
        if check and self._partial_size + self._data_size > self._max_event_size:
            self._too_large()

    def _lines(
        self, lines: list[bytes], events: list[bytes | ServerSentEvent], check: bool
    ) -> None:
        buffer = self._data
        for line in lines:
            if check and self._data_size + len(line) > self._max_event_size:
                self._too_large()
            if line[:6] == b"data: ":  # the usual line, spared the general parsing in _field()
                buffer.append(line[6:].decode("utf-8", "replace"))
                self._data_size += len(line)
            elif not line:
                if buffer:
                    events.append(
                        ServerSentEvent(
                            self._event or "message",
                            "\n".join(buffer),
                            self._id,
                            self._event_retry,
                        )
                    )
                    buffer.clear()
                    self._data_size = 0
                self._last_event_id = self._id
                self._event = ""
                self._event_retry = None
            else:
                self._field(line)

    def end(self) -> list[ServerSentEvent]:
        """Signal end of input. Per the spec an event lacking its blank line is not dispatched."""
        if not self._ended:
            self._ended = self._prelude = True
            self._truncated = bool(self._head or self._partial or self._data)
            self._head = None
            self._partial = []
            self._partial_size = 0
            self._data = []
            self._data_size = 0
        return []

    def _prepare(self, data: bytes) -> bytes:
        # The rare states, kept off the hot path: stream start, a CR that ended the previous
        # chunk, and use after end().
        if self._ended:
            raise RuntimeError("SSEDecoder.feed() called after end()")
        if self._head is not None:
            data = self._head + data
            if len(data) < 3 and _BOM.startswith(data):
                self._head = data  # may still be the start of a BOM: hold it back
                return b""
            self._head = None
            if data.startswith(_BOM):
                data = data[3:]
        if self._skip_lf and data:
            self._skip_lf = False
            if data[0] == 10:  # this LF completes the CRLF begun in the previous chunk
                data = data[1:]
        self._prelude = self._head is not None or self._skip_lf
        return data

    def _field(self, line: bytes) -> None:
        colon = line.find(b":")
        if colon == 0:
            return
        if colon < 0:
            name, value = line, b""
        else:
            name = line[:colon]
            value = line[colon + 2 :] if line.startswith(b" ", colon + 1) else line[colon + 1 :]
        if name == b"data":
            self._data.append(value.decode("utf-8", "replace"))
            self._data_size += len(line)
        elif name == b"event":
            self._event = value.decode("utf-8", "replace")
        elif name == b"id":
            if b"\0" not in value:
                self._id = value.decode("utf-8", "replace")
        elif name == b"retry" and value.isdigit():  # bytes.isdigit() is ASCII digits only
            try:
                retry = int(value)
            except ValueError:  # more digits than int() accepts: no sane delay, ignore it
                return
            self._retry = self._event_retry = retry

    def _too_large(self) -> NoReturn:
        raise EventTooLargeError(
            f"A server-sent event is larger than max_event_size={self._max_event_size} bytes; "
            "if such events are expected, raise the limit with the max_event_size argument."
        )
