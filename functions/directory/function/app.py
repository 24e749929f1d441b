"""The directory's app: public, read-only reference data of Lạng Sơn, assembled from its routes.

Every route reads the store (:mod:`.snapshots`: a per-kind snapshot for lists, the item's document
for ``/{code}``), never the package or the YAML files.
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from lscloud.web import create_app as runtime_app

from . import routes

SCHEMAS_DIR = Path(__file__).resolve().parents[3] / "schemas"


def create_app(settings=None) -> Flask:
    """The directory's Flask app."""
    app = runtime_app("directory", schemas_dir=SCHEMAS_DIR, settings=settings, openapi={
        "title": "Lạng Sơn directory", "version": "1.0.0",
        "description": "Reference data of Lạng Sơn province: administrative units (since 1 July 2025), "
                       "agencies, border gates with China, VNPost service points. Public and read-only."})
    app.register_blueprint(routes.bp)
    return app
