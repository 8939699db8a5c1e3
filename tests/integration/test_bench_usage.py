"""benchmarks/bench_usage.py runs end to end in a tiny configuration and reports every figure."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("opentelemetry.sdk", reason="the OpenTelemetry SDK (dev extra) is missing")

pytestmark = pytest.mark.benchmarks

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_usage.py"


def test_bench_usage_reports_each_configuration_against_off() -> None:
    """The script prints CPU per request and per chunk for off, meter, otel and both."""
    args = ["--rounds", "1", "--requests", "20", "--streams", "2", "--words", "20"]
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for table in ("per request", "per chunk"):
        assert table in out
    rows = re.findall(r"^  (off|meter|otel|both) +([\d.]+) µs", out, re.MULTILINE)
    assert [name for name, _ in rows] == ["off", "meter", "otel", "both"] * 2
    assert all(float(value) > 0 for _, value in rows)
    assert len(re.findall(r"[+-]\d+\.\d %", out)) == 6  # each against off, in both tables
