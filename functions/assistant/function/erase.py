"""An erasure request's part in the assistant: ``erase(runtime, subject) -> report`` (:mod:`lscloud.erasure`;
run by ``lscloud erase`` and ``python -m lscloud.serve --erase``).

The assistant keeps two things per caller, both expiring (:mod:`.models`):

- conversations (the procedure and intent last talked about, the language, and the catalogue's
  words the last question shared with the procedures it was answered with — no words of the
  caller's, :mod:`.models`), each keyed by a pseudonym of the caller AND the app's session id,
  which the function never keeps apart: nothing finds a person's conversations without that id,
  short of reading all of them. So they are not erased here; each is forgotten
  ``ASSISTANT_SESSION_TTL_S`` (30 minutes by default) after its last message and deleted by the
  platform's sweep, and the report says so;
- the message counters of the rate limit, keyed by a pseudonym of a signed-in caller's subject (a
  citizen's: their CCCD): found by one listing and ERASED (a count only; a later message starts a new one).

The questions logged for quality review have identifiers masked (:func:`.chat.masked`) and are kept
by the log store, not here.
"""

from __future__ import annotations

from lscloud import erasure
from lscloud.store import DoesNotExist

from .models import RateWindow

KEPT_LAW = erasure.TO_CONFIRM
WINDOWS = 100
"""Counter windows read at most (they expire within two of their length: a few at once)."""
CONVERSATIONS = {
    "what": "các cuộc hội thoại với trợ lý (thủ tục, ý định, ngôn ngữ và các từ của danh mục thủ tục mà câu hỏi "
            "gần nhất có chung với thủ tục được trả lời; không giữ lời hỏi của người dùng) / conversations with the "
            "assistant (the procedure, intent, language, and the catalogue's words the last question shared with "
            "the procedures it was answered with; none of the person's own words are kept)",
    "why": "khóa theo người hỏi và mã phiên của ứng dụng, nên không tìm được nếu không đọc toàn bộ; mỗi cuộc tự bị xóa "
           "sau tin nhắn cuối 30 phút (mặc định, ASSISTANT_SESSION_TTL_S) / keyed by the caller and the app's session "
           "id, so they cannot be found without a full scan; each is forgotten 30 minutes (by default, "
           "ASSISTANT_SESSION_TTL_S) after its last message and deleted by the platform's sweep",
    "law": KEPT_LAW}


def erase(runtime, subject: erasure.Subject) -> dict:
    """Erase the subject's message counters; say why their conversations are left to expire."""
    if subject.kind != "cccd":
        return {"found": 0, "erased": [], "kept": [CONVERSATIONS]}   # a caller is named by a token's subject
    erased = 0
    # the caller as lscloud.ratelimit.caller_subject names a signed-in one, under the limiter's purpose
    for window in RateWindow.query(subject.pseudonym(RateWindow.Meta.table, "sub:{value}"), limit=WINDOWS):
        try:
            RateWindow(window.subject, window.window).delete()
            erased += 1
        except DoesNotExist:
            continue
    return {"found": erased,
            "erased": [{"what": "bộ đếm tin nhắn của người này (giới hạn tần suất) / the person's message counters "
                                "(a rate limit)", "count": erased}],
            "kept": [CONVERSATIONS]}
