"""Hugging Face Inference Endpoints and Text-Embeddings-Inference (TEI) routes.

``POST /`` (feature extraction; TEI's predict when ``model_type="classifier"``),
``POST /embed`` and ``POST /predict`` (TEI; a batch is ``[[text], ...]``) and
``POST /classify`` (text classification) answer from :mod:`.answers`; ``GET /info``
describes the fake model as TEI does. ``GET /{org}/{model}/resolve/main/tokenizer_config.json``
answers as the Hub does, with ``model_max_length`` = ``max_input_length``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .answers import count_tokens, fake_embedding, ranked_labels
from .providers import HF
from .routing import AnswerContext, BadRequest, Parsed, Route, dumps, parse_with
from .state import Settings

__all__ = ["HF_ROUTES", "info"]

_MISSING_INPUTS = "Failed to deserialize the JSON body into the target type: missing field `inputs`"
_BAD_INPUTS = "`inputs` must be a string or a non-empty list of strings"


@dataclass(frozen=True, slots=True)
class _Inputs:
    texts: list[str]
    single: bool
    body: Mapping[str, Any]


def _read_inputs(data: Any, settings: Settings, *, batch_limit: bool) -> Parsed:
    if not isinstance(data, dict) or "inputs" not in data:
        raise BadRequest(422, _MISSING_INPUTS)
    inputs = data["inputs"]
    single = isinstance(inputs, str)
    texts = [inputs] if single else inputs
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise BadRequest(422, _BAD_INPUTS)
    if any(not t for t in texts):
        raise BadRequest(422, "`inputs` cannot be empty", tuple(texts))
    limit = settings.max_client_batch_size
    if batch_limit and len(texts) > limit:
        message = f"batch size {len(texts)} > maximum allowed batch size {limit}"
        raise BadRequest(413, message, tuple(texts))
    tokens = sum(map(count_tokens, texts))
    return Parsed(tuple(texts), len(texts), _Inputs(texts, single, data), tokens=tokens)


@parse_with
def _parse_tei(data: Any, headers: Mapping[str, str], settings: Settings) -> Parsed:
    return _read_inputs(data, settings, batch_limit=True)


@parse_with
def _parse_classify(data: Any, headers: Mapping[str, str], settings: Settings) -> Parsed:
    return _read_inputs(data, settings, batch_limit=False)


def _tei_batch(inputs: Any) -> bool:
    return (
        isinstance(inputs, list)
        and bool(inputs)
        and all(isinstance(item, list) and len(item) == 1 for item in inputs)
    )


def _read_predict(data: Any, settings: Settings) -> Parsed:
    """TEI's ``PredictInput``: a string, or a batch ``[[text], ...]`` (pairs are not faked)."""
    if isinstance(data, dict) and _tei_batch(data.get("inputs")):
        data = {**data, "inputs": [item[0] for item in data["inputs"]]}
    return _read_inputs(data, settings, batch_limit=True)


@parse_with
def _parse_predict(data: Any, headers: Mapping[str, str], settings: Settings) -> Parsed:
    return _read_predict(data, settings)


@parse_with
def _parse_root(data: Any, headers: Mapping[str, str], settings: Settings) -> Parsed:
    if settings.model_type == "classifier":
        return _read_predict(data, settings)
    return _read_inputs(data, settings, batch_limit=True)


@parse_with
def _parse_tokenizer_config(data: Any, headers: Mapping[str, str], settings: Settings) -> Parsed:
    return Parsed()


def _answer_tokenizer_config(parsed: Parsed, ctx: AnswerContext) -> bytes:
    return dumps({"model_max_length": ctx.settings.max_input_length, "do_lower_case": True})


def _vectors(parsed: Parsed, ctx: AnswerContext) -> list[Any]:
    dim = ctx.settings.dim
    vectors = [fake_embedding(text, dim) for text in parsed.payload.texts]
    return vectors[:-1] if ctx.wrong_count else vectors


def _answer_root(parsed: Parsed, ctx: AnswerContext) -> bytes:
    vectors = _vectors(parsed, ctx)
    if parsed.payload.single:
        return dumps(vectors[0] if vectors else [])
    return dumps(vectors)


def _answer_root_model(parsed: Parsed, ctx: AnswerContext) -> bytes:
    if ctx.settings.model_type == "classifier":
        return _answer_predict(parsed, ctx)
    return _answer_root(parsed, ctx)


def _answer_embed(parsed: Parsed, ctx: AnswerContext) -> bytes:
    return dumps(_vectors(parsed, ctx))


def _top_k(body: Mapping[str, Any]) -> int | None:
    parameters = body.get("parameters")
    top_k = parameters.get("top_k") if isinstance(parameters, dict) else None
    return top_k if isinstance(top_k, int) and top_k > 0 else None


def _answer_classify(parsed: Parsed, ctx: AnswerContext) -> bytes:
    inputs: _Inputs = parsed.payload
    labels = ctx.settings.labels
    top_k = _top_k(inputs.body)
    ranked = [
        [{"label": label, "score": score} for label, score in ranked_labels(text, labels)]
        for text in inputs.texts
    ]
    if ctx.wrong_count:
        ranked = ranked[:-1]
    if top_k is not None:
        ranked = [per_text[:top_k] for per_text in ranked]
    if inputs.single:
        return dumps(ranked[0] if ranked else [])
    if ctx.settings.classify_shape == "top1":
        return dumps([per_text[0] for per_text in ranked])
    return dumps(ranked)


def _answer_predict(parsed: Parsed, ctx: AnswerContext) -> bytes:
    inputs: _Inputs = parsed.payload
    raw = bool(inputs.body.get("raw_scores"))
    labels = ctx.settings.labels
    ranked = [
        [{"score": score, "label": label} for label, score in ranked_labels(text, labels, raw=raw)]
        for text in inputs.texts
    ]
    if ctx.wrong_count:
        ranked = ranked[:-1]
    if inputs.single:
        return dumps(ranked[0] if ranked else [])
    return dumps(ranked)


def info(settings: Settings) -> dict[str, Any]:
    """The ``GET /info`` object of TEI, describing the fake model."""
    model_type: dict[str, Any]
    if settings.model_type == "classifier":
        id2label = {str(i): label for i, label in enumerate(settings.labels)}
        label2id = {label: i for i, label in enumerate(settings.labels)}
        model_type = {"classifier": {"id2label": id2label, "label2id": label2id}}
    else:
        model_type = {"embedding": {"pooling": "mean"}}
    return {
        "model_id": settings.model_id,
        "model_sha": None,
        "model_dtype": "float32",
        "model_type": model_type,
        "max_concurrent_requests": 512,
        "max_input_length": settings.max_input_length,
        "max_batch_tokens": settings.max_batch_tokens,
        "max_batch_requests": None,
        "max_client_batch_size": settings.max_client_batch_size,
        "auto_truncate": True,
        "tokenization_workers": 1,
        "version": "1.8.0",
    }


HF_ROUTES = (
    Route("POST", "/", HF, _parse_root, _answer_root_model),
    Route("POST", "/embed", HF, _parse_tei, _answer_embed),
    Route("POST", "/predict", HF, _parse_predict, _answer_predict),
    Route("POST", "/classify", HF, _parse_classify, _answer_classify),
    Route(
        "GET",
        "/{org}/{model}/resolve/main/tokenizer_config.json",
        HF,
        _parse_tokenizer_config,
        _answer_tokenizer_config,
    ),
)
