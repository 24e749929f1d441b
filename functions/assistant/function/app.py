"""The assistant function's app: the virtual assistant for administrative procedures."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from flask import Flask

from lscloud.knative import READINESS_CHECKS
from lscloud.ratelimit import Limiter
from lscloud.web import create_app as runtime_app, preload

from . import chat, routes
from .models import RateWindow
from .sources import CatalogueSource

log = logging.getLogger("assistant")
SCHEMAS_DIR = Path(__file__).resolve().parents[3] / "schemas"


def create_app(settings=None) -> Flask:
    """The assistant's Flask app."""
    app = runtime_app("assistant", schemas_dir=SCHEMAS_DIR, settings=settings, openapi={
        "title": "Lạng Sơn virtual assistant (trợ lý ảo)", "version": "1.0.0",
        "description": "Answers questions about administrative procedures from the province's catalogue, and a "
                       "dossier's status to its owner; every answer cites its source."})
    own = chat.settings_of(app.extensions["lscloud"].settings)   # a bad ASSISTANT_* value stops the start
    app.config["ASSISTANT"] = own
    app.extensions["assistant.limiter"] = Limiter(RateWindow, limit=own.rate_limit, window_s=own.rate_window_s)
    catalogue = CatalogueSource(routes.peer_client(app), refresh_s=own.catalogue_refresh_s)
    app.extensions["assistant.catalogue"] = catalogue
    app.register_blueprint(routes.bp)

    # the index is built before the first question needs it (building it takes seconds): the
    # replica is not ready until it has tried, so no question waits on the build
    def warm() -> None:
        try:
            preload(app)   # the body schemas and the token verifier too: no first caller pays for them
        except Exception:  # noqa: BLE001 - the first request loads them instead; never kept out of service
            log.exception("preloading the request path failed")
        finally:
            catalogue.warm()

    threading.Thread(target=warm, name="assistant-warm", daemon=True).start()
    app.extensions.setdefault(READINESS_CHECKS, []).append(
        lambda: (catalogue.warmed, "the catalogue index is being built"))
    return app
