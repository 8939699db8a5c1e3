"""The batch, ray and test-server packages: modules split by idea, sharing only public names."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import aiocometapi

SOURCE = Path(aiocometapi.__file__).parent


@pytest.mark.parametrize("package", ["batch", "ray", "testing"])
def test_modules_share_no_underscored_names(package: str) -> None:
    """No module of the package imports an underscored name from another module."""
    reached: list[str] = []
    for path in sorted((SOURCE / package).glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level > 0:
                for alias in node.names:
                    if alias.name.startswith("_"):
                        reached.append(f"{path.name}: {node.module}.{alias.name}")
    assert reached == []


def test_the_test_server_never_imports_the_client() -> None:
    """aiocometapi.testing imports nothing from the SDK outside its own package."""
    outside = []
    for path in sorted((SOURCE / "testing").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (
                node.level > 1 or (node.module or "").startswith("aiocometapi")
            ):
                outside.append(f"{path.name}: {'.' * node.level}{node.module}")
    assert outside == []
