"""Routes of the runtime's own mechanisms that a function mounts with its blueprints.

``app.register_blueprint(outbox_routes("border/outbox-result.json"))`` serves
``POST /v1/outbox/flush`` for operators: the events NATS did not confirm at the time
(:mod:`lscloud.outbox`) published now, instead of at the clock's next tick. The function's role
matrix (``access.yaml``) lists the route like its own.
"""

from __future__ import annotations

from flask import Blueprint, jsonify

from .. import outbox
from ..auth import allow
from ..idempotency import idempotent
from .openapi import responds

__all__ = ["outbox_routes"]


def outbox_routes(schema: str | None = None) -> Blueprint:
    """A blueprint with ``POST /v1/outbox/flush`` (operators); ``schema`` documents its answer
    (``{"sent": n, "failed": n, ...}``) in the function's OpenAPI document."""
    bp = Blueprint("outbox", __name__)

    @bp.post("/v1/outbox/flush")
    @allow("operator")
    @idempotent(required=False)
    @responds(schema)
    def flush_outbox():
        """Publish events NATS did not confirm at the time (kept in the outbox)."""
        return jsonify(outbox.flush())

    return bp
