"""Trust and verification for anyone: the dev root certificate, the CRLs, and a report on any PDF."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, request

from lscloud import errors
from lscloud.auth import allow
from lscloud.web import body_limit, raw_body, responds

from . import verify

bp = Blueprint("trust", __name__)


@bp.get("/v1/trust/root.pem")
@allow("public")
@responds(None, description="the root certificate (PEM)")
def root_pem():
    """The root certificate every signature of this service chains to."""
    return Response(current_app.config["DOCUMENTS_CUSTODY"].root_pem(), mimetype="application/x-pem-file")


@bp.get('/v1/trust/crl/<schema("documents/crl-name.json"):name>')
@allow("public")
@responds(None, description="a CRL (DER)")
def crl(name: str):
    """The current CRL of ``root.crl`` or ``signing-ca.crl``."""
    der = current_app.config["DOCUMENTS_CUSTODY"].crl_der(name.removesuffix(".crl"))
    if der is None:
        raise errors.NotFound("no such CRL", detail_vi="Không có danh sách thu hồi này.")
    return Response(der, mimetype="application/pkix-crl")


@bp.post("/v1/verifications")
@allow("public")
@raw_body("application/pdf")
@body_limit("blob_max_bytes")
@responds("documents/verification.json")
def verification():
    """Verify every signature of any PDF against the published root."""
    return jsonify(verify.verify(request.get_data(), current_app.config["DOCUMENTS_CUSTODY"].trust()))
