"""The copies RecentItems keeps and hands out share nothing mutable with the item they came from."""

from __future__ import annotations

import copy
import datetime
from collections import OrderedDict

from lscloud.store.recent import _tree_copy


def test_a_tree_copy_equals_a_deep_copy_and_shares_no_container():
    values = {"id": "t1", "version": 3, "data": {
        "state": "RECEIVED", "amount_vnd": 100_000, "rate": 1.5, "admitted": True, "notified": None,
        "requests": {"create": {"bank": "simbank", "tags": ["a", "b"]}}, "history": [{"to": "RECEIVED"}],
        "raw": b"\x00", "at": datetime.datetime(2026, 12, 4, 5, 0), "seen": {1, 2}, "pair": (1, [2])}}
    twin = _tree_copy(values)
    assert twin == copy.deepcopy(values)

    twin["data"]["requests"]["create"]["tags"].append("c")
    twin["data"]["history"][0]["to"] = "RESERVED"
    twin["data"]["seen"].add(3)            # not JSON-shaped: deep-copied all the same
    twin["data"]["pair"][1].append(3)
    assert values["data"]["requests"]["create"]["tags"] == ["a", "b"]
    assert values["data"]["history"] == [{"to": "RECEIVED"}]
    assert values["data"]["seen"] == {1, 2} and values["data"]["pair"] == (1, [2])


def test_a_dict_or_list_of_another_kind_keeps_its_kind():
    values = {"order": OrderedDict(b=1, a=[2])}
    twin = _tree_copy(values)
    assert type(twin["order"]) is OrderedDict and twin == values
    twin["order"]["a"].append(3)
    assert values["order"]["a"] == [2]
