"""The identity function's app: CCCD decoding, verification against the population registry and,
in the local cloud, sign-in tokens — assembled from its routes and services.

In the cluster (``LSCLOUD_ENV=cluster``) the token routes answer 404: the province's identity
provider issues tokens there, and this function holds no signing key.
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from lscloud.web import app_state, create_app as runtime_app

from . import options as identity_options, routes
from .population import registry_for
from .mismatches import Limits, MismatchLimits
from .signin import TokenIssuer
from .verification import Verifier

SCHEMAS_DIR = Path(__file__).resolve().parents[3] / "schemas"


def create_app(settings=None) -> Flask:
    """The identity function's Flask app (a bad ``IDENTITY_*`` setting stops the start)."""
    app = runtime_app("identity", schemas_dir=SCHEMAS_DIR, settings=settings, openapi={
        "title": "Lạng Sơn identity", "version": "1.0.0",
        "description": "CCCD decoding, verification of a citizen's data against the national population database "
                       "(match / mismatch per field, never the record), and sign-in tokens for the local cloud."})
    settings = app_state(app).settings
    options = identity_options.load(settings)
    verifier = Verifier(registry_for(settings, options), MismatchLimits(Limits(options.max_mismatches, options.window_s)))
    app.extensions["identity.verifier"] = verifier
    app.extensions["identity.tokens"] = TokenIssuer(settings, options, verifier)
    app.register_blueprint(routes.bp)
    return app
