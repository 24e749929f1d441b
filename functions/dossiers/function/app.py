"""The one-stop shop's dossiers (hồ sơ): the app assembled from its blueprints (:mod:`.routes`).

Who may call is declared on every route (``@allow``); what a caller may see or move is narrowed by
ownership (citizens and businesses: their own dossiers), the token's ``agency`` and ``unit``
(officers: the dossiers with a step assigned to their agency and unit, and only that step), and the
``agency`` claim alone for supervisors (their whole agency) — :mod:`.registry` and :mod:`.workflow`.
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from lscloud import peers
from lscloud.web import create_app as runtime_app

from .catalog import Catalog
from .routes import BLUEPRINTS

SCHEMAS_DIR = Path(__file__).resolve().parents[3] / "schemas"


def create_app(settings=None) -> Flask:
    app = runtime_app("dossiers", schemas_dir=SCHEMAS_DIR, settings=settings, downloads=True, openapi={
        "title": "Lạng Sơn one-stop shop: dossiers (hồ sơ)", "version": "1.0.0",
        "description": "Dossiers of administrative procedures from submission to result: receipts with "
                       "appointment dates in working days, step-by-step processing across agencies, "
                       "supplements with the clock paused, overdue tracking and the IOC's figures."})
    # the procedures catalogue and the directory, asked through one revalidating client per app
    app.config["DOSSIERS_CATALOG"] = Catalog(peers.client(app.extensions["lscloud"].settings))
    for bp in BLUEPRINTS:
        app.register_blueprint(bp)
    return app
