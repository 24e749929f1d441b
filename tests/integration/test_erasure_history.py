"""An erasure deletes the earlier versions of exactly the objects its hooks changed (a versioned
bucket, as the cluster's are: ``objectStore.noncurrentVersionDays``), and nothing else's history;
in a bucket that is not versioned (the local cloud) there is nothing to delete. Real weed mini."""

from __future__ import annotations

import pytest

from lscloud import erasure
from lscloud.store import Model, attributes as A
from lscloud.store.objects import Version
from lscloud.store.objects import content_md5

pytestmark = pytest.mark.integration

PHONE = "0912 345 678"
VERSIONING = (b'<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
              b"<Status>Enabled</Status></VersioningConfiguration>")


class Contact(Model):
    class Meta:
        table = "contacts"

    id = A.UnicodeAttribute(hash_key=True)
    phone = A.UnicodeAttribute(null=True)
    note = A.UnicodeAttribute(null=True)
    version = A.VersionAttribute()


def versioned(objects, bucket: str) -> None:
    objects._call("PutBucketVersioning", "PUT", bucket, params=[("versioning", "")], body=VERSIONING,
                  headers={"content-type": "application/xml", "content-md5": content_md5(VERSIONING)})


def kept_versions(objects, bucket: str, key: str) -> list[Version]:
    return objects.versions(bucket, key)


def erase_hook(runtime, subject):
    # what a function's hook does: the person's phone out of one record, another record deleted
    item = Contact.get("c1")
    item.phone = None
    item.save()
    Contact.get("c2").delete()
    return {"found": 2, "erased": [{"what": "contacts", "count": 2}], "kept": []}


def seed(rt) -> None:
    for cid in ("c1", "c2", "other"):
        c = Contact(cid, phone="0912345678" if cid != "other" else "0987654321", note="first")
        c.save()
        c.note = "second"
        c.save()


def test_an_erasure_deletes_the_earlier_versions_of_what_it_changed_and_nothing_else(rt):
    objects, bucket = rt.objects, rt.settings.bucket
    versioned(objects, bucket)
    seed(rt)
    c1, c2, other = (Contact._key_for(cid) for cid in ("c1", "c2", "other"))
    assert [len(kept_versions(objects, bucket, k)) for k in (c1, c2, other)] == [2, 2, 2]

    record = erasure.run(rt, erasure.Subject("phone", PHONE), {"contacts": erase_hook}, operator="op")

    left = kept_versions(objects, bucket, c1)
    assert [(v.latest, v.delete_marker) for v in left] == [(True, False)]
    assert b"0912345678" not in objects.get(bucket, c1).body
    assert kept_versions(objects, bucket, c2) == []            # deleted: no version, no marker left
    assert len(kept_versions(objects, bucket, other)) == 2     # not the erasure's: its history stays
    assert record["earlier_versions"] == {"objects": 2, "deleted": 2 + 3, "locked": 0, "failed": 0}
    # (c1: its two earlier versions; c2: its two versions and the delete marker)


def test_in_a_bucket_that_is_not_versioned_there_is_nothing_to_forget(rt):
    seed(rt)
    record = erasure.run(rt, erasure.Subject("phone", PHONE), {"contacts": erase_hook}, operator="op")
    assert record["earlier_versions"] == {"objects": 2, "deleted": 0, "locked": 0, "failed": 0}
    assert Contact.get("c1").phone is None and not Contact.exists("c2")
