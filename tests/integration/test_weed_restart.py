"""``weed mini`` started again on its data: ready means what was stored before can be read.

S3 answers before the volume server has told the master of the volumes on disk; in that moment a
GET of an object stored before is a 500 (``volume id 1 not found``). The e2e restart of `lscloud
up` met it once in a clean-clone run. Whether the race shows depends on timing, so this holds the
contract itself: when ``start()`` returns, the master knows every volume on disk, and the objects
read back.
"""

from __future__ import annotations

from lscloud.local.servers import WeedMini
from lscloud.store.objects import ObjectStore


def test_a_restarted_store_is_ready_only_with_its_stored_volumes_loaded(tmp_path):
    first = WeedMini(data_dir=tmp_path / "weed").start()
    try:
        store = ObjectStore(first.endpoint, first.access_key, first.secret_key)
        store.ensure_bucket("lscloud")
        keys = [f"before/{i}.json" for i in range(5)]
        for key in keys:
            store.put("lscloud", key, b'{"stored": true}')
    finally:
        first.stop()
    on_disk = first.volumes_on_disk()
    assert on_disk >= 1

    again = WeedMini(data_dir=tmp_path / "weed").start()
    try:
        assert again.volumes_known() >= on_disk
        store = ObjectStore(again.endpoint, again.access_key, again.secret_key)
        assert [store.get("lscloud", key).body for key in keys] == [b'{"stored": true}'] * len(keys)
    finally:
        again.stop()
