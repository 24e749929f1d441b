"""The barrier's safety rule.

The barrier opens only for a truck that is **cleared**, at **this gate**, in **this direction**,
with a **matching plate read** of sufficient confidence, with customs' release on record and no
open hold. Anything else keeps it closed, and the refusal lists every reason. This is the only
function that answers "open"; the property tests drive random event sequences through the domain
and check it never says so for a truck that is not cleared.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .devices import MIN_PLATE_CONFIDENCE, plate_matches

# code -> (English, Vietnamese, Chinese): a display at the barrier shows the driver why it stays shut,
# and the event has no Accept-Language to choose by, so every reason carries the three
REASONS = {
    "no-declaration": ("no active declaration for this plate at this gate",
                       "Không có tờ khai còn hiệu lực cho biển số này tại cửa khẩu này", "本口岸没有该车牌的有效申报"),
    "not-cleared": ("the declaration is not cleared", "Tờ khai chưa được thông quan", "申报尚未获准通关"),
    "no-release": ("customs has not released the truck", "Hải quan chưa cho xe thông quan", "海关尚未放行该车辆"),
    "open-hold": ("a hold is open on the declaration", "Tờ khai đang bị tạm giữ để kiểm tra thêm",
                  "该申报处于暂扣状态，待进一步查验"),
    "wrong-gate": ("the declaration is for another gate", "Tờ khai đăng ký qua cửa khẩu khác", "该申报登记的是其他口岸"),
    "wrong-direction": ("the declaration crosses in the other direction", "Tờ khai đăng ký đi theo chiều ngược lại",
                        "该申报登记的通行方向与此相反"),
    "plate-mismatch": ("the plate read does not match the declared tractor or trailer plate",
                       "Biển số camera đọc được không khớp với biển số xe đầu kéo hoặc rơ moóc đã khai",
                       "识别到的车牌与申报的牵引车或挂车车牌不符"),
    "low-confidence": ("the plate read is not confident enough", "Camera chưa đọc rõ biển số", "车牌识别不够清晰"),
}


@dataclass(frozen=True)
class BarrierDecision:
    open: bool
    reasons: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"open": self.open, "reasons": self.reasons}


def decide(doc: dict | None, *, gate: str, flow: str, plate_read: str, confidence: float = 1.0) -> BarrierDecision:
    """Open or not, and why not."""
    reasons: list[dict] = []

    def no(code: str, **extra):
        en, vi, zh = REASONS[code]
        reasons.append({"code": code, "message": en, "message_vi": vi, "message_zh": zh, **extra})

    if doc is None:
        no("no-declaration")
        return BarrierDecision(False, reasons)
    if doc.get("status") != "cleared":
        no("not-cleared", state=doc.get("status"))
    if not doc.get("release"):
        no("no-release")
    if doc.get("holds"):
        no("open-hold", holds=sorted(doc["holds"]))
    if doc.get("gate") != gate:
        no("wrong-gate", declared_gate=doc.get("gate"))
    if doc.get("flow") != flow:
        no("wrong-direction", declared_flow=doc.get("flow"))
    if not plate_read or not plate_matches(doc, plate_read):
        no("plate-mismatch")
    if confidence < MIN_PLATE_CONFIDENCE:
        no("low-confidence", confidence=confidence)
    return BarrierDecision(not reasons, reasons)
