"""API keys, argument checks and redaction: the settings every entry point shares."""

from __future__ import annotations

import getpass
import math
import os
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson

from .errors import ConfigError, MissingAPIKeyError

__all__ = [
    "check_url",
    "get_api_key",
    "redact_url",
    "resolve_key",
    "set_api_key",
]

_SECRET_QUERY = re.compile(r"(key|token|secret|sig|signature|password|auth|credential)", re.I)


def get_api_key(name: str) -> str:
    """Return the API key held in the environment variable ``name``.

    Raises :class:`MissingAPIKeyError` (naming the variable to set) when it is unset or empty.

    >>> os.environ["DEMO_KEY"] = "abc"; get_api_key("DEMO_KEY")
    'abc'
    """
    if not isinstance(name, str) or not name:
        raise ConfigError("key_name must be the name of an environment variable, e.g. 'HF_API_KEY'")
    value = os.environ.get(name, "")
    if not value.strip():
        raise MissingAPIKeyError(name)
    return value.strip()


def set_api_key(name: str, value: str | None = None) -> None:
    """Store an API key in the environment variable ``name`` for this process.

    Without ``value`` it is asked for on the terminal without echo. The key is never
    printed; to keep it across sessions put it in your shell profile or a ``.env`` file.
    """
    if not isinstance(name, str) or not name:
        raise ConfigError("name must be the name of an environment variable, e.g. 'HF_API_KEY'")
    if value is None:
        value = getpass.getpass(f"Enter the API key for {name}: ")
    if not value or not value.strip():
        raise ConfigError(f"No key given for {name}; nothing was stored.")
    os.environ[name] = value.strip()


def resolve_key(key_name: str | None) -> str | None:
    """The key for ``key_name``, or ``None`` when ``key_name`` is ``None`` (no auth header)."""
    return None if key_name is None else get_api_key(key_name)


def redact_url(url: str) -> str:
    """``url`` with user info and secret-looking query values replaced by ``***``.

    >>> redact_url("https://u:p@host/x?api_key=s&a=1")
    'https://***@host/x?api_key=***&a=1'
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode(
            [(k, "***" if _SECRET_QUERY.search(k) else v) for k, v in pairs], safe="*"
        )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def check_url(url: Any, name: str = "endpoint_url") -> str:
    """Return ``url`` if it is an absolute http(s) URL, else raise :class:`ConfigError`."""
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(f"{name} must be an http(s) URL string, got {type(url).__name__}")
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(
            f"{name} must start with http:// or https:// and name a host, got {redact_url(url)!r}"
        )
    return url.strip()


def check_int(value: Any, name: str, *, minimum: int = 1) -> int:
    """``value`` as an int >= ``minimum``, else a :class:`ConfigError` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    return value


def check_int_or_auto(value: Any, name: str) -> int | str:
    """``value`` if it is ``"auto"`` or an integer >= 1, else a :class:`ConfigError`."""
    if value == "auto":
        return "auto"
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be an integer >= 1 or 'auto', got {value!r}")
    return check_int(value, name)


def check_seconds(value: Any, name: str) -> float:
    """``value`` as a positive, finite number of seconds, else a :class:`ConfigError`."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
        raise ConfigError(f"{name} must be a positive number of seconds, got {value!r}")
    return float(value)


def check_mapping(value: Any, name: str) -> dict[str, Any]:
    """``value`` as a dict (``None`` -> empty) that JSON can carry, else a :class:`ConfigError`."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{name} must be a dict, got {type(value).__name__}")
    try:
        orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY)
    except orjson.JSONEncodeError as exc:
        raise ConfigError(
            f"{name} must hold only JSON values (it goes in the request): {exc}"
        ) from None
    return dict(value)
