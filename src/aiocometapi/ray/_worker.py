"""The ``map_batches`` actor: one ``AsyncCometAPI`` per actor, each batch fanned out inside it.

Every batch an actor runs shares the actor's client, its connection pool and one gate of
``concurrency`` requests in flight (Ray runs a few batches of an async actor at once). A row's
failure, from building its request to the answer, becomes that row's ``error``; only a problem
with the job itself (no key on the worker, a missing column) fails the job.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import anyio
import msgspec
import pyarrow as pa

from .._client import AsyncCometAPI
from .._compat import warn_once_here
from .._exceptions import ConfigurationError
from ..types import ChatCompletion, ParsedChatCompletion
from ._budget import ClusterBudget
from ._columns import ANSWER_COLUMNS, answer_values, error_row, field_columns
from ._types import rebuild

__all__ = ["RequestSource", "Spec", "Worker"]

RequestSource = str | Callable[[dict[str, Any]], Mapping[str, Any]]
ROW_ID_HEADER = "X-Client-Request-Id"
_NOT_SENT = ("stream", "stream_options")
_encode_sorted = msgspec.json.Encoder(order="sorted").encode


@dataclass(frozen=True)
class Spec:
    """What every worker actor needs: how to build requests, and how to send them.

    It holds no key: workers read ``COMETAPI_KEY`` from their own environment.
    """

    request: RequestSource
    id_column: str | None
    concurrency: int
    base_url: str | None
    requests_per_minute: float | None
    """This worker's share of the cluster's budget, for when the coordinator is gone."""
    tokens_per_minute: float | None
    max_retries: int | None
    timeout: float | None
    response_format: Any
    """A recipe of the ``response_format`` type (see ``_types``), or None."""
    on_error: Literal["row", "raise"]
    coordinator: Any
    """The coordinator actor's handle, or None for independent clients."""


def _without_nulls(value: Any) -> Any:
    """Drop the keys whose value is null from dicts at any depth (Arrow adds them when it
    merges dicts of different keys into one struct column)."""
    if isinstance(value, Mapping):
        return {key: _without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_without_nulls(item) for item in value]
    return value


class Worker:
    """The callable class given to ``Dataset.map_batches`` (one instance per actor)."""

    def __init__(self, spec: Spec) -> None:
        self._spec = spec
        self._client: AsyncCometAPI | None = None
        self._gate: asyncio.Semaphore | None = None
        self._warned: set[tuple[str, str]] = set()
        self._format = None if spec.response_format is None else rebuild(spec.response_format)
        self._fields = field_columns(self._format, ()) if self._format is not None else []

    # ----------------------------------------------------------------------- the client

    def _open(self) -> tuple[AsyncCometAPI, asyncio.Semaphore]:
        spec = self._spec
        if self._client is None or self._gate is None:
            try:
                client = AsyncCometAPI(
                    base_url=spec.base_url,
                    timeout=spec.timeout,
                    max_retries=spec.max_retries,
                    max_connections=max(100, spec.concurrency),
                    requests_per_minute=spec.requests_per_minute,
                    tokens_per_minute=spec.tokens_per_minute,
                )
            except ConfigurationError as exc:
                raise ConfigurationError(
                    f"{exc} On Ray, the key is read from each worker's own environment: "
                    "export COMETAPI_KEY where `ray start` runs on every node (or before "
                    "ray.init() for a local Ray)."
                ) from None
            if spec.coordinator is not None:
                budget = ClusterBudget(spec.coordinator, concurrency=spec.concurrency)
                client.share_rate_budget(budget)
            self._client, self._gate = client, asyncio.Semaphore(spec.concurrency)
        return self._client, self._gate

    # ----------------------------------------------------------------------- requests

    def params(self, row: dict[str, Any]) -> dict[str, Any]:
        """The ``create()`` parameters of one row."""
        source = self._spec.request
        if callable(source):
            params = dict(source(row))
        else:
            value = row[source]
            if isinstance(value, (str, bytes)):
                value = msgspec.json.decode(value)
            elif isinstance(value, Mapping):
                value = _without_nulls(value)
            if not isinstance(value, Mapping):
                raise TypeError(
                    f"column {source!r} holds {type(value).__name__}, not a dict of create() "
                    "parameters or its JSON text"
                )
            params = dict(value)
        for key in _NOT_SENT:
            params.pop(key, None)
        return params

    def row_id(self, row: dict[str, Any], params: Mapping[str, Any]) -> str:
        """The row's id: its ``id_column``, else a digest of its request (the same on a re-run)."""
        column = self._spec.id_column
        if column is not None:
            return str(row[column])
        return "row-" + hashlib.sha256(_encode_sorted(params)).hexdigest()[:16]

    @staticmethod
    def traced(params: dict[str, Any], row_id: str) -> dict[str, Any]:
        """``params`` sending the row's id as ``user`` (unless set) and as a header."""
        if params.get("user") is None:
            params["user"] = row_id
        headers = params.get("extra_headers") or {}
        params["extra_headers"] = {**headers, ROW_ID_HEADER: row_id}
        return params

    async def answer(
        self, jobs: list[dict[str, Any] | BaseException]
    ) -> list[ChatCompletion | BaseException]:
        """Send every job that is parameters; each gets its completion or the error that
        ended it (an error given as a job stays its result)."""
        client, gate = self._open()
        spec = self._spec
        results: list[ChatCompletion | BaseException | None] = [
            job if isinstance(job, BaseException) else None for job in jobs
        ]
        # A compat warning comes once per (parameter, model family) per worker, not per row.
        warn_once_here(self._warned)

        async def one(index: int, params: dict[str, Any]) -> None:
            async with gate:
                try:
                    if self._format is not None:
                        results[index] = await client.chat.completions.parse(
                            response_format=self._format, **params
                        )
                    else:
                        results[index] = await client.chat.completions.create(**params)
                except Exception as exc:  # every failure becomes this row's result
                    results[index] = exc

        async with anyio.create_task_group() as group:
            for index, job in enumerate(jobs):
                if not isinstance(job, BaseException):
                    group.start_soon(one, index, job)
        answered = [result for result in results if result is not None]
        assert len(answered) == len(jobs)
        if spec.on_error == "raise":
            for result in answered:
                if isinstance(result, BaseException):
                    raise result
        return answered

    def _jobs(self, rows: list[dict[str, Any]]) -> list[dict[str, Any] | BaseException]:
        jobs: list[dict[str, Any] | BaseException] = []
        for row in rows:
            try:
                params = self.params(row)
                jobs.append(self.traced(params, self.row_id(row, params)))
            except Exception as exc:  # a row whose request cannot be built is an error row
                jobs.append(exc)
        return jobs

    # ----------------------------------------------------------------------- one batch

    async def __call__(self, batch: pa.Table) -> AsyncIterator[pa.Table]:
        """Ray Data's entry point: the batch, answered (see ``batch``)."""
        # An async generator (yielding one table) rather than a coroutine: Ray Data runs
        # those on an actor's event loop since 2.32, coroutines only since later.
        yield await self.batch(batch)

    async def batch(self, batch: pa.Table) -> pa.Table:
        """The batch with the answer columns added."""
        spec = self._spec
        taken = set(batch.column_names)
        if isinstance(spec.request, str) and spec.request not in taken:
            raise ValueError(f"the dataset has no column {spec.request!r} (request=...)")
        if spec.id_column is not None and spec.id_column not in taken:
            raise ValueError(f"the dataset has no column {spec.id_column!r} (id_column=...)")
        added = [name for name, _ in ANSWER_COLUMNS] + [column.name for column in self._fields]
        clash = sorted(taken.intersection(added))
        if clash:
            raise ValueError(
                f"input column(s) {', '.join(clash)} would be overwritten by the answer; "
                "rename them first (Dataset.rename_columns)"
            )
        rows = batch.to_pylist()
        results = await self.answer(self._jobs(rows))
        values = [
            error_row(result) if isinstance(result, BaseException) else answer_values(result)
            for result in results
        ]
        for name, kind in ANSWER_COLUMNS:
            batch = batch.append_column(name, pa.array([v[name] for v in values], type=kind))
        for column in self._fields:
            cells = []
            for result in results:
                parsed = _parsed(result)
                value = None if parsed is None else parsed.get(column.name)
                cells.append(column.convert(value))
            batch = batch.append_column(column.name, pa.array(cells, type=column.type))
        return batch


def _parsed(result: ChatCompletion | BaseException) -> dict[str, Any] | None:
    """The parsed answer of choice 0 as builtins, keyed by JSON field names."""
    if not isinstance(result, ParsedChatCompletion) or not result.choices:
        return None
    parsed = result.choices[0].message.parsed
    if parsed is None:
        return None
    value = msgspec.to_builtins(parsed)
    return value if isinstance(value, dict) else None
