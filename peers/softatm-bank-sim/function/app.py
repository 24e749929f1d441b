"""The simulated bank's HTTP surface: our webhooks come in here; operators can look and reconcile."""

from __future__ import annotations

from flask import Flask, jsonify, request

from lscloud import runtime
from lscloud.auth import allow
from lscloud.web import Problem, create_app as runtime_app, json_body

from . import sim


def create_app(settings=None) -> Flask:
    if settings is None:
        settings = runtime.current().settings
    app = runtime_app("softatm-bank-sim", settings=settings,
                      openapi={"title": "Simulated partner bank (test peer)", "version": "1.0.0"})
    sim.open_accounts()
    worker = sim.Worker(settings)

    @app.post("/webhooks")
    @allow("public")
    def webhook():
        """Receive a soft ATM webhook (signature checked with our own key)."""
        raw = request.get_data(cache=True)
        # we are reached through the gateway: the URL the soft ATM signed carries its prefix
        path = request.headers.get("X-Forwarded-Prefix", "") + request.path
        if not sim.verify(settings, request.headers, path, raw):
            raise Problem(401, "bad-signature", "Bad signature", "The webhook signature does not verify.")
        sim.on_webhook(worker, json_body())
        return jsonify(ok=True)

    @app.get("/v1/records")
    @allow("operator", "auditor")
    def records():
        """The bank's view of every soft ATM transfer and its accounts."""
        recs = [r.data for r in sim.Record.scan()]
        accts = {a.number: {"balance": a.balance, "holds": {k: v for k, v in a.holds.items() if v}}
                 for a in sim.Account.scan()}
        return jsonify(records=recs, accounts=accts)

    @app.post("/v1/reconcile/<day>")
    @allow("operator")
    def reconcile(day):
        """Refresh unfinished records from the soft ATM, then submit our view of the day."""
        return jsonify(sim.refresh_and_reconcile(worker, day))

    return app
