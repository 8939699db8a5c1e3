"""Each script in benchmarks/ runs end to end, standalone, in a tiny configuration (seconds).

The three scripts run at once, each as ``python benchmarks/bench_*.py`` in a process of its
own with its own mock server process, exactly as a user runs them. They run the aiocometapi
and floor clients only: the openai clients need the ``bench`` extra (which CI does not
install) and cost ~50x the CPU per call, more than this test's budget of a few seconds.
"""

from __future__ import annotations

import importlib.metadata
import json
import platform
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.benchmarks

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
CLIENTS = ["aiocometapi", "floor"]
QUICK_CONCURRENCY_FANOUT = 25  # bench_requests.py --quick: case (f) at concurrency 25


@dataclass(frozen=True)
class Ran:
    stdout: str
    stderr: str
    saved: dict[str, Any]


ARGS = {
    "bench_stream.py": ["--quick", "--repeat", "2", "--only", ",".join(CLIENTS)],
    "bench_requests.py": ["--quick", "--repeat", "2", "--only", ",".join(CLIENTS)],
    "bench_ratelimit.py": [
        "--requests", "60", "--concurrency", "20", "--capacity", "100", "--repeat", "1",
        "--only", "aiocometapi",
    ],
}  # fmt: skip


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Ran]:
    """All three scripts, started together so the module takes as long as the slowest."""
    out = tmp_path_factory.mktemp("bench")
    procs = {
        script: subprocess.Popen(
            [sys.executable, BENCHMARKS / script, *args, "--save", out / f"{script}.json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for script, args in ARGS.items()
    }
    results: dict[str, Ran] = {}
    for script, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=90)
        assert proc.returncode == 0, f"{script} failed:\n{stdout}\n{stderr}"
        saved = json.loads((out / f"{script}.json").read_text())
        results[script] = Ran(stdout, stderr, saved)
    return results


def _row(stdout: str, name: str) -> list[str]:
    rows = [line for line in stdout.splitlines() if line.startswith(f"| {name} |")]
    assert rows, f"no row for {name} in:\n{stdout}"
    return [cell.strip() for cell in rows[0].strip("|").split("|")]


@pytest.mark.parametrize("script", list(ARGS))
def test_report_names_what_it_ran_on(runs: dict[str, Ran], script: str) -> None:
    """Every report starts with the Python, library versions and cores it ran on, and saves them."""
    ran = runs[script]
    head = ran.stdout.split("###", 1)[0]
    assert f"Python {platform.python_version()}" in head
    assert "cores" in head
    packages = ran.saved["environment"]["packages"]
    for package in ("aiohttp", "msgspec", "anyio", "tenacity", "aiocometapi"):
        version = importlib.metadata.version(package)
        assert f"{package} {version}" in head
        assert packages[package] == version
    assert ran.saved["environment"]["cores"] >= 1


def test_stream_report_shows_medians_spreads_and_verdicts(runs: dict[str, Ran]) -> None:
    """Both stream cases print a row per client with median (min-max) and a judged target."""
    ran = runs["bench_stream.py"]
    assert [case["key"] for case in ran.saved["cases"]] == ["a", "b"]
    for case in ran.saved["cases"]:
        counts = {name: len(s) for name, s in case["samples"].items()}
        assert counts == dict.fromkeys(CLIENTS, 2)
        target = case["targets"][0]
        assert target["label"] == "CPU per chunk, aiocometapi ÷ floor"
        assert target["verdict"].split(" ")[0] in ("met", "missed", "within")
        assert target["min"] <= target["median"] <= target["max"]
    cells = _row(ran.stdout, "aiocometapi")
    assert "(" in cells[1] or cells[1].replace(".", "").isdigit()  # median (min-max) or one value


def test_requests_report_has_the_fan_out_case_with_connections(runs: dict[str, Ran]) -> None:
    """The request benchmark sets fan_out beside a semaphore loop, with the server's connections."""
    ran = runs["bench_requests.py"]
    cases = {case["key"]: case for case in ran.saved["cases"]}
    assert set(cases) == {"c", "fanout"}
    assert set(cases["c"]["samples"]) == set(CLIENTS)
    fanout = cases["fanout"]
    assert set(fanout["samples"]) == {"fan_out", "semaphore loop"}
    # The loop opens one connection per task allowed to run at once, as counted by the server.
    loop = fanout["figures"]["semaphore loop"]["peak_connections"]
    assert loop["min"] == loop["max"] == QUICK_CONCURRENCY_FANOUT
    assert fanout["figures"]["fan_out"]["peak_connections"]["min"] >= 1
    labels = [target["label"] for target in fanout["targets"]]
    assert labels == [
        "CPU per request, fan_out ÷ semaphore loop",
        "peak connections, fan_out ÷ semaphore loop",
    ]
    assert "fan_out ÷ semaphore loop" in ran.stdout


def test_ratelimit_report_judges_its_targets(runs: dict[str, Ran]) -> None:
    """Under a server with room for every request, aiocometapi completes all and says so."""
    ran = runs["bench_ratelimit.py"]
    assert "aiocometapi completed: **100%** (target 100%: met" in ran.stdout
    (outcome,) = ran.saved["runs"]["aiocometapi"]
    assert outcome["completed"] == 60
