"""Patrols and incidents with known numbers, for the analysis tests."""

from __future__ import annotations

from datetime import datetime, timedelta

from geodata.cleaning import Transport
from patrol.accounts import Principal
from patrol.incidents import IncidentReport, report_incident
from patrol.models import User
from patrol.patrols import UploadOptions, upload_patrol
from patrol.settings import IncidentSettings, PatrolSettings
from utils.factories import add_users
from utils.places import inside
from utils.tracks import START, crossing, gpx

GRID = "LJ-GQ-03"
MARCH = "2026-03"  # the walks of utils.tracks start on 2 March 2026


def who(session, name) -> Principal:
    return Principal.of(session.query(User).filter_by(username=name).one())


def walk(session, tmp_path, *, day: int) -> dict:
    lon, lat, times, expected = crossing(GRID)
    times = [t + timedelta(days=day) for t in times]
    path = tmp_path / f"walk-{day}.gpx"
    path.write_bytes(gpx(lon, lat, times))
    upload_patrol(session, path, filename=path.name, principal=who(session, "member"),
                  options=UploadOptions(transport=Transport.FOOT), settings=PatrolSettings())  # fmt: skip
    session.commit()
    return expected


def report(session, code=GRID, *, at: datetime, category="rubbish", by="member", lonlat=None) -> int:
    lon, lat = lonlat or inside(code)
    incident = report_incident(session, who(session, by), IncidentReport(category=category, lon=lon, lat=lat,
                               observed_at=at), IncidentSettings(), now=at + timedelta(minutes=5))  # fmt: skip
    session.commit()
    return incident.id


def march_of_walks_and_reports(sessions, tmp_path) -> list[dict]:
    """Two walks through LJ-GQ-03 and three rubbish reports in it, all in March 2026; the
    standard users. Returns what each walk should count (``utils.tracks.crossing``)."""
    add_users(sessions)
    with sessions() as session:
        walks = [walk(session, tmp_path, day=d) for d in (0, 7)]
        for d in (1, 2, 9):
            report(session, at=START + timedelta(days=d))
    return walks
