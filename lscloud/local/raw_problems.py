"""problem+json answers as the gateway's raw ASGI triples ``(status, headers, body)``, for the gateway
and the pages it serves itself (``/docs``): the functions' own problems (:class:`lscloud.problems.Problem`)."""

from __future__ import annotations

from typing import Iterable

from lscloud.problems import MEDIA_TYPE, Problem

__all__ = ["problem"]


def problem(status: int, type_: str, title: str, detail: str, title_vi: str, detail_vi: str,
            extra_headers: Iterable[tuple[bytes, bytes]] = (), errors: list[dict] | None = None) -> tuple[int, list, bytes]:
    body = Problem(status, type_, title, detail, title_vi=title_vi, detail_vi=detail_vi, errors=errors).body()
    headers = [(b"content-type", MEDIA_TYPE.encode()), (b"content-length", str(len(body)).encode()),
               *extra_headers]
    return status, headers, body
