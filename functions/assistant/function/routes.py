"""The assistant's HTTP surface: ``POST /v1/messages`` (public, rate-limited per caller) and the chat
widget page at ``/``."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, current_app, g, jsonify, request

from lscloud import peers
from lscloud.auth import allow, principal
from lscloud.ratelimit import caller_subject
from lscloud.web import responds, validate_body

from . import chat, sources

bp = Blueprint("assistant", __name__)
WIDGET = Path(__file__).parent / "static" / "widget.html"


@bp.post("/v1/messages")
@allow("public")
@validate_body("assistant/message.json")
@responds("assistant/answer.json", also={429: "Too many messages from this caller: wait Retry-After seconds"})
def message():
    """Ask the assistant: an answer from the catalogue (or your dossier), with its citations."""
    who = principal()
    caller = caller_subject(who, request.headers, request.remote_addr)
    limiter = current_app.extensions["assistant.limiter"]
    source: sources.CatalogueSource = current_app.extensions["assistant.catalogue"]
    authorization = request.headers.get("Authorization") if not who.anonymous else None
    client = source.client

    def status_of(reference: str):
        return sources.dossier_status(client, reference, authorization=authorization, secret=g.body.get("secret"))

    return jsonify(chat.reply(source.index, g.body, caller=caller, settings=current_app.config["ASSISTANT"],
                              source=source, authorization=authorization, status_of=status_of,
                              admit=lambda: limiter.hit(caller)))


@bp.get("/")
@allow("public")
@responds(None, media={"text/html": {"type": "string", "contentMediaType": "text/html"}},
          headers={"Cache-Control": "public, max-age=300"})
def widget():
    """The chat widget (Vietnamese UI) that talks to /v1/messages."""
    resp = Response(WIDGET.read_bytes(), mimetype="text/html")
    resp.headers["Cache-Control"] = "public, max-age=300"
    return resp


def peer_client(app) -> peers.PeerClient:
    return peers.client(app.extensions["lscloud"].settings)
