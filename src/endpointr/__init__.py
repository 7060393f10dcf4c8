"""endpointr: push the rows of a table through ML inference endpoints, fast, losing none."""

from ._version import __version__
from .api.hf import (
    ahf_embed_batch,
    ahf_embed_df,
    ahf_embed_text,
    hf_embed_batch,
    hf_embed_df,
    hf_embed_text,
)
from .config import get_api_key, set_api_key
from .errors import (
    CheckpointError,
    ClientError,
    ConfigError,
    EndpointrError,
    InputError,
    JobError,
    MissingAPIKeyError,
    RateLimitError,
    RequestError,
    ResponseFormatError,
    ServerError,
    TransportError,
)

__all__ = [
    "CheckpointError",
    "ClientError",
    "ConfigError",
    "EndpointrError",
    "InputError",
    "JobError",
    "MissingAPIKeyError",
    "RateLimitError",
    "RequestError",
    "ResponseFormatError",
    "ServerError",
    "TransportError",
    "__version__",
    "ahf_embed_batch",
    "ahf_embed_df",
    "ahf_embed_text",
    "get_api_key",
    "hf_embed_batch",
    "hf_embed_df",
    "hf_embed_text",
    "set_api_key",
]
