"""The ``aiocometapi`` logger, switched on by ``AIOCOMETAPI_LOG=debug|info``.

It logs what a request did (method, path, status, request id, time, retries), never headers,
bodies or the API key.
"""

from __future__ import annotations

import logging
import os

__all__ = ["log", "setup_from_env"]

log = logging.getLogger("aiocometapi")

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}


def setup_from_env() -> None:
    """Apply ``AIOCOMETAPI_LOG``: set the logger's level and give it a stderr handler."""
    level = _LEVELS.get(os.environ.get("AIOCOMETAPI_LOG", "").strip().lower())
    if level is None:
        return
    log.setLevel(level)
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        log.addHandler(handler)
