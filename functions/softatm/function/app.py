"""The soft ATM's app: cash-in / cash-out at post offices for partner banks, assembled from its
blueprints (tellers, operators, partner banks; :mod:`.routes`)."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from lscloud import knative, runtime
from lscloud.web import create_app as runtime_app

from . import banks, sweep, webhooks
from .offices import Offices
from .routes import BLUEPRINTS
from .settings import Settings

SCHEMAS_DIR = Path(__file__).resolve().parents[3] / "schemas"


def create_app(settings=None) -> Flask:
    if settings is None:
        settings = runtime.current().settings
    own = Settings.of(settings)  # a bad SOFTATM_* value stops the start
    app = runtime_app("softatm", schemas_dir=SCHEMAS_DIR, settings=settings,
                      partner_keys=lambda partner: banks.key_slots(settings, partner),
                      openapi={"title": "Lạng Sơn soft ATM", "version": "1.0.0",
                               "description": "Cash-in / cash-out at post offices for partner banks: two-phase "
                                              "transfers, a double-entry ledger, settlement and reconciliation."})
    app.extensions["softatm.offices"] = Offices(settings)
    for bp in BLUEPRINTS:
        app.register_blueprint(bp)
    # the platform's retry of a dead-lettered webhook is the soft ATM's own re-drive (never a stale announcement)
    knative.redrive_with(app, webhooks.TYPES, webhooks.send_again)
    app.extensions["softatm.sweeper"] = sweep.start_background(own.sweep_s)
    return app
