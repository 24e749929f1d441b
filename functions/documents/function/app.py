"""The documents function's app (văn bản và chữ ký số): assembled from its blueprints."""

from __future__ import annotations

import logging
from pathlib import Path

from lscloud.peers import PeerClient
from lscloud.ratelimit import Limiter
from lscloud.web import create_app as runtime_app

from . import routes_documents, routes_trust
from .custody import DevCustody
from .models import RateWindow
from .settings import settings_of

SCHEMAS_DIR = Path(__file__).resolve().parents[3] / "schemas"


# pyHanko warns at every signature that it may not fetch revocation data: by design here (the
# custody hands it the CRLs), so only its errors are worth a log line
logging.getLogger("pyhanko.sign.signers.pdf_signer").setLevel(logging.ERROR)


def create_app(settings=None):
    app = runtime_app("documents", schemas_dir=SCHEMAS_DIR, settings=settings, openapi={
        "title": "Lạng Sơn official documents and digital signatures (văn bản, chữ ký số)", "version": "1.0.0",
        "description": "Incoming and outgoing official documents with registers per agency and year (Decree "
                       "30/2020/NĐ-CP), PAdES signatures in order with timestamps and embedded revocation data, "
                       "and verification of any PDF against the published root."})
    platform = app.extensions["lscloud"].settings
    own = settings_of(platform)                     # a bad DOCUMENTS_* value stops the start
    app.config["DOCUMENTS"] = own
    # certificates name where their CRLs are for as long as they live: the platform's public URL of the function
    app.config["DOCUMENTS_CUSTODY"] = DevCustody(own.key_secret or platform.pseudonym_key,
                                                 own.public_url or platform.public_url())
    app.config["DOCUMENTS_PEERS"] = PeerClient(platform)
    app.config["DOCUMENTS_VERIFY_LIMITER"] = Limiter(RateWindow, limit=own.verify_limit, window_s=own.verify_window_s)
    for bp in (routes_documents.bp, routes_trust.bp):
        app.register_blueprint(bp)
    return app
