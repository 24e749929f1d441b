"""Field activities: photos, offline batches, the commune officer's queue and decisions."""

from __future__ import annotations

from flask import Blueprint, g, jsonify, request

from lscloud import images, store
from lscloud.auth import allow, principal
from lscloud.idempotency import idempotent
from lscloud.statemachine import Actor
from lscloud.web import body_limit, raw_body, responds, validate_body

from .refusals import NotYourCommune
from . import activities
from .route_ids import ACTIVITY_ID, COMMUNE

bp = Blueprint("community_activities", __name__)
PHOTO_MAX_BYTES = 8 * 1024 * 1024
FIELD = ("team-member", "team-leader")


PHOTOS = "community-photos"
# a photo nothing names within two days is deleted (kept for good before)
store.claimed_only(PHOTOS, __name__)


def _photos():
    return store.blobs(PHOTOS, max_bytes=PHOTO_MAX_BYTES, allowed_types=images.MEDIA_TYPES)


def _view(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if k not in ("author", "content_hash")}


@bp.post("/v1/photos")
@allow(*FIELD)
@raw_body(*images.MEDIA_TYPES)
@body_limit(PHOTO_MAX_BYTES)
@responds("community/photo.json", status=201)
@idempotent(required=False)
def upload_photo():
    """A photo of an activity (JPEG or PNG), stored without its metadata: no GPS position of the
    household it was taken at."""
    # no display rendition: no route serves these photos (the officer's queue names them only)
    ref, clean = images.keep(_photos(), request.get_data(cache=True), request.mimetype, display=False)
    return jsonify({"sha256": ref.sha256, "size": ref.size, "media_type": ref.media_type}), 201


@bp.post("/v1/activities/sync")
@allow(*FIELD)
@validate_body("community/activities-sync.json")
@responds("community/sync-results.json")
@idempotent(required=False)
def sync():
    """Upload a batch queued offline: one answer per activity (created, duplicate, updated,
    conflict with the rule that decided it, rejected naming the field)."""
    photos = _photos()
    results = activities.sync(g.body["activities"], Actor.of(principal()), photos.claim)
    counts = {}
    for r in results:
        counts[r["result"]] = counts.get(r["result"], 0) + 1
    return jsonify({"results": results, "counts": counts})


@bp.get(f"/v1/activities/<{ACTIVITY_ID}>")
@allow("team-member", "team-leader", "commune-officer", "operator", "auditor")
@responds("community/activity.json")
def read_activity(activity_id: str):
    """An activity (members their own, leaders and officers their commune's)."""
    actor = Actor.of(principal())
    doc = activities.records().visible(activity_id, lambda d: activities.visible(d, actor)).data
    return jsonify(_view(doc))


@bp.get(f"/v1/communes/<{COMMUNE}>/pending")
@allow("commune-officer")
@responds("community/activity-list.json")
def pending(commune: str):
    """The officer's queue: activities of the commune waiting for verification."""
    if principal().unit != commune:
        raise NotYourCommune("a commune officer sees their own commune's queue",
                               detail_vi="Công chức chỉ xem hoạt động của xã, phường mình.")
    items = [_view(d) for d in activities.pending(commune)]
    return jsonify({"items": items, "total": len(items), "next_page_token": None})


def _decide(activity_id: str, action: str):
    body = g.get("body") or {}
    out, progress = activities.decide(activity_id, action, Actor.of(principal()), body.get("reason"))
    answer = _view(out.doc)
    if progress is not None:
        from . import tallies

        answer["progress"] = tallies.view(progress)
    return jsonify(answer)


@bp.post(f"/v1/activities/<{ACTIVITY_ID}>/verify")
@allow("commune-officer")
@responds("community/activity.json")
@idempotent(required=False)
def verify(activity_id: str):
    """Verify an activity of the officer's commune: from now on it counts (progress, rankings, the IOC)."""
    return _decide(activity_id, "verify")


@bp.post(f"/v1/activities/<{ACTIVITY_ID}>/reject")
@allow("commune-officer")
@validate_body("community/decision.json")
@responds("community/activity.json")
@idempotent(required=False)
def reject(activity_id: str):
    """Reject an activity of the officer's commune (with a reason); it never counts."""
    return _decide(activity_id, "reject")
