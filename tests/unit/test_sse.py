"""Tests for the sans-I/O Server-Sent Events decoder."""

from __future__ import annotations

import itertools
import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiocometapi.sse import EventTooLargeError, ServerSentEvent, SSEDecoder

E = ServerSentEvent
Outcome = tuple[list[ServerSentEvent], bool, str | None, int | None]


def run(chunks: list[bytes], *, payloads: bool = False, **kwargs: int) -> Outcome:
    decoder = SSEDecoder(**kwargs)
    events: list[ServerSentEvent] = []
    for chunk in chunks:
        if payloads:
            events += [
                E(data=e.decode("utf-8", "replace")) if isinstance(e, bytes) else e
                for e in decoder._feed_payloads(chunk)
            ]
        else:
            events += decoder.feed(chunk)
    assert decoder.end() == []
    return events, decoder.truncated, decoder.last_event_id, decoder.retry


_LINE_END = re.compile(r"\r\n|\r|\n")


def reference(stream: bytes) -> Outcome:
    """The spec's algorithm transcribed literally: decode the whole stream, then parse lines."""
    text = stream.decode("utf-8", "replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    *lines, rest = _LINE_END.split(text)
    events: list[ServerSentEvent] = []
    data = event_type = ""
    id_buffer: str | None = None
    last_id: str | None = None
    retry: int | None = None
    block_retry: int | None = None
    for line in lines:
        if line == "":
            last_id = id_buffer
            if data:
                events.append(
                    E(event_type or "message", data.removesuffix("\n"), id_buffer, block_retry)
                )
            data = event_type = ""
            block_retry = None
        elif not line.startswith(":"):
            name, colon, value = line.partition(":")
            if colon and value.startswith(" "):
                value = value[1:]
            if name == "data":
                data += value + "\n"
            elif name == "event":
                event_type = value
            elif name == "id" and "\0" not in value:
                id_buffer = value
            elif name == "retry" and value and all(c in "0123456789" for c in value):
                retry = block_retry = int(value)
    return events, bool(rest or data), last_id, retry


def split_at(stream: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted(cuts), len(stream)]
    return [stream[a:b] for a, b in itertools.pairwise(bounds)]


CASES = [
    pytest.param([b"data: hello\n\n"], [E("message", "hello")], id="single"),
    pytest.param([b"data: a\ndata: b\ndata: c\n\n"], [E(data="a\nb\nc")], id="multi-line"),
    pytest.param([b"data: a\n\ndata: b\n\n"], [E(data="a"), E(data="b")], id="two-events"),
    pytest.param([b"data: a\r\ndata: b\r\n\r\n"], [E(data="a\nb")], id="crlf"),
    pytest.param([b"data: a\rdata: b\r\r"], [E(data="a\nb")], id="cr"),
    pytest.param([b"data: a\ndata: b\r\ndata: c\r\r\n"], [E(data="a\nb\nc")], id="mixed-ends"),
    pytest.param(
        [b"data: line1\r", b"\ndata: line2\n\n"], [E(data="line1\nline2")], id="crlf-split"
    ),
    pytest.param(
        [b"data: a", b"\ndata: b\n", b"\ndata: c\n\ndata: d\n\n"],
        [E(data="a\nb"), E(data="c"), E(data="d")],
        id="event-finished-then-whole-events",
    ),
    pytest.param(
        [b"data: x\n\ndata: y", b"1\n\ndata: z\n\ndata: w"],
        [E(data="x"), E(data="y1"), E(data="z")],
        id="partial-event-between-reads",
    ),
    pytest.param([b"event: x\n", b"data: a\n\n"], [E(event="x", data="a")], id="event-then-data"),
    pytest.param([b"retry: 5\n", b"data: a\n\n"], [E(data="a", retry=5)], id="retry-then-data"),
    pytest.param([b"id: 7\n", b"data: a\n\n"], [E(data="a", id="7")], id="id-then-data"),
    pytest.param([b"data: a\r", b"", b"\n\n"], [E(data="a")], id="crlf-split-by-empty-feed"),
    pytest.param([b"data: a\r", b"data: b\r\r"], [E(data="a\nb")], id="cr-then-non-lf"),
    pytest.param(
        [b"data: a\r", b"\rdata: b\n\n"], [E(data="a"), E(data="b")], id="cr-then-cr-is-blank-line"
    ),
    pytest.param([b"data: a\r", b"\n\r\n"], [E(data="a")], id="crlf-split-then-crlf"),
    pytest.param([b"\xef\xbb\xbfdata: a\n\n"], [E(data="a")], id="bom"),
    pytest.param([b"\xef", b"\xbb", b"\xbfdata: a\n\n"], [E(data="a")], id="bom-split"),
    pytest.param([b"\xef\xbb", b"\xbf", b"data: a\n\n"], [E(data="a")], id="bom-split-2"),
    pytest.param([b"\xef\xbb\xbf\xef\xbb\xbfdata: a\n\n"], [], id="second-bom-is-field-name"),
    pytest.param(
        [b"data: a\n\n", b"data: \xef\xbb\xbfb\n\n"],
        [E(data="a"), E(data="\ufeffb")],
        id="bom-not-at-start-kept",
    ),
    pytest.param([b"\xef\xbb", b"\ndata: a\n\n"], [E(data="a")], id="half-bom-is-not-a-bom"),
    pytest.param([b": keep-alive\n\ndata: a\n: note\n\n"], [E(data="a")], id="comments"),
    pytest.param([b"data:  two\n\n"], [E(data=" two")], id="strip-only-one-space"),
    pytest.param([b"data:none\n\n"], [E(data="none")], id="no-space"),
    pytest.param([b"data:\tx\n\n"], [E(data="\tx")], id="tab-not-stripped"),
    pytest.param([b"data: a:b: c\n\n"], [E(data="a:b: c")], id="colons-in-value"),
    pytest.param([b"data\ndata\n\n"], [E(data="\n")], id="field-without-colon"),
    pytest.param([b"data:\n\n"], [E(data="")], id="empty-data"),
    pytest.param([b"data: \n\n"], [E(data="")], id="empty-data-with-space"),
    pytest.param(
        [b"event: add\ndata: x\n\ndata: y\n\n"],
        [E("add", "x"), E("message", "y")],
        id="event-type-resets",
    ),
    pytest.param([b"event:\ndata: x\n\n"], [E("message", "x")], id="empty-event-type"),
    pytest.param(
        [b"event: add\n\ndata: x\n\n"],
        [E("message", "x")],
        id="event-type-reset-by-undispatched-block",
    ),
    pytest.param(
        [b"id: 1\ndata: a\n\ndata: b\n\nid\ndata: c\n\n"],
        [E(data="a", id="1"), E(data="b", id="1"), E(data="c", id="")],
        id="id-persists",
    ),
    pytest.param([b"id: 1\n\nid: 2\x003\ndata: a\n\n"], [E(data="a", id="1")], id="id-with-nul"),
    pytest.param(
        [b"retry: 10\ndata: a\n\ndata: b\n\n"], [E(data="a", retry=10), E(data="b")], id="retry"
    ),
    pytest.param(
        [b"retry: 10a\nretry: -1\nretry: 1.5\nretry:\nretry: \xd9\xa1\ndata: a\n\n"],
        [E(data="a")],
        id="retry-not-digits",
    ),
    pytest.param([b"foo: bar\nData: x\ndata: a\n\n"], [E(data="a")], id="unknown-field"),
    pytest.param(
        [b"\n\n\n", b"event: x\n\n", b"id: 3\n\n", b"retry: 5\n\n"],
        [],
        id="blank-lines-without-data",
    ),
    pytest.param([b"data: a\xffb\xe2\x82\n\n"], [E(data="a\ufffdb\ufffd")], id="invalid-utf8"),
    pytest.param([b"data: \xe2", b"\x82", b"\xac\n\n"], [E(data="\u20ac")], id="utf8-split"),
    pytest.param(
        [b"data: \xf0\x9f", b"\x98\x80 \xc3\xa9\n\n"],
        [E(data="\U0001f600 \u00e9")],
        id="utf8-4-byte-split",
    ),
    pytest.param([b"da", b"ta: [DO", b"NE]\n", b"\n"], [E(data="[DONE]")], id="done"),
    pytest.param([b"data: x\n"], [], id="eof-without-blank-line"),
]


@pytest.mark.parametrize(("chunks", "expected"), CASES)
def test_cases(chunks: list[bytes], expected: list[ServerSentEvent]) -> None:
    """Each stream yields exactly the events the spec prescribes, fed as given or in one piece."""
    assert run(chunks)[0] == expected
    assert run([b"".join(chunks)])[0] == expected


@pytest.mark.parametrize(
    ("chunks", "truncated"),
    [
        ([b"data: a\n\n"], False),
        ([b""], False),
        ([], False),
        ([b"data: a\n"], True),
        ([b"data: a\r"], True),
        ([b"data: a\n\r"], False),
        ([b"data: a\n\ndata: b"], True),
        ([b": comment"], True),
        ([b"event: x\nid: 1\n"], False),
        ([b"\xef\xbb"], True),
        ([b"\xef\xbb\xbf"], False),
    ],
)
def test_truncated(chunks: list[bytes], truncated: bool) -> None:
    """`truncated` reports whether end() discarded a partial line or an undispatched event."""
    assert run(chunks)[1] is truncated


def test_event_at_eof_is_not_dispatched() -> None:
    """An event lacking its closing blank line is dropped at end() and flagged as truncated."""
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n\ndata: b\n") == [E(data="a")]
    assert decoder.truncated is False
    assert decoder.end() == []
    assert decoder.truncated is True
    assert decoder.end() == []


def test_last_event_id_and_retry() -> None:
    """last_event_id takes an id at its block's blank line; retry is the last valid value."""
    decoder = SSEDecoder()
    assert (decoder.last_event_id, decoder.retry) == (None, None)
    decoder.feed(b"id: 7\nretry: 3000\ndata: a\n\nid: 8\nretry: x\ndata: b\n")
    assert (decoder.last_event_id, decoder.retry) == ("7", 3000)
    decoder.feed(b"\n")
    assert decoder.last_event_id == "8"
    decoder.feed(b"id: 9\n\n")
    assert decoder.last_event_id == "9"
    decoder.feed(b"id: 10\n")
    decoder.feed(b"data: c\n\n")
    assert decoder.last_event_id == "10"


def test_fast_path_gives_raw_bytes_for_plain_events() -> None:
    """The stream's fast path returns plain data events as raw bytes and the rest as events."""
    decoder = SSEDecoder()
    assert decoder._feed_payloads(b'data: {"a":1}\n\ndata: [DONE]\n\n') == [b'{"a":1}', b"[DONE]"]
    out = decoder._feed_payloads(b"event: error\ndata: x\n\ndata: l1\ndata: l2\n\ndata: y\n\n")
    assert out == [E(event="error", data="x"), E(data="l1\nl2"), b"y"]


def test_fast_path_keeps_event_ids() -> None:
    """With an event ID in force the fast path returns events, so that no ID is lost."""
    decoder = SSEDecoder()
    assert decoder._feed_payloads(b"data: a\n\n") == [b"a"]
    out = decoder._feed_payloads(b"id: 7\ndata: b\n\ndata: c\n\n")
    assert out == [E(data="b", id="7"), E(data="c", id="7")]
    assert decoder._feed_payloads(b"data: d\n\ndata: e\n\n") == [
        E(data="d", id="7"),
        E(data="e", id="7"),
    ]


def test_huge_retry_does_not_raise() -> None:
    """A retry value with more digits than int() accepts does not make the decoder raise."""
    events, _, _, _ = run([b"retry: " + b"9" * 10_000 + b"\ndata: a\n\n"])
    assert events == [E(data="a")]


def test_feed_after_end_raises() -> None:
    """Feeding a decoder after end() is a usage error."""
    decoder = SSEDecoder()
    decoder.end()
    with pytest.raises(RuntimeError):
        decoder.feed(b"data: a\n\n")


def test_max_event_size_must_be_positive() -> None:
    """A zero or negative max_event_size is rejected."""
    with pytest.raises(ValueError, match="max_event_size"):
        SSEDecoder(max_event_size=0)


def test_event_repr_and_equality() -> None:
    """Events compare by value, have a readable repr and default to type "message"."""
    event = E(data="x", id="1", retry=5)
    assert event == E("message", "x", "1", 5)
    assert event != E("message", "x", "1", None)
    assert event != "x"
    assert repr(event) == "ServerSentEvent(event='message', data='x', id='1', retry=5)"


# -- size bound ------------------------------------------------------------------------------

LINE = b"data: " + b"x" * 1000


@pytest.mark.parametrize("chunk_size", [1, 7, 1460, 1 << 20])
def test_event_at_the_bound_is_accepted(chunk_size: int) -> None:
    """An event whose data lines total exactly max_event_size bytes decodes normally."""
    stream = LINE + b"\n" + LINE + b"\n\n"
    chunks = [stream[i : i + chunk_size] for i in range(0, len(stream), chunk_size)]
    events, truncated, _, _ = run(chunks * 3, max_event_size=2 * len(LINE))
    assert events == [E(data="x" * 1000 + "\n" + "x" * 1000)] * 3
    assert not truncated


@pytest.mark.parametrize("chunk_size", [1, 7, 1460, 1 << 20])
def test_event_over_the_bound_raises(chunk_size: int) -> None:
    """One byte over max_event_size raises EventTooLargeError naming the limit and the knob."""
    stream = LINE + b"\n" + LINE + b"\n\n"
    chunks = [stream[i : i + chunk_size] for i in range(0, len(stream), chunk_size)]
    with pytest.raises(EventTooLargeError) as info:
        run(chunks, max_event_size=2 * len(LINE) - 1)
    message = str(info.value)
    assert f"max_event_size={2 * len(LINE) - 1}" in message
    assert "max_event_size argument" in message
    assert isinstance(info.value, ValueError)


def test_unterminated_line_over_the_bound_raises_before_it_ends() -> None:
    """A line that never ends is cut off as soon as it outgrows the bound."""
    decoder = SSEDecoder(max_event_size=100)
    decoder.feed(b"data: " + b"x" * 94)
    with pytest.raises(EventTooLargeError):
        decoder.feed(b"x")


def test_bound_is_per_event_not_per_stream() -> None:
    """Many events each under the bound never raise, however long the stream."""
    decoder = SSEDecoder(max_event_size=64)
    events = []
    for _ in range(1000):
        events += decoder.feed(b": " + b"z" * 60 + b"\ndata: " + b"y" * 58 + b"\n\nid: 1\n")
    assert events == [E(data="y" * 58)] + [E(data="y" * 58, id="1")] * 999


# -- properties ------------------------------------------------------------------------------

_names = st.sampled_from(["data", "data", "event", "id", "retry", "foo", "", "Data"])
_values = st.one_of(
    st.sampled_from(["", " ", "  x", "[DONE]", "10", "10a", "007", "a\x00b", "\ufeff", "é€😀"]),
    st.integers(0, 10**6).map(str),
    st.text(max_size=12),
)
_field_line = st.builds(
    "".join, st.tuples(_names, st.sampled_from([":", ": ", ":  ", ""]), _values)
)
_typical_lines = st.sampled_from([
    "data: x", "data:y", "data", "data:", "data:  z", "data: é€😀", "Data: q", "\ufeffdata: b",
    "event: e", "event:", "id: 1", "id", "id: a\x00b", "retry: 10", "retry: 7x", "retry:",
    ": c", ":", "foo: bar",
])  # fmt: skip
_line = st.one_of(
    _typical_lines, _typical_lines, _field_line, st.text(max_size=8).map(":".__add__), st.just("")
)
# Blocks of a few lines closed by a blank line, so that events are dispatched often.
_blocks = st.lists(st.lists(_line, max_size=4).map(lambda lines: [*lines, ""]), max_size=8)
realistic_streams = st.builds(
    lambda bom, blocks, ends, last: (
        ("\ufeff" if bom else "")
        + "".join(
            line + ends[i % len(ends)]
            for i, line in enumerate(line for block in blocks for line in block)
        )
        + last
    ).encode(),
    st.booleans(),
    _blocks,
    st.lists(st.sampled_from(["\n", "\r", "\r\n"]), min_size=1, max_size=8),
    st.one_of(st.just(""), _line),
)
_pieces = [
    b"\r", b"\n", b"\r\n", b"data", b"id", b"retry", b"event", b":", b" ", b"1", b"x", b"\x00",
    b"\xef\xbb\xbf", b"\xef", b"\xbb", b"\xbf", b"\xe2\x82", b"\xac", b"\xff",
]  # fmt: skip
raw_streams = st.one_of(
    st.binary(max_size=200),
    st.lists(st.sampled_from(_pieces), max_size=60).map(b"".join),
)
any_stream = st.one_of(realistic_streams, raw_streams)


@settings(max_examples=300)
@given(stream=any_stream, data=st.data())
def test_split_points_do_not_matter(stream: bytes, data: st.DataObject) -> None:
    """Feeding a stream in pieces, byte by byte or whole gives the same outcome as the spec."""
    whole = run([stream])
    assert whole == reference(stream)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=12))
    assert run(split_at(stream, cuts)) == whole
    assert run([stream[i : i + 1] for i in range(len(stream))]) == whole
    assert without_ids(run(split_at(stream, cuts), payloads=True)) == without_ids(whole)


def without_ids(outcome: Outcome) -> tuple[object, ...]:
    """An outcome with each event reduced to (type, data): raw payloads carry no id."""
    events, *rest = outcome
    return ([(e.event, e.data) for e in events], *rest)


_ends = st.sampled_from(["\n", "\r", "\r\n"])
_json_ish = st.one_of(
    st.sampled_from(['{"a":1}', "[DONE]", "", " ", '{"c":"\u00e9"}', "x: y", "data: z"]),
    st.text(max_size=16).filter(lambda t: "\n" not in t and "\r" not in t),
)
# Mostly the stream's own shape (one "data: " line per event), the rest of the syntax mixed in.
_payload_line = st.one_of(
    *[_json_ish.map("data: ".__add__)] * 6,
    _typical_lines,
    _field_line,
    st.just(""),
)
payload_streams = st.builds(
    lambda bom, events, ends, junk, last: (
        (b"\xef\xbb\xbf" if bom else b"")
        + b"".join(
            line.encode() + junk[i % len(junk)] + ends[i % len(ends)].encode()
            for i, line in enumerate(line for event in events for line in (*event, ""))
        )
        + last.encode()
    ),
    st.booleans(),
    st.lists(st.lists(_payload_line, min_size=1, max_size=3), max_size=12),
    st.lists(_ends, min_size=1, max_size=3),
    # Bytes that are not UTF-8 (or only half of a character), now and then.
    st.lists(
        st.sampled_from([b""] * 8 + [b"\xff", b"\xe2\x82", b"\xc3", b"\xed\xa0\x80"]),
        min_size=1,
        max_size=6,
    ),
    st.one_of(st.just(""), _line),
)


def fast_path_run(chunks: list[bytes], **kwargs: int) -> Outcome:
    """``run`` through the stream's fast path, each raw payload read as the event it stands for."""
    decoder = SSEDecoder(**kwargs)
    events: list[ServerSentEvent] = []
    for chunk in chunks:
        for item in decoder._feed_payloads(chunk):
            if isinstance(item, bytes):
                item = E("message", item.decode("utf-8", "replace"), None, None)
            events.append(item)
    assert decoder.end() == []
    return events, decoder.truncated, decoder.last_event_id, decoder.retry


def outcome_or_too_large(chunks: list[bytes], fast: bool, **kwargs: int) -> Outcome | None:
    try:
        return fast_path_run(chunks, **kwargs) if fast else run(chunks, **kwargs)
    except EventTooLargeError:
        return None


@settings(max_examples=500)
@given(
    stream=st.one_of(payload_streams, payload_streams, any_stream),
    data=st.data(),
    limit=st.just(1 << 20) | st.integers(1, 64),
)
def test_fast_path_equals_feed(stream: bytes, data: st.DataObject, limit: int) -> None:
    """The stream's fast path gives exactly feed()'s events (type, data, id, retry), end state
    and size errors, each fed at its own random split points, for any mix of line endings,
    comments, event/id/retry fields, BOM and invalid UTF-8."""
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=16), "feed cuts")
    fast_cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=16), "fast cuts")
    expected = outcome_or_too_large(split_at(stream, cuts), False, max_event_size=limit)
    fast = outcome_or_too_large(split_at(stream, fast_cuts), True, max_event_size=limit)
    assert fast == expected
    if expected is not None and limit == 1 << 20:
        assert expected == reference(stream)


@settings(max_examples=300)
@given(stream=any_stream, data=st.data(), limit=st.integers(1, 64))
def test_small_bound_only_raises_event_too_large(
    stream: bytes, data: st.DataObject, limit: int
) -> None:
    """A small bound raises only EventTooLargeError, and raises whatever the split points."""
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=12))
    outcomes: list[Outcome | None] = []
    for chunks in ([stream], split_at(stream, cuts)):
        try:
            outcomes.append(run(chunks, max_event_size=limit))
        except EventTooLargeError:
            outcomes.append(None)
    assert outcomes[0] == outcomes[1]
    assert outcomes[0] is None or outcomes[0] == reference(stream)


@given(stream=st.binary(max_size=500), data=st.data())
def test_arbitrary_bytes_never_raise(stream: bytes, data: st.DataObject) -> None:
    """Arbitrary bytes under a huge bound never make the decoder raise."""
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=12))
    run(split_at(stream, cuts), max_event_size=1 << 40)


# -- linear time -----------------------------------------------------------------------------


def _time_one_big_line(size: int) -> float:
    # CPU time of this thread, not wall time: on a busy machine wall time also counts the
    # other processes that had the core meanwhile.
    stream = b"data: " + b"x" * size + b"\n\n"
    chunks = [stream[i : i + 1460] for i in range(0, len(stream), 1460)]
    best = float("inf")
    for _ in range(5):
        decoder = SSEDecoder()
        start = time.thread_time()
        events = [event for chunk in chunks for event in decoder.feed(chunk)]
        best = min(best, time.thread_time() - start)
        assert len(events) == 1
        assert len(events[0].data) == size
    return best


def test_long_line_takes_linear_time() -> None:
    """An 8 MiB data line fed in 1460-byte pieces costs about 8x a 1 MiB one, not 64x."""
    # The least ratio of up to three measurements: noise only adds, a quadratic path gives
    # ~64 every time.
    ratio = float("inf")
    for _ in range(3):
        small = _time_one_big_line(1 << 20)
        big = _time_one_big_line(8 << 20)
        ratio = min(ratio, big / max(small, 1e-9))
        if ratio < 16:
            break
    assert ratio < 16, ratio
