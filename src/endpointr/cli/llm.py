"""The ``complete`` subcommand and the OpenAI side of ``embed``."""

from __future__ import annotations

import argparse
from typing import Any

from ..api._chat import check_columns
from ..api.anthropic import messages_endpoint
from ..api.openai import chat_endpoint, embed_endpoint
from ..providers.anthropic import MESSAGES_URL
from ..providers.openai import CHAT_URL, EMBEDDINGS_URL

__all__ = ["add_embed_options", "embed_openai", "register_complete"]

_CHAT = {
    "openai": ("gpt-4.1-nano", "OPENAI_API_KEY", 30.0, CHAT_URL),
    "anthropic": ("claude-haiku-4-5", "ANTHROPIC_API_KEY", 60.0, MESSAGES_URL),
}


def register_complete(sub: Any) -> None:
    """Add the ``complete`` subcommand to the ``sub`` parsers."""
    from .main import add_run_options

    p = sub.add_parser(
        "complete",
        help="complete every row of a file with a chat model",
        description="Send every row of a CSV, Parquet or JSONL file to OpenAI (or an "
        "OpenAI-compatible server) or Anthropic, one request per row, optionally with a "
        "JSON schema whose fields become columns.",
    )
    add_run_options(
        p,
        batch_size=1,
        chunk_size=1000,
        timeout=30,
        key_name="OPENAI_API_KEY for openai, ANTHROPIC_API_KEY for anthropic",
    )
    p.set_defaults(key_name=None, timeout=None, handler=_complete)
    p.add_argument(
        "--provider",
        choices=sorted(_CHAT),
        default="openai",
        help="openai (default; also any OpenAI-compatible server) or anthropic; "
        "--timeout defaults to 30 for openai, 60 for anthropic; --batch-size is always 1",
    )
    p.add_argument("--model", default=None, help="gpt-4.1-nano / claude-haiku-4-5 by default")
    p.add_argument("--system-prompt", default=None, help="the system prompt of every row")
    p.add_argument("--schema", default=None, help="a .json file holding a JSON schema")
    p.add_argument("--temperature", type=float, default=0.0, help="default 0")
    p.add_argument("--max-tokens", type=int, default=500, help="default 500")
    _add_urls(p)


def _add_urls(p: argparse.ArgumentParser) -> None:
    urls = p.add_mutually_exclusive_group()
    urls.add_argument("--endpoint-url", default=None, help="the full URL of the route")
    urls.add_argument(
        "--base-url",
        default=None,
        help="the server's base URL instead, e.g. http://localhost:8000/v1",
    )


def _complete(args: argparse.Namespace) -> int:
    from .main import run_table, settings_from

    model, key_name, timeout, default_url = _CHAT[args.provider]
    build = chat_endpoint if args.provider == "openai" else messages_endpoint
    endpoint = build(
        args.endpoint_url or default_url,
        args.base_url,
        model=args.model or model,
        system_prompt=args.system_prompt,
        schema=args.schema,
        temperature=args.temperature,
        max_tokens=args.max_tokens,
    )
    check_columns(endpoint, args.id_col)
    args.key_name = args.key_name or key_name
    if args.timeout is None:
        args.timeout = timeout
    settings = settings_from(args, extra_manifest={"model": endpoint.model})
    settings.batch_size = 1
    task = "oai-complete" if args.provider == "openai" else "ant-complete"
    return run_table(args, endpoint, task, settings)


def add_embed_options(p: argparse.ArgumentParser) -> None:
    """``--provider``, ``--base-url``, ``--model`` and ``--dimensions`` for ``embed``."""
    p.add_argument(
        "--provider",
        choices=("hf", "openai"),
        default="hf",
        help="hf (default: an HF Inference Endpoint or TEI) or openai (also any "
        "OpenAI-compatible server; --batch-size then defaults to 100)",
    )
    p.add_argument(
        "--base-url",
        default=None,
        help="openai: the server's base URL instead of --endpoint-url, e.g. "
        "http://localhost:8000/v1",
    )
    p.add_argument("--model", default=None, help="openai: default text-embedding-3-small")
    p.add_argument("--dimensions", type=int, default=None, help="openai: vector size to ask for")


def embed_openai(args: argparse.Namespace) -> int:
    """Run ``embed --provider openai``."""
    from ..errors import ConfigError
    from .main import run_table, settings_from

    if args.parameters:
        raise ConfigError("--parameters is for --provider hf")
    endpoint = embed_endpoint(
        args.endpoint_url or EMBEDDINGS_URL,
        args.base_url,
        model=args.model or "text-embedding-3-small",
        dimensions=args.dimensions,
        encoding_format="base64",
    )
    args.key_name = args.key_name or "OPENAI_API_KEY"
    if args.batch_size is None:
        args.batch_size = 100
    extra = {"model": endpoint.model, "dimensions": endpoint.dimensions}
    return run_table(args, endpoint, "oai-embed", settings_from(args, extra_manifest=extra))
