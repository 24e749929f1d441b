"""The reports function's app: Open311 GeoReport v2 and the province's JSON API."""

from __future__ import annotations

from lscloud.knative import AFTER_READY
from lscloud.peers import PeerClient
from lscloud.web import create_app as runtime_app

from . import catalog, communes, limits, retention, routes_open311, routes_v1

SCHEMAS_DIR = routes_v1.SCHEMAS_DIR


def create_app(settings=None):
    app = runtime_app("reports", schemas_dir=SCHEMAS_DIR, settings=settings, openapi={
        "title": "Lạng Sơn citizen reports (phản ánh kiến nghị)", "version": "1.0.0",
        "description": "Open311 GeoReport v2 at /open311/v2 (form-encoded POSTs with an api_key, .xml and .json), "
                       "and the citizen app's JSON API: FixMyStreet's states, routing to agencies, deadlines in "
                       "working days, ratings, stats, events for the IOC."})
    app.extensions["reports.limits"] = limits.limiters(app.extensions["lscloud"].settings)
    retention.keep_days(app.extensions["lscloud"].settings)   # a bad REPORTS_CONTACT_KEEP_DAYS stops the start
    app.config["REPORTS_PEERS"] = PeerClient(app.extensions["lscloud"].settings)
    catalog.services()      # a malformed service file stops the start, not a request
    # the address index (seconds of CPU) is built once the replica serves: built alongside the start,
    # it put readiness off by ~0.7 s; a report with an address before it is done builds it itself
    app.extensions.setdefault(AFTER_READY, []).append(communes.warm)
    for bp in (routes_open311.bp, routes_v1.bp):
        app.register_blueprint(bp)
    routes_open311.answer_unrouted(app)
    return app
