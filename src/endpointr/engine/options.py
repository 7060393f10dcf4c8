"""How to run: one frozen, validated set of run options for every entry point.

Everything here changes how rows are sent, never the answers: concurrency, retries,
waits, limits, timeouts, output. A :class:`RunOptions` is checked once, when it is made
(:class:`~endpointr.errors.ConfigError` naming the option); change one with
:func:`dataclasses.replace`, which checks again.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field, fields
from pathlib import Path

from ..config import check_int, check_int_or_auto, check_seconds
from ..errors import ConfigError
from .flow import Flow
from .limits import ConcurrencyLimit, RateLimiter
from .retry import RetryPolicy
from .tokens import TokenCounter
from .transport import ssl_context

__all__ = ["AUTO_START", "RUN_OPTION_NAMES", "SHARED_FLOW", "Backoff", "RunOptions"]

AUTO_START = 8
# set by a worker that shares one budget with others (endpointr.ray): it turns the flow
# control a run starts with into one that takes the worker's share of the budget
SHARED_FLOW: ContextVar[Callable[[Flow], Flow] | None] = ContextVar("SHARED_FLOW", default=None)


@dataclass(frozen=True, slots=True)
class Backoff:
    """The waits between attempts, in seconds.

    Before attempt ``n + 1`` a request waits a random time in ``[base * 2**(n-1) / 2,
    base * 2**(n-1)]``, at most ``cap``. A server's ``Retry-After`` replaces that wait,
    plus up to ``retry_after_jitter`` of itself, and is capped at ``max_retry_after``.

    >>> Backoff(base=0.01, cap=0.05)  # fast retries, e.g. against a local server
    Backoff(base=0.01, cap=0.05, retry_after_jitter=0.1, max_retry_after=300.0)
    """

    base: float = 0.5
    cap: float = 30.0
    retry_after_jitter: float = 0.1
    max_retry_after: float = 300.0

    def __post_init__(self) -> None:
        for name in ("base", "cap", "max_retry_after"):
            check_seconds(getattr(self, name), f"backoff.{name}")
        jitter = self.retry_after_jitter
        if isinstance(jitter, bool) or not isinstance(jitter, int | float) or not 0 <= jitter <= 1:
            raise ConfigError(f"backoff.retry_after_jitter must be from 0 to 1, got {jitter!r}")


@dataclass(frozen=True, slots=True)
class RunOptions:
    """How to run one table, list or text through an endpoint.

    The defaults here are the fallbacks; each endpoint declares the ``batch_size``,
    ``timeout``, ``chunk_size`` and ``key_name`` it suits. ``help`` in each field's
    metadata is the command line's help text.
    """

    batch_size: int | str = field(
        default=8, metadata={"help": "rows per request, or 'auto' for the server's limit"}
    )
    concurrent_requests: int | str = field(
        default="auto",
        metadata={
            "help": "requests in flight at once: 'auto' (the default) follows what the server "
            "sustains, up to --max-concurrent-requests; a number is a ceiling that overload "
            "lowers for a while"
        },
    )
    max_concurrent_requests: int = field(
        default=100, metadata={"help": "the most requests in flight 'auto' may reach"}
    )
    max_retries: int = field(
        default=5,
        metadata={"help": "attempts per request, the first included (overload spends none)"},
    )
    overload_timeout: float = field(
        default=600.0,
        metadata={
            "help": "seconds a request may keep waiting on an overloaded server (429, 503, "
            "529) before its rows become error rows"
        },
    )
    down_timeout: float = field(
        default=60.0,
        metadata={
            "help": "seconds the server may refuse every connection before the run stops "
            "(what finished stays committed; the same call again resumes)"
        },
    )
    timeout: float = field(default=30.0, metadata={"help": "seconds per attempt"})
    chunk_size: int = field(default=5000, metadata={"help": "rows per output chunk file"})
    output_dir: str | Path | None = field(
        default="auto",
        metadata={
            "help": "directory for chunks and _metadata.json (default 'auto': "
            "endpointr-<endpoint>-<key> here, one per settings and input, so the same "
            "command again resumes)"
        },
    )
    progress: bool = field(default=True, metadata={"help": "a live progress bar"})
    key_name: str | None = field(
        default=None, metadata={"help": "environment variable holding the API key"}
    )
    overwrite: bool = field(
        default=False,
        metadata={"help": "delete results of an earlier run in --output-dir and start over"},
    )
    retry_failed: bool = field(
        default=False, metadata={"help": "resume, also re-sending rows that ended as errors"}
    )
    verify: bool = field(default=True, metadata={"help": "verify TLS certificates"})
    ca_bundle: str | None = field(
        default=None, metadata={"help": "extra CA certificates (PEM file)"}
    )
    requests_per_minute: float | None = field(
        default=None, metadata={"help": "the most requests to start per minute"}
    )
    tokens_per_minute: float | None = field(
        default=None,
        metadata={
            "help": "the most tokens to send per minute (counted before sending, corrected "
            "by the usage answers report)"
        },
    )
    backoff: Backoff | None = field(
        default=None, metadata={"help": "waits between attempts: BASE[,CAP] in seconds"}
    )
    dedupe: bool = field(
        default=True,
        metadata={
            "help": "send a text once: rows with the same text get a copy of its answer "
            "(and error), each under its own id"
        },
    )
    cache_dir: str | Path | None = field(
        default=None,
        metadata={
            "help": "a response cache (SQLite) shared by runs: texts answered before with "
            "the same settings are not sent again"
        },
    )

    def __post_init__(self) -> None:
        check_int_or_auto(self.batch_size, "batch_size")
        check_int_or_auto(self.concurrent_requests, "concurrent_requests")
        check_int(self.max_concurrent_requests, "max_concurrent_requests")
        check_int(self.max_retries, "max_retries", minimum=0)
        check_seconds(self.timeout, "timeout")
        check_seconds(self.overload_timeout, "overload_timeout")
        check_seconds(self.down_timeout, "down_timeout")
        check_int(self.chunk_size, "chunk_size")
        for name in ("requests_per_minute", "tokens_per_minute"):
            value = getattr(self, name)
            if value is not None:
                check_seconds(value, name)
        if self.output_dir is not None and not isinstance(self.output_dir, str | Path):
            raise ConfigError(
                f"output_dir must be a path, 'auto' or None, got {type(self.output_dir).__name__}"
            )
        if isinstance(self.key_name, str) and not self.key_name.strip():
            raise ConfigError(
                "key_name is empty: for a server that needs no key pass key_name=None "
                "(--no-key); otherwise name the environment variable that holds the key, "
                "e.g. key_name='HF_API_KEY'"
            )
        if self.key_name is not None and not isinstance(self.key_name, str):
            raise ConfigError(
                "key_name must be the name of an environment variable, e.g. 'HF_API_KEY', "
                f"or None for no key; got {type(self.key_name).__name__}"
            )
        if self.cache_dir is not None and not isinstance(self.cache_dir, str | Path):
            raise ConfigError(
                f"cache_dir must be a path or None, got {type(self.cache_dir).__name__}"
            )
        if not isinstance(self.dedupe, bool):
            raise ConfigError(f"dedupe must be True or False, got {self.dedupe!r}")
        if self.backoff is not None and not isinstance(self.backoff, Backoff):
            raise ConfigError(f"backoff must be an endpointr.Backoff, got {self.backoff!r}")
        ssl_context(self.verify, self.ca_bundle)  # a bad ca_bundle fails before any file is made

    @property
    def rows_per_request(self) -> int:
        """``batch_size`` once it is fitted to the server (``"auto"`` resolved)."""
        if not isinstance(self.batch_size, int):
            raise ConfigError("batch_size 'auto' was not resolved before the run")
        return self.batch_size

    def limit(self) -> ConcurrencyLimit:
        """The in-flight limit these options start a run with."""
        if self.concurrent_requests == "auto":
            start = min(AUTO_START, self.max_concurrent_requests)
            return ConcurrencyLimit(start, auto=True, maximum=self.max_concurrent_requests)
        return ConcurrencyLimit(int(self.concurrent_requests))

    def policy(self) -> RetryPolicy:
        """When and after how long to try a request again."""
        wait = self.backoff or Backoff()
        return RetryPolicy(
            max_attempts=max(1, self.max_retries),
            base=wait.base,
            cap=wait.cap,
            retry_after_jitter=wait.retry_after_jitter,
            max_retry_after=wait.max_retry_after,
            overload_timeout=self.overload_timeout,
        )

    def flow(self, now: float, tokenizer_model: str | None = None) -> Flow:
        """The flow control a run with these options starts with."""
        return Flow(
            self.limit(),
            self.policy(),
            self.rate_limiter(now),
            down_timeout=self.down_timeout,
            timeout=self.timeout,
            counter=TokenCounter(tokenizer_model),
        )

    def rate_limiter(self, now: float) -> RateLimiter | None:
        """The requests- and tokens-per-minute gate, or ``None`` when neither is set."""
        if not (self.requests_per_minute or self.tokens_per_minute):
            return None
        return RateLimiter(
            requests_per_minute=self.requests_per_minute,
            tokens_per_minute=self.tokens_per_minute,
            now=now,
        )


RUN_OPTION_NAMES = frozenset(f.name for f in fields(RunOptions))
