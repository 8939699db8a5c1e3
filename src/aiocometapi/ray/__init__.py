"""Chat completions over a Ray Dataset, with one rate budget for the whole cluster (extra: ray).

``chat_completions(dataset)`` adds the answer to every row with ``Dataset.map_batches`` on
``workers`` async actors, each holding one ``AsyncCometAPI`` and fanning out every batch at up to
``concurrency`` requests in flight. Exactly one output row comes out per input row: a row whose
request fails carries an ``error`` instead of an answer.

The shared rate budget
----------------------
One client's rate controller already keeps a fan-out at the server's capacity: a 429 pauses every
request for the server's ``Retry-After`` and paces new starts at the rate the server admitted
over the last second, then probes upwards. N workers each doing that alone see their own 429s
late and cut on partial views. Here that state (admitted rate, pause after a 429,
requests/min and tokens/min budgets) lives once, in a named actor ``aiocometapi-rate-<hex>``
(``_coordinator.Coordinator``), and each worker's controller is given a ``ClusterBudget``
(``_budget``) through ``RateController.share``:

- **Permits leased in blocks.** The actor places blocks of permits on one clock of promised
  starts paced at the cluster's rate (about a tenth of a second each) and hands them to the
  workers that ask; a worker spends them locally, each in its time slot, and asks for the next
  block when half of what it holds is taken. The actor is thus called a few times a second per
  worker, never per request, the cluster's starts never run ahead of the rate, and a worker
  with no work left leaves its part to the others.
- **Congestion heard at once.** A 429 pauses its worker at once and is sent to the actor, which
  pauses everyone for the server's ``Retry-After``, cuts the rate (once per congestion event,
  at most by half) to what the server admitted over the last second (the starts it placed
  minus the 429s it heard; the first time, the workers' own counts), and wakes the long-polled
  ``watch`` of every worker: they drop the permits they hold and lease anew. Successes then
  add back a little rate, so the cluster settles at the server's capacity.
- **No single point of failure.** If any call to the actor fails (it died), the worker's
  budget is gone for good and its controller goes on alone from the last pace it was given,
  with ``requests_per_minute / workers`` and ``tokens_per_minute / workers`` as its own
  budgets. No request waits on the dead actor, so none is lost.

Re-runs and ids
---------------
If a worker dies mid-batch, Ray restarts it and runs the batch again: the output still holds each
row once, but the rows of that batch may have been sent twice. Each request carries its row's
id (the ``id_column`` value, else a digest of the request) as ``user`` (unless the request sets
one) and in the ``X-Client-Request-Id`` header, so a re-sent row can be traced.

The key
-------
The API key never enters the dataset, a task argument, an actor name or a log line: each worker
reads ``COMETAPI_KEY`` from its own environment. Export it where ``ray start`` runs on each node
(or before ``ray.init()`` on a laptop); the SDK never puts it in a ``runtime_env``, whose
``env_vars`` Ray's runtime-env agent writes to its logs in plain text.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Mapping
from typing import Any, Literal

import ray.data

from ._budget import ACTOR_PREFIX, start_coordinator
from ._columns import ANSWER_COLUMNS, field_columns
from ._types import portable
from ._worker import RequestSource, Spec, Worker

__all__ = ["ACTOR_PREFIX", "chat_completions"]

DEFAULT_WORKER_CPUS = 0.25
"""What each worker actor asks for by default: they wait on the network, not on a CPU."""
DEFAULT_TASKS_PER_WORKER = 4
"""Ray tasks each worker runs at once (an actor runs one by default): its gate of
``concurrency`` requests is then fed from several batches, not starved between two."""


def _check_positive(name: str, value: float | None, *, integer: bool = False) -> None:
    if value is None:
        return
    if integer and (not isinstance(value, int) or isinstance(value, bool)):
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {value!r}")


def plan(
    dataset: ray.data.Dataset,
    spec_options: dict[str, Any],
    *,
    workers: int,
    concurrency: int,
    requests_per_minute: float | None,
    tokens_per_minute: float | None,
    shared_budget: bool,
    batch_size: int | None,
    ray_remote_args: Mapping[str, Any] | None,
    worker_class: type[Worker] = Worker,
) -> tuple[ray.data.Dataset, Any]:
    """``dataset.map_batches`` with ``worker_class``; the dataset and the coordinator (or None)."""
    _check_positive("workers", workers, integer=True)
    _check_positive("concurrency", concurrency, integer=True)
    _check_positive("requests_per_minute", requests_per_minute)
    _check_positive("tokens_per_minute", tokens_per_minute)
    _check_positive("batch_size", batch_size, integer=True)
    coordinator = (
        start_coordinator(
            requests_per_minute=requests_per_minute, tokens_per_minute=tokens_per_minute
        )
        if shared_budget
        else None
    )
    spec = Spec(
        concurrency=concurrency,
        requests_per_minute=requests_per_minute / workers if requests_per_minute else None,
        tokens_per_minute=tokens_per_minute / workers if tokens_per_minute else None,
        coordinator=coordinator,
        **spec_options,
    )
    remote_args: dict[str, Any] = {
        "num_cpus": DEFAULT_WORKER_CPUS,
        "max_concurrency": DEFAULT_TASKS_PER_WORKER,
        **(ray_remote_args or {}),
    }
    # Newer Ray takes as named parameters what older Ray took in **ray_remote_args only.
    strategy: dict[str, Any] = {"size": workers}
    if "max_concurrent_calls_per_actor" in _parameters(ray.data.ActorPoolStrategy):
        strategy["max_concurrent_calls_per_actor"] = remote_args.pop("max_concurrency")
    named = _parameters(ray.data.Dataset.map_batches)
    planned = dataset.map_batches(
        worker_class,
        fn_constructor_kwargs={"spec": spec},
        batch_size=batch_size or concurrency,
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(**strategy),
        zero_copy_batch=True,
        **{key: value for key, value in remote_args.items() if key in named},
        **{key: value for key, value in remote_args.items() if key not in named},
    )
    return planned, coordinator


def _parameters(function: Any) -> frozenset[str]:
    return frozenset(inspect.signature(function).parameters)


def chat_completions(
    dataset: ray.data.Dataset,
    *,
    request: RequestSource = "request",
    workers: int = 4,
    concurrency: int = 64,
    requests_per_minute: float | None = None,
    tokens_per_minute: float | None = None,
    base_url: str | None = None,
    ray_remote_args: Mapping[str, Any] | None = None,
    response_format: Any = None,
    id_column: str | None = None,
    on_error: Literal["row", "raise"] = "row",
    max_retries: int | None = None,
    timeout: float | None = None,
    batch_size: int | None = None,
    shared_budget: bool = True,
) -> ray.data.Dataset:
    """Answer every row of ``dataset`` with a chat completion, on Ray.

    Args:
        dataset: The rows to answer.
        request: The name of a column holding each row's ``create()`` parameters (a dict, or
            its JSON text), or a function of the row (a dict) returning them. It runs on the
            workers, so it must pickle. Keys that Arrow filled with null when it merged
            dicts of different keys into one column are dropped (as any null value is).
        workers: Actors sending requests; each has its own client and connection pool.
        concurrency: Requests in flight per worker at most.
        requests_per_minute: A budget for the whole cluster (default: none but the server's).
        tokens_per_minute: Likewise for tokens, estimated per request and corrected by usage.
        base_url: The API base URL; default the driver's ``COMETAPI_BASE_URL``, else each
            worker's, else CometAPI's.
        ray_remote_args: Passed to the worker actors (default ``{"num_cpus": 0.25}``, so that
            they fit a small cluster).
        response_format: A msgspec Struct, dataclass or TypedDict: each row is sent with
            ``parse()`` and every field of the answer becomes a column of its own.
        id_column: A column identifying each row; its value is sent with the row's request
            (default: a digest of the request).
        on_error: ``"row"``: a failed row gets an ``error`` and the job goes on; ``"raise"``:
            the first failed row fails the job.
        max_retries, timeout: As ``AsyncCometAPI`` takes them.
        batch_size: Rows per batch (default ``concurrency``); a worker that dies re-sends at
            most the batches it was running.
        shared_budget: Keep one rate budget for the cluster in a named actor (default); with
            False each worker's client controls its own rate alone.

    Returns:
        A lazy Dataset: the input columns, then ``content``, ``finish_reason``, ``tool_calls``,
        ``prompt_tokens``, ``completion_tokens``, ``total_tokens``, ``model``, ``request_id``,
        ``completion`` (the whole completion as JSON text), ``error`` (null, or a dict with
        ``type``, ``status``, ``message``), then the ``response_format`` fields. Exactly one
        output row per input row.

    Raises:
        ValueError: a count or budget that is not positive, an unknown ``on_error``, or a
            ``response_format`` field named as an answer column.
        TypeError: ``response_format`` is not an object type.
    """
    if on_error not in ("row", "raise"):
        raise ValueError(f"on_error must be 'row' or 'raise', got {on_error!r}")
    if response_format is not None:
        field_columns(response_format, [name for name, _ in ANSWER_COLUMNS])
    if not callable(request) and not isinstance(request, str):
        raise TypeError(f"request must be a column name or a function, got {request!r}")
    planned, _ = plan(
        dataset,
        {
            "request": request,
            "id_column": id_column,
            "base_url": base_url or os.environ.get("COMETAPI_BASE_URL") or None,
            "max_retries": max_retries,
            "timeout": timeout,
            "response_format": None if response_format is None else portable(response_format),
            "on_error": on_error,
        },
        workers=workers,
        concurrency=concurrency,
        requests_per_minute=requests_per_minute,
        tokens_per_minute=tokens_per_minute,
        shared_budget=shared_budget,
        batch_size=batch_size,
        ray_remote_args=ray_remote_args,
    )
    return planned
