"""What the chat functions of every provider share: one answer, and column-name checks."""

from __future__ import annotations

from typing import Any

from ..errors import ClientError, ResponseFormatError
from ..providers.anthropic import AnthropicMessages
from ..providers.llm import check_field_names
from ..providers.openai import OpenAIChat
from ..schema import parse_model
from ._common import run_one
from ._job import JobSettings

__all__ = ["ChatEndpoint", "check_columns", "complete_one"]

ChatEndpoint = OpenAIChat | AnthropicMessages


async def complete_one(
    text: str, endpoint: ChatEndpoint, settings: JobSettings, schema: Any
) -> Any:
    """The answer to ``text``: the content, the validated JSON value, or a model instance
    when ``schema`` is a pydantic model class.

    A refused, empty or schema-breaking answer raises :class:`ResponseFormatError`; a
    failed request raises the :class:`~endpointr.errors.RequestError` it stands for.
    """
    try:
        row = await run_one(text, endpoint, settings)
    except ClientError as exc:
        if exc.status is not None and 200 <= exc.status < 300:
            raise ResponseFormatError(exc.message, status=exc.status) from None
        raise
    if endpoint.schema is None:
        return row["content"]
    value = endpoint.schema.validate(row["content"]).value
    return parse_model(schema, value) if isinstance(schema, type) else value


def check_columns(endpoint: ChatEndpoint, *taken: str) -> None:
    """Raise :class:`ConfigError` for a schema field named like the id or text column."""
    check_field_names(endpoint.fields.names, taken)
