"""The keywords of the public functions, declared once, by what they are for.

The run options (how to send) are the fields of :class:`~endpointr.RunOptions`; an
endpoint's own keywords (what to ask) are those of its ``create``. Their defaults are
not restated here: each endpoint declares its own, and the signatures the public
functions show (``help()``, ``inspect.signature``) carry them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypedDict

from ..engine.options import Backoff

__all__ = [
    "AntChatBatch",
    "AntChatTable",
    "AntChatText",
    "ChatBatch",
    "ChatTable",
    "ChatText",
    "ClassifyBatch",
    "ClassifyTable",
    "ClassifyText",
    "EmbedBatch",
    "EmbedTable",
    "EmbedText",
    "LocalEmbedBatch",
    "LocalEmbedTable",
    "LocalEmbedText",
    "OpenAIEmbedBatch",
    "OpenAIEmbedTable",
    "OpenAIEmbedText",
]


class TextOptions(TypedDict, total=False):
    """Run options of the one-text functions."""

    key_name: str | None
    max_retries: int
    overload_timeout: float
    down_timeout: float
    timeout: float
    backoff: Backoff | None
    verify: bool
    ca_bundle: str | None


class BatchOptions(TextOptions, total=False):
    """Run options of the list-of-texts functions (nothing is written to disk)."""

    concurrent_requests: int | str
    max_concurrent_requests: int
    progress: bool
    requests_per_minute: float | None
    tokens_per_minute: float | None
    dedupe: bool
    cache_dir: str | Path | None


class TableOptions(BatchOptions, total=False):
    """Run options of the table functions, which commit chunks to ``output_dir``."""

    output_dir: str | Path | None
    chunk_size: int
    overwrite: bool
    retry_failed: bool


class Rows(TypedDict, total=False):
    """For endpoints that send several rows per request."""

    batch_size: int | str


class Vectors(Rows, total=False):
    """For embedding endpoints: ``wide=True`` gives EndpointR's ``V1..Vn`` columns."""

    wide: bool


class HFEmbedding(TypedDict, total=False):
    parameters: dict[str, Any] | None


class HFClassifying(TypedDict, total=False):
    parameters: dict[str, Any] | None
    max_length: int
    label_map: dict[str, str] | None


class OpenAIEmbedding(TypedDict, total=False):
    model: str
    dimensions: int | None
    encoding_format: str
    endpoint_url: str
    base_url: str | None


class LocalEmbedding(TypedDict, total=False):
    input_type: str
    endpoint_url: str


class Chatting(TypedDict, total=False):
    model: str
    system_prompt: str | None
    schema: Any
    temperature: float | None
    max_tokens: int
    endpoint_url: str
    base_url: str | None
    structured_output: str


class AnthropicChatting(Chatting, total=False):
    cache_system_prompt: bool | None


class EmbedText(HFEmbedding, TextOptions, total=False): ...


class EmbedBatch(HFEmbedding, BatchOptions, Vectors, total=False): ...


class EmbedTable(HFEmbedding, TableOptions, Vectors, total=False): ...


class ClassifyText(HFClassifying, TextOptions, total=False): ...


class ClassifyBatch(HFClassifying, BatchOptions, Rows, total=False): ...


class ClassifyTable(HFClassifying, TableOptions, Rows, total=False): ...


class OpenAIEmbedText(OpenAIEmbedding, TextOptions, total=False): ...


class OpenAIEmbedBatch(OpenAIEmbedding, BatchOptions, Vectors, total=False): ...


class OpenAIEmbedTable(OpenAIEmbedding, TableOptions, Vectors, total=False): ...


class LocalEmbedText(LocalEmbedding, TextOptions, total=False): ...


class LocalEmbedBatch(LocalEmbedding, BatchOptions, Vectors, total=False): ...


class LocalEmbedTable(LocalEmbedding, TableOptions, Vectors, total=False): ...


class ChatText(Chatting, TextOptions, total=False): ...


class ChatBatch(Chatting, BatchOptions, total=False): ...


class ChatTable(Chatting, TableOptions, total=False): ...


class AntChatText(AnthropicChatting, TextOptions, total=False): ...


class AntChatBatch(AnthropicChatting, BatchOptions, total=False): ...


class AntChatTable(AnthropicChatting, TableOptions, total=False): ...
