"""CometAPI's per-provider parameter table, applied to a request before it is sent."""

from __future__ import annotations

import contextvars
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import msgspec

from ._callsite import remember_caller, warn
from ._exceptions import CompatibilityError, ConfigurationError
from .types import Adjustment, DeveloperMessage, SystemMessage

__all__ = [
    "DETECTION",
    "FAMILIES",
    "FAMILY_IDS",
    "TABLE",
    "USAGE_IN_STREAMS",
    "CompatibilityWarning",
    "Family",
    "Mode",
    "Rule",
    "check",
    "check_mode",
    "family_of",
    "streams_usage",
    "warn_once_context",
    "warn_once_here",
]

Mode = Literal["warn", "strict", "adapt", "off"]
_MODES = ("warn", "strict", "adapt", "off")


class CompatibilityWarning(Warning):
    """A request parameter the model's family does not take as given (``compat="warn"``)."""


class _Finding(NamedTuple):
    """What one rule found wrong with one parameter, and how ``adapt`` changes it."""

    problem: str
    """The parameter, the family and what the provider does, e.g. "n=2: Claude ... only"."""
    action: str
    before: Any
    after: Any
    done: str
    """What ``adapt`` sent instead, e.g. "sent n=1"."""
    target: str = ""
    """The parameter ``adapt`` writes (another name when renamed; the same one when empty)."""
    sent: Any = None
    """The value ``adapt`` writes, when it differs from ``after`` (messages)."""


# --------------------------------------------------------------------------- rules


class Rule:
    """How a family takes one parameter; ``check`` returns ``None`` when the value fits."""

    __slots__ = ()

    def check(
        self, name: str, value: Any, family: Family, params: Mapping[str, Any]
    ) -> _Finding | None:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class Range(Rule):
    """A number from ``low`` to ``high``; ``adapt`` clamps it."""

    low: float
    high: float
    note: str = ""

    def check(
        self, name: str, value: Any, family: Family, params: Mapping[str, Any]
    ) -> _Finding | None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        if self.low <= value <= self.high:
            return None
        after = min(max(value, self.low), self.high)
        if self.low == self.high:
            accepts = f"{name}={self.low:g} only"
        else:
            accepts = f"{name} from {self.low:g} to {self.high:g}"
        problem = f"{name}={value!r}: {family.label} models accept {accepts}{self.note}"
        return _Finding(problem, "clamped", value, after, f"sent {name}={after!r}")


@dataclass(frozen=True, slots=True)
class MaxItems(Rule):
    """A string or a list of at most ``limit`` strings (``stop``); ``adapt`` keeps the first."""

    limit: int

    def check(
        self, name: str, value: Any, family: Family, params: Mapping[str, Any]
    ) -> _Finding | None:
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            return None
        if len(value) <= self.limit:
            return None
        after = list(value[: self.limit])
        problem = (
            f"{name} has {len(value)} sequences: {family.label} models accept up to {self.limit}"
        )
        return _Finding(problem, "trimmed", value, after, f"sent the first {self.limit}")


@dataclass(frozen=True, slots=True)
class Ignored(Rule):
    """A parameter the family does not take; ``adapt`` leaves it out (``False`` asks nothing)."""

    note: str = ""

    def check(
        self, name: str, value: Any, family: Family, params: Mapping[str, Any]
    ) -> _Finding | None:
        if value is False:
            return None
        problem = f"{name}={value!r}: {family.label} models do not take {name}{self.note}"
        return _Finding(problem, "dropped", value, None, "left it out")


@dataclass(frozen=True, slots=True)
class WhileReasoning(Rule):
    """A sampling parameter reasoning models refuse while they reason; ``adapt`` leaves it out.

    GPT-5.1 and newer take it with ``reasoning_effort="none"``, under the ``otherwise`` rule.
    ``default`` is the value every reasoning model accepts anyway (``temperature=1``).
    """

    otherwise: Rule | None = None
    default: float | None = None

    def check(
        self, name: str, value: Any, family: Family, params: Mapping[str, Any]
    ) -> _Finding | None:
        if params.get("reasoning_effort") == "none":
            return (
                None
                if self.otherwise is None
                else self.otherwise.check(name, value, family, params)
            )
        if value is False or (
            self.default is not None and not isinstance(value, bool) and value == self.default
        ):
            return None
        problem = (
            f"{name}={value!r}: {family.label} models do not take {name} while they reason "
            "(GPT-5.1 and newer do with reasoning_effort='none')"
        )
        return _Finding(problem, "dropped", value, None, "left it out")


@dataclass(frozen=True, slots=True)
class RenamedTo(Rule):
    """A legacy name the family refuses; ``adapt`` sends the value under ``to``."""

    to: str
    note: str = ""

    def check(
        self, name: str, value: Any, family: Family, params: Mapping[str, Any]
    ) -> _Finding | None:
        problem = f"{name}={value!r}: {family.label} models require {self.to}{self.note}"
        given = params.get(self.to)
        if given is not None:
            done = f"left it out, kept {self.to}={given!r}"
            return _Finding(problem, "dropped", value, None, done)
        return _Finding(problem, "renamed", value, value, f"sent {self.to}={value!r}", self.to)


@dataclass(frozen=True, slots=True)
class FormatTypes(Rule):
    """``response_format`` types the family takes; ``adapt`` leaves out any other."""

    allowed: frozenset[str]
    note: str = ""

    def check(
        self, name: str, value: Any, family: Family, params: Mapping[str, Any]
    ) -> _Finding | None:
        if isinstance(value, Mapping):
            kind = value.get("type")
        elif isinstance(value, msgspec.Struct):
            kind = type(value).__struct_config__.tag
        else:
            return None
        if not isinstance(kind, str) or kind in self.allowed:
            return None
        accepted = " or ".join(sorted(self.allowed - {"text"}))
        problem = f"{name} type {kind!r}: {family.label} models accept {accepted} only{self.note}"
        return _Finding(problem, "dropped", kind, None, "left it out")


@dataclass(frozen=True, slots=True)
class DeveloperAsSystem(Rule):
    """The family takes ``developer`` messages as ``system`` ones; ``adapt`` says so outright."""

    behaviour: str

    def check(
        self, name: str, value: Any, family: Family, params: Mapping[str, Any]
    ) -> _Finding | None:
        if type(value) is not list and (not isinstance(value, Sequence) or isinstance(value, str)):
            return None
        for message in value:  # checked on every request to these families: kept cheap
            if _is_developer(message):
                break
        else:
            return None
        found = [i for i, message in enumerate(value) if _is_developer(message)]
        where = ", ".join(f"messages[{i}]" for i in found)
        problem = f"{where} role 'developer': {family.label} models {self.behaviour}"
        sent = [_as_system(m) if _is_developer(m) else m for m in value]
        return _Finding(
            problem, "rewritten", "developer", "system", "sent role 'system'", sent=sent
        )


@dataclass(frozen=True, slots=True)
class OnlyModels(Rule):
    """A parameter only some models take, told by their id; ``adapt`` leaves it out elsewhere.

    ``pattern`` is searched in the model id (lower case, any ``provider/`` prefix removed);
    ``harmless`` is a value every model takes (``modalities=["text"]``).
    """

    pattern: re.Pattern[str]
    models: str
    """Who takes it, for the message: "OpenAI audio models (gpt-4o-audio-preview, ...)"."""
    harmless: Any = None

    def check(
        self, name: str, value: Any, family: Family, params: Mapping[str, Any]
    ) -> _Finding | None:
        if value is False or (
            self.harmless is not None
            and (list(value) if isinstance(value, tuple) else value) == self.harmless
        ):
            return None
        model = params.get("model")
        if isinstance(model, str) and self.pattern.search(_base_name(model)):
            return None
        problem = f"{name}={value!r}: only {self.models} take {name}"
        return _Finding(problem, "dropped", value, None, "left it out")


def _base_name(model: str) -> str:
    return model.strip().lower().rpartition("/")[2]


def _is_developer(message: Any) -> bool:
    if type(message) is dict or isinstance(message, Mapping):  # dict first: the ABC is slower
        return message.get("role") == "developer"
    return isinstance(message, DeveloperMessage)


def _as_system(message: Any) -> Any:
    if isinstance(message, DeveloperMessage):
        return SystemMessage(content=message.content, name=message.name)
    return {**message, "role": "system"}


# --------------------------------------------------------------------------- the table

YES = None
"""Taken as OpenAI's API reference defines it: nothing to check."""

CAPPED = Range(0, 1, " (higher values are capped at 1)")
IGNORED = Ignored()
NOT_BEFORE_O1 = Ignored(" (it is for o-series and GPT-5 models)")
USES_THINKING = Ignored(" (Gemini uses thinking instead)")
JSON_SCHEMA_ONLY = FormatTypes(frozenset({"text", "json_schema"}))
MAX_COMPLETION = RenamedTo("max_completion_tokens", " (it counts reasoning tokens too)")
SAMPLING = WhileReasoning()
TEMPERATURE_R = WhileReasoning(Range(0, 2), default=1)
TOP_P_R = WhileReasoning(Range(0, 1), default=1)
DEV_AS_SYSTEM = DeveloperAsSystem("before o1 treat developer messages as system messages")
DEV_HOISTED = DeveloperAsSystem(
    "take developer messages as system instructions, moved to the conversation's start"
)
# Parameters for some OpenAI models only, told by the model id.
AUDIO_MODELS = OnlyModels(
    re.compile(r"audio"), "OpenAI audio models (gpt-4o-audio-preview, gpt-audio, ...)"
)
AUDIO_OUTPUT = OnlyModels(AUDIO_MODELS.pattern, AUDIO_MODELS.models, harmless=["text"])
GPT_5 = OnlyModels(
    re.compile(r"^gpt-5(?:[.-]|$)"), "GPT-5 models (gpt-5, gpt-5.1, gpt-5-mini, ...)"
)
SEARCH_MODELS = OnlyModels(
    re.compile(r"search"), "OpenAI search models (gpt-4o-search-preview, gpt-5-search-api, ...)"
)
GPT_4O_41_ONLY = Ignored(" (Predicted Outputs are for GPT-4o and GPT-4.1 models)")

FAMILY_IDS = ("openai-gpt", "openai-reasoning", "claude", "gemini")
_LABELS = ("OpenAI GPT", "OpenAI reasoning", "Claude", "Gemini")

# CometAPI's chat-completions parameter table: a row per parameter, a column per family.
# Parameters not named here (seed, tool_choice, ...) every family takes as OpenAI defines them.
# The OpenAI reasoning column adds what OpenAI's reference says of those models: no sampling
# parameters while they reason (TEMPERATURE_R, TOP_P_R and SAMPLING). The rows from audio on
# are OpenAI features: audio output, verbosity and web search go by model id in every family;
# for Claude, "ignored" is what Anthropic's OpenAI SDK compatibility page
# (docs.anthropic.com/en/api/openai-sdk, "Request fields") says of prediction, store,
# metadata and service_tier.
TABLE: dict[str, tuple[Rule | None, Rule | None, Rule | None, Rule | None]] = {
    # parameter          OpenAI GPT      OpenAI reasoning  Claude (compat)   Gemini (compat)
    "temperature":       (Range(0, 2),   TEMPERATURE_R,    CAPPED,           Range(0, 2)),
    "top_p":             (Range(0, 1),   TOP_P_R,          Range(0, 1),      Range(0, 1)),
    "n":                 (Range(1, 128), Range(1, 128),    Range(1, 1),      Range(1, 8)),
    "stop":              (MaxItems(4),   MaxItems(4),      MaxItems(4),      MaxItems(5)),
    "tools":             (YES,           YES,              YES,              YES),
    "response_format":   (YES,           YES,              JSON_SCHEMA_ONLY, YES),
    "logprobs":          (YES,           SAMPLING,         IGNORED,          IGNORED),
    "top_logprobs":      (YES,           SAMPLING,         IGNORED,          IGNORED),
    "presence_penalty":  (YES,           SAMPLING,         YES,              YES),
    "frequency_penalty": (YES,           SAMPLING,         YES,              YES),
    "logit_bias":        (YES,           SAMPLING,         YES,              YES),
    "reasoning_effort":  (NOT_BEFORE_O1, YES,              IGNORED,          USES_THINKING),
    "max_tokens":        (YES,           MAX_COMPLETION,   YES,              YES),
    "messages":          (DEV_AS_SYSTEM, YES,              DEV_HOISTED,      DEV_HOISTED),
    "audio":             (AUDIO_MODELS,  AUDIO_MODELS,     AUDIO_MODELS,     AUDIO_MODELS),
    "modalities":        (AUDIO_OUTPUT,  AUDIO_OUTPUT,     AUDIO_OUTPUT,     AUDIO_OUTPUT),
    "verbosity":         (GPT_5,         GPT_5,            GPT_5,            GPT_5),
    "web_search_options": (SEARCH_MODELS, SEARCH_MODELS,   SEARCH_MODELS,    SEARCH_MODELS),
    "prediction":        (YES,           GPT_4O_41_ONLY,   IGNORED,          YES),
    "store":             (YES,           YES,              IGNORED,          YES),
    "metadata":          (YES,           YES,              IGNORED,          YES),
    "service_tier":      (YES,           YES,              IGNORED,          YES),
}  # fmt: skip

# Which family a model id belongs to: the first pattern matching the start of the id (lower
# case, any "provider/" prefix removed) wins. No match: an unknown family, nothing is checked.
DETECTION: tuple[tuple[str, str | None], ...] = (
    (r"gpt-oss", None),  # open-weight, served by other providers with their own rules
    (r"o\d+(?:-|$)", "openai-reasoning"),  # o1, o1-mini, o3, o3-pro, o4-mini ...
    (r"gpt-5(?:[.-]|$)", "openai-reasoning"),  # gpt-5, gpt-5-mini, gpt-5.1, gpt-5.4-mini ...
    (r"(?:chat)?gpt-", "openai-gpt"),  # gpt-4o, gpt-4.1, gpt-3.5-turbo, chatgpt-4o-latest ...
    (r"claude-", "claude"),
    (r"gemini-", "gemini"),
)


@dataclass(frozen=True, slots=True)
class Family:
    """One column of the table: the rules of the parameters this family takes differently."""

    id: str
    label: str
    rules: Mapping[str, Rule] = field(repr=False)


FAMILIES: dict[str, Family] = {
    family_id: Family(
        family_id,
        label,
        {name: rule for name, row in TABLE.items() if (rule := row[i]) is not None},
    )
    for i, (family_id, label) in enumerate(zip(FAMILY_IDS, _LABELS, strict=True))
}

_DETECT = tuple(
    (re.compile(pattern), None if family_id is None else FAMILIES[family_id])
    for pattern, family_id in DETECTION
)
_UNSEEN: Any = object()
_by_model: dict[str, Family | None] = {}


def family_of(model: str) -> Family | None:
    """The family of a model id, or ``None`` when it is not one the table knows."""
    family = _by_model.get(model, _UNSEEN)
    if family is _UNSEEN:
        name = _base_name(model)
        family = next((f for pattern, f in _DETECT if pattern.match(name)), None)
        if len(_by_model) >= 1024:  # a bound, should a caller send endless distinct ids
            _by_model.clear()
        _by_model[model] = family
    return family  # type: ignore[no-any-return]


# Families whose streams are asked for their usage (``stream_options={"include_usage": True}``,
# answered by a last chunk with ``choices: []``): OpenAI's own API defines it; Anthropic's
# OpenAI SDK compatibility page lists ``stream_options`` as fully supported
# (docs.anthropic.com/en/api/openai-sdk); Gemini's OpenAI-compatible endpoint does not document
# it either way, and a route that ignores it costs only a ``usage_missing`` count. An unknown
# family (open-weight models, other providers) is sent nothing it did not ask for.
USAGE_IN_STREAMS = frozenset(FAMILY_IDS)


def streams_usage(model: str) -> bool:
    """Whether a stream to ``model`` should ask for its usage (``include_usage``) by default."""
    family = family_of(model)
    return family is not None and family.id in USAGE_IN_STREAMS


# --------------------------------------------------------------------------- applying it


def check_mode(mode: object) -> Mode:
    """``mode`` if it is a compat mode; else ``ConfigurationError``."""
    if mode not in _MODES:
        modes = ", ".join(map(repr, _MODES))
        raise ConfigurationError(f"compat must be one of {modes}, got {mode!r}")
    return mode  # type: ignore[return-value]


_warned: contextvars.ContextVar[set[tuple[str, str]] | None] = contextvars.ContextVar(
    "aiocometapi_compat_warned", default=None
)


def warn_once_here(seen: set[tuple[str, str]]) -> None:
    """From now on in this context, each (parameter, family) in ``seen`` or added to it warns
    once only (a Ray worker keeps one set across its batches)."""
    _warned.set(seen)


def warn_once_context() -> contextvars.Context:
    """A copy of the current context in which each (parameter, family) warns once only.

    A fan-out creates its runner task in it; the tasks it starts share the one set. Their
    warnings point at the caller's line of now (the one that iterates the fan-out), as no
    frame of the caller is on a worker task's stack.
    """
    context = contextvars.copy_context()
    context.run(_warned.set, set())
    remember_caller(context)
    return context


def _warn(message: str, parameter: str, family: Family) -> None:
    seen = _warned.get()
    if seen is not None:
        key = (parameter, family.id)
        if key in seen:
            return
        seen.add(key)
    warn(CompatibilityWarning(message))


def check(
    params: Mapping[str, Any], mode: str
) -> tuple[Mapping[str, Any], list[Adjustment] | None]:
    """Apply the table to ``create()`` parameters in ``mode`` (anything but ``"off"``).

    Returns:
        The parameters to send (a new dict if ``adapt`` changed any) and, with ``adapt``,
        the list of changes made (``None`` in the other modes).

    Raises:
        CompatibilityError: ``strict``, and a parameter does not fit the model's family.
        ConfigurationError: ``mode`` is not a compat mode.
    """
    if mode not in _MODES:
        check_mode(mode)
    model = params.get("model")
    family = family_of(model) if isinstance(model, str) else None
    adapt = mode == "adapt"
    if family is None or mode == "off":
        return params, [] if adapt else None
    rules = family.rules
    findings: list[tuple[str, _Finding]] | None = None
    for name, value in params.items():
        rule = rules.get(name)
        if rule is None or value is None or value is msgspec.UNSET:
            continue
        found = rule.check(name, value, family, params)
        if found is not None:
            if findings is None:
                findings = []
            findings.append((name, found))
    if findings is None:
        return params, [] if adapt else None
    return _report(params, findings, family, mode, model)


def _report(
    params: Mapping[str, Any],
    findings: list[tuple[str, _Finding]],
    family: Family,
    mode: str,
    model: Any,
) -> tuple[Mapping[str, Any], list[Adjustment] | None]:
    if mode == "strict":
        problems = "; ".join(found.problem for _, found in findings)
        raise CompatibilityError(
            f"{problems} (model {model!r}). Nothing was sent: compat='strict' refuses parameters "
            "the model family does not take; compat='adapt' rewrites them."
        )
    if mode == "warn":
        for name, found in findings:
            _warn(f"{found.problem} (model {model!r}); sent unchanged", name, family)
        return params, None
    adapted = dict(params)
    adjustments = []
    for name, found in findings:
        del adapted[name]
        if found.action != "dropped":
            sent = found.after if found.sent is None else found.sent
            adapted[found.target or name] = sent
        adjustment = Adjustment(
            parameter=name,
            family=family.id,
            action=found.action,
            before=found.before,
            after=found.after,
            message=f"{found.problem}; {found.done}",
        )
        adjustments.append(adjustment)
        _warn(f"{adjustment.message} (model {model!r})", name, family)
    return adapted, adjustments
