"""The public surface DESIGN.md promises: names, sorted exports, the error tree."""

from __future__ import annotations

import importlib

import pytest

import aiocometapi
from aiocometapi import _exceptions

DESIGN_NAMES = {
    "aiocometapi": [
        "AsyncCometAPI", "CometAPIError", "APIConnectionError", "APITimeoutError",
        "APIStatusError", "BadRequestError", "AuthenticationError", "PermissionDeniedError",
        "NotFoundError", "ConflictError", "UnprocessableEntityError", "RateLimitError",
        "InternalServerError", "APIResponseValidationError", "StreamError",
        "IncompleteStreamError", "CompatibilityWarning", "CometAPI",
    ],
    "aiocometapi.sse": ["SSEDecoder", "ServerSentEvent"],
    "aiocometapi.types": [
        "ChatCompletion", "ChatCompletionChunk", "Choice", "ChatCompletionMessage",
        "ChoiceDelta", "ToolCall", "Usage",
    ],
    "aiocometapi.testing": ["MockServer"],
}  # fmt: skip


@pytest.mark.parametrize("module", sorted(DESIGN_NAMES))
def test_design_names_exist(module: str) -> None:
    """Every public name DESIGN.md lists can be imported from its module."""
    imported = importlib.import_module(module)
    for name in DESIGN_NAMES[module]:
        assert hasattr(imported, name), f"{module}.{name}"


def test_all_is_sorted_unique_and_importable() -> None:
    """aiocometapi.__all__ is sorted, has no duplicates, and every name in it exists."""
    names = aiocometapi.__all__
    assert names == sorted(names)
    assert len(set(names)) == len(names)
    for name in names:
        assert hasattr(aiocometapi, name), name


def test_every_error_is_exported_and_under_cometapierror() -> None:
    """Each error class is exported at the top level and subclasses CometAPIError."""
    for name in _exceptions.__all__:
        cls = getattr(_exceptions, name)
        assert name in aiocometapi.__all__, name
        assert issubclass(cls, aiocometapi.CometAPIError), name


def test_error_tree_matches_design() -> None:
    """The error classes nest as DESIGN.md draws them."""
    a = aiocometapi
    assert issubclass(a.APITimeoutError, a.APIConnectionError)
    for cls in (
        a.BadRequestError,
        a.AuthenticationError,
        a.PermissionDeniedError,
        a.NotFoundError,
        a.ConflictError,
        a.UnprocessableEntityError,
        a.RateLimitError,
        a.InternalServerError,
    ):
        assert issubclass(cls, a.APIStatusError)
    assert issubclass(a.IncompleteStreamError, a.StreamError)
    assert issubclass(a.CompatibilityWarning, Warning)


def test_api_error_is_the_base_of_the_api_errors_as_in_openai() -> None:
    """Code that catches ``openai.APIError`` (``import aiocometapi as openai``) catches every
    error about an API call, and only those."""
    import aiocometapi as openai

    for name in ("APIConnectionError", "APITimeoutError", "APIStatusError", "RateLimitError",
                 "APIResponseValidationError", "StreamError", "IncompleteStreamError"):  # fmt: skip
        assert issubclass(getattr(openai, name), openai.APIError), name
    for name in ("ConfigurationError", "ClientClosedError", "CompatibilityError"):
        assert not issubclass(getattr(openai, name), openai.APIError), name
    assert issubclass(openai.APIError, openai.CometAPIError)
