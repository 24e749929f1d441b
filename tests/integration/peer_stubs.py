"""Stand-ins for other functions over real HTTP, for a function's integration tests: a WSGI app
served on a free loopback port from a thread of its own, answering JSON as the functions do (a
strong ETag, and 304 to a matching ``If-None-Match``)."""

from __future__ import annotations

import hashlib
import json
import threading

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response


def conditional_json(doc, request: Request, *, status: int = 200, cache_control: str | None = None) -> Response:
    """``doc`` (or bytes) as a function answers it: JSON with a strong ETag, 304 when the caller
    holds it (a 200's only)."""
    body = doc if isinstance(doc, bytes) else json.dumps(doc, ensure_ascii=False).encode()
    resp = Response(body, status=status, mimetype="application/json")
    resp.set_etag(hashlib.sha256(body).hexdigest()[:32])
    if cache_control:
        resp.headers["Cache-Control"] = cache_control
    return resp.make_conditional(request)


class Served:
    """``app`` answering on a free loopback port until :meth:`stop`: ``url`` is where, and
    ``template`` the peer URL template a function takes (``…/{name}``, its name first in the path)."""

    def __init__(self, app):
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.port = self.server.server_port
        self.url = f"http://127.0.0.1:{self.port}"
        self.template = self.url + "/{name}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(5)
        self.server.server_close()
