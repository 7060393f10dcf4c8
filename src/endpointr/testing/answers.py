"""Deterministic answers: embedding vectors, classification scores, token counts.

Every value here is a pure function of the input text (and the settings passed), stable
across processes and machines, so a test can recompute what the fake server sent.
"""

from __future__ import annotations

import hashlib
import math
from functools import lru_cache

import numpy as np

__all__ = [
    "count_tokens",
    "fake_embedding",
    "fake_logits",
    "fake_scores",
    "ranked_labels",
    "text_seed",
    "truncated_embedding",
]

_CACHE_SIZE = 100_000


def text_seed(text: str, salt: str = "") -> int:
    """A 64-bit seed from a stable hash (blake2b) of ``salt`` and ``text``."""
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8, person=_person(salt))
    return int.from_bytes(digest.digest(), "little")


def _person(salt: str) -> bytes:
    return salt.encode("utf-8")[:16]


def count_tokens(text: str) -> int:
    """The fake tokenizer: the number of whitespace-separated words in ``text``."""
    return len(text.split())


def fake_embedding(text: str, dim: int = 384) -> np.ndarray:
    """The unit-length float32 vector of ``dim`` values the server answers for ``text``.

    Seeded by a blake2b hash of the text, so the same text gives the same vector in any
    process. The returned array is cached and read-only; copy it before changing it.
    """
    return _embedding(text, dim)


@lru_cache(maxsize=_CACHE_SIZE)
def _embedding(text: str, dim: int) -> np.ndarray:
    rng = np.random.default_rng(text_seed(text, "embed"))
    vector = rng.standard_normal(dim, dtype=np.float32)
    vector /= np.linalg.norm(vector)
    vector.setflags(write=False)
    return vector


def truncated_embedding(text: str, dim: int, dimensions: int) -> np.ndarray:
    """The first ``dimensions`` values of the ``dim`` vector, renormalised to unit length."""
    head = fake_embedding(text, dim)[:dimensions]
    return (head / np.linalg.norm(head)).astype(np.float32)


def fake_logits(text: str, n_labels: int) -> tuple[float, ...]:
    """Raw scores in [-4, 4) for ``n_labels`` labels, from a blake2b hash of the text."""
    return _logits(text, n_labels)


@lru_cache(maxsize=_CACHE_SIZE)
def _logits(text: str, n_labels: int) -> tuple[float, ...]:
    digest = hashlib.blake2b(text.encode("utf-8"), person=b"classify").digest()
    while len(digest) < 2 * n_labels:
        digest += hashlib.blake2b(digest).digest()
    return tuple(
        int.from_bytes(digest[2 * i : 2 * i + 2], "little") / 8192.0 - 4.0 for i in range(n_labels)
    )


def fake_scores(text: str, n_labels: int) -> tuple[float, ...]:
    """Softmax of :func:`fake_logits`: one probability per label, summing to 1."""
    logits = fake_logits(text, n_labels)
    top = max(logits)
    exps = [math.exp(x - top) for x in logits]
    total = sum(exps)
    return tuple(e / total for e in exps)


def ranked_labels(
    text: str, labels: tuple[str, ...], *, raw: bool = False
) -> list[tuple[str, float]]:
    """``(label, score)`` pairs for ``text``, highest score first (ties: label order).

    ``raw=True`` ranks the logits instead of the probabilities.
    """
    values = fake_logits(text, len(labels)) if raw else fake_scores(text, len(labels))
    order = sorted(range(len(labels)), key=lambda i: (-values[i], i))
    return [(labels[i], values[i]) for i in order]
