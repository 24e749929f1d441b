"""A dossier's result signed in the documents function comes back as its ``document.issued`` event
(delivered at ``/events``): the dossier keeps where the signed result is, and moves on.

If the dossier is at its last step and the officer who had the result issued (the event's actor)
holds that step, the dossier is finished with the signed document as its result (``dossier.done``,
as if they had returned it here); otherwise the signed result is only recorded (``result.signed``).
The applicant downloads it from the documents function (``result.file_url``), which admits them as
the dossier's applicant. Idempotent: a redelivered event finds the result already there.
"""

from __future__ import annotations

import logging

from lscloud import errors, runtime
from lscloud.aggregate import NoChange
from lscloud.statemachine import Actor, now
from lscloud.store import DoesNotExist, InvalidKey

from . import registry, workflow

log = logging.getLogger("dossiers.signed_results")

ISSUED = "vn.langson.documents.document.issued.v1"


def _documents_url() -> str:
    """Where citizens reach the documents function (kept in the dossier: the platform's address, not a gateway path)."""
    return runtime.current().settings.public_url("documents")


def on_document_issued(event: dict) -> dict | None:
    data = event.get("data") if isinstance(event.get("data"), dict) else {}
    dossier_id = data.get("dossier_id")
    if not dossier_id:
        return None
    missing = [f"/data/{k}" for k in ("document_id", "sha256") if not isinstance(data.get(k), str) or not data[k]]
    if missing:
        # a KeyError was a 500: five deliveries, then a dead letter; what the contract requires is a 422
        # (dead-lettered at once, for an operator to look at)
        raise errors.Invalid(f"{', '.join(missing)} missing from document.issued",
                             detail_vi=f"Sự kiện document.issued thiếu {', '.join(missing)}.",
                             errors=[errors.field(p, "required by the event's contract") for p in missing])
    signed = {"document_id": data["document_id"], "sha256": data["sha256"], "media_type": "application/pdf",
              "number": data.get("number"), "symbol": data.get("symbol"), "display": data.get("display"),
              "file_url": f"{_documents_url()}/v1/documents/{data['document_id']}/file", "signed": True}
    a = data.get("actor") if isinstance(data.get("actor"), dict) else {}
    actor = Actor(a.get("kind", "system"), a.get("sub"), a.get("agency"), a.get("unit"))
    at = now()

    def op(doc: dict):
        if (doc.get("result") or {}).get("document_id") == signed["document_id"] or \
                doc.get("signed_result", {}).get("document_id") == signed["document_id"]:
            raise NoChange
        step = workflow.active_step(doc)
        if doc["status"] == "processing" and step is not None and step["index"] == len(doc["steps"]) - 1 \
                and workflow.assigned_to(step, actor):
            return workflow.finish(doc, actor, at, signed, note=signed["display"])
        doc["signed_result"] = signed
        return [registry.MACHINE.note(doc, "record_signed_result", "result.signed", registry.MACHINE.system,
                                      at=at, details={"document_id": signed["document_id"]})]

    try:
        out = registry.RECORDS.mutate(dossier_id, op)
    except (DoesNotExist, InvalidKey):
        log.info("document.issued for an unknown dossier: ignored")
        return None
    return {"dossier_id": dossier_id, "status": out.doc["status"]}
