"""A commune's household target set by two officers: answered with its version as the ETag, changed
only at the version read (428 without If-Match once set, 412 when stale), and a same-body PUT (a
retry whose answer was lost) writes nothing."""

from __future__ import annotations

import pytest

from community_support import DONG_DANG
from digital_support import ok

pytestmark = pytest.mark.integration


def test_target_changes_only_at_the_version_read(start_function, peers, tokens):
    client = start_function("community", peer_url_template=peers.template).app.test_client()
    a = tokens("commune-officer", "cb-a", unit=DONG_DANG)
    b = tokens("commune-officer", "cb-b", unit=DONG_DANG)
    url = f"/v1/communes/{DONG_DANG}/target"
    read = client.get(f"/v1/communes/{DONG_DANG}/progress", headers=a)
    assert read.status_code == 200 and read.headers["ETag"] == '"0"'

    first = client.put(url, json={"households": 1200, "source": "register 2026"}, headers={**a, "If-Match": '"0"'})
    assert first.status_code == 200 and first.headers["ETag"] == '"1"'
    assert first.get_json()["households"] == 1200

    # A's retry of the same figure (its answer lost): answered as it stands, nothing written
    again = client.put(url, json={"households": 1200, "source": "register 2026"}, headers={**a, "If-Match": '"0"'})
    assert again.status_code == 200 and again.headers["ETag"] == '"1"'
    assert again.get_json()["updated_at"] == first.get_json()["updated_at"]

    # B read before A's write: refused, A's figure stands
    stale = client.put(url, json={"households": 1350, "source": "census"}, headers={**b, "If-Match": '"0"'})
    assert stale.status_code == 412 and stale.get_json()["errors"][0]["field"] == "If-Match"
    blind = client.put(url, json={"households": 1350, "source": "census"}, headers=b)
    assert blind.status_code == 428 and blind.get_json()["errors"][0]["field"] == "If-Match"
    shown = client.get(f"/v1/communes/{DONG_DANG}/progress", headers=b)
    assert ok(shown)["households"] == 1200 and shown.headers["ETag"] == '"1"'

    # B reads it again and decides again
    changed = client.put(url, json={"households": 1350, "source": "census"}, headers={**b, "If-Match": '"1"'})
    assert changed.status_code == 200 and changed.headers["ETag"] == '"2"'
    assert ok(client.get(f"/v1/communes/{DONG_DANG}/progress", headers=a))["households"] == 1350


def test_first_target_without_if_match_only_while_none_is_set(start_function, peers, tokens):
    client = start_function("community", peer_url_template=peers.template).app.test_client()
    a = tokens("commune-officer", "cb-a", unit=DONG_DANG)
    url = f"/v1/communes/{DONG_DANG}/target"
    first = client.put(url, json={"households": 900, "source": "register"}, headers=a)
    assert first.status_code == 200 and first.headers["ETag"] == '"1"'
    assert client.put(url, json={"households": 901, "source": "register"}, headers=a).status_code == 428
    bad = client.put(url, json={"households": 901, "source": "register"}, headers={**a, "If-Match": "*"})
    assert bad.status_code == 412
