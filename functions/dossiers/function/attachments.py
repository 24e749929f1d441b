"""A dossier's documents and its result: content-addressed blobs (sha256) under ``dossiers-files/``.

A file is uploaded first (checked: size up to the blob limit, PDF / PNG / JPEG by its bytes) and
then named by its sha256 in a submission, a supplement or a result; a reader of the dossier gets
a short-lived download link.

An upload no dossier names within two days is deleted (:func:`lscloud.store.claimed_only`): it is
often an identity card's or a birth certificate's scan, and the bucket's object lock kept every one
ten years, the dossier never submitted. Naming a file claims it, and the lock then keeps it as long
as the dossier.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from lscloud import errors, runtime, store
from lscloud.aggregate import side_pool
from lscloud.statemachine import Actor, iso
from lscloud.store import BlobRejected, BlobStore, InvalidKey

PREFIX = "dossiers-files"
TYPES = ("application/pdf", "image/png", "image/jpeg")
# why the store refused a file (BlobRejected.cause), for the Vietnamese reader
store.claimed_only(PREFIX, __name__)


def files() -> BlobStore:
    return store.blobs(PREFIX, max_bytes=runtime.current().settings.blob_max_bytes, allowed_types=TYPES)


def _refused_vi(exc: BlobRejected) -> str:
    return f"Tệp bị từ chối: {exc.message_vi} (nhận tệp PDF, PNG hoặc JPEG)."


def upload(data: bytes, media_type: str, filename: str | None) -> dict:
    """Store an uploaded file (the same bytes twice: the same blob)."""
    try:
        ref = files().put(data, media_type, filename)
    except BlobRejected as exc:
        raise errors.Invalid.at("", f"file refused: {exc.cause}", _refused_vi(exc)) from None
    return {"sha256": ref.sha256, "size": ref.size, "media_type": ref.media_type, "filename": ref.filename}


def checked(parts: list) -> dict[str, dict]:
    """The files sent with a submission (:class:`lscloud.web.FilePart`), checked as uploads are and
    not stored yet, by sha256: ``{"sha256", "size", "media_type", "filename", "part"}``; 422
    naming every part refused."""
    blobs, out, refused = files(), {}, []
    for part in parts:
        try:
            media_type = blobs.check(part.data, part.media_type)
        except BlobRejected as exc:
            refused.append(errors.field(part.field, f"file refused: {exc.cause}", _refused_vi(exc)))
            continue
        digest = hashlib.sha256(part.data).hexdigest()
        out[digest] = {"sha256": digest, "size": len(part.data), "media_type": media_type,
                       "filename": part.filename, "part": part}
    if refused:
        message = f"{len(refused)} file(s) refused"
        raise errors.Invalid(message, detail_vi=f"{len(refused)} tệp bị từ chối", errors=refused)
    return out


def keep(sent: dict) -> None:
    """Store one file :func:`checked`, claimed by the dossier it came with (the same bytes already
    there: claimed, nothing else to write)."""
    part = sent["part"]
    files().put_claimed(part.data, part.media_type, part.filename)


def refs(items: list[dict], base: str, procedure: dict | None, actor: Actor, at: datetime,
         sent: dict[str, dict] | None = None) -> list[dict]:
    """The referenced files as the dossier keeps them; 422 naming every one never uploaded.

    ``sent``: the files that came with the request (:func:`checked`), which need no lookup.
    """
    names = {d["code"]: d for d in (procedure or {}).get("documents", [])}
    blobs = files()
    sent = sent or {}

    def look_up(item: dict):
        if str(item["sha256"]).lower() in sent:
            return _Sent(sent[str(item["sha256"]).lower()])
        try:
            return blobs.claimed(item["sha256"])   # named now: no longer deleted as an unclaimed upload
        except InvalidKey:
            return None

    missing, out = [], []
    # every file looked up at once: one round trip however many the dossier names
    for i, (item, head) in enumerate(zip(items, side_pool().map(look_up, items))):
        if head is None:
            missing.append(errors.field(f"{base}/{i}/sha256", "no uploaded file with this sha256: "
                                                                "POST it to /v1/attachments first"))
            continue
        out.append({"code": item["code"], "name": names.get(item["code"], {}).get("name"),
                    "sha256": item["sha256"].lower(), "size": head.size, "media_type": getattr(head, "content_type", None),
                    "filename": item.get("filename"), "added_by": actor.sub, "added_at": iso(at)})
    if missing:
        message = f"{len(missing)} file(s) not found"
        raise errors.Invalid(message, detail_vi=message, errors=missing)
    return out


class _Sent:
    """A file sent with the request, standing in for the lookup of an uploaded one."""

    def __init__(self, sent: dict):
        self.size, self.content_type = sent["size"], sent["media_type"]


def named_file(doc: dict, sha256: str) -> dict:
    """One of the dossier's documents or its result, by sha256 (what a download link may name)."""
    known = {d["sha256"]: d for d in doc["documents"]}
    if doc.get("result"):
        known[doc["result"]["sha256"]] = doc["result"]
    entry = known.get(sha256.lower())
    if entry is None:
        raise errors.NotFound("The dossier has no file with this sha256.", detail_vi="Hồ sơ không có tệp này.")
    return entry
