"""The driver's language: Vietnamese, Chinese or English, chosen by ``Accept-Language``."""

from __future__ import annotations

LANGUAGES = ("vi", "zh", "en")

STATUS = {
    "draft": ("Bản nháp", "草稿", "Draft"),
    "submitted": ("Đã nộp tờ khai", "已提交申报", "Declaration submitted"),
    "queued": ("Đã xếp lượt, chờ vào bãi", "已预约时段，请前往等候区", "Slot booked: go to the waiting area"),
    "in_yard": ("Đang chờ trong bãi", "在等候区排队", "Waiting in the yard"),
    "called": ("Được gọi vào cửa khẩu — hãy đến ngay", "已叫号，请立即前往口岸", "Called to the gate — go now"),
    "at_gate": ("Đã đến cửa khẩu", "已到达口岸", "At the gate"),
    "under_inspection": ("Đang kiểm tra", "正在查验", "Under inspection"),
    "held": ("Đang tạm giữ để kiểm tra thêm", "暂扣待进一步查验", "Held for further checks"),
    "cleared": ("Đã thông quan — được qua cửa khẩu", "已放行，可以通关", "Cleared — you may cross"),
    "refused": ("Bị từ chối thông quan", "不予放行", "Refused"),
    "exited": ("Đã qua cửa khẩu", "已通关", "Crossed the border"),
    "cancelled": ("Đã hủy", "已取消", "Cancelled"),
    "expired": ("Hết hiệu lực (lỡ lượt gọi hai lần, hoặc quá hạn không dùng)", "已失效（两次错过叫号，或逾期未使用）",
                "Expired (missed the call twice, or not used in time)"),
}

TEXT = {
    "position": ("Vị trí trong hàng chờ: {position} (phía trước còn {ahead} xe)",
                 "排队位置：第{position}位（前面还有{ahead}辆车）",
                 "Queue position: {position} ({ahead} trucks ahead)"),
    "wait": ("Thời gian chờ dự kiến: khoảng {minutes} phút", "预计等待时间：约{minutes}分钟",
             "Expected wait: about {minutes} minutes"),
    # slots and deadlines are Vietnam's clock; a Chinese driver's phone runs an hour ahead
    "slot": ("Khung giờ: {slot} (giờ Việt Nam)", "预约时段：{slot}（越南时间，UTC+7）",
             "Slot: {slot} Vietnam time (UTC+7)"),
    "deadline": ("Hãy có mặt tại cửa khẩu trước {deadline} (giờ Việt Nam)", "请于{deadline}（越南时间，UTC+7）前到达口岸",
                 "Be at the gate before {deadline} Vietnam time (UTC+7)"),
    # the SMS/Zalo text a called driver gets (:mod:`.called`): the gate's name as the directory gives it
    "called_notice": ("Tờ khai {code}: xe của bạn được gọi vào {gate}. Hãy có mặt trước {deadline} (giờ Việt Nam)",
                      "申报{code}：您的车辆已叫号，请于{deadline}（越南时间，UTC+7）前到达{gate}",
                      "Declaration {code}: you are called to {gate}. Be there before {deadline} Vietnam time (UTC+7)"),
    "why": ("Thứ tự: làn ưu tiên trước, rồi khung giờ sớm hơn, rồi xe vào bãi sớm hơn",
            "排序规则：优先通道优先，其次预约时段较早者，再次进入等候区较早者",
            "Order: priority lane first, then earlier slot, then earlier arrival in the yard"),
    # a traffic police order (lệnh điều tiết) to this truck, its text as the officer wrote it
    "order_hold": ("Cảnh sát giao thông yêu cầu dừng chờ: {message}", "交警指令：请停车等候。{message}",
                   "Traffic police order: stop and wait. {message}"),
    "order_proceed": ("Cảnh sát giao thông cho phép đi tiếp: {message}", "交警指令：可以继续通行。{message}",
                      "Traffic police order: you may proceed. {message}"),
    "order_reroute": ("Cảnh sát giao thông yêu cầu đổi tuyến: {message}", "交警指令：请改道行驶。{message}",
                      "Traffic police order: take another route. {message}"),
    "order_slow-down": ("Cảnh sát giao thông yêu cầu giảm tốc độ: {message}", "交警指令：请减速慢行。{message}",
                        "Traffic police order: slow down. {message}"),
    "not_found": ("Không tìm thấy tờ khai với mã và biển số này", "未找到该编号和车牌的申报",
                  "No declaration with this code and plate"),
    "enter_code": ("Hãy nhập mã tờ khai (tối đa 20 ký tự)", "请输入申报编号（最多20个字符）",
                   "Enter the declaration code (at most 20 characters)"),
    "enter_plate": ("Hãy nhập biển số xe đầu kéo hoặc rơ moóc (tối đa 20 ký tự)", "请输入牵引车或挂车的车牌号（最多20个字符）",
                    "Enter the tractor or trailer plate (at most 20 characters)"),
    "busy": ("Hệ thống tra cứu tạm thời gián đoạn, vui lòng thử lại sau ít phút", "查询系统暂时无法使用，请稍后再试",
             "The lookup is unavailable for a moment; try again in a few minutes"),
}

RULES = (("Làn ưu tiên đi trước làn thường", "优先通道先于普通通道", "priority lane before normal lane"),
         ("sau đó khung giờ sớm hơn đi trước", "其次预约时段较早者优先", "then earlier slot first"),
         ("sau đó xe vào bãi sớm hơn đi trước", "再次进入等候区较早者优先", "then earlier arrival in the yard"))
"""The queue's order rules (:func:`.queue.explain_counts`), as the driver reads them."""

NATIONALITY = {"VN": "vi", "CN": "zh"}
"""The language a driver is texted in, by nationality; any other nationality reads English."""


def pick(accept_language: str | None) -> str:
    """The best of vi/zh/en for an Accept-Language header (q-values honoured; default vi)."""
    best, best_q = "vi", -1.0
    for i, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        tag = tag.strip().lower()
        q = 1.0
        for p in params.split(";"):
            k, _, val = p.strip().partition("=")
            if k == "q":
                try:
                    q = float(val)
                except ValueError:
                    q = 0.0
        lang = tag.split("-")[0]
        if lang in LANGUAGES and q > best_q and q > 0:
            best, best_q = lang, q
    return best


def t(key: str, lang: str, **values) -> str:
    return TEXT[key][LANGUAGES.index(lang)].format(**values)


def status(state: str, lang: str) -> str:
    return STATUS[state][LANGUAGES.index(lang)]


def rules(lang: str) -> list[str]:
    return [r[LANGUAGES.index(lang)] for r in RULES]


def of_nationality(nationality: str | None) -> str:
    return NATIONALITY.get(nationality or "", "en")


def of_driver(doc: dict) -> str:
    """The language the declaration ``doc``'s driver is texted in (:data:`NATIONALITY`); a
    declaration with no driver's nationality (none given, or minimised) reads English."""
    return of_nationality((doc.get("driver") or {}).get("nationality"))
