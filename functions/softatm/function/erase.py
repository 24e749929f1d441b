"""An erasure request's part in the soft ATM: ``erase(runtime, subject) -> report`` (:mod:`lscloud.erasure`;
run by ``lscloud erase`` and ``python -m lscloud.serve --erase``).

Nothing is erased here: a transfer is a financial transaction, the record of cash paid out or taken
in at a post office point and settled with the bank, and its journal entries are the point's
books. What the hook does is tell the person what there is and why it stays.

The only index keyed by a customer is the daily-limit counter (:class:`.models.CustomerDay`, keyed
by :func:`.transfers.customer_key`: the pseudonym of the bank and the account or the phone), and it
lives :data:`.models.COUNTER_KEPT_DAYS` days. So a phone number finds the transfers of those last
days that were not aborted, one GET per bank, kind and day, nothing listed but the banks. Older or
aborted transfers, and any transfer by the customer's CCCD (held in each transfer, indexed nowhere),
would take reading every transfer: the report says so.
"""

from __future__ import annotations

from datetime import timedelta

from lscloud import erasure
from lscloud.store import DoesNotExist, InvalidKey
from lscloud.timestamps import today_here

from .models import COUNTER_KEPT_DAYS, Bank, CustomerDay
from .transfers import DEPOSIT, WITHDRAWAL

BANKS = 200
"""Banks looked at most (the province's partner banks: a handful)."""
PURPOSE = "softatm-customer"
""":func:`.transfers.customer_key`'s purpose; its value is ``<bank>\\n<phone:number>``."""
KEPT_LAW = erasure.TO_CONFIRM
NO_SCAN_VI, NO_SCAN = "không tìm được nếu không đọc toàn bộ giao dịch", "cannot be found without a full scan"


def bank_codes() -> list[str]:
    """The registered banks' codes, from the listing of their table (no bank read)."""
    return Bank.hash_keys(BANKS)


def counted_transfers(subject: erasure.Subject) -> set[str]:
    """The ids of the subject's transfers of the last days, from their daily-limit counters."""
    today = today_here()
    days = [(today - timedelta(days=n)).isoformat() for n in range(COUNTER_KEPT_DAYS)]
    found: set[str] = set()
    for bank in bank_codes():
        try:
            customer = subject.pseudonym(PURPOSE, bank.replace("{", "{{").replace("}", "}}") + "\nphone:{value}")
        except erasure.NotReapplicable:
            continue   # a bank registered after the recorded request: it held nothing of the person then
        for kind in (WITHDRAWAL, DEPOSIT):
            for day in days:
                try:
                    found.update((CustomerDay.get(f"{bank}_{kind}_{customer}_{day}").used or {}).keys())
                except (DoesNotExist, InvalidKey):
                    continue
    return found


def erase(runtime, subject: erasure.Subject) -> dict:
    """How many of the subject's transfers are found, and why every one is kept; counts and reasons only."""
    if subject.kind == "email":
        return {"found": 0, "erased": [], "kept": []}   # the soft ATM takes no e-mail address
    ids = counted_transfers(subject) if subject.kind == "phone" else set()
    kept = []
    if ids:
        kept += [{
            "what": f"{len(ids)} giao dịch rút, nộp tiền: số tiền, ngân hàng, điểm giao dịch, thời điểm, số tài khoản "
                    f"hoặc điện thoại và số CCCD của khách / {len(ids)} cash transfer(s): amount, bank, point, times, "
                    "the customer's account or phone and CCCD",
            "why": "giao dịch tài chính: chứng từ của tiền mặt đã chi, thu tại điểm và đã đối soát với ngân hàng / "
                   "financial transactions: the record of cash paid out or taken in at the point and settled with "
                   "the bank",
            "law": KEPT_LAW}, {
            "what": "bộ đếm hạn mức trong ngày (bút danh của khách, mã và số tiền giao dịch) / daily-limit counters (a "
                    "pseudonym of the customer, the transfers' ids and amounts)",
            "why": f"để áp dụng hạn mức rút, nộp mỗi ngày; tự xóa {COUNTER_KEPT_DAYS} ngày sau ngày của nó / they "
                   f"enforce the daily limit, and are deleted by themselves {COUNTER_KEPT_DAYS} days after their day",
            "law": KEPT_LAW}]
    if subject.kind == "phone":
        kept.append({
            "what": f"giao dịch quá {COUNTER_KEPT_DAYS} ngày hoặc đã hủy có số điện thoại này / transfers older than "
                    f"{COUNTER_KEPT_DAYS} days, or aborted, with this phone number",
            "why": f"chỉ bộ đếm hạn mức trong ngày tìm được khách theo số điện thoại; ngoài chúng thì {NO_SCAN_VI} / "
                   f"only the daily-limit counters find a customer by phone; beyond them transfers {NO_SCAN}",
            "law": KEPT_LAW})
    else:
        kept.append({
            "what": "giao dịch có số CCCD này / transfers that hold this CCCD",
            "why": f"giao dịch ghi số CCCD của khách nhưng không được lập chỉ mục theo số này: {NO_SCAN_VI} / a "
                   f"transfer holds the customer's CCCD but nothing indexes it: they {NO_SCAN}",
            "law": KEPT_LAW})
    return {"found": len(ids), "erased": [], "kept": kept}
