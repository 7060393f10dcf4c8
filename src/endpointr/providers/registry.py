"""The registry of endpoints: every endpoint class, by name.

The public functions, the command line and the test tables are derived from these
classes: each declares its defaults (:class:`~endpointr.providers.base.Defaults`), its
own keywords (the signature of ``create``, with ``option_help``) and the CLI command
that runs it. A new endpoint is one provider module and one line here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError
from .anthropic import AnthropicMessages
from .base import Endpoint
from .hf import HFEmbed
from .hf_classify import HFClassify
from .local import LocalEmbed
from .openai import OpenAIChat, OpenAIEmbed

__all__ = ["ENDPOINTS", "endpoint_class", "for_command", "serving_endpoint"]

ENDPOINTS: dict[str, type[Endpoint]] = {
    cls.name: cls
    for cls in (
        HFEmbed,
        HFClassify,
        LocalEmbed,
        OpenAIEmbed,
        OpenAIChat,
        AnthropicMessages,
    )
}


def endpoint_class(name: str) -> type[Endpoint]:
    """The endpoint class registered as ``name`` (e.g. ``"hf.embed"``)."""
    try:
        return ENDPOINTS[name]
    except (KeyError, TypeError):
        known = ", ".join(sorted(ENDPOINTS))
        raise ConfigError(f"unknown endpoint {name!r}; known endpoints: {known}") from None


def for_command(command: str) -> dict[str, type[Endpoint]]:
    """The endpoints a CLI command runs, by provider, the first one the default."""
    return {cls.name.split(".", 1)[0]: cls for cls in ENDPOINTS.values() if cls.command == command}


def serving_endpoint(cls: type[Endpoint], call: Mapping[str, Any]) -> type[Endpoint]:
    """The endpoint that serves a call to ``cls`` with the keywords ``call``: ``cls``, or
    a registered endpoint that stands in for it (``hf.embed`` with ``endpoint_url="local"``
    is run by ``local.embed``)."""
    for other in ENDPOINTS.values():
        if other is not cls and other.stands_in_for(cls.name, call):
            return other
    return cls
