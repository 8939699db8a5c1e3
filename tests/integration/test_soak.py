"""The soak in its CI form: 1,200 mixed requests through one client (the driver is soak.py here;
``python benchmarks/soak.py`` runs the full 20,000-request form by hand)."""

from __future__ import annotations

import pytest

from integration import soak

pytestmark = pytest.mark.anyio


async def test_soak_ci_form() -> None:
    """1,200 mixed requests under faults: pool within its limit, all accounted for, nothing kept."""
    config = soak.SoakConfig(requests=1_200, instant_retries=True)
    report = await soak.soak(config)
    print(report.summary())

    # Every request has exactly one outcome, and each is documented.
    assert report.unexpected_count == 0, "\n\n".join(report.unexpected)
    assert report.accounted == config.requests
    outcomes = report.by_outcome()
    assert {kind for kind, _ in report.outcomes} == set(soak.KINDS)
    assert outcomes["ok"] and outcomes["cancelled"]
    assert any(name.startswith("APITimeoutError") for name in outcomes)
    assert report.injected_failures and report.slowed

    # The pool was full at times and never over; nothing is left checked out or open.
    assert report.max_in_use == config.max_connections
    assert report.max_pool <= config.max_connections
    assert report.in_use_after == 0 and report.rate_in_flight_after == 0
    assert report.server_open_after == report.idle_after
    assert report.longest_server_excess < config.max_close_lag

    # File descriptors, tasks and memory are back where they were (see SoakConfig for the
    # slack on each; measured: fds and tasks exactly back, ~90 KiB of memory).
    assert report.fds_after <= report.fds_before + config.fd_slack
    assert report.tasks_after <= report.tasks_before
    assert report.memory_growth < config.max_memory_growth
    assert report.problems() == []
