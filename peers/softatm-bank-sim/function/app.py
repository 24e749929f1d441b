"""The simulated bank's app (a test peer, local cloud only): its routes and its back office."""

from __future__ import annotations

from flask import Flask

from lscloud.web import app_state, create_app as runtime_app

from . import books, routes, signing
from .worker import Worker


def create_app(settings=None) -> Flask:
    app = runtime_app(signing.NAME, settings=settings,
                      openapi={"title": "Simulated partner bank (test peer)", "version": "1.0.0"})
    books.open_accounts()  # create-only: the seed opens them too, a restart keeps the balances
    app.extensions["bank-sim.worker"] = Worker(app_state(app).settings)
    app.register_blueprint(routes.bp)
    return app
