"""The ``aiocometapi`` command: chat, models, batch, and the local mock server."""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import sys
import warnings
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import replace
from functools import partial
from importlib import metadata
from typing import Any, TextIO, get_args
from urllib.parse import urlsplit

import anyio

from ._client import AsyncCometAPI
from ._compat import Mode, check_mode
from ._exceptions import APIStatusError, CometAPIError
from ._version import __version__
from .batch import BatchError, BatchOptions, run_batch
from .batch.report import EXIT_USAGE
from .types import ChatCompletion

__all__ = ["main"]

DEFAULT_MODEL = "gpt-5.4-mini"
MOCK_KEY = "sk-mock-local"
"""The key the command line gives the built-in server (which takes any key) with ``--mock``."""
DEFAULT_PORT = 8000
_LEAVE = frozenset({"/quit", "/exit", "quit", "exit"})
_CHAT_HELP = "Type /quit or press Ctrl-D to leave (/help shows this again)."
_NO_KEY = (
    "no API key: set COMETAPI_KEY or pass --api-key KEY (keys are at "
    "https://api.cometapi.com/console/token), or add --mock to use the built-in local server"
)


class _Version(argparse.Action):
    """``--version``: this package's version, and those of Python and the core dependencies."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, help="show the versions and exit")

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        found = []
        for name in ("aiohttp", "msgspec", "anyio", "tenacity"):
            with contextlib.suppress(metadata.PackageNotFoundError):
                found.append(f"{name} {metadata.version(name)}")
        python = f"{platform.python_implementation()} {platform.python_version()}"
        sys.stdout.write(f"aiocometapi {__version__} ({python}; {', '.join(found)})\n")
        parser.exit()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aiocometapi", description="CometAPI from the command line."
    )
    parser.add_argument("--version", action=_Version)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def connection_flags(sub: argparse.ArgumentParser, *, compat: bool = True) -> None:
        sub.add_argument(
            "--mock", action="store_true", help="run against the built-in local server (no key)"
        )
        sub.add_argument(
            "--api-key",
            metavar="KEY",
            help="the API key (default: $COMETAPI_KEY, which keeps it out of the process list)",
        )
        sub.add_argument("--base-url", help="API base URL (default: $COMETAPI_BASE_URL)")
        sub.add_argument("--timeout", type=float, help="seconds before giving up on a request")
        sub.add_argument("--max-retries", type=int, help="retries after a failed try (default 4)")
        if compat:
            sub.add_argument(
                "--compat",
                choices=get_args(Mode),
                default="warn",
                help="parameters a model family takes differently: warn and send them (default), "
                "refuse them (strict), rewrite them (adapt), or send them unchecked (off)",
            )

    chat = commands.add_parser(
        "chat",
        help="send a prompt and print the reply",
        description="Send a prompt and print the reply. Without a prompt, an interactive chat "
        "that keeps the conversation; /quit, /exit, quit, exit or Ctrl-D leave it.",
    )
    chat.add_argument("prompt", nargs="?", help="the prompt; without it, an interactive chat")
    chat.add_argument(
        "-m",
        "--model",
        default=os.environ.get("COMETAPI_MODEL", DEFAULT_MODEL),
        help=f"model id (default: $COMETAPI_MODEL or {DEFAULT_MODEL})",
    )
    chat.add_argument("--system", help="a system message to start the conversation with")
    chat.add_argument(
        "--no-stream", action="store_true", help="wait for the whole reply instead of streaming"
    )
    chat.add_argument(
        "--usage",
        action="store_true",
        help="print the tokens (and, with --prices, the cost) of each answer on stderr",
    )
    chat.add_argument(
        "--prices", metavar="FILE", help="prices per million tokens, JSON or TOML (for --usage)"
    )
    connection_flags(chat)

    models = commands.add_parser("models", help="list the model ids the gateway serves")
    connection_flags(models, compat=False)

    batch = commands.add_parser(
        "batch",
        help="answer an OpenAI Batch API JSONL file, resumably",
        description="Answer every line of an OpenAI Batch API input file and append the "
        "answers to OUTPUT in the Batch API's output format. A rerun with the same OUTPUT "
        "skips the custom_ids already answered in it. Exit status: 0 every line answered "
        "successfully, 1 some failed or were skipped, 2 usage error, 3 stopped early (every "
        "request failed alike: a refused key, an unreachable host), 130 interrupted.",
    )
    batch.add_argument(
        "input",
        metavar="INPUT.jsonl",
        help="custom_id/method/url/body lines; - reads them from standard input",
    )
    batch.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUTPUT.jsonl",
        help="answers are appended here; a rerun skips the custom_ids it already holds",
    )
    batch.add_argument(
        "-c", "--concurrency", type=int, default=64, help="requests in flight (default 64)"
    )
    batch.add_argument("--rpm", type=float, help="at most N requests per minute")
    batch.add_argument("--tpm", type=float, help="at most N tokens per minute (estimated)")
    batch.add_argument("-m", "--model", help="model for lines whose body names none")
    batch.add_argument(
        "--strict",
        action="store_true",
        help="check every line first; a malformed one stops the run (default: skip it)",
    )
    batch.add_argument(
        "--retry-failed",
        action="store_true",
        help="send again the lines whose answers in OUTPUT failed, replacing those answers",
    )
    batch.add_argument(
        "--keep-going",
        action="store_true",
        help="send every line even when the answers show that all fail alike (default: stop "
        "after a refused key, an unreachable host, or the same client error on the first 8)",
    )
    batch.add_argument(
        "--max-tokens-total",
        type=int,
        metavar="N",
        help="stop sending once the answers' tokens would pass N; a rerun sends the rest",
    )
    batch.add_argument(
        "--max-cost",
        type=float,
        metavar="X",
        help="stop sending once the cost at --prices would pass X; a rerun sends the rest",
    )
    batch.add_argument(
        "--prices",
        metavar="FILE",
        help="prices per million tokens, JSON or TOML: cost in progress and summary",
    )
    batch.add_argument("-q", "--quiet", action="store_true", help="no progress line")
    batch.add_argument(
        "--ray",
        nargs="?",
        const="",
        metavar="ADDRESS",
        help="answer the lines on a Ray cluster (default: $RAY_ADDRESS, else a local Ray; "
        "needs aiocometapi[ray]); -c is then per worker",
    )
    connection_flags(batch)

    server = commands.add_parser("mock-server", help="serve the local mock API")
    server.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    server.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help="port to listen on; 0 picks a free one (default: %(default)s)",
    )
    server.add_argument(
        "--api-key", metavar="KEY", help="accept only this key (default: any non-empty key)"
    )
    server.add_argument(
        "--rps-limit", type=float, help="admit at most N requests per second (default: no limit)"
    )
    server.add_argument(
        "--max-in-flight", type=int, help="answer at most N requests at once (default: no limit)"
    )
    server.add_argument(
        "--fail-rate", type=float, default=0.0, help="share answered 500 (default: %(default)s)"
    )
    server.add_argument(
        "--drop-rate",
        type=float,
        default=0.0,
        help="share dropped unanswered (default: %(default)s)",
    )
    server.add_argument(
        "--latency",
        type=float,
        default=0.0,
        help="seconds before each reply (default: %(default)s)",
    )
    server.add_argument(
        "--seed", type=int, default=0, help="seed of the failure draws (default: %(default)s)"
    )
    return parser


# --------------------------------------------------------------------------- messages


class _UsageError(Exception):
    """A command that cannot run as given; the message is shown as is."""


def _api_key(args: argparse.Namespace) -> str:
    key: str | None = args.api_key or os.environ.get("COMETAPI_KEY")
    if key is None or not key.strip():
        raise _UsageError(_NO_KEY)
    return key.strip()


def _base_url(args: argparse.Namespace) -> str | None:
    return None if args.mock else args.base_url or os.environ.get("COMETAPI_BASE_URL")


def url_hint(base_url: str | None, exc: BaseException) -> str:
    """``" (did you mean .../v1?)"`` for a 404 from a base URL that lacks ``/v1``, else ``""``."""
    if not base_url or not isinstance(exc, APIStatusError) or exc.status_code != 404:
        return ""
    if exc.code == "model_not_found":
        return ""
    trimmed = base_url.rstrip("/")
    if urlsplit(trimmed).path.endswith("/v1"):
        return ""
    return f" (did you mean {trimmed}/v1?)"


def _one_line(exc: BaseException, base_url: str | None = None) -> str:
    if isinstance(exc, APIStatusError):
        text = f"{type(exc).__name__} ({exc.status_code}): {exc.message}"
    else:
        text = f"{type(exc).__name__}: {exc}"
    return " ".join(text.split()) + url_hint(base_url, exc)


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """A warning as one plain line, without the file and line it was raised at."""
    text = " ".join(str(message).split())
    with contextlib.suppress(OSError, ValueError):
        (file or sys.stderr).write(f"warning: {text}\n")


@contextlib.contextmanager
def _plain_warnings() -> Iterator[None]:
    # Only the command line shows warnings this way; the library leaves them to Python.
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        yield


# --------------------------------------------------------------------------- chat and models


@contextlib.asynccontextmanager
async def _client(args: argparse.Namespace) -> AsyncIterator[AsyncCometAPI]:
    compat = check_mode(getattr(args, "compat", "warn"))
    if args.mock:
        from .testing import MockServer

        async with (
            MockServer() as server,
            AsyncCometAPI(
                MOCK_KEY,
                base_url=server.url,
                timeout=args.timeout,
                max_retries=args.max_retries,
                compat=compat,
                prices=getattr(args, "prices", None),
            ) as client,
        ):
            yield client
    else:
        async with AsyncCometAPI(
            _api_key(args),
            base_url=args.base_url,
            timeout=args.timeout,
            max_retries=args.max_retries,
            compat=compat,
            prices=getattr(args, "prices", None),
        ) as client:
            yield client


async def _reply(
    client: AsyncCometAPI,
    model: str,
    messages: list[dict[str, Any]],
    stream: bool,
    out: TextIO,
    usage: TextIO | None = None,
) -> str:
    if not stream:
        completion = await client.chat.completions.create(model=model, messages=messages)
        text = (completion.choices[0].message.content or "") if completion.choices else ""
        out.write(text + "\n")
    else:
        parts: list[str] = []
        async with await client.chat.completions.create(
            model=model, messages=messages, stream=True
        ) as chunks:
            async for piece in chunks.text():
                parts.append(piece)
                out.write(piece)
                out.flush()
            completion = chunks.completion
        out.write("\n")
        text = "".join(parts)
    if usage is not None:
        usage.write(_usage_line(client, completion, model) + "\n")
        usage.flush()
    return text


def _usage_line(client: AsyncCometAPI, completion: ChatCompletion, model: str) -> str:
    """One answer's tokens, and its cost at the client's prices when it has one."""
    found = completion.usage
    if found is None:
        return "usage: not reported by this route"
    line = (
        f"usage: {found.prompt_tokens:,} prompt + {found.completion_tokens:,} completion = "
        f"{found.total_tokens:,} tokens"
    )
    cost = client.usage.cost(completion, model=model)
    return line if cost is None else f"{line}, cost {cost:.6g}"


async def _chat(args: argparse.Namespace) -> None:
    messages: list[dict[str, Any]] = []
    if args.system:
        messages.append({"role": "system", "content": args.system})
    usage = sys.stderr if args.usage else None
    async with _client(args) as client:
        if args.prompt is not None:
            messages.append({"role": "user", "content": args.prompt})
            await _reply(client, args.model, messages, not args.no_stream, sys.stdout, usage)
            return
        interactive = sys.stdin.isatty()
        if interactive:
            sys.stdout.write(f"Chatting with {args.model}. {_CHAT_HELP}\n")
        while True:
            if interactive:
                sys.stdout.write("you> ")
                sys.stdout.flush()
            line = await anyio.to_thread.run_sync(sys.stdin.readline)
            if not line:
                break
            prompt = line.strip()
            if not prompt:
                continue
            if prompt.lower() in _LEAVE:
                break
            if prompt.lower() == "/help":
                sys.stdout.write(_CHAT_HELP + "\n")
                continue
            messages.append({"role": "user", "content": prompt})
            text = await _reply(client, args.model, messages, not args.no_stream, sys.stdout, usage)
            messages.append({"role": "assistant", "content": text})


async def _models(args: argparse.Namespace) -> None:
    async with _client(args) as client:
        for model in await client.models.list():
            sys.stdout.write(model.id + "\n")


def _serve(args: argparse.Namespace) -> None:
    from .testing import run

    run(
        host=args.host,
        port=args.port,
        api_key=args.api_key,
        rps_limit=args.rps_limit,
        max_in_flight=args.max_in_flight,
        fail_rate=args.fail_rate,
        drop_rate=args.drop_rate,
        latency=args.latency,
        seed=args.seed,
    )


# --------------------------------------------------------------------------- batch


async def _run_batch(args: argparse.Namespace, options: BatchOptions) -> int:
    async with contextlib.AsyncExitStack() as stack:
        base_url = args.base_url
        if args.mock:
            from .testing import MockServer

            server = await stack.enter_async_context(MockServer())
            key, base_url = MOCK_KEY, server.url
        else:
            key = _api_key(args)
            options = replace(options, redact=(key,))
        client = AsyncCometAPI(
            key,
            base_url=base_url,
            timeout=args.timeout,
            max_retries=args.max_retries,
            requests_per_minute=args.rpm,
            tokens_per_minute=args.tpm,
            max_connections=max(100, args.concurrency),
            compat=check_mode(args.compat),
            prices=args.prices,
        )
        await stack.enter_async_context(client)
        options = replace(options, url_hint=partial(url_hint, client.base_url))
        summary = await run_batch(client, args.input, args.output, options=options)
        return summary.exit_status


def _batch(args: argparse.Namespace) -> int:
    """0: every line has a successful answer; 1: some failed, were malformed or are not
    answered yet; 2: a usage error or (``--strict``) a malformed input; 3: stopped early, the
    answers showing every request would fail alike; 130/143: stopped by SIGINT/SIGTERM."""
    if args.ray is not None:
        try:
            from .ray._batch import main as ray_main
        except ImportError as exc:
            sys.stderr.write(
                f"aiocometapi batch: error: --ray needs the ray extra ({exc}): "
                "pip install 'aiocometapi[ray]'\n"
            )
            return EXIT_USAGE
        return ray_main(
            args.input,
            args.output,
            address=args.ray or None,
            mock=args.mock,
            progress=not args.quiet,
            base_url=args.base_url,
            timeout=args.timeout,
            max_retries=args.max_retries,
            requests_per_minute=args.rpm,
            tokens_per_minute=args.tpm,
            concurrency=args.concurrency,
            strict=args.strict,
            default_model=args.model,
            retry_failed=args.retry_failed,
        )
    try:
        options = BatchOptions(
            concurrency=args.concurrency,
            strict=args.strict,
            default_model=args.model,
            retry_failed=args.retry_failed,
            stop_early=not args.keep_going,
            max_tokens_total=args.max_tokens_total,
            max_cost=args.max_cost,
            progress=not args.quiet,
        )
        if args.max_cost is not None and args.prices is None:
            raise _UsageError("--max-cost needs --prices FILE (the price of each model)")
        return anyio.run(_run_batch, args, options)
    except (BatchError, _UsageError, ValueError) as exc:  # ConfigurationError is a ValueError
        sys.stderr.write(f"aiocometapi batch: error: {' '.join(str(exc).split())}\n")
        return EXIT_USAGE


# --------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    with _plain_warnings():
        return _main(args)


def _main(args: argparse.Namespace) -> int:
    try:
        if args.command == "mock-server":
            _serve(args)
        elif args.command == "batch":
            return _batch(args)
        elif args.command == "chat":
            anyio.run(_chat, args)
        else:
            anyio.run(_models, args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except _UsageError as exc:
        sys.stderr.write(f"aiocometapi: error: {exc}\n")
        return 1
    except (CometAPIError, OSError, ValueError, TypeError) as exc:
        sys.stderr.write(f"aiocometapi: error: {_one_line(exc, _base_url(args))}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
