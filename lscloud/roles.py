"""The platform's roles: one registry that authentication, the OpenAPI documents, the access
tables (``functions/<name>/access.yaml``) and the role-matrix tests all read.

A role is the ``role`` claim of a bearer token (people and devices), except ``bank``: partner
banks sign their requests instead (:func:`lscloud.auth.sign_request`). ``@allow`` refuses a role
that is not here, and an access table may name only these, so a typo or a role nobody issues
stops the start or a test instead of quietly locking a route. Adding a role: add it here with its
meaning in English and Vietnamese, then name it where it may call.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

PUBLIC = "public"
"""Not a role: anyone, with or without a token."""
EVENTING = "eventing"
"""Not a role: the platform's event delivery to ``/events`` (Knative Eventing, the local dispatcher)."""
PARTNER = "bank"
"""The role of a partner bank's signed request."""


@dataclass(frozen=True)
class Role:
    name: str
    en: str
    vi: str
    credential: str = "token"   # "token": a bearer JWT with this role claim; "signature": a signed partner request

    def as_dict(self) -> dict:
        return {"name": self.name, "en": self.en, "vi": self.vi, "credential": self.credential}


_ROLES = (
    Role("citizen", "a resident signed in with a verified CCCD (sub = the CCCD number)",
         "công dân đã xác thực bằng căn cước công dân (sub = số CCCD)"),
    Role("enterprise", "a business acting under its tax code (sub = the tax code)",
         "doanh nghiệp, định danh bằng mã số thuế (sub = mã số thuế)"),
    Role("driver", "a truck driver at a border gate (sub = ID card or passport number)",
         "lái xe qua cửa khẩu (sub = số giấy tờ tùy thân hoặc hộ chiếu)"),
    Role("officer", "a civil servant of an agency (agency and unit claims: which agency, which office or gate)",
         "cán bộ, công chức của một cơ quan (agency, unit: cơ quan, đơn vị hoặc cửa khẩu)"),
    Role("supervisor", "an agency's head or supervisor, who oversees the agency's work (agency claim)",
         "lãnh đạo, người giám sát công việc của cơ quan (agency)"),
    Role("operator", "the platform's operations staff (province data centre)",
         "cán bộ vận hành nền tảng (trung tâm dữ liệu tỉnh)"),
    Role("auditor", "an inspector or auditor: reads records and figures, changes nothing",
         "thanh tra, kiểm toán: chỉ xem hồ sơ và số liệu, không thay đổi"),
    Role("ioc", "the intelligent operations centre (IOC): reads figures for its wall",
         "trung tâm điều hành thông minh (IOC): xem số liệu tổng hợp"),
    Role("teller", "a post-office teller at a soft-ATM point (unit = the point's code)",
         "giao dịch viên bưu điện tại điểm ATM mềm (unit = mã điểm)"),
    Role("yard-operator", "staff of a border gate's waiting yard (unit = the gate)",
         "nhân viên điều hành bãi chờ của cửa khẩu (unit = cửa khẩu)"),
    Role("gate-operator", "staff who call trucks into a border gate (unit = the gate)",
         "nhân viên điều hành luồng xe vào cửa khẩu (unit = cửa khẩu)"),
    Role("device", "a field device: a gate's weighbridge, plate camera or barrier (unit = the gate), or an "
                   "environmental monitoring station's sensor (unit = the station); sub = device id",
         "thiết bị hiện trường: cân, camera nhận dạng biển số, barie tại cửa khẩu (unit = cửa khẩu) hoặc cảm biến "
         "của trạm quan trắc môi trường (unit = mã trạm); sub = mã thiết bị"),
    Role("notifier", "the province's SMS/Zalo notification gateway, a service account (sub = its client id): "
                     "fetches the phone numbers of the messages it sends",
         "cổng gửi tin nhắn SMS/Zalo của tỉnh, tài khoản dịch vụ (sub = mã ứng dụng): lấy số điện thoại để gửi tin"),
    Role("producer", "a farm, cooperative or firm that registers traceable lots (sub = its tax code)",
         "cơ sở sản xuất, hợp tác xã hoặc doanh nghiệp đăng ký lô hàng truy xuất nguồn gốc (sub = mã số thuế)"),
    Role("team-member", "a member of a community digital technology team (unit = the commune)",
         "thành viên Tổ công nghệ số cộng đồng (unit = xã, phường)"),
    Role("team-leader", "the leader of a community digital technology team (unit = the commune)",
         "tổ trưởng Tổ công nghệ số cộng đồng (unit = xã, phường)"),
    Role("commune-officer", "a commune People's Committee officer for digital transformation (unit = the commune)",
         "công chức UBND xã, phường phụ trách chuyển đổi số (unit = xã, phường)"),
    Role("admin", "a platform administrator (reserved: no endpoint admits it yet)",
         "quản trị hệ thống (dự phòng: chưa chức năng nào cho phép)"),
    Role(PARTNER, "a partner bank, calling with requests signed by its keys (not a token)",
         "ngân hàng đối tác, gọi bằng yêu cầu ký bằng khóa của mình (không dùng mã xác thực)",
         credential="signature"),
)

REGISTRY = MappingProxyType({r.name: r for r in _ROLES})
"""Every role of the platform, by name."""


class UnknownRole(ValueError):
    """A role that is not in :data:`REGISTRY`."""


def known(name: str) -> bool:
    return name in REGISTRY


def get(name: str) -> Role:
    """The registered role ``name``; :class:`UnknownRole` if there is none."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise UnknownRole(f"{name!r} is not a platform role; the roles are in lscloud/roles.py: "
                          f"{', '.join(sorted(REGISTRY))}") from None


def names() -> tuple[str, ...]:
    """Every role name, sorted."""
    return tuple(sorted(REGISTRY))


def token_roles() -> tuple[str, ...]:
    """The roles a bearer token may carry, sorted."""
    return tuple(sorted(n for n, r in REGISTRY.items() if r.credential == "token"))
