"""The words people read for the service's codes, Chinese first with English beside.

Pages, maps and exports show these instead of raw codes (``patrol_member``, ``foot``,
``impossible_speed``); sides, towns, stations and teams carry their own names in the database.
"""

from __future__ import annotations

from geodata.cleaning import Flag

ROLE_NAMES: dict[str, tuple[str, str]] = {
    "patrol_member": ("巡护队员", "Patrol member"),
    "station_manager": ("站长", "Station manager"),
    "enforcement_officer": ("执法人员", "Enforcement officer"),
    "admin": ("系统管理员", "Administrator"),
}

TRANSPORT_NAMES: dict[str, tuple[str, str]] = {"foot": ("步行", "On foot"), "boat": ("乘船", "By boat")}

# Why fixes were set aside by the cleaning rules (geodata.cleaning.Flag), as a patrol member reads it.
FLAG_NAMES: dict[str, tuple[str, str]] = {
    "zero_island": ("坐标为 (0, 0)", "at (0, 0) before the device had a position"),
    "out_of_region": ("超出服务区域", "outside the service region"),
    "duplicate": ("重复时间", "same time as the fix before"),
    "time_backwards": ("时间倒退", "time earlier than the fix before"),
    "impossible_speed": ("速度不可能", "impossible speed"),
    "jump": ("跳点", "a spike far from its neighbours"),
    "repeated": ("轨迹重复", "a second copy of the track"),
}
assert set(FLAG_NAMES) == {f.name.lower() for f in Flag}, "every cleaning flag needs its words"


def words(names: dict[str, tuple[str, str]], code: str | None) -> str:
    """``'巡护队员 Patrol member'`` for ``'patrol_member'``; an unknown code is shown as it is."""
    if code is None:
        return ""
    zh, en = names.get(code, (code, ""))
    return f"{zh} {en}".strip()
