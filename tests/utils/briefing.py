"""Hand-made briefings with known answers, for the figure and render tests (no database), and
helpers to read what a PDF or PNG holds."""

from __future__ import annotations

import io
import shutil
import subprocess
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geodata.cleaning import Transport
from patrol.accounts import Principal
from patrol.briefing.collect import Briefing, Totals
from patrol.incidents import IncidentReport, report_incident
from patrol.models import User
from patrol.patrols import UploadOptions, upload_patrol
from patrol.settings import PatrolSettings
from utils.factories import add_users
from utils.places import inside
from utils.tracks import START, crossing, gpx

# Three square grids of 2 km side in UTM 49N near Gaoqiao, side by side; the middle one unpatrolled.
ORIGIN = (390_000.0, 2_380_000.0)
SIDE_M = 2_000.0


def square(i: int) -> shapely.Polygon:
    x0, y0 = ORIGIN[0] + i * SIDE_M, ORIGIN[1]
    return shapely.box(x0, y0, x0 + SIDE_M, y0 + SIDE_M)


def scene_grids() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "code": ["T-01", "T-02", "T-03"],
            "name_zh": ["甲网格", "乙网格", "丙网格"],
            "area_ha": [400.0, 400.0, 400.0],
            "patrols": [12, 0, 3],
            "km": [80.0, 0.0, 6.0],
            "hours": [40.0, 0.0, 4.0],
            "km_per_ha": [0.2, 0.0, 0.015],
        },
        geometry=[square(0), square(1), square(2)],
        crs="EPSG:32649",
    )


def scene_incidents() -> pd.DataFrame:
    reported = pd.Timestamp("2026-11-03T02:00:00Z")
    return pd.DataFrame(
        {
            "id": [1, 2, 3, 4],
            "category": ["cutting", "cutting", "rubbish", "pond"],
            "status": ["reported", "closed", "closed", "in_progress"],
            "grid": ["T-01", "T-01", "T-03", "T-03"],
            # the first one (reported, red) sits in T-01's lower right quarter, away from its label
            "x": [
                ORIGIN[0] + 1500,
                ORIGIN[0] + 400,
                ORIGIN[0] + 2 * SIDE_M + 1500,
                ORIGIN[0] + 2 * SIDE_M + 500,
            ],
            "y": [ORIGIN[1] + 500, ORIGIN[1] + 1600, ORIGIN[1] + 1500, ORIGIN[1] + 500],
            "reported_at": [reported] * 4,
            "closed_at": [pd.NaT, reported + pd.Timedelta(days=2), reported + pd.Timedelta(days=5), pd.NaT],
            "responded_at": [
                pd.NaT,
                reported + pd.Timedelta(hours=1),
                reported + pd.Timedelta(hours=3),
                reported,
            ],
            "accept_due": [reported + pd.Timedelta(hours=4)] * 4,
        }
    )


def scene_briefing(**changes) -> Briefing:
    grids = scene_grids()
    weekly = pd.DataFrame(
        {"week": [date(2026, 10, 26), date(2026, 11, 2), date(2026, 11, 9), date(2026, 11, 16),
                  date(2026, 11, 23), date(2026, 11, 30)],
         "km": [5.0, 20.0, 25.0, 18.0, 14.0, 4.0], "patrols": [1, 4, 4, 3, 2, 1]}
    )  # fmt: skip
    hot = gpd.GeoDataFrame(
        {"kind": ["hot"], "significant": [True], "z": [3.1]},
        geometry=[shapely.box(ORIGIN[0] + 250, ORIGIN[1] + 250, ORIGIN[0] + 750, ORIGIN[1] + 750)],
        crs="EPSG:32649",
    )
    values = dict(
        month="2026-11",
        scope_zh="廉江市",
        scope_en="Lianjiang",
        generated_at=datetime(2026, 12, 3, 4, 0, tzinfo=UTC),
        totals=Totals(patrols=15, km=86.0, hours=44.0, incidents=4, on_time_response_rate=0.75),
        previous=Totals(patrols=12, km=70.0, hours=40.0, incidents=5, on_time_response_rate=0.8),
        previous_month="2026-10",
        grids=grids,
        incidents=scene_incidents(),
        hotspots=hot,
        weekly=weekly,
        rates=[
            {
                "grid": "T-01",
                "incidents": 2,
                "km": 80.0,
                "hours": 40.0,
                "per_10km": 0.25,
                "per_10km_low": 0.03,
                "per_10km_high": 0.9,
                "per_100h": 5.0,
                "per_100h_low": 0.61,
                "per_100h_high": 18.06,
                "too_little": False,
            },
            {
                "grid": "T-03",
                "incidents": 2,
                "km": 6.0,
                "hours": 4.0,
                "per_10km": 3.33,
                "per_10km_low": 0.4,
                "per_10km_high": 12.04,
                "per_100h": 50.0,
                "per_100h_low": 6.06,
                "per_100h_high": 180.6,
                "too_little": True,
            },
        ],  # fmt: skip
        unpatrolled=[{"code": "T-02", "name_zh": "乙网格", "last_patrolled": "2026-09-14"}],
        recurring=[
            {
                "grid": "T-01",
                "category": "cutting",
                "months_count": 3,
                "count": 5,
                "months_seen": "2026-09, 2026-10, 2026-11",
            }
        ],  # fmt: skip
        priorities=[
            {
                "grid": "T-02",
                "score": 0.91,
                "reasons": ["本月未巡护 not patrolled this month"],
                "name_zh": "乙网格",
            },
            {
                "grid": "T-01",
                "score": 0.7,
                "reasons": ["热点 hot spot", "反复发生 recurring cutting"],
                "name_zh": None,
            },
        ],
        assessment=[{"team": "LJ-T-GQ", "patrols": 15, "quota": 8, "score": 92.5}],
        categories={
            "cutting": ("砍伐", "Cutting"),
            "rubbish": ("垃圾", "Rubbish"),
            "pond": ("养殖塘", "Ponds"),
        },
    )
    values.update(changes)
    return Briefing(**values)


def empty_briefing() -> Briefing:
    grids = scene_grids().assign(patrols=0, km=0.0, hours=0.0, km_per_ha=0.0)
    return scene_briefing(
        totals=Totals(), previous=Totals(), incidents=scene_incidents().iloc[0:0], hotspots=None,
        weekly=pd.DataFrame({"week": [], "km": [], "patrols": []}), rates=[], recurring=[], priorities=[],
        assessment=None, grids=grids,
        unpatrolled=[{"code": c, "name_zh": "", "last_patrolled": None} for c in grids.code],
    )  # fmt: skip


def pdf_text(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "brief.pdf"
    path.write_bytes(pdf)
    return subprocess.run(
        [shutil.which("pdftotext") or "pdftotext", "-layout", str(path), "-"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip


def pdf_pages_png(pdf: bytes, folder: Path, stem: str, dpi: int = 60) -> list[Path]:
    """Every page as PNG (pdftoppm), for a person to look at."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stem}.pdf"
    path.write_bytes(pdf)
    for old in folder.glob(f"{stem}-*.png"):
        old.unlink()
    subprocess.run(["pdftoppm", "-png", "-r", str(dpi), str(path), str(folder / stem)], check=True)
    return sorted(folder.glob(f"{stem}-*.png"))


def png_pixels(png: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


# --- a database scene: last month's patrols and incidents on both sides ---------------------------

CHINA = ZoneInfo("Asia/Shanghai")
GRID = "LJ-GQ-03"


def month_of(day: date) -> str:
    return f"{day.year}-{day.month:02d}"


def months_ago(n: int) -> str:
    today = datetime.now(CHINA).date().replace(day=1)
    for _ in range(n):
        today = (today - timedelta(days=1)).replace(day=1)
    return month_of(today)


def first_instant(month: str) -> datetime:
    return datetime.combine(date(int(month[:4]), int(month[5:]), 1), time(), tzinfo=CHINA).astimezone(UTC)


def who(session, name) -> Principal:
    return Principal.of(session.query(User).filter_by(username=name).one())


def walk(session, tmp_path, at: datetime, by: str = "member") -> None:
    lon, lat, times, _ = crossing(GRID)
    times = [t - START + at for t in times]
    path = tmp_path / f"walk-{at:%Y%m%d%H}.gpx"
    path.write_bytes(gpx(lon, lat, times))
    upload_patrol(session, path, filename=path.name, principal=who(session, by),
                  options=UploadOptions(transport=Transport.FOOT), settings=PatrolSettings())  # fmt: skip
    session.commit()


def report(session, settings, code: str, at: datetime, by: str = "member", category="rubbish") -> int:
    lon, lat = inside(code)
    incident = report_incident(session, who(session, by), IncidentReport(category=category, lon=lon, lat=lat,
                               observed_at=at), settings.incidents, now=at + timedelta(minutes=5))  # fmt: skip
    session.commit()
    return incident.id


def seed_scene(sessions, settings, tmp_path):
    """Last month: two walks through LJ-GQ-03 and incidents in Lianjiang (LJ-GQ-03, LJ-AP-02) and
    Hepu (HP-SK-06, 7 km from the border; HP-SK-03, 1 km from it); the month before: one walk."""
    add_users(sessions)
    month, before = months_ago(1), months_ago(2)
    t0 = first_instant(month) + timedelta(days=2, hours=1)
    with sessions() as session:
        walk(session, tmp_path, t0)
        walk(session, tmp_path, t0 + timedelta(days=7))
        walk(session, tmp_path, first_instant(before) + timedelta(days=3, hours=1))
        ids = {
            "gq": report(session, settings, GRID, t0 + timedelta(days=1)),
            "ap": report(session, settings, "LJ-AP-02", t0 + timedelta(days=2), category="cutting"),
            "hp_far": report(session, settings, "HP-SK-06", t0 + timedelta(days=3), by="member-hp"),
            "hp_near": report(session, settings, "HP-SK-03", t0 + timedelta(days=3), by="member-hp"),
        }
    return month, ids
