"""The ``aiocometapi`` command: chat, models, batch, and the local mock server."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import AsyncIterator, Sequence
from typing import Any, TextIO

import anyio

from ._client import AsyncCometAPI
from ._exceptions import APIStatusError, CometAPIError

__all__ = ["main"]

DEFAULT_MODEL = "gpt-5.4-mini"
_FAKE_KEY = "sk-mock-local"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aiocometapi", description="CometAPI from the command line."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def connection_flags(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--mock", action="store_true", help="run against the built-in local server (no key)"
        )
        sub.add_argument("--base-url", help="API base URL (default: $COMETAPI_BASE_URL)")
        sub.add_argument("--timeout", type=float, help="seconds before giving up on a request")
        sub.add_argument(
            "--max-retries", type=int, help="retries after a failed try (default 4)"
        )

    chat = commands.add_parser("chat", help="send a prompt and print the reply")
    chat.add_argument("prompt", nargs="?", help="the prompt; without it, an interactive chat")
    chat.add_argument(
        "-m", "--model", default=os.environ.get("COMETAPI_MODEL", DEFAULT_MODEL),
        help=f"model id (default: $COMETAPI_MODEL or {DEFAULT_MODEL})",
    )
    chat.add_argument("--system", help="a system message to start the conversation with")
    chat.add_argument(
        "--no-stream", action="store_true", help="wait for the whole reply instead of streaming"
    )
    connection_flags(chat)

    models = commands.add_parser("models", help="list the model ids the gateway serves")
    connection_flags(models)

    batch = commands.add_parser(
        "batch",
        help="answer an OpenAI Batch API JSONL file, resumably",
        description="Answer every line of an OpenAI Batch API input file and append the "
        "answers to OUTPUT in the Batch API's output format. A rerun with the same OUTPUT "
        "skips the custom_ids already answered in it. Exit status: 0 every line answered "
        "successfully, 1 some failed or were skipped, 2 usage error, 130 interrupted.",
    )
    batch.add_argument("input", metavar="INPUT.jsonl", help="custom_id/method/url/body lines")
    batch.add_argument(
        "-o", "--output", required=True, metavar="OUTPUT.jsonl",
        help="answers are appended here; a rerun skips the custom_ids it already holds",
    )
    batch.add_argument(
        "-c", "--concurrency", type=int, default=64, help="requests in flight (default 64)"
    )
    batch.add_argument("--rpm", type=float, help="at most N requests per minute")
    batch.add_argument("--tpm", type=float, help="at most N tokens per minute (estimated)")
    batch.add_argument("-m", "--model", help="model for lines whose body names none")
    batch.add_argument(
        "--strict", action="store_true",
        help="check every line first; a malformed one stops the run (default: skip it)",
    )
    batch.add_argument(
        "--retry-failed", action="store_true",
        help="send again the lines whose answers in OUTPUT failed, replacing those answers",
    )
    batch.add_argument("-q", "--quiet", action="store_true", help="no progress line")
    batch.add_argument(
        "--ray", nargs="?", const="", metavar="ADDRESS",
        help="answer the lines on a Ray cluster (default: $RAY_ADDRESS, else a local Ray; "
        "needs aiocometapi[ray]); -c is then per worker",
    )
    connection_flags(batch)

    server = commands.add_parser("mock-server", help="serve the local mock API")
    server.add_argument("--host", default="127.0.0.1")
    server.add_argument("--port", type=int, default=8000)
    server.add_argument("--rps-limit", type=float, help="admit at most N requests per second")
    server.add_argument("--max-in-flight", type=int, help="answer at most N requests at once")
    server.add_argument("--fail-rate", type=float, default=0.0, help="share answered 500")
    server.add_argument("--drop-rate", type=float, default=0.0, help="share dropped unanswered")
    server.add_argument("--latency", type=float, default=0.0, help="seconds before each reply")
    server.add_argument("--seed", type=int, default=0)
    return parser


@contextlib.asynccontextmanager
async def _client(args: argparse.Namespace) -> AsyncIterator[AsyncCometAPI]:
    if args.mock:
        from .testing import MockServer

        async with MockServer() as server, AsyncCometAPI(
            _FAKE_KEY, base_url=server.url, timeout=args.timeout, max_retries=args.max_retries
        ) as client:
            yield client
    else:
        async with AsyncCometAPI(
            base_url=args.base_url, timeout=args.timeout, max_retries=args.max_retries
        ) as client:
            yield client


async def _reply(
    client: AsyncCometAPI, model: str, messages: list[dict[str, Any]], stream: bool, out: TextIO
) -> str:
    if not stream:
        completion = await client.chat.completions.create(model=model, messages=messages)
        text = (completion.choices[0].message.content or "") if completion.choices else ""
        out.write(text + "\n")
        return text
    parts: list[str] = []
    async with await client.chat.completions.create(
        model=model, messages=messages, stream=True
    ) as chunks:
        async for piece in chunks.text():
            parts.append(piece)
            out.write(piece)
            out.flush()
    out.write("\n")
    return "".join(parts)


async def _chat(args: argparse.Namespace) -> None:
    messages: list[dict[str, Any]] = []
    if args.system:
        messages.append({"role": "system", "content": args.system})
    async with _client(args) as client:
        if args.prompt is not None:
            messages.append({"role": "user", "content": args.prompt})
            await _reply(client, args.model, messages, not args.no_stream, sys.stdout)
            return
        interactive = sys.stdin.isatty()
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
            if prompt in ("/exit", "/quit"):
                break
            messages.append({"role": "user", "content": prompt})
            text = await _reply(client, args.model, messages, not args.no_stream, sys.stdout)
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
        rps_limit=args.rps_limit,
        max_in_flight=args.max_in_flight,
        fail_rate=args.fail_rate,
        drop_rate=args.drop_rate,
        latency=args.latency,
        seed=args.seed,
    )


def _batch(args: argparse.Namespace) -> int:
    if args.ray is not None:
        try:
            from .ray._batch import main as ray_main
        except ImportError as exc:
            sys.stderr.write(
                f"aiocometapi batch: error: --ray needs the ray extra ({exc}): "
                "pip install 'aiocometapi[ray]'\n"
            )
            return 2
        return ray_main(
            args.input, args.output, address=args.ray or None, mock=args.mock,
            progress=not args.quiet, base_url=args.base_url, timeout=args.timeout,
            max_retries=args.max_retries, requests_per_minute=args.rpm,
            tokens_per_minute=args.tpm, concurrency=args.concurrency, strict=args.strict,
            default_model=args.model, retry_failed=args.retry_failed,
        )
    from ._batch import main as batch_main

    return batch_main(
        args.input,
        args.output,
        mock=args.mock,
        base_url=args.base_url,
        timeout=args.timeout,
        max_retries=args.max_retries,
        requests_per_minute=args.rpm,
        tokens_per_minute=args.tpm,
        concurrency=args.concurrency,
        strict=args.strict,
        default_model=args.model,
        progress=not args.quiet,
        retry_failed=args.retry_failed,
    )


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, APIStatusError):
        text = f"{type(exc).__name__} ({exc.status_code}): {exc.message}"
    else:
        text = f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
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
    except (CometAPIError, OSError, ValueError, TypeError) as exc:
        sys.stderr.write(f"aiocometapi: error: {_one_line(exc)}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
