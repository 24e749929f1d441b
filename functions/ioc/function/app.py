"""The IOC function's app: the API, the live stream, the wall."""

from __future__ import annotations

from lscloud.web import create_app as runtime_app

from . import metrics, routes_api, routes_wall
from .live import Live
from .names import CommuneNames
from .sources import Sources

SCHEMAS_DIR = routes_api.SCHEMAS_DIR


def create_app(settings=None):
    app = runtime_app("ioc", schemas_dir=SCHEMAS_DIR, settings=settings, openapi={
        "title": "Lạng Sơn intelligent operations centre (Trung tâm điều hành thông minh, IOC)", "version": "1.0.0",
        "description": "Live indicators from the platforms' events (border, dossiers, soft ATM, citizen reports, "
                       "environment, community, market), per commune and area, hourly and daily; Resolution 49's "
                       "measurable targets; a Server-Sent Events stream of changes; the wall at /ioc/."})
    app.config["IOC_LIVE"] = Live()
    metrics.watch(app.config["IOC_LIVE"])
    app.config["IOC_SOURCES"] = Sources(app.extensions["lscloud"].settings)
    app.config["IOC_NAMES"] = CommuneNames(app.extensions["lscloud"].settings)
    app.config["IOC_STREAM_SLOTS"] = routes_api.StreamSlots()   # per caller, some kept for staff
    app.register_blueprint(routes_api.bp)
    app.register_blueprint(routes_wall.bp)
    return app
