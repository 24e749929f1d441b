"""Files: upload a document before naming it in a dossier; a download link for a dossier's file."""

from __future__ import annotations

from flask import Blueprint, g, jsonify, request

from lscloud.auth import allow, principal
from lscloud.idempotency import idempotent
from lscloud.statemachine import Actor
from lscloud.web import app_state, body_limit, download_link, query_params, raw_body, responds

from .. import attachments, registry
from .answers import DOSSIER_ID, READERS

bp = Blueprint("files", __name__)


SHA256 = 'schema("dossiers/attachment.json#/properties/sha256", match=False):sha256'
"""An attachment's digest, documented by the attachment's schema (the view answers any other)."""

@bp.post("/v1/attachments")
@allow("citizen", "enterprise", "officer")
@raw_body(*attachments.TYPES)
@body_limit("blob_max_bytes")  # files up to the blob limit, not the JSON limit
@query_params(("filename", "The original file name.", {"type": "string", "maxLength": 200}))
@idempotent(required=False)
@responds("dossiers/attachment.json", status=201)
def upload_attachment():
    """Upload a document (PDF, PNG, JPEG); reference it by sha256 in a dossier or a supplement."""
    return jsonify(attachments.upload(request.get_data(), request.mimetype, g.query["filename"])), 201


@bp.get(f"/v1/dossiers/<{DOSSIER_ID}>/files/<{SHA256}>")
@allow(*READERS)
@responds("dossiers/file-link.json")
def file_link(dossier_id: str, sha256: str):
    """A short-lived download link for one of the dossier's documents or its result (served by this
    function: ``url`` works without a token until it expires). A result signed in the documents
    function is kept there, not here: its link is the result's ``file_url``, which the documents
    function serves to the same caller's token and which does not expire (``expires_in_s`` null)."""
    entry = attachments.named_file(registry.visible(dossier_id, Actor.of(principal())).data, sha256)
    if entry.get("signed") and entry.get("file_url"):
        # no blob of this function to link to (a link to it was a 404); the signed PDF's own address
        return jsonify({"sha256": entry["sha256"], "url": entry["file_url"], "expires_in_s": None})
    ttl = app_state().settings.download_link_ttl_s
    url = download_link(attachments.files(), entry["sha256"], ttl, filename=entry.get("filename"))
    return jsonify({"sha256": entry["sha256"], "url": url, "expires_in_s": ttl})
