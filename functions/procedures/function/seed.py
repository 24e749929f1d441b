"""Load the catalogue into the store: ``seed(runtime) -> counts``.

Form templates first (PDF blobs, content-addressed: re-seeding writes nothing new), then one
document per procedure, then the snapshot the list and search read — so a list never names a
procedure or a template that is not there yet.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from lscloud import store

from . import catalogue, search, templates
from .models import SNAPSHOT, TEMPLATE_PREFIX, CatalogueSnapshot, Procedure

_WRITERS = 8


def build_with_templates() -> tuple[dict, dict[str, bytes]]:
    """The catalogue with each form's template reference filled in, and the PDFs by sha256."""
    import hashlib

    data = catalogue.build()
    blobs: dict[str, bytes] = {}
    for p in data["procedures"]:
        for doc in p["documents"]:
            form = doc.pop("form", None)
            if form:
                pdf = templates.form_pdf(p, {**doc, "form": form})
                digest = hashlib.sha256(pdf).hexdigest()
                blobs[digest] = pdf
                doc["template"] = {"sha256": digest, "media_type": templates.MEDIA_TYPE,
                                   "filename": templates.filename(p["code"], doc["code"])}
    return data, blobs


def fingerprint() -> str:
    """This version of what the seed stores, from its inputs alone: the package (the catalogue's
    data, the loader, the form renderer), the fonts the forms embed and reportlab's version. The
    forms' bytes follow from these (invariant PDFs), so the 34 forms are not drawn at every start
    just to tell that nothing changed (~0.6 s of every ``lscloud up``)."""
    import hashlib

    from reportlab import Version
    from lscloud.serve import package_fingerprint

    h = hashlib.sha256(package_fingerprint(Path(__file__).parent).encode())
    h.update(Version.encode())
    h.update(repr(templates.font_identity()).encode())
    return h.hexdigest()


def seed(runtime) -> dict:
    """Store the templates, the procedures and the snapshot in the store of ``runtime`` (installed by the
    seed runner, or by the test calling this); return counts."""
    data, blobs = build_with_templates()
    fp = catalogue.digest(data)
    procedures = data["procedures"]
    english = {f["code"]: f["name_en"] for f in data["fields"]}
    index = [search.index_entry(p, english[p["field"]]) for p in procedures]
    blob_store = store.blobs(TEMPLATE_PREFIX)
    with ThreadPoolExecutor(max_workers=_WRITERS, thread_name_prefix="procedures-seed") as pool:
        list(pool.map(lambda pdf: blob_store.put(pdf, templates.MEDIA_TYPE), blobs.values()))
        list(pool.map(lambda p: Procedure(p["code"], name=p["name"], field=p["field"], data=p).save(overwrite=True),
                      procedures))
    CatalogueSnapshot(SNAPSHOT, items=procedures, index=index, fields=data["fields"], fingerprint=fp,
                      size=len(procedures)).save(overwrite=True)
    return {"procedures": len(procedures), "fields": len(data["fields"]), "templates": len(blobs), "fingerprint": fp}
