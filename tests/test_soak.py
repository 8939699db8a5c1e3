"""The soak of benchmarks/soak.py in its CI form: 1,200 mixed requests through one client.

The driver lives in benchmarks/soak.py (the full 20,000-request form is run by hand there,
without pytest); this test loads that file and runs the same ``soak()`` with fewer requests.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.anyio

SOAK_FILE = Path(__file__).resolve().parents[1] / "benchmarks" / "soak.py"


def load_soak() -> ModuleType:
    spec = importlib.util.spec_from_file_location("aiocometapi_soak", SOAK_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


soak = load_soak()


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
