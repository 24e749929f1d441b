"""The community function's app: teams, activities, progress."""

from __future__ import annotations

from pathlib import Path

from lscloud.peers import PeerClient
from lscloud.web import create_app as runtime_app

from . import routes_activities, routes_progress, routes_teams

SCHEMAS_DIR = Path(__file__).resolve().parents[3] / "schemas"


def create_app(settings=None):
    app = runtime_app("community", schemas_dir=SCHEMAS_DIR, settings=settings, openapi={
        "title": "Lạng Sơn community digital technology teams (Tổ công nghệ số cộng đồng)", "version": "1.0.0",
        "description": "Teams per commune and village, field activities synced offline and verified by the commune, "
                       "progress against Resolution 49's targets, rankings, events for the IOC."})
    app.config["COMMUNITY_PEERS"] = PeerClient(app.extensions["lscloud"].settings)
    for bp in (routes_teams.bp, routes_activities.bp, routes_progress.bp):
        app.register_blueprint(bp)
    return app
