"""OpenAI and OpenAI-compatible servers: chat completions and embeddings."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Self
from urllib.parse import urlsplit

import numpy as np
import orjson
import pyarrow as pa

from ..errors import ConfigError, RequestError, ResponseFormatError, ShapeError
from ..types import HttpRequest, HttpResponse, Row
from .base import Defaults, Endpoint, Packing
from .chat import ChatEndpoint
from .hf import fixed_size_embeddings, vector_size, vectors_to_arrow
from .llm import Completion, resolve_url, scrub_keys, settle

__all__ = ["CHAT_URL", "EMBEDDINGS_URL", "OpenAIChat", "OpenAIEmbed"]

CHAT_URL = "https://api.openai.com/v1/chat/completions"
EMBEDDINGS_URL = "https://api.openai.com/v1/embeddings"
_JSON = {"Content-Type": "application/json", "Accept": "application/json"}
_USAGE = ("prompt_tokens", "completion_tokens", "total_tokens")
_ENCODINGS = ("base64", "float")


@dataclass
class OpenAIChat(ChatEndpoint):
    """Chat completions, one row per request.

    Sends ``{"model", "messages": [system?, user], "temperature", "max_tokens"}`` plus
    ``response_format`` (strict JSON schema) when ``schema`` is set; ``temperature=None``
    leaves it out. Columns: ``content``, the schema's fields, ``finish_reason``,
    ``prompt_tokens``, ``completion_tokens``, ``total_tokens``. A refusal, no content or
    an answer that breaks the schema is an error row that keeps content and usage.
    Raises :class:`ConfigError` for a setting out of range.
    """

    name: ClassVar[str] = "openai.chat"
    defaults: ClassVar[Defaults] = Defaults(
        "OPENAI_API_KEY", timeout=30, chunk_size=1000, model="gpt-4.1-nano", url=CHAT_URL
    )
    route: ClassVar[str] = "/chat/completions"
    max_temperature: ClassVar[float] = 2
    stop_name: ClassVar[str] = "finish_reason"
    usage_names: ClassVar[tuple[str, ...]] = _USAGE
    output_modes: ClassVar[tuple[str, ...]] = ("json_schema", "json_object", "prompt")

    @property
    def tokenizer_model(self) -> str | None:
        return self.model

    def build_request(self, rows: Sequence[Row]) -> HttpRequest:
        (row,) = rows
        messages = [{"role": "user", "content": row.text}]
        system = self.instructions()
        if system is not None:
            messages.insert(0, {"role": "system", "content": system})
        body: dict[str, Any] = {"model": self.model, "messages": messages}
        if self.temperature is not None:
            body["temperature"] = self.temperature
        body["max_tokens"] = self.max_tokens
        if self.schema is not None and self.mode == "json_schema":
            body["response_format"] = self.schema.to_openai()
        elif self.schema is not None and self.mode == "json_object":
            body["response_format"] = {"type": "json_object", "schema": self.schema.schema}
        return HttpRequest("POST", self.url, orjson.dumps(body), _JSON)

    def parse_values(self, rows: Sequence[Row], body: Any) -> list[Any]:
        choices = body.get("choices") if isinstance(body, dict) else None
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise ResponseFormatError("the answer has no choices")
        choice = choices[0]
        message = choice.get("message")
        if not isinstance(message, dict):
            raise ResponseFormatError("the answer's first choice has no message")
        usage = body.get("usage")
        completion = Completion(
            _text(message.get("content")),
            choice.get("finish_reason"),
            usage if isinstance(usage, dict) else {},
        )
        refusal = message.get("refusal")
        return [settle(completion, refusal=refusal or None, schema=self.schema)]

    def wire_schema(self) -> Any:
        return self.schema.to_openai() if self.schema is not None else None


def _text(content: Any) -> str | None:
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text") for p in content if isinstance(p, dict)]
        return "".join(p for p in parts if isinstance(p, str))
    raise ResponseFormatError(f"message content is a JSON {type(content).__name__}")


@dataclass
class OpenAIEmbed(Endpoint):
    """Embeddings, several rows per request.

    Sends ``{"model", "input": [texts], "dimensions"?, "encoding_format"}``. Vectors are
    matched to rows by their ``index``, never by position; a missing, repeated or
    out-of-range index is a :class:`ResponseFormatError`. ``"base64"`` answers are
    decoded as little-endian float32; a server that answers lists of floats anyway is
    read too. Column: ``embedding`` (float32 vectors).
    """

    name: ClassVar[str] = "openai.embed"
    command: ClassVar[str] = "embed"
    defaults: ClassVar[Defaults] = Defaults(
        "OPENAI_API_KEY",
        batch_size=100,
        timeout=20,
        model="text-embedding-3-small",
        url=EMBEDDINGS_URL,
    )
    option_help: ClassVar[Mapping[str, str]] = {
        "model": "the embedding model",
        "dimensions": "vector size to ask for",
        "encoding_format": "'base64' (compact) or 'float'",
        "endpoint_url": "the full URL of the route",
        "base_url": "the server's base URL instead, e.g. http://localhost:8000/v1",
    }
    url: str
    model: str
    dimensions: int | None = None
    encoding_format: str = "base64"

    @classmethod
    def create(
        cls,
        *,
        model: str | None = None,
        dimensions: int | None = None,
        encoding_format: str = "base64",
        endpoint_url: str | None = None,
        base_url: str | None = None,
    ) -> Self:
        url = resolve_url(
            endpoint_url or EMBEDDINGS_URL, base_url, default=EMBEDDINGS_URL, path="/embeddings"
        )
        return cls(
            url, str(cls.defaults.model) if model is None else model, dimensions, encoding_format
        )

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model.strip():
            raise ConfigError(f"model must be a non-empty string, got {self.model!r}")
        if self.dimensions is not None and (
            isinstance(self.dimensions, bool)
            or not isinstance(self.dimensions, int)
            or self.dimensions < 1
        ):
            raise ConfigError(f"dimensions must be a positive integer, got {self.dimensions!r}")
        if self.encoding_format not in _ENCODINGS:
            raise ConfigError(
                f"encoding_format must be 'base64' or 'float', got {self.encoding_format!r}"
            )

    def build_request(self, rows: Sequence[Row]) -> HttpRequest:
        body: dict[str, Any] = {"model": self.model, "input": [row.text for row in rows]}
        if self.dimensions is not None:
            body["dimensions"] = self.dimensions
        body["encoding_format"] = self.encoding_format
        return HttpRequest("POST", self.url, orjson.dumps(body), _JSON)

    def parse_values(self, rows: Sequence[Row], body: Any) -> list[Any]:
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            raise ResponseFormatError("the answer has no 'data' list of embeddings")
        if len(data) != len(rows):
            raise ResponseFormatError(
                f"expected {len(rows)} embeddings, the server returned {len(data)}"
            )
        vectors: list[np.ndarray | None] = [None] * len(rows)
        for item in data:
            index = item.get("index") if isinstance(item, dict) else None
            if isinstance(index, bool) or not isinstance(index, int):
                raise ResponseFormatError("an embedding in the answer has no integer 'index'")
            if not 0 <= index < len(rows) or vectors[index] is not None:
                raise ResponseFormatError(f"embedding index {index} is out of range or repeated")
            vectors[index] = _vector(item.get("embedding"))
        return vectors

    def columns(self, values: Sequence[Any]) -> dict[str, pa.Array]:
        return {"embedding": vectors_to_arrow(values)}

    def parse_error(self, response: HttpResponse) -> RequestError:
        return scrub_keys(super().parse_error(response))

    def fingerprint(self) -> dict[str, Any]:
        return {"endpoint": self.name, "url": self.url, **self.manifest_fields()}

    def manifest_fields(self) -> dict[str, Any]:
        return {"model": self.model, "dimensions": self.dimensions}

    def asked(self) -> dict[str, Any]:
        return {"model": self.model, "dimensions": self.dimensions}

    def answered_with(self, body: Any, values: Sequence[Any]) -> dict[str, Any]:
        return {**super().answered_with(body, values), **vector_size(values)}

    @property
    def tokenizer_model(self) -> str | None:
        return self.model

    def one_value(self, value: Any) -> np.ndarray:
        return np.asarray(value, dtype=np.float32)

    def packing(self) -> Packing:
        """OpenAI's limits on one embeddings request: 2,048 inputs, 300,000 tokens, and
        8,192 tokens per input (the input limit only at OpenAI itself: other servers
        serve other models)."""
        at_openai = urlsplit(self.url).hostname == "api.openai.com"
        return Packing(2048, 300_000, 8192 if at_openai else None)

    def to_cache(self, value: Any) -> bytes:
        return np.asarray(value, dtype="<f4").tobytes()

    def from_cache(self, data: bytes) -> np.ndarray:
        return np.frombuffer(data, dtype="<f4").astype(np.float32, copy=False)

    def finalize(self, table: pa.Table) -> pa.Table:
        return fixed_size_embeddings(table)


def _vector(raw: Any) -> np.ndarray:
    if isinstance(raw, str):
        try:
            data = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise ResponseFormatError("an embedding is not valid base64") from None
        if len(data) % 4:
            raise ResponseFormatError("a base64 embedding is not a whole number of float32s")
        return np.frombuffer(data, dtype="<f4").astype(np.float32, copy=False)
    if isinstance(raw, list) and raw:
        try:
            vector = np.asarray(raw, dtype=np.float32)
        except (TypeError, ValueError):
            raise ResponseFormatError("an embedding holds values that are not numbers") from None
        if vector.ndim == 1:
            return vector
        if vector.ndim == 2:
            raise ShapeError(
                "the server returned one vector per token (token embeddings), not one per "
                "text: start it with pooling (llama.cpp's server: --pooling mean) or use a "
                "sentence-embedding server"
            )
    raise ResponseFormatError("an embedding in the answer is missing, empty or not flat")
