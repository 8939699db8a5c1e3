"""What a benchmark ran on: Python, the machine, and the versions of every library it measured."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

__all__ = ["PACKAGES", "environment", "environment_lines"]

# The libraries whose versions move the figures: the SDK, its four dependencies, and the
# clients it is compared with (openai and its transports).
PACKAGES = ("aiocometapi", "aiohttp", "msgspec", "anyio", "tenacity", "openai", "httpx2", "yarl")

_REPO = Path(__file__).resolve().parents[1]


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def _git_commit() -> str | None:
    """The checkout's commit (``+dirty`` with uncommitted changes), or None outside a checkout."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(_REPO), "rev-parse", "--short=10", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(_REPO), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit}+dirty" if dirty else commit or None


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _cores() -> int | None:
    """Cores this process may run on (the affinity mask), else the machine's count."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count()


def environment() -> dict[str, Any]:
    """Python, the machine, its load right now, and the version of each package in PACKAGES."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "system": f"{platform.system()} {platform.release()}",
        "machine": platform.machine(),
        "cpu_model": _cpu_model(),
        "cores": _cores(),
        "load_average_1_5_15": [round(x, 2) for x in load] if load else None,
        "aiocometapi_commit": _git_commit(),
        "packages": {package: _version(package) for package in PACKAGES},
    }


def environment_lines(env: dict[str, Any]) -> list[str]:
    """``environment()`` as the Markdown lines that head every report."""
    packages = env["packages"]
    sdk = f"aiocometapi {packages['aiocometapi']}"
    if env["aiocometapi_commit"]:
        sdk += f" (git {env['aiocometapi_commit']})"
    others = ", ".join(f"{name} {packages[name]}" for name in PACKAGES if name != "aiocometapi")
    load = env["load_average_1_5_15"]
    when = f"- run at {env['date']}"
    if load:
        when += f"; load average at start {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}"
    machine = f"{env['cores']} cores"
    if env["cpu_model"]:
        machine += f" ({env['cpu_model']})"
    lines = [
        f"- Python {env['python']} ({env['implementation']}) on {env['system']} "
        f"{env['machine']}, {machine}",
        f"- {sdk}; {others}",
        when,
    ]
    return lines
