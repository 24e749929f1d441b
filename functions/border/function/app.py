"""The border function's app: Lạng Sơn's digital border gate, assembled from its blueprints
(:mod:`.routes`); the rules live in the domain modules beside it."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from lscloud.context import app_state
from lscloud.web import create_app as runtime_app

from .routes import BLUEPRINTS
from .settings import of as border_settings

SCHEMAS_DIR = Path(__file__).resolve().parents[3] / "schemas"
OPENAPI = {"title": "Lạng Sơn digital border gate", "version": "1.0.0",
           "description": "One record per crossing: declarations, the gate queue, multi-agency clearance, "
                          "weighbridges, ANPR cameras and barriers."}


def create_app(settings=None) -> Flask:
    app = runtime_app("border", schemas_dir=SCHEMAS_DIR, settings=settings, openapi=OPENAPI)
    app.config["BORDER"] = border_settings(app_state(app).settings)   # a bad BORDER_* value stops the start
    for bp in BLUEPRINTS:
        app.register_blueprint(bp)
    return app
