"""The procedures function's app: the province's catalogue of administrative procedures, public
and read-only, assembled from its routes."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from lscloud.web import create_app as runtime_app

from . import routes
from .snapshots import SnapshotCache

SCHEMAS_DIR = Path(__file__).resolve().parents[3] / "schemas"


def create_app(settings=None) -> Flask:
    """The procedures function's Flask app."""
    app = runtime_app("procedures", schemas_dir=SCHEMAS_DIR, settings=settings, downloads=True, openapi={
        "title": "Lạng Sơn administrative procedures", "version": "1.0.0",
        "description": "The catalogue of administrative procedures (thủ tục hành chính) of Lạng Sơn province: "
                       "documents, form templates, fees, processing time in working days, steps and agencies, "
                       "legal basis. Public and read-only."})
    app.extensions["procedures.snapshots"] = SnapshotCache()  # one per app: a cache of this app's store
    app.register_blueprint(routes.bp)
    return app
