"""Traceable lots: what a producer harvested or made, where, when, with which certificates and how
it was packed — and, for an export lot, the border crossing it went through.

    (new) ──register──▶ registered ──export──▶ exported ──export──▶ exported (a refreshed link)
                          │    ▲                  ▲
          declare_export  │    │ withdraw_export  │ export (border: the truck exited)
                          ▼    │                  │
                        export_pending ───────────┘

A lot is ``exported`` only once border says its truck left (the declaration ``exited``): linked to a
declaration still on its way it is ``export_pending``, and a declaration that ends without crossing
(cancelled, refused, expired) takes it back to ``registered``, the link kept in ``export_history``.

Issuing stamps is a step inside a state (``stamps.issued``). Plain Python over the lot document;
writes go through :class:`lscloud.aggregate.Aggregate`.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import date

from lscloud import communes, errors, peers, workdays
from lscloud.aggregate import Aggregate
from lscloud.statemachine import Action, Actor, StateMachine, iso, now
from lscloud.timestamps import today_here

from . import actors, owners

MACHINE = StateMachine("market", [
    Action("register", {"new"}, "registered", "lot.registered", actors={"producer"}),
    # a buyer or a shopper reads "exported" as "it left the country": only border's exit says so
    Action("declare_export", {"registered", "export_pending"}, "export_pending", "lot.export-pending",
           actors={"enterprise"}),
    Action("export", {"registered", "export_pending", "exported"}, "exported", "lot.exported", actors={"enterprise"}),
    # only border's own event (a declaration cancelled, refused or expired) undoes a link
    Action("withdraw_export", {"export_pending"}, "registered", "lot.export-withdrawn", actors={"system"}),
], states=("registered", "export_pending", "exported"), noun=("lot", "lô hàng"),
   state_names_vi={"registered": "đã đăng ký", "export_pending": "đang chờ xuất khẩu", "exported": "đã xuất khẩu"})


def created_side(doc: dict) -> list:
    """The index of a new lot, from its document alone (a resend writes it again if missing): its
    producer's list ("my lots")."""
    from .models import LotByProducer

    return [LotByProducer(doc["producer"], doc["id"])]


def crossed(export: dict) -> bool:
    """Whether the declaration of an export link has seen its truck leave (border's snapshot or event)."""
    return export.get("status") == "exited" or bool(export.get("crossed_on"))


def current(doc: dict) -> dict:
    """``doc`` (changed in place) in today's states: a lot an older version stored ``exported`` while
    its truck had not left reads ``export_pending``, derived from its link, at every read and write,
    and is stored so by its next write. A mapping at read time, not a migration: nothing of the lot
    is lost or guessed (its link says whether it crossed), no pass over every lot is needed before
    the new version serves, and a lot an older replica writes during a rollout reads right too."""
    export = doc.get("export")
    if doc.get("status") == "exported" and export and not crossed(export):
        doc["status"] = "export_pending"
        stamps = doc.get("timestamps")
        if isinstance(stamps, dict) and "exported" in stamps:
            stamps.setdefault("export_pending", stamps.pop("exported"))
    return doc


class Lots(Aggregate):
    """The lots' aggregate, every lot read and changed in today's states (:func:`current`)."""

    def get(self, record_id: str):
        item = super().get(record_id)
        current(item.data)
        return item

    def visible(self, record_id: str, can_see):
        return super().visible(record_id, lambda doc: can_see(current(doc)))

    def mutate(self, record_id: str, op, **kwargs):
        return super().mutate(record_id, lambda doc: op(current(doc)), **kwargs)


def records() -> Lots:
    from .models import Lot, LotAudit

    return Lots(Lot, machine=MACHINE, source="/market", audit=LotAudit,
                     summary=lambda doc: {"lot_id": doc["id"], "product": doc["product"],
                                          "origin_commune": doc["origin"]["commune"],
                                          "stamps_issued": doc.get("stamps_issued", 0)},
                     created_side=created_side)


def lot_id(body: dict, request: dict | None) -> str:
    """The id of the lot ``body`` registers: the client's, else one derived from the request's
    idempotency identity (``request``: :func:`lscloud.idempotency.first_request`), so the same
    request sent again names the same lot and finds it; a random one without either."""
    if body.get("id"):
        return body["id"]
    if request:
        return "lot-" + hashlib.sha256(request["scope"].encode()).hexdigest()[:20]
    return "lot-" + uuid.uuid4().hex[:20]


def _check_dates(body: dict, today: date) -> None:
    """The lot's dates as a label may print them: no harvest nor packing after today here, no packing
    before the harvest, and no certificate that had lapsed before the harvest (it never covered this
    lot). Every bad date at once (422, each named by its pointer)."""
    harvested = date.fromisoformat(body["harvested_on"])
    bad = []
    if harvested > today:
        bad.append(errors.field("/harvested_on", "the harvest or production date is in the future",
                                "Ngày thu hoạch, sản xuất ở tương lai."))
    packing = body.get("packing") or {}
    if packing.get("packed_on"):
        packed = date.fromisoformat(packing["packed_on"])
        if packed > today:
            bad.append(errors.field("/packing/packed_on", "the packing date is in the future",
                                    "Ngày đóng gói ở tương lai."))
        elif packed < harvested:
            bad.append(errors.field("/packing/packed_on", "packed before it was harvested or made",
                                    "Ngày đóng gói trước ngày thu hoạch, sản xuất."))
    for i, cert in enumerate(body.get("certificates") or []):
        if cert.get("valid_until") and date.fromisoformat(cert["valid_until"]) < harvested:
            bad.append(errors.field(f"/certificates/{i}/valid_until",
                                    "the certificate had expired before the harvest or production date",
                                    "Chứng nhận đã hết hiệu lực trước ngày thu hoạch, sản xuất."))
    if len(bad) == 1:
        raise errors.Invalid(bad[0]["message"], detail_vi=bad[0]["message_vi"], errors=bad)
    if bad:
        raise errors.Invalid(f"{len(bad)} dates are not possible.", detail_vi=f"{len(bad)} ngày không hợp lệ.",
                             errors=bad)


def certificates_now(doc: dict, today: date) -> list[dict]:
    """The lot's certificates as a scan shows them: each with ``expired`` (its ``valid_until`` before
    today here), so a shopper scanning an older lot is told a certificate valid at the harvest has
    lapsed since; one without a ``valid_until`` states no end."""
    return [{**c, "expired": bool(c.get("valid_until")) and date.fromisoformat(c["valid_until"]) < today}
            for c in doc.get("certificates", [])]


def register(body: dict, actor: Actor, directory: peers.PeerClient, request: dict | None = None):
    """A new lot of the calling producer (its tax code is the token's subject).

    The lot is its own idempotency record: ``request`` is what it keeps of the request that
    registered it; a refused resend is answered from it by :meth:`Aggregate.resend`, which also
    finishes a register cut off before its audit entry, its producer's index and its event."""
    from .models import Lot

    producer = owners.tax_code(actor)
    _check_dates(body, today_here())   # the province's date: a harvest this morning is not "in the future"
    origin = dict(body["origin"])
    commune = communes.commune(directory, origin["commune"], "/origin/commune")
    origin["commune_name"] = commune["name"]
    doc = {"id": lot_id(body, request), "producer": producer,
           "producer_name": body.get("producer_name"), "product": body["product"], "unit": body["unit"],
           "quantity": body.get("quantity"), "harvested_on": body["harvested_on"], "origin": origin,
           "certificates": body.get("certificates", []), "packing": body.get("packing"),
           "batches": [], "stamps_issued": 0, "export": None, "status": "new", "created_at": iso(now())}
    t = MACHINE.apply(doc, "register", actors.recorded(actor))
    return records().create(Lot(doc["id"], data=doc, request=request), [t])


def owned_by(doc: dict, actor: Actor) -> bool:
    """Whether the caller's tax code is the lot's producer's."""
    try:
        return owners.tax_code(actor) == doc["producer"]
    except errors.Forbidden:
        return False


def visible(doc: dict, actor: Actor) -> bool:
    return actor.kind in ("operator", "auditor") or (actor.kind in ("producer", "enterprise") and owned_by(doc, actor))


def mine(actor: Actor, limit: int, page_token: str | None):
    from .models import LotByProducer

    page = LotByProducer.query(owners.tax_code(actor), limit=limit, page_token=page_token)
    return [row.lot_id for row in page], page.page_token


def journey(doc: dict) -> list[dict]:
    """The lot's steps, oldest first: harvest or production, packing, stamping, the border crossing."""
    steps = [{"step": "harvested", "on": doc["harvested_on"], "where": doc["origin"]["commune_name"],
              "plot": doc["origin"].get("plot")}]
    packing = doc.get("packing")
    if packing:
        steps.append({"step": "packed", "on": packing.get("packed_on"), "where": packing.get("facility")})
    if doc.get("batches"):
        steps.append({"step": "stamped", "on": workdays.local_day(doc["batches"][0]["issued_at"])})
    export = doc.get("export")
    if export:
        if export.get("crossed_on"):
            steps.append({"step": "crossed-border", "on": export["crossed_on"], "where": export["gate_name"],
                          "gate": export["gate"]})
        else:
            steps.append({"step": "declared-for-export", "on": export["declared_on"], "where": export["gate_name"],
                          "gate": export["gate"], "border_status": export["status"]})
    return steps


def public_view(doc: dict) -> dict:
    """What a shopper's scan may learn about a lot: no tax code of a person, no declaration id."""
    return {"lot": doc["id"], "product": doc["product"], "unit": doc["unit"], "producer": doc.get("producer_name"),
            "origin": {k: doc["origin"].get(k) for k in ("commune", "commune_name", "plot")},
            "harvested_on": doc["harvested_on"], "certificates": certificates_now(doc, today_here()),
            "packing": doc.get("packing"), "journey": journey(doc)}
