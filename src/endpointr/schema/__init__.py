"""JSON schemas for structured outputs: build them, send them, check each answer against them.

A schema is a plain ``dict`` while it is built (``schema_object(...)`` and friends) and a
:class:`JsonSchema` once it is named and checked (``create_json_schema`` or the catch-all
:func:`as_json_schema`). A ``JsonSchema`` renders OpenAI's ``response_format`` and
Anthropic's ``output_config`` and validates answers with a compiled, cached validator.

>>> js = create_json_schema("review", schema_object(sentiment=schema_enum(["pos", "neg"])))
>>> validate_response(js, '{"sentiment": "pos"}')
ValidationResult(ok=True, value={'sentiment': 'pos'}, error=None)
"""

from __future__ import annotations

from .builders import (
    schema_array,
    schema_boolean,
    schema_enum,
    schema_integer,
    schema_number,
    schema_object,
    schema_string,
)
from .core import (
    JsonSchema,
    ValidationResult,
    as_json_schema,
    check_strict,
    create_json_schema,
    flatten_fields,
    json_dump,
    make_validator,
    parse_model,
    validate_response,
)

__all__ = [
    "JsonSchema",
    "ValidationResult",
    "as_json_schema",
    "check_strict",
    "create_json_schema",
    "flatten_fields",
    "json_dump",
    "make_validator",
    "parse_model",
    "schema_array",
    "schema_boolean",
    "schema_enum",
    "schema_integer",
    "schema_number",
    "schema_object",
    "schema_string",
    "validate_response",
]
