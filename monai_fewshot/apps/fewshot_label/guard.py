"""What the server takes from a client, checked before monailabel's own endpoints act on it.

monailabel's upload endpoints (``POST /infer/{model}``, ``PUT /datastore/label``, ``PUT /datastore/image``) write
every upload to a temporary file before anything is checked, remove it only after a successful response, parse
``params`` with ``json.loads`` (a 500 for bad JSON), and build datastore paths from the client's image id and
tag. :func:`guard_endpoints` wraps those endpoints, in the running server, so that:

- a body without ``Content-Length`` (411) or larger than its limit (413) is refused unread;
- ``params`` must be a JSON object (400), and may not set what the endpoint sets (an image or label path:
  images are named by datastore id, and an image file upload is refused);
- an image id or a label tag must be a plain name (letters, digits, ``_ . -``; no ``..``), and a label is saved
  only for an image of the datastore (400 / 404);
- the upload's temporary file is removed when the request fails (:func:`remove_upload`).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from fastapi import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

__all__ = ["APP_SET_KEYS", "IMAGE_UPLOAD_LIMIT", "INFER_SERVER_KEYS", "LABEL_UPLOAD_LIMIT", "contain_datastore", "check_name", "guard_endpoints", "is_upload", "remove_upload"]

LABEL_UPLOAD_LIMIT = 64 * 2**20  # bytes: a painted label map, compressed (a CHAOS one is about 20 kB)
IMAGE_UPLOAD_LIMIT = 256 * 2**20  # bytes: an image added to the datastore (read into memory to check params)
APP_SET_KEYS = ("support_image_path", "support_label_path")  # request keys only the app sets (support_image)
INFER_SERVER_KEYS = ("image", "label", "file", *APP_SET_KEYS)  # not a client's to set
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_UPLOAD = re.compile(r"tmp[\w]{8}(\.[A-Za-z0-9]+)*")  # monailabel's NamedTemporaryFile for an upload

ASGIApp = Callable[[dict, Callable, Callable], Awaitable[None]]


def is_upload(path: Any) -> bool:
    """Whether ``path`` is a file the server wrote for this request's upload (a temporary file of its own)."""
    if not isinstance(path, str):
        return False
    candidate = Path(path)
    return candidate.parent == Path(tempfile.gettempdir()) and bool(_UPLOAD.fullmatch(candidate.name))


def remove_upload(*paths: Any) -> None:
    """Delete the request's upload files among ``paths`` (others are left alone)."""
    for path in paths:
        if is_upload(path):
            Path(path).unlink(missing_ok=True)


def check_name(name: Any, what: str) -> str:
    """``name`` if it is a plain file name part, else HTTP 400 naming ``what``."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or ".." in name:
        raise HTTPException(
            status_code=400, detail=f"{what} {name!r} must be a plain name (letters, digits, '_', '.', '-'; no '..')."
        )
    return name


def _refusal(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


def _replay(body: bytes) -> Callable[[], Awaitable[dict]]:
    """An ASGI ``receive`` that hands ``body`` over once."""
    sent = False

    async def receive() -> dict:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


async def _read(receive: Callable) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


def _guard(
    endpoint: ASGIApp,
    limit: int,
    query_check: Callable[[dict], None] | None,
    read_params: bool,
    server_keys: tuple[str, ...] = (),
) -> ASGIApp:
    """``endpoint`` behind the size limit, the query check and (``read_params``) the params check; a form
    field or params key in ``server_keys`` (what the endpoint itself sets) is refused."""

    async def guarded(scope: dict, receive: Callable, send: Callable) -> None:
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is None or not length.strip().isdigit():
            return await _refusal(411, "uploads need a Content-Length header.")(scope, receive, send)
        if int(length) > limit:
            detail = f"the upload has {int(length)} bytes, more than this endpoint takes ({limit})."
            return await _refusal(413, detail)(scope, receive, send)
        try:
            if query_check is not None:
                query_check({key: values[-1] for key, values in parse_qs(scope.get("query_string", b"").decode()).items()})
        except HTTPException as error:
            return await _refusal(error.status_code, str(error.detail))(scope, receive, send)
        if read_params:
            body = await _read(receive)  # at most `limit` bytes: the server delivers Content-Length bytes
            try:
                form = await Request(scope, _replay(body)).form(max_files=4, max_fields=16)
            except Exception as error:  # noqa: BLE001 - any parser failure is a malformed body
                return await _refusal(400, f"malformed multipart body: {error}")(scope, receive, send)
            params, fields = form.get("params"), set(form.keys())
            await form.close()
            try:
                parsed = json.loads(params) if isinstance(params, str) and params.strip() else {}
            except json.JSONDecodeError as error:
                return await _refusal(400, f"params must be a JSON object: {error}")(scope, receive, send)
            if not isinstance(parsed, dict) or (params is not None and not isinstance(params, str)):
                return await _refusal(400, f"params must be a JSON object, got {type(parsed).__name__}.")(scope, receive, send)
            refused = sorted(set(parsed) & set(server_keys)) + sorted(fields & {"file"} & set(server_keys))
            if refused:
                detail = f"{refused[0]} is set by the server (name images by datastore id; send the label as the upload)."
                return await _refusal(400, detail)(scope, receive, send)
            receive = _replay(body)
        await endpoint(scope, receive, send)

    return guarded


def guard_endpoints(app: Any, datastore: Callable[[], Any], prefix: str = "") -> None:
    """Put the checks above in front of monailabel's FastAPI ``app`` (in place; once), as the outermost layer
    of its middleware stack, so that they hold whatever routes the installed FastAPI builds.

    Args:
        app: ``monailabel.app.app`` (started: its middleware stack is built at the first call, the lifespan).
        datastore: returns the app's datastore (to check that a label is saved for a known image).
        prefix: monailabel's ``MONAI_LABEL_API_STR`` in front of every path.
    """

    def known_image(query: dict) -> None:
        image = check_name(query.get("image"), "image")
        if not datastore().get_image_uri(image):
            raise HTTPException(status_code=404, detail=f"image {image!r} is not in the datastore.")
        check_name(query.get("tag") or "final", "tag")

    def new_image(query: dict) -> None:
        if query.get("image"):
            check_name(query["image"], "image")

    if getattr(app.middleware_stack, "_fewshot_guarded", False):
        return
    inner = app.middleware_stack or app.build_middleware_stack()
    routes = [
        ("POST", re.compile(re.escape(prefix) + r"/infer/[^/]+/?"), (LABEL_UPLOAD_LIMIT, None, True, INFER_SERVER_KEYS)),
        ("PUT", re.compile(re.escape(prefix) + r"/datastore/label/?"), (LABEL_UPLOAD_LIMIT, known_image, True)),
        ("PUT", re.compile(re.escape(prefix) + r"/datastore(/image)?/?"), (IMAGE_UPLOAD_LIMIT, new_image, True)),
    ]
    guarded = [(method, path, _guard(inner, *checks)) for method, path, checks in routes]

    async def guarded_stack(scope: dict, receive: Callable, send: Callable) -> None:
        if scope.get("type") == "http":
            for method, path, handler in guarded:
                if scope.get("method") == method and path.fullmatch(scope.get("path", "")):
                    return await handler(scope, receive, send)
        await inner(scope, receive, send)

    guarded_stack._fewshot_guarded = True
    app.middleware_stack = guarded_stack


def contain_datastore(store: Any) -> Any:
    """Make ``store``'s ``add_image`` and ``save_label`` refuse ids and tags that are not plain names (any
    caller, not only the guarded endpoints) and remove the refused upload."""
    add_image, save_label = store.add_image, store.save_label

    def checked_add_image(image_id: str, image_filename: str, image_info: dict | None = None) -> str:
        try:
            check_name(image_id or os.path.basename(image_filename).split(".")[0], "image")
        except HTTPException:
            remove_upload(image_filename)
            raise
        return add_image(image_id, image_filename, image_info or {})

    def checked_save_label(image_id: str, label_filename: str, label_tag: str, label_info: dict | None = None) -> str:
        try:
            check_name(image_id, "image")
            check_name(label_tag, "tag")
        except HTTPException:
            remove_upload(label_filename)
            raise
        return save_label(image_id, label_filename, label_tag, label_info or {})

    store.add_image, store.save_label = checked_add_image, checked_save_label
    return store
