"""The built sdist and wheel: what they hold, the metadata the package index shows, README links."""

from __future__ import annotations

import email.parser
import re
import subprocess
import sys
import tarfile
import zipfile
from email.message import Message
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REPOSITORY = "https://github.com/aiocometapi/aiocometapi"
PYTHONS = ["3.10", "3.11", "3.12", "3.13", "3.14"]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The sdist and the wheel, built as a release is: the wheel from the unpacked sdist."""
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    return sdist, wheel


def sdist_files(sdist: Path) -> set[str]:
    """The sdist's file names, without its top folder."""
    with tarfile.open(sdist) as archive:
        return {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}


def wheel_metadata(wheel: Path) -> Message:
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return email.parser.Parser().parsestr(archive.read(name).decode())


def test_license_ships_in_sdist_and_wheel(built: tuple[Path, Path]) -> None:
    """The MIT license text is in both archives, and the wheel's metadata points at it."""
    sdist, wheel = built
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License") and "2026 aiocometapi developers" in text
    assert "LICENSE" in sdist_files(sdist)
    with zipfile.ZipFile(wheel) as archive:
        licenses = [n for n in archive.namelist() if n.endswith(".dist-info/licenses/LICENSE")]
        assert len(licenses) == 1
        assert archive.read(licenses[0]).decode() == text
    metadata = wheel_metadata(wheel)
    assert metadata["License-Expression"] == "MIT"
    assert metadata.get_all("License-File") == ["LICENSE"]


def test_sdist_holds_only_what_a_build_needs(built: tuple[Path, Path]) -> None:
    """The sdist is the package's source, README, LICENSE, CHANGELOG and build files, no more."""
    files = sdist_files(built[0])
    outside = {name for name in files if not name.startswith("src/aiocometapi/")}
    assert outside == {
        "CHANGELOG.md",
        "LICENSE",
        "PKG-INFO",
        "README.md",
        "hatch_build.py",
        "pyproject.toml",
    }
    assert "src/aiocometapi/py.typed" in files
    assert not any(part.startswith(".") for name in files for part in name.split("/"))
    assert not any(name.endswith((".pyc", ".so")) for name in files)


def test_wheel_holds_the_package_and_its_type_marker(built: tuple[Path, Path]) -> None:
    """The wheel installs the package with py.typed and the command-line entry point."""
    with zipfile.ZipFile(built[1]) as archive:
        names = archive.namelist()
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        assert "aiocometapi = aiocometapi.cli:main" in archive.read(entry_points).decode()
    assert "aiocometapi/py.typed" in names and "aiocometapi/__init__.py" in names
    assert {name.split("/")[0] for name in names} == {
        "aiocometapi",
        next(n.split("/")[0] for n in names if ".dist-info/" in n),
    }


def test_wheel_metadata_has_classifiers_and_project_urls(built: tuple[Path, Path]) -> None:
    """The package index shows each supported Python, status, license, audience, and links."""
    metadata = wheel_metadata(built[1])
    classifiers = set(metadata.get_all("Classifier") or [])
    assert {f"Programming Language :: Python :: {version}" for version in PYTHONS} <= classifiers
    assert {
        "Development Status :: 4 - Beta",
        "License :: OSI Approved :: MIT License",
        "Operating System :: OS Independent",
        "Intended Audience :: Developers",
        "Topic :: Internet :: WWW/HTTP",
        "Typing :: Typed",
    } <= classifiers
    assert metadata["Requires-Python"] == f">={PYTHONS[0]}"
    urls = dict(line.split(", ", 1) for line in metadata.get_all("Project-URL") or [])
    assert urls == {
        "Homepage": REPOSITORY,
        "Documentation": "https://aiocometapi.github.io/aiocometapi/",
        "Repository": REPOSITORY,
        "Issues": f"{REPOSITORY}/issues",
        "Changelog": f"{REPOSITORY}/blob/main/CHANGELOG.md",
    }
    assert metadata["Description-Content-Type"] == "text/markdown"


LINK = re.compile(
    r"\]\(\s*<?([^)\s>]+)"  # [text](target) and ![alt](target)
    r"|^\s*\[[^\]]+\]:\s*<?(\S+?)>?\s*$"  # [label]: target
    r"|\b(?:href|src)\s*=\s*[\"']([^\"']+)",  # HTML
    re.MULTILINE,
)


def test_readme_links_resolve_on_the_package_index_page() -> None:
    """Every README link is absolute: on the index page, relative files and #anchors go nowhere."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    prose = re.sub(r"`[^`\n]*`", "", re.sub(r"(?ms)^```.*?^```", "", readme))  # not code
    targets = [next(filter(None, match.groups())) for match in LINK.finditer(prose)]
    assert targets  # the pattern finds the README's links at all
    relative = [target for target in targets if not target.startswith(("https://", "http://"))]
    assert relative == []
