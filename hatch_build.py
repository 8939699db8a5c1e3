"""Build hook: the sdist holds what a build needs, so not the .gitignore hatchling always adds."""

from __future__ import annotations

from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

VCS_FILES = {".gitignore", ".hgignore"}


class SdistHook(BuildHookInterface):  # type: ignore[type-arg]
    """Drops version-control files from the sdist's forced includes."""

    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        """Remove the files in ``VCS_FILES`` from what the sdist must include."""
        if self.target_name != "sdist":
            return
        forced: dict[str, str] = build_data["force_include"]
        for source in [source for source, target in forced.items() if target in VCS_FILES]:
            del forced[source]
