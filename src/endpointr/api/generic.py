"""Any registered endpoint by name: the runner behind the named ``*_df`` functions.

For an endpoint without functions of its own, or to choose the endpoint at run time::

    run_df("openai.embed", df, text_var="text", id_var="id", model="m", base_url=url)

The keywords are the endpoint's own (see ``endpointr.ENDPOINTS[name].option_help``) and
the run options of :class:`~endpointr.RunOptions`; an unknown keyword is a
:class:`~endpointr.errors.ConfigError` before any request.
"""

from __future__ import annotations

from typing import Any

from ..engine.calls import run_whole
from ..engine.sync import synced
from ..providers.registry import endpoint_class

__all__ = ["arun_df", "run_df"]


async def arun_df(endpoint: str, df: Any, *, text_var: str, id_var: str, **keywords: Any) -> Any:
    """Every row of a table through the endpoint registered as ``endpoint``; the same frame
    type back, one row per input row, as the named ``*_df`` functions give."""
    return await run_whole(endpoint_class(endpoint), df, text_var, id_var, keywords)


run_df = synced(arun_df)
