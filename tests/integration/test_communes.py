"""lscloud.communes against a stand-in directory over real HTTP, listing and paging with the
directory's own code (digital_support.Peers)."""

from __future__ import annotations

import pytest

from functions.directory.function import units
from lscloud import communes
from lscloud import peers as peer_clients

pytestmark = pytest.mark.integration


def test_commune_names_follow_the_directory_s_pages(peers, settings):
    from lscloud.listing import MAX_LIMIT

    assert communes._PAGE == MAX_LIMIT   # written twice on purpose (see lscloud.communes): held equal here
    peers.max_limit = 30
    names = communes.names(peer_clients.PeerClient(settings.replace(peer_url_template=peers.template)))
    assert names == {u["code"]: u["name"] for u in units.communes()} and len(names) == 65
    assert sum(1 for s in peers.seen if s["path"] == "/directory/v1/units") == 3


def test_commune_names_raise_when_the_directory_does_not_answer(peers, settings):
    client = peer_clients.PeerClient(settings.replace(peer_url_template=peers.template))
    peers.stop()
    with pytest.raises(peer_clients.PeerError):
        communes.names(client)
