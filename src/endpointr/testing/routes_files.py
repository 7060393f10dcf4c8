"""OpenAI Files routes: ``POST /v1/files`` (multipart ``file`` and ``purpose``),
``GET /v1/files`` (``purpose``, ``order``, ``after``, ``limit``), ``GET /v1/files/{file_id}``,
``GET /v1/files/{file_id}/content`` and ``DELETE /v1/files/{file_id}``.

Files live in memory until deleted or the server is reset; a batch's output and error
files appear here (purpose ``batch_output``) once it ends. A ``batch`` file must be named
``*.jsonl``; its lines are checked only when a batch is created from it.
"""

from __future__ import annotations

import time

from aiohttp import web

from .batch_http import Refusal, guarded, json_answer, page, query_int
from .batches import StoredFile
from .providers import OPENAI
from .state import ServerState

__all__ = ["FILE_PURPOSES", "file_routes", "stored_file"]

FILE_PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
_MAX_LIST = 10_000


def stored_file(state: ServerState, file_id: str) -> StoredFile:
    """The stored file ``file_id``; :class:`Refusal` 404 if there is none."""
    stored = state.batches.file(file_id)
    if stored is None:
        raise Refusal(404, f"No such File object: {file_id}")
    return stored


async def _upload(request: web.Request, state: ServerState, now: float) -> web.StreamResponse:
    if not request.content_type.startswith("multipart/"):
        raise Refusal(400, "Uploads must be multipart/form-data with 'file' and 'purpose'.")
    form = await request.post()
    upload, purpose = form.get("file"), form.get("purpose")
    if not isinstance(upload, web.FileField):
        raise Refusal(400, "Missing required parameter: 'file'.")
    if not isinstance(purpose, str):
        raise Refusal(400, "Missing required parameter: 'purpose'.")
    if purpose not in FILE_PURPOSES:
        raise Refusal(400, f"'{purpose}' is not one of {list(FILE_PURPOSES)} - 'purpose'")
    filename = upload.filename or "upload"
    if purpose == "batch" and not filename.endswith(".jsonl"):
        raise Refusal(400, "Invalid file format for Batch API. Must be .jsonl")
    content = upload.file.read()
    stored = state.batches.add_file(filename, purpose, content, int(time.time()))
    state.batches.note("files_uploaded")
    state.batches.note("bytes_uploaded", len(content))
    return json_answer(stored.to_json(), OPENAI)


async def _list(request: web.Request, state: ServerState, now: float) -> web.StreamResponse:
    limit = query_int(request, "limit", _MAX_LIST, 1, _MAX_LIST)
    order = request.query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise Refusal(400, f"Invalid 'order': '{order}'. Expected 'asc' or 'desc'.")
    purpose = request.query.get("purpose")
    files = [f for f in state.batches.files() if purpose is None or f.purpose == purpose]
    if order == "desc":
        files.reverse()
    chunk, more = page(files, [f.id for f in files], limit, after=request.query.get("after"))
    body = {
        "object": "list",
        "data": [f.to_json() for f in chunk],
        "first_id": chunk[0].id if chunk else None,
        "last_id": chunk[-1].id if chunk else None,
        "has_more": more,
    }
    return json_answer(body, OPENAI)


async def _retrieve(request: web.Request, state: ServerState, now: float) -> web.StreamResponse:
    return json_answer(stored_file(state, request.match_info["file_id"]).to_json(), OPENAI)


async def _content(request: web.Request, state: ServerState, now: float) -> web.StreamResponse:
    stored = stored_file(state, request.match_info["file_id"])
    return web.Response(body=stored.content, content_type="application/octet-stream")


async def _delete(request: web.Request, state: ServerState, now: float) -> web.StreamResponse:
    file_id = request.match_info["file_id"]
    if not state.batches.delete_file(file_id):
        raise Refusal(404, f"No such File object: {file_id}")
    state.batches.note("files_deleted")
    return json_answer({"id": file_id, "object": "file", "deleted": True}, OPENAI)


def file_routes(state: ServerState) -> list[web.RouteDef]:
    """The OpenAI Files routes over ``state``'s store."""
    return [
        web.post("/v1/files", guarded(state, OPENAI, _upload)),
        web.get("/v1/files", guarded(state, OPENAI, _list)),
        web.get("/v1/files/{file_id}", guarded(state, OPENAI, _retrieve)),
        web.get("/v1/files/{file_id}/content", guarded(state, OPENAI, _content)),
        web.delete("/v1/files/{file_id}", guarded(state, OPENAI, _delete)),
    ]
