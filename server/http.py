"""Plain HTTP on the websocket port: a small route table served from ``process_request``.

websockets parses the request line and headers (any method, no body) and lets
``process_request`` answer instead of upgrading. A route is ``(METHOD, path)`` -> handler; a
handler gets the connection and the request and returns a ``Response`` (``respond()`` builds one),
or an awaitable of one. ``prefix=True`` routes match every path under ``path/``.

    app.routes.add("GET", "/overlay", static_files("livestream_compliance_server", "overlay"), prefix=True)
"""

from __future__ import annotations

import email.utils
import mimetypes
from collections.abc import Callable
from http import HTTPStatus
from importlib import resources
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

Handler = Callable[[ServerConnection, Request], "Response | Awaitable[Response]"]


def respond(
    status: int,
    body: bytes | str = b"",
    content_type: str = "text/plain; charset=utf-8",
    headers: dict[str, str] | None = None,
) -> Response:
    data = body.encode("utf-8") if isinstance(body, str) else body
    h = Headers()
    h["Date"] = email.utils.formatdate(usegmt=True)
    h["Connection"] = "close"
    h["Content-Type"] = content_type
    h["Content-Length"] = str(len(data))
    h["Cache-Control"] = "no-store"
    for k, v in (headers or {}).items():
        h[k] = v
    return Response(status, HTTPStatus(status).phrase, h, data)


def split_target(target: str) -> tuple[str, dict[str, list[str]]]:
    parts = urlsplit(target)
    return parts.path or "/", parse_qs(parts.query)


class Routes:
    def __init__(self) -> None:
        self._exact: dict[tuple[str, str], Handler] = {}
        self._prefix: list[tuple[str, str, Handler]] = []

    def add(self, method: str, path: str, handler: Handler, *, prefix: bool = False) -> None:
        method = method.upper()
        if prefix:
            base = path.rstrip("/")
            # adding a route again replaces it (an embedder's /overlay replaces the built-in one)
            self._prefix = [r for r in self._prefix if (r[0], r[1]) != (method, base)]
            self._prefix.append((method, base, handler))
            self._exact[(method, path.rstrip("/") or "/")] = handler
        else:
            self._exact[(method, path)] = handler

    def paths(self) -> set[str]:
        return {p for _m, p in self._exact} | {p for _m, p, _h in self._prefix}

    def match(self, method: str, path: str) -> Handler | HTTPStatus:
        """The handler, or NOT_FOUND / METHOD_NOT_ALLOWED."""
        h = self._exact.get((method, path))
        if h is not None:
            return h
        for m, p, handler in self._prefix:
            if m == method and path.startswith(p + "/"):
                return handler
        if any(p == path for _m, p in self._exact) or any(path.startswith(p + "/") for _m, p, _h in self._prefix):
            return HTTPStatus.METHOD_NOT_ALLOWED
        return HTTPStatus.NOT_FOUND


def static_files(package: str, directory: str, *, mount: str | None = None, index: str = "index.html") -> Handler:
    """Serve the files of ``package/directory`` (package data): ``mount`` -> index, ``mount/name`` -> name.

    Only files that exist in that directory are served (no sub-paths, no ``..``).
    """
    root = resources.files(package).joinpath(directory)
    base = mount if mount is not None else "/" + directory

    def handler(connection: ServerConnection, request: Request) -> Response:
        path, _q = split_target(request.path)
        name = path[len(base) :].lstrip("/") or index
        if "/" in name or name.startswith("."):
            return respond(404, "not found\n")
        f = root.joinpath(name)
        if not f.is_file():
            return respond(404, "not found\n")
        ctype = mimetypes.guess_type(name)[0] or "application/octet-stream"
        if ctype.startswith("text/") or ctype in ("application/javascript", "application/json"):
            ctype += "; charset=utf-8"
        return respond(200, f.read_bytes(), ctype)

    return handler
