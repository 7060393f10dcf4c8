"""The fake server's settings, declared once for the constructor, ``configure`` and the CLI.

Each field of :class:`Settings` carries its default, a one-line help text and, where
it has a fixed set of values, its choices; :func:`add_setting_flags` makes one
command-line flag per field from them and :func:`settings_from_args` reads them back.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import Field, dataclass, field, fields, replace
from typing import Any, TypeVar, get_args, get_type_hints

__all__ = ["Settings", "add_setting_flags", "settings_from_args"]

_T = TypeVar("_T")


def _setting(default: _T, help: str, *, choices: tuple[str, ...] = ()) -> _T:
    return field(default=default, metadata={"help": help, "choices": choices})


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything :class:`~endpointr.testing.FakeServer` can be configured with.

    A field's ``help`` metadata says what it does (it is also its CLI flag's help);
    a value outside its ``choices`` metadata, or otherwise invalid, raises ``ValueError``.
    """

    latency: float = _setting(0.0, "seconds an admitted request waits before its answer")
    per_row_latency: float = _setting(0.0, "extra seconds of wait per input row")
    capacity: int | None = _setting(
        None, "requests in flight at most, beyond which 429 at once (default: no limit)"
    )
    retry_after: float = _setting(
        0.05, "Retry-After seconds of a 429 over capacity and of random '429' faults"
    )
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
        None, "requests per minute per provider family, beyond which 429 (default: no limit)"
    )
    shuffle_embeddings: bool = _setting(False, "answer OpenAI embeddings in reversed order")

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", tuple(str(label) for label in self.labels))
        if min(self.latency, self.per_row_latency, self.retry_after) < 0:
            raise ValueError("latency, per_row_latency and retry_after must be >= 0")
        if self.capacity is not None and self.capacity < 0:
            raise ValueError(f"capacity must be None or >= 0, got {self.capacity}")
        if self.rpm is not None and self.rpm < 1:
            raise ValueError(f"rpm must be None or >= 1, got {self.rpm}")
        if self.dim < 1 or self.max_client_batch_size < 1:
            raise ValueError("dim and max_client_batch_size must be >= 1")
        if not self.labels:
            raise ValueError("labels must not be empty")
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
    ``store_true`` flag, a tuple field a comma-separated list (parsed to a tuple).
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
        options["type"] = next(t for t in get_args(hint) or (hint,) if t is not type(None))
    return options


def _comma_separated(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(",") if item.strip())
