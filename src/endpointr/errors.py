"""The error tree of endpointr.

Every exception the library raises derives from :class:`EndpointrError`.
Whether a request error is worth another attempt is a class attribute
(``retryable``), never a match on message text.

    EndpointrError
    ├── ConfigError          bad arguments or settings (fix the call)
    ├── InputError           bad input data (fix the table or file)
    ├── MissingAPIKeyError   the environment variable holding the key is unset
    ├── RequestError         one request failed (becomes error rows, not raised)
    │   ├── TransportError       retryable: timeout, refused or reset connection
    │   │   ├── ConnectError         no connection at all: waits on the server, spends no attempt
    │   │   ├── AttemptTimeout       no answer within ``timeout``: a sign of congestion too
    │   │   └── CertificateError     final: the TLS certificate cannot be verified
    │   ├── RateLimitError       retryable: 429 / 529, may carry ``retry_after``
    │   ├── ServerError          retryable: 408, 500, 502, 503, 504
    │   ├── ResponseFormatError  retryable: a 2xx answer we cannot read
    │   │   └── ShapeError           final: a shape never readable (token embeddings)
    │   └── ClientError          final: any other 4xx
    ├── RunStoppedError      the run cannot go on; what finished is committed
    │   ├── EndpointDownError    the server refused connections past ``down_timeout``
    │   └── RefusedError         the server answers every request with the same error
    ├── ServerStartError     a server endpointr starts itself (the local model) did not come up
    ├── JobError             a provider Batch-API job failed
    ├── CheckpointError      an output directory cannot be resumed or written
    └── CacheError           a response cache that cannot be read or is not one
"""

from __future__ import annotations

__all__ = [
    "AttemptTimeout",
    "CacheError",
    "CertificateError",
    "CheckpointError",
    "ClientError",
    "ConfigError",
    "ConnectError",
    "EndpointDownError",
    "EndpointrError",
    "InputError",
    "JobError",
    "MissingAPIKeyError",
    "RateLimitError",
    "RefusedError",
    "RequestError",
    "ResponseFormatError",
    "RunStoppedError",
    "ServerError",
    "ServerStartError",
    "ShapeError",
    "TransportError",
]


class EndpointrError(Exception):
    """Base class of every error endpointr raises."""


class ConfigError(EndpointrError, ValueError):
    """An argument or setting is invalid; the message says which and how to fix it."""


class InputError(EndpointrError, ValueError):
    """The input table or file cannot be used as given."""


class MissingAPIKeyError(EndpointrError):
    """The environment variable that should hold an API key is not set."""

    def __init__(self, key_name: str) -> None:
        self.key_name = key_name
        super().__init__(
            f"API key not found: set the environment variable {key_name} "
            f"(e.g. export {key_name}=...), call endpointr.set_api_key({key_name!r}), "
            "or pass key_name=None for an endpoint that needs no key."
        )


class RequestError(EndpointrError):
    """One request failed. ``status`` is the HTTP status, ``None`` for network errors."""

    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, status={self.status!r})"


class TransportError(RequestError):
    """The request did not complete: timeout, refused, reset or dropped connection."""

    retryable = True


class ConnectError(TransportError):
    """No connection could be made (refused, no route): the server is down or restarting.

    The run holds new sends and tries again with backoff, spending no attempt, for up to
    ``down_timeout`` seconds.
    """


class AttemptTimeout(TransportError):
    """No answer within the attempt's ``timeout``. At a server that queues requests this
    is congestion: the run lowers its in-flight limit, as for a 429, and the attempt counts."""


class CertificateError(TransportError):
    """The server's TLS certificate could not be verified; retrying will not help."""

    retryable = False


class RateLimitError(RequestError):
    """The server asked us to slow down (429, or Anthropic's 529 overloaded)."""

    retryable = True


class ServerError(RequestError):
    """A transient server-side failure (408, 500, 502, 503, 504)."""

    retryable = True


class ClientError(RequestError):
    """The server refused the request as malformed or unauthorised; retrying will not help."""

    retryable = False


class ResponseFormatError(RequestError):
    """The server answered 2xx, but the body is not what the endpoint promises.

    Retryable: a truncated body, an HTML page from a proxy or a short list of
    vectors is usually a passing fault; a server that always answers so ends in
    error rows after ``max_retries`` attempts.
    """

    retryable = True


class ShapeError(ResponseFormatError):
    """A 2xx answer of a shape the endpoint can never read, whatever the rows (token
    embeddings where one vector per text was asked): not retried, and when the first
    requests all get it the run stops with its message."""

    retryable = False


class RunStoppedError(EndpointrError):
    """The run stopped before every row was sent; what finished is committed and the same
    call again resumes it once the cause is fixed."""


class EndpointDownError(RunStoppedError):
    """The server refused every connection for longer than ``down_timeout``; the run stopped
    after committing what finished, and the same call again resumes it."""


class RefusedError(RunStoppedError):
    """The first requests of a run were all answered with the same error (a route, model,
    ``dimensions`` or encoding the server does not take): a setting to fix, not the rows.
    The run stops instead of failing every row one attempt at a time."""


class ServerStartError(EndpointrError):
    """A server endpointr starts for a run (the local model server) exited or did not
    answer within its start-up time; the message holds the last lines it printed."""


class JobError(EndpointrError):
    """A provider Batch-API job failed or expired."""


class CheckpointError(EndpointrError):
    """An output directory is not usable for this run (different settings, unreadable files)."""


class CacheError(EndpointrError):
    """A response cache (``cache_dir``) is corrupt, foreign or cannot be used."""
