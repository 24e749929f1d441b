"""The local population registry's citizens: fixed test citizens plus generated Lạng Sơn people.

Generated deterministically (one seeded ``random.Random``) so every local cloud and every test
run holds the same registry. Names follow Lạng Sơn's population: Kinh surnames beside the
Tày and Nùng ones (Hoàng, Nông, Lương, Vi, Lăng, Chu, Mông, Hà, Triệu, Lộc, Đàm …). Most are
registered at birth in Lạng Sơn (CCCD province code 020); some elsewhere.

The fixed test citizens (:data:`KNOWN`, documented in ``functions/identity/README.md``) are what
tests, the e2e journey and a developer at the local cloud sign in with.
"""

from __future__ import annotations

import random
from datetime import date, timedelta

from lscloud.identifiers import parse_cccd

from .population import Citizen

# id_number, full name, date of birth, sex — the CCCD's century/sex digit and year agree
KNOWN: tuple[Citizen, ...] = (
    Citizen("020095001234", "Nguyễn Văn An", date(1995, 3, 12), "male"),
    Citizen("020196004321", "Hoàng Thị Lan", date(1996, 11, 2), "female"),
    Citizen("020088002468", "Nông Văn Thắng", date(1988, 7, 30), "male"),
    Citizen("020305000789", "Lương Thị Hòa", date(2005, 1, 19), "female"),
    Citizen("020172013579", "Vi Thị Thúy", date(1972, 9, 5), "female"),
    Citizen("001090012345", "Trần Minh Đức", date(1990, 6, 21), "male"),
)

GENERATED = 300
SEED = 20  # Lạng Sơn's province code

_SURNAMES = (("Nguyễn", 20), ("Hoàng", 14), ("Nông", 10), ("Lương", 8), ("Vi", 7), ("Lăng", 5), ("Chu", 5),
             ("Trần", 6), ("Lê", 5), ("Phạm", 3), ("Mông", 3), ("Hà", 4), ("Triệu", 4), ("Lộc", 3), ("Đàm", 3),
             ("Hoàng", 2), ("Ngô", 2), ("Đinh", 2), ("Bế", 3), ("Lý", 3), ("Dương", 2), ("Vũ", 2))
_MIDDLE = {"male": ("Văn", "Văn", "Văn", "Đức", "Minh", "Quốc", "Thanh", "Hữu", "Công", "Ngọc"),
           "female": ("Thị", "Thị", "Thị", "Thu", "Ngọc", "Thanh", "Minh", "Hồng", "Kim", "Bích")}
_GIVEN = {"male": ("An", "Bình", "Cường", "Dũng", "Dương", "Hải", "Hùng", "Huy", "Khánh", "Kiên", "Lâm",
                   "Long", "Mạnh", "Nam", "Phong", "Quang", "Quân", "Sơn", "Thắng", "Thành", "Tiến", "Toàn",
                   "Trung", "Tuấn", "Tùng", "Việt", "Vinh", "Đạt", "Định", "Hưng", "Pháo", "Slam"),
          "female": ("Anh", "Chi", "Dung", "Giang", "Hà", "Hạnh", "Hằng", "Hiền", "Hoa", "Hòa", "Hương", "Huyền",
                     "Lan", "Liên", "Linh", "Loan", "Mai", "Nga", "Ngân", "Nhung", "Phương", "Quỳnh", "Thảo",
                     "Thúy", "Trang", "Tuyết", "Vân", "Yến", "Mỷ", "Pằn")}
_OTHER_PROVINCES = ("001", "004", "019", "022", "024", "027", "038", "079")


def _weighted(rng: random.Random, pairs) -> str:
    names, weights = zip(*pairs)
    return rng.choices(names, weights=weights)[0]


def generate(n: int = GENERATED, seed: int = SEED) -> list[Citizen]:
    """``n`` distinct citizens with valid CCCDs, names and dates of birth (1940–2008)."""
    rng = random.Random(seed)
    taken = {c.id_number for c in KNOWN}
    out: list[Citizen] = []
    while len(out) < n:
        sex = rng.choice(("male", "female"))
        born = date(1940, 1, 1) + timedelta(days=rng.randrange((date(2008, 12, 31) - date(1940, 1, 1)).days))
        province = "020" if rng.random() < 0.85 else rng.choice(_OTHER_PROVINCES)
        digit = (born.year // 100 - 19) * 2 + (sex == "female")
        number = f"{province}{digit}{born.year % 100:02d}{rng.randrange(1_000_000):06d}"
        if number in taken:
            continue
        taken.add(number)
        parsed = parse_cccd(number, today=date(2025, 7, 1))
        assert parsed.birth_year == born.year and parsed.sex == sex
        name = f"{_weighted(rng, _SURNAMES)} {rng.choice(_MIDDLE[sex])} {rng.choice(_GIVEN[sex])}"
        out.append(Citizen(number, name, born, sex))
    return out


def all_citizens() -> list[Citizen]:
    return list(KNOWN) + generate()
