"""Batch-API lines and results without any request: EndpointR's
``oai_batch_build_*_req``, ``oai_batch_prepare_*`` (the JSONL of a Batch file, built by the
registered endpoints exactly as an online run sends each body) and
``oai_batch_parse_*`` (a batch's output and error file content as rows)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pyarrow as pa

from ..errors import ConfigError, InputError
from ..io.chunks import results_table
from ..io.frames import to_frame
from ..io.readers import open_source
from ..providers.base import Endpoint
from ..providers.openai import OpenAIChat, OpenAIEmbed
from ..types import Result, Row
from .lines import openai_line, read_openai_line, result_lines

__all__ = [
    "batch_route",
    "oai_batch_build_completions_req",
    "oai_batch_build_embed_req",
    "oai_batch_parse_completions",
    "oai_batch_parse_embeddings",
    "oai_batch_prepare_completions",
    "oai_batch_prepare_embeddings",
    "one_text",
    "parsed_frame",
    "read_lines",
]

_ROUTES = ("/v1/embeddings", "/v1/chat/completions")


def batch_route(endpoint: str) -> str:
    """``endpoint`` if it is a route the Batch API runs, else :class:`ConfigError`."""
    if endpoint not in _ROUTES:
        raise ConfigError(f"endpoint must be one of {', '.join(_ROUTES)}, got {endpoint!r}")
    return endpoint


def _embedder(model: str, dimensions: int | None, encoding_format: str) -> OpenAIEmbed:
    return OpenAIEmbed.create(model=model, dimensions=dimensions, encoding_format=encoding_format)


def _chatter(
    model: str, system_prompt: str | None, temperature: float | None, max_tokens: int, schema: Any
) -> OpenAIChat:
    return OpenAIChat.create(
        model=model,
        system_prompt=system_prompt,
        temperature=temperature,
        max_tokens=max_tokens,
        schema=schema,
    )


def one_text(text: Any, custom_id: Any) -> tuple[str, str]:
    """``(text, custom_id as text)``; :class:`InputError` for an empty text or no id."""
    if not isinstance(text, str) or not text.strip():
        raise InputError("input must be a non-empty string")
    if custom_id is None or (isinstance(custom_id, str) and not custom_id):
        raise InputError("id must be given (it becomes the line's custom_id)")
    return text, str(custom_id)


def oai_batch_build_embed_req(
    input: str,
    id: Any,
    model: str = "text-embedding-3-small",
    dimensions: int | None = None,
    method: str = "POST",
    encoding_format: str = "float",
    endpoint: str = "/v1/embeddings",
) -> str:
    """One Batch-API JSONL line that embeds ``input``, with ``custom_id`` ``str(id)``."""
    embedder = _embedder(model, dimensions, encoding_format)
    return _jsonl(embedder, endpoint, method, [one_text(input, id)])


def oai_batch_build_completions_req(
    input: str,
    id: Any,
    model: str = "gpt-4.1-nano",
    system_prompt: str | None = None,
    temperature: float | None = 0,
    max_tokens: int = 500,
    schema: Any = None,
    method: str = "POST",
    endpoint: str = "/v1/chat/completions",
) -> str:
    """One Batch-API JSONL line that completes ``input`` (the body ``oai_complete_df``
    sends, ``response_format`` included with ``schema``)."""
    chat = _chatter(model, system_prompt, temperature, max_tokens, schema)
    return _jsonl(chat, endpoint, method, [one_text(input, id)])


def _jsonl(endpoint: Endpoint, route: str, method: str, rows: Sequence[tuple[str, str]]) -> str:
    """The JSONL lines (joined by newlines) of ``(text, custom_id)`` rows to ``route``."""
    if method != "POST":
        raise ConfigError(f"the Batch API takes only POST lines, got method={method!r}")
    url = batch_route(route)
    return "\n".join(openai_line(endpoint, url, c, t).decode() for t, c in rows)


def _frame_rows(df: Any, text_var: str, id_var: str) -> list[tuple[str, str]]:
    source = open_source(df, text_var=text_var, id_var=id_var)
    rows = []
    for row_id, text in source.pairs():
        rows.append(one_text(text, row_id))
    names = [c for _, c in rows]
    if len(set(names)) != len(names):
        raise InputError(f"{id_var} must be unique as text (it becomes each line's custom_id)")
    if len(rows) > 50_000:
        raise InputError(
            f"{len(rows):,} rows: a Batch file takes at most 50,000 requests; split the frame, "
            "or use oai_batch_df, which splits it for you"
        )
    return rows


def oai_batch_prepare_embeddings(
    df: Any,
    text_var: str,
    id_var: str,
    model: str = "text-embedding-3-small",
    dimensions: int | None = None,
    method: str = "POST",
    encoding_format: str = "float",
    endpoint: str = "/v1/embeddings",
) -> str:
    """The JSONL of a Batch file that embeds every row of ``df`` (lines joined by
    newlines, ``custom_id`` = the row's id as text)."""
    embedder = _embedder(model, dimensions, encoding_format)
    return _jsonl(embedder, endpoint, method, _frame_rows(df, text_var, id_var))


def oai_batch_prepare_completions(
    df: Any,
    text_var: str,
    id_var: str,
    model: str = "gpt-4.1-nano",
    system_prompt: str | None = None,
    temperature: float | None = 0,
    max_tokens: int = 500,
    schema: Any = None,
    method: str = "POST",
    endpoint: str = "/v1/chat/completions",
) -> str:
    """The JSONL of a Batch file that completes every row of ``df``."""
    chat = _chatter(model, system_prompt, temperature, max_tokens, schema)
    return _jsonl(chat, endpoint, method, _frame_rows(df, text_var, id_var))


def _content_bytes(content: str | bytes | Sequence[str | bytes]) -> bytes:
    if isinstance(content, str):
        return content.encode()
    if isinstance(content, bytes):
        return content
    return b"\n".join(_content_bytes(c) for c in content)


def parsed_frame(
    lines: list[tuple[str, Result]],
    endpoint: Endpoint,
    original_df: Any,
    id_var: str | None,
) -> Any:
    results = [r for _, r in lines]
    for (custom, _), result in zip(lines, results, strict=True):
        result.id = custom
    table = endpoint.finalize(results_table(results, endpoint, "custom_id", pa.string()))
    if original_df is not None and id_var is not None:
        table = table.rename_columns([id_var, *table.column_names[1:]])
    return to_frame(table, "pandas")


def read_lines(content: bytes, read: Callable[[Row, Any], Result]) -> list[tuple[str, Result]]:
    """``(custom_id, result)`` of every line of a batch's results, each read with
    ``read``; a line that is not a result is an error row ``__PARSE_ERROR_LINE_<n>``."""
    out = []
    for number, custom, line in result_lines(content):
        if custom is None:
            failed = Result.failed(None, "line is not a result")
            out.append((f"__PARSE_ERROR_LINE_{number}", failed))
        else:
            out.append((custom, read(Row(custom, ""), line)))
    return out


def _read_openai(content: Any, endpoint: Endpoint) -> list[tuple[str, Result]]:
    return read_lines(
        _content_bytes(content), lambda row, line: read_openai_line(endpoint, row, line)
    )


def oai_batch_parse_embeddings(
    content: str | bytes | Sequence[str | bytes],
    original_df: Any = None,
    id_var: str | None = None,
) -> Any:
    """The rows of a batch's output (and error) file content: ``custom_id`` (renamed to
    ``id_var`` when ``original_df`` and ``id_var`` are given), ``embedding``, ``.error``,
    ``.error_msg``, ``.status``, ``.attempts``. A line with a non-200 status or an error
    is an error row with its message."""
    endpoint = OpenAIEmbed.create()
    return parsed_frame(_read_openai(content, endpoint), endpoint, original_df, id_var)


def oai_batch_parse_completions(
    content: str | bytes | Sequence[str | bytes],
    original_df: Any = None,
    id_var: str | None = None,
    schema: Any = None,
) -> Any:
    """The rows of a batch's completions output (and error) file content: the columns of
    :func:`~endpointr.oai_complete_df`, led by ``custom_id``; with ``schema`` its fields
    too, validated."""
    endpoint = OpenAIChat.create(schema=schema)
    return parsed_frame(_read_openai(content, endpoint), endpoint, original_df, id_var)
