"""The ``benchmarks`` marker: tests that run the scripts in benchmarks/ in a tiny configuration."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "benchmarks: runs a benchmarks/ script end to end in a tiny configuration "
        "(deselect with -m 'not benchmarks')",
    )
