"""The simulator's HTTP surface: what it sends, for operators."""

from __future__ import annotations

from flask import Flask, jsonify

from lscloud import runtime
from lscloud.auth import allow
from lscloud.web import create_app as runtime_app

from . import sim


def create_app(settings=None) -> Flask:
    if settings is None:
        settings = runtime.current().settings
    app = runtime_app("environment-sim", settings=settings,
                      openapi={"title": "Environment device simulator (test peer)", "version": "1.0.0"})
    feeder = sim.Feeder(settings).start()

    @app.get("/v1/status")
    @allow("operator", "auditor")
    def status():
        """The simulated stations, how each sends, and what was sent so far."""
        return jsonify(feeder.status())

    return app
