"""The wall: one page and its assets, the chart library served from the installed plotly package."""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from pathlib import Path

from flask import Blueprint, Response, request

from lscloud import errors
from lscloud.auth import allow
from lscloud.web import responds
from lscloud.web.caching import caching

bp = Blueprint("ioc_wall", __name__)
STATIC = Path(__file__).resolve().parent / "static"
TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".html": "text/html; charset=utf-8"}


@lru_cache(maxsize=8)
def _asset(name: str) -> tuple[bytes, str, str]:
    if name == "plotly.min.js":
        # plotly.js as the plotly package installs it (plotly/package_data): no CDN, no npm step
        from plotly.offline import get_plotlyjs

        body = get_plotlyjs().encode("utf-8")
    elif name in ("wall.js", "wall.css", "wall.html"):
        body = (STATIC / name).read_bytes()
    else:
        raise errors.NotFound(f"no asset {name!r}", detail_vi="Không có tệp này.")
    return body, TYPES[Path(name).suffix], '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def _send(name: str, cache: str) -> Response:
    body, mimetype, etag = _asset(name)
    if request.headers.get("If-None-Match") == etag:
        return Response(status=304, headers={"ETag": etag, "Cache-Control": cache})
    return Response(body, mimetype=mimetype.split(";")[0], headers={
        "Content-Type": mimetype, "ETag": etag, "Cache-Control": cache, "X-Content-Type-Options": "nosniff"})


PREFIX = re.compile(r"^(/[A-Za-z0-9._-]+)*$")


@bp.get("/")
@allow("public")
@responds(None, media={"text/html": None}, headers={"Cache-Control": "no-cache"},
          description="The wall's page, its links relative to the gateway's prefix")
def wall():
    """The operations centre's wall (Vietnamese, English on a switch; large screens and phones)."""
    # the page's links are relative to the function's root, wherever the gateway mounts it: `/ioc`
    # and `/ioc/` both load the same assets (X-Forwarded-Prefix, checked before it is written out)
    prefix = request.headers.get("X-Forwarded-Prefix", "")
    base = (prefix if PREFIX.match(prefix) else "") + "/"
    body = _asset("wall.html")[0].replace(b"<head>", f'<head>\n<base href="{base}">'.encode(), 1)
    return Response(body, headers={"Content-Type": TYPES[".html"], "Cache-Control": "no-cache",
                                   "X-Content-Type-Options": "nosniff"})


ASSET_CACHE = "public, max-age=3600"


@bp.get('/assets/<schema("ioc/asset-name.json"):name>')
@allow("public")
@responds(None, media={"text/javascript": None, "text/css": None, "text/html": None},
          description="The asset", **caching(ASSET_CACHE))
def asset(name: str):
    """The wall's script, its style and the chart library."""
    return _send(name, ASSET_CACHE)
