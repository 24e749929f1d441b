"""Stand-ins for the peers the community and market functions ask over HTTP, answering like their
contracts: the directory (units from the same `vietnam-provinces` data the real one serves, border
gates; strong ETags, 304, 404) and border's `GET /v1/declarations/{id}`, which — like the real
one — answers 401 without a token and shows an enterprise only its own declarations (404 otherwise).
"""

from __future__ import annotations

import base64
import json

from werkzeug.wrappers import Request, Response

from peer_stubs import Served, conditional_json

from functions.directory.function import agencies, units
from lscloud.listing import DEFAULT_LIMIT, MAX_LIMIT, listing
from client_answers import ok  # noqa: F401 (its tests take them from here)

GATES = {"huu-nghi": {"code": "huu-nghi", "name": "Cửa khẩu quốc tế Hữu Nghị"}}


def _claims(request) -> dict | None:
    """The bearer token's claims, unverified: a stand-in only needs who the caller says it is."""
    auth = request.headers.get("Authorization", "")
    if not auth.startswith("Bearer ") or auth.count(".") != 2:
        return None
    payload = auth.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


class Peers(Served):
    """``/directory/v1/units`` (its ``level``, ``type``, ``parent`` filters and paging, at most
    ``max_limit`` a page), ``/directory/v1/units/<code>``, ``/directory/v1/border-gates/<code>`` and
    ``/border/v1/declarations/<id>`` (declarations put in ``self.declarations``)."""

    def __init__(self):
        self.max_limit = MAX_LIMIT
        self.declarations: dict[str, dict] = {}
        self.seen: list[dict] = []
        table = {("directory", "units"): units.by_code(), ("directory", "border-gates"): GATES,
                 ("directory", "agencies"): {a["code"]: a for a in agencies.all_agencies()}}

        @Request.application
        def app(request):
            parts = request.path.strip("/").split("/")
            self.seen.append({"path": request.path, "authorization": request.headers.get("Authorization")})
            if len(parts) == 4 and parts[:3] == ["border", "v1", "declarations"]:
                claims = _claims(request)
                if claims is None:
                    return Response('{"status":401}', status=401, mimetype="application/problem+json")
                decl = self.declarations.get(parts[3])
                if decl is None or claims.get("role") != "enterprise" or claims.get("sub") != decl["owner"]:
                    return Response('{"status":404}', status=404, mimetype="application/problem+json")
                return Response(json.dumps(decl, ensure_ascii=False), mimetype="application/json")
            if parts == ["directory", "v1", "units"]:   # the list, paged by the directory's own code
                args = request.args
                query = {"q": None, "offset": None, "page_token": args.get("page_token"),
                         "limit": min(int(args.get("limit", DEFAULT_LIMIT)), self.max_limit),
                         **{f.param: args.get(f.param) for f in units.filters()}}
                page = listing(units.all_units(), query, texts=units.search_texts, filters=units.filters())
                return conditional_json(page.to_dict(), request)
            if len(parts) == 4 and parts[1] == "v1" and (parts[0], parts[2]) in table:
                item = table[(parts[0], parts[2])].get(parts[3])
                if item is not None:
                    return conditional_json(item, request)
            return Response('{"status":404,"title":"Not found"}', status=404, mimetype="application/problem+json")

        super().__init__(app)

