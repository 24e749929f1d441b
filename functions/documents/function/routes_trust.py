"""Trust and verification for anyone: the dev root certificate, the CRLs, and a report on any PDF."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, request

from lscloud import errors
from lscloud.auth import allow, principal
from lscloud.ratelimit import caller_subject
from lscloud.web import before_body, body_limit, raw_body, responds

from . import verify

bp = Blueprint("trust", __name__)


@bp.get("/v1/trust/root.pem")
@allow("public")
@responds(None, description="the root certificate (PEM)", media={"application/x-pem-file": None})
def root_pem():
    """The root certificate every signature of this service chains to."""
    return Response(current_app.config["DOCUMENTS_CUSTODY"].root_pem(), mimetype="application/x-pem-file")


@bp.get('/v1/trust/crl/<schema("documents/crl-name.json"):name>')
@allow("public")
@responds(None, description="a CRL (DER)", media={"application/pkix-crl": None})
def crl(name: str):
    """The current CRL of ``root.crl`` or ``signing-ca.crl``."""
    der = current_app.config["DOCUMENTS_CUSTODY"].crl_der(name.removesuffix(".crl"))
    if der is None:
        raise errors.NotFound("no such CRL", detail_vi="Không có danh sách thu hồi này.")
    return Response(der, mimetype="application/pkix-crl")


def _count_verification() -> None:
    current_app.config["DOCUMENTS_VERIFY_LIMITER"].hit(caller_subject(principal(), request.headers,
                                                                       request.remote_addr))


@bp.post("/v1/verifications")
@allow("public")
@raw_body("application/pdf")
# as much as an upload may be (the upload's own setting, LSCLOUD_BLOB_MAX_BYTES): whoever is sent a
# document signed here, a long scan included, can have it verified; more is a 413 naming the bound
@body_limit("blob_max_bytes")
# counted before the PDF is read: a caller past its limit had up to 20 MiB read (and a worker thread
# held for the upload) for every 429
@before_body(_count_verification)
@responds("documents/verification.json",
          also={429: "Too many verifications from this caller (DOCUMENTS_VERIFY_LIMIT): wait Retry-After seconds"})
def verification():
    """Verify every signature of any PDF (at most as large as an upload) against the published root."""
    return jsonify(verify.verify(request.get_data(), current_app.config["DOCUMENTS_CUSTODY"].trust()))
