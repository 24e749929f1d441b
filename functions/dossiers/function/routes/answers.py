"""What the routes share: who reads a dossier, and the answer with one (the caller's view of it,
its version as the ETag)."""

from __future__ import annotations

from lscloud.auth import principal
from lscloud.statemachine import Actor
from lscloud.web import versioned_json

from .. import views
from ..models import Dossier

DOSSIER_ID = 'schema("dossiers/dossier-create.json#/properties/id"):dossier_id'
"""The route argument of a dossier's client-chosen id, as its create names it (:mod:`lscloud.web.pathparams`)."""

ETAG = {"ETag": "The dossier's version"}
READERS = ("citizen", "enterprise", "officer", "supervisor", "operator", "auditor")


def dossier(item: Dossier, status: int = 200):
    return versioned_json(views.dossier(item.data, Actor.of(principal())), item.version, status)
