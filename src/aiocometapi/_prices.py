"""Prices per million tokens, given by the user as a mapping or a JSON / TOML file."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator, Mapping
from typing import Any

import msgspec

from ._exceptions import ConfigurationError
from .types import Usage

__all__ = ["Price", "Prices", "load_prices"]

_MILLION = 1_000_000.0


class Price(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What a million tokens of one model cost, in whatever currency the table is written in.

    ``cached_input`` defaults to ``input`` and ``reasoning`` to ``output`` (most providers bill
    reasoning tokens as output tokens).
    """

    input: float
    """A million prompt tokens not served from the cache."""
    output: float
    """A million completion tokens."""
    cached_input: float | None = None
    """A million prompt tokens served from the provider's prompt cache."""
    reasoning: float | None = None
    """A million reasoning tokens (part of the completion tokens)."""

    def cost(self, usage: Usage) -> float:
        """The cost of ``usage`` at this price.

        Args:
            usage: An answer's token counts.

        Returns:
            Prompt tokens (cached ones at ``cached_input``) plus completion tokens
            (reasoning ones at ``reasoning``), per million.
        """
        prompt = usage.prompt_tokens
        completion = usage.completion_tokens
        total = 0.0
        details = usage.prompt_tokens_details
        cached = details.cached_tokens if details is not None and details.cached_tokens else 0
        if cached and self.cached_input is not None:
            total += cached * self.cached_input
            prompt -= cached
        total += prompt * self.input
        out = usage.completion_tokens_details
        reasoning = out.reasoning_tokens if out is not None and out.reasoning_tokens else 0
        if reasoning and self.reasoning is not None:
            total += reasoning * self.reasoning
            completion -= reasoning
        total += completion * self.output
        return total / _MILLION


class Prices(Mapping[str, Price]):
    """A price table: model id -> ``Price``; empty when the client was given none."""

    __slots__ = ("_table",)

    def __init__(self, table: Mapping[str, Price] | None = None) -> None:
        self._table = dict(table or {})

    @classmethod
    def of(cls, prices: Prices | Mapping[str, Any] | str | os.PathLike[str] | None) -> Prices:
        """A ``Prices`` from a mapping of model -> price (dicts or ``Price``), or a file path.

        Args:
            prices: The table, or the path of a JSON / TOML price file, or ``None``.

        Returns:
            The table.

        Raises:
            ConfigurationError: a price that is not a mapping of the four known numbers, or a
                file that cannot be read.
        """
        if prices is None:
            return cls()
        if isinstance(prices, Prices):
            return prices
        if isinstance(prices, (str, os.PathLike)):
            return load_prices(prices)
        table: dict[str, Price] = {}
        for model, price in prices.items():
            if isinstance(price, Price):
                table[model] = price
                continue
            try:
                table[model] = msgspec.convert(price, Price)
            except msgspec.ValidationError as exc:
                raise ConfigurationError(
                    f"prices[{model!r}] is not a price per million tokens ({exc}); write it as "
                    '{"input": 0.2, "cached_input": 0.02, "output": 0.8, "reasoning": 0.8}'
                ) from None
            if any(v is not None and v < 0 for v in msgspec.structs.astuple(table[model])):
                raise ConfigurationError(f"prices[{model!r}] has a negative price")
        return cls(table)

    def __getitem__(self, model: str) -> Price:
        return self._table[model]

    def find(self, model: str) -> Price | None:
        """The price of ``model``, or ``None`` when the table has none."""
        return self._table.get(model)

    def __iter__(self) -> Iterator[str]:
        return iter(self._table)

    def __len__(self) -> int:
        return len(self._table)

    def __repr__(self) -> str:
        return f"Prices({self._table!r})"


def load_prices(path: str | os.PathLike[str]) -> Prices:
    """Read a price table from a JSON file or (Python 3.11+, or with ``tomli``) a TOML file.

    The file maps model ids to prices per million tokens, at its top level or under a
    ``prices`` table::

        [prices."gpt-5.4-mini"]
        input = 0.25
        cached_input = 0.025
        output = 2.0

    Args:
        path: A ``.json`` or ``.toml`` file.

    Returns:
        The table.

    Raises:
        ConfigurationError: the file is missing, malformed, or TOML on Python 3.10
            without ``tomli`` installed.
    """
    name = os.fspath(path)
    try:
        with open(name, "rb") as file:
            raw = file.read()
    except OSError as exc:
        raise ConfigurationError(f"Cannot read the price file {name!r}: {exc}") from None
    try:
        data = _toml().loads(raw.decode("utf-8")) if name.endswith(".toml") else json.loads(raw)
    except ConfigurationError:
        raise
    except ValueError as exc:  # json.JSONDecodeError and tomllib.TOMLDecodeError both are
        raise ConfigurationError(f"The price file {name!r} is not valid: {exc}") from None
    if isinstance(data, dict) and isinstance(data.get("prices"), dict):
        data = data["prices"]
    if not isinstance(data, dict):
        raise ConfigurationError(f"The price file {name!r} must map model ids to prices")
    return Prices.of(data)


def _toml() -> Any:
    if sys.version_info >= (3, 11):
        import tomllib

        return tomllib
    try:  # pragma: no cover (3.10 only)
        import tomli  # type: ignore[import-not-found,unused-ignore]
    except ImportError:  # pragma: no cover
        raise ConfigurationError(
            "TOML price files need Python 3.11+ or the tomli package; use a JSON file "
            "or pip install tomli"
        ) from None
    return tomli  # pragma: no cover
