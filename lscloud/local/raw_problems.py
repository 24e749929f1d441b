"""problem+json answers as the gateway's raw ASGI triples ``(status, headers, body)``, for the gateway
and the pages it serves itself (``/docs``): the same body shape as the functions' problems."""

from __future__ import annotations

import json
from typing import Iterable

from lscloud.problems import TYPE_BASE as _TYPE_BASE  # the functions' own problem type URIs

__all__ = ["problem"]


def problem(status: int, type_: str, title: str, detail: str, title_vi: str, detail_vi: str,
            extra_headers: Iterable[tuple[bytes, bytes]] = (), errors: list[dict] | None = None) -> tuple[int, list, bytes]:
    body = json.dumps({"type": _TYPE_BASE + type_, "title": title, "status": status,
                       "detail": detail, "title_vi": title_vi, "detail_vi": detail_vi, "errors": errors or []},
                      ensure_ascii=False).encode()
    headers = [(b"content-type", b"application/problem+json"), (b"content-length", str(len(body)).encode()),
               *extra_headers]
    return status, headers, body
