"""What the province's SMS/Zalo gateway (role ``notifier``) needs to tell a called driver.

The ``truck.called`` event names the declaration, its code, gate and flow and the call's deadline
(``details.deadline``), never the driver's phone: the stream keeps an event for its whole age, past
a minimised declaration. The gateway asks for the phone when it sends (:func:`recipient`,
``GET /v1/calls/{gate}/{declaration_id}/recipient``), as it does for a traffic order's drivers
(:func:`.traffic.recipients`), read from the declaration at that moment, and only while the call
is still the current one: a driver told to hurry to a gate for a call that is over (missed, the
truck at the gate since, cancelled, called again with another deadline) would be misled."""

from __future__ import annotations

from datetime import datetime
from typing import Callable

from lscloud import errors
from lscloud.statemachine import now, parse_iso

from . import gates, i18n, ledger, lifecycle, queue


class CallNotFound(errors.NotFound):
    type = "call-not-found"
    title, title_vi = "Call not found", "Không tìm thấy lượt gọi"


class CallOver(errors.Gone):
    """The declaration was called, but that call no longer stands (410): nothing to text."""

    type = "call-over"
    title, title_vi = "Call no longer current", "Lượt gọi không còn hiệu lực"


def recipient(gate_code: str, declaration_id: str, read_gate: Callable[[], dict],
              deadline: datetime | None = None) -> dict:
    """The called driver of ``declaration_id`` at ``gate_code``: phone (``None`` once minimised),
    language, the call's deadline and the notice in vi / zh / en, the gate named as the directory
    names it in each (``read_gate()``: the directory's gate, read only for a call that stands).
    ``deadline``: the call's, as its event carries it; another (a call since) is the 410 too.
    404 for no declaration called at that gate, 410 for a call that is over."""
    item = ledger.get_or_none(declaration_id)
    doc = item.data if item is not None else None
    if doc is None or doc["gate"] != gate_code or not doc.get("call"):
        raise CallNotFound(f"No call of declaration {declaration_id!r} at gate {gate_code!r}.",
                           detail_vi=f"Không có lượt gọi tờ khai {declaration_id!r} tại cửa khẩu {gate_code!r}.")
    call = doc["call"]
    due = parse_iso(call["deadline"])
    if doc["status"] != "called":
        raise CallOver(f"The call is over: the declaration is {doc['status']}.",
                       detail_vi="Lượt gọi đã kết thúc: tờ khai " + lifecycle.STATE_VI.get(
                           doc["status"], doc["status"]) + ".", current_state=doc["status"])
    if deadline is not None and deadline != due:
        raise CallOver("That call was superseded: the truck was called again with another deadline.",
                       detail_vi="Lượt gọi này đã được thay bằng lượt gọi mới với hạn khác.",
                       current_state=doc["status"])
    if due <= now():
        raise CallOver("The call's deadline has passed.", detail_vi="Đã quá hạn của lượt gọi.",
                       current_state=doc["status"])
    names = gates.names(read_gate())
    at = due.astimezone(queue.TZ).strftime("%H:%M")
    return {"declaration_id": doc["id"], "code": doc["code"], "gate": doc["gate"], "flow": doc["flow"],
            "deadline": call["deadline"], "language": i18n.of_driver(doc),
            "driver_phone": doc["driver"].get("phone"),
            "messages": {lang: i18n.t("called_notice", lang, code=doc["code"], gate=names[lang] or doc["gate"],
                                      deadline=at) for lang in i18n.LANGUAGES}}
