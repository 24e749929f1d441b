"""Move what an older version wrote into today's layout: ``migrate(runtime) -> report``.

Run once per version of this file and pseudonym key by ``lscloud up`` (and ``lscloud migrate``;
in the cluster, the function's migration Job) before the function serves (:mod:`lscloud.serve`),
and whenever the pseudonym key the market's data is keyed under is not the process's.

The market keys two indexes by a pseudonym (:class:`.models.ShopByOwner`,
:class:`.models.LotByProducer`), and a shop names its owner only by a pseudonym
(:func:`.actors.owner_ref`: the clear subject is not kept in the shop). After a key change the
indexes would find nothing and no owner would be recognised on their own shop. Each index entry
holds the clear value it stands for, so:

- both indexes are re-keyed (:func:`lscloud.store.rekey.rekey`);
- each shop an owner entry names gets its owner reference under the current key (If-Match on the
  shop's version; a shop that already has it is not written). A shop whose entry an erasure removed
  keeps the old reference: nobody is to be recognised on it.

Every step is safe to repeat: a run cut short, or run again, finishes the job.
"""

from __future__ import annotations

from lscloud.store import DoesNotExist
from lscloud.store.rekey import rekey

from .actors import owner_ref
from .models import LotByProducer, Shop, ShopByOwner

PAGE = 200


def migrate(runtime) -> dict:
    report = {"shops_by_owner": rekey(ShopByOwner).as_dict(), "lots_by_producer": rekey(LotByProducer).as_dict(),
              "shop_owners_restated": 0, "shops_missing": 0}
    token = None
    while True:
        page = ShopByOwner.scan(limit=PAGE, page_token=token)
        for entry in page:
            restated = _restate_owner(entry.shop_id, owner_ref(entry.owner))
            if restated is None:
                report["shops_missing"] += 1
            elif restated:
                report["shop_owners_restated"] += 1
        token = page.page_token
        if not token:
            return report


class _AlreadyRight(Exception):
    """The shop already names its owner by the current reference: nothing to write."""


def _restate_owner(shop_id: str, ref: str) -> bool | None:
    """Whether the shop's owner reference was written as ``ref`` (False: it already was; None: no shop).

    One read per shop: the update's own read judges it (a shop already right aborts the update
    before its write)."""
    def restate(shop: Shop) -> None:
        if shop.data.get("owner") == ref:
            raise _AlreadyRight
        shop.data = {**shop.data, "owner": ref}

    try:
        Shop.update(shop_id, None, restate)
    except DoesNotExist:
        return None
    except _AlreadyRight:
        return False
    return True
