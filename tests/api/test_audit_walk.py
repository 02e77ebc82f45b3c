"""Every write leaves exactly one audit entry: a walk over every write route of the app and every
command of the CLI.

The rule: one write operation — one API request, one page form submission, one CLI command (one
file of a batch upload: each file is its own transaction) — appends exactly ONE entry, in the
same transaction. An operation that makes several objects (a report with its photo, a joint case
with its participants and incidents) leaves one entry for the main object that names the others.
A refused request, a dry run, or a repeat answered with what is already stored leaves none.

ADDING A WRITE ROUTE OR COMMAND? ``test_every_write_route_has_a_case`` (and its CLI twin) fail
until it has a row below:
- ROUTE_CASES: (METHOD, path as declared) → Case(action its entry has, users whose tokens the steps
  use, valid request, refused requests as (expected status, request), optional prepare).
- CLI_CASES (writes) or CLI_READ_ONLY (reads: run once, must leave no entry).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from utils.audit import cli_commands, entries_of, entry_count, newest, write_routes
from utils.evidence import tiny_package
from utils.factories import CSRF, PASSWORD, add_users, auth, sign_in
from utils.places import inside
from utils.tracks import crossing, gpx

from api.cli import build_parser
from api.cli import main as cli
from geodata import reference
from patrol import audit
from patrol.accounts import Principal
from patrol.incidents import IncidentReport, report_incident
from patrol.models import Incident, Patrol, User
from patrol.settings import get_settings

WORKTREE = Path(__file__).resolve().parents[2]
GQ03 = inside("LJ-GQ-03")
AP02 = inside("LJ-AP-02")
SK05 = inside("HP-SK-05")

NEW_PASSWORD = "mudflat at dawn"


# --- the world a case runs in ----------------------------------------------------------------------


@dataclass
class World:
    client: Any
    sessions: Any
    settings: Any
    tmp_path: Path
    monkeypatch: Any
    headers: dict[str, dict[str, str]] = field(default_factory=dict)

    def sign_in(self, *users: str) -> None:
        """Fetch tokens before a measurement (a sign-in may be audited itself)."""
        for user in users:
            if user not in self.headers:
                self.headers[user] = auth(self.client, user)

    def auth(self, user: str) -> dict[str, str]:
        assert user in self.headers, f"list {user!r} in the case's users: its token is fetched beforehand"
        return self.headers[user]

    def track(self, day: int = 0) -> bytes:
        lon, lat, times, _ = crossing("LJ-GQ-03", interval=5)
        return gpx(lon, lat, [t + timedelta(days=day) for t in times])

    def upload(self, user: str = "member", day: int = 0, **form) -> httpx.Response:
        files = {"file": (f"walk-{day}.gpx", self.track(day))}
        return self.client.post("/api/v1/patrols", files=files, data=form, headers=self.auth(user))

    def report(self, user: str = "member", where=GQ03, **extra) -> httpx.Response:
        body = {"category": "rubbish", "lon": where[0], "lat": where[1]} | extra
        return self.client.post("/api/v1/incidents", json=body, headers=self.auth(user))

    def incident(self, user: str = "member", where=GQ03) -> dict:
        self.sign_in(user)
        response = self.report(user, where)
        assert response.status_code == 201, response.text
        return response.json()

    def joint_case(self) -> dict:
        incident = self.incident("member", AP02)
        self.sign_in("officer-lj")
        body = {"title": "英罗湾排污", "incident_ids": [incident["id"]], "participants": ["officer-hp"]}
        response = self.client.post("/api/v1/joint-cases", json=body, headers=self.auth("officer-lj"))
        assert response.status_code == 201, response.text
        return response.json()

    def page(self, user: str, path: str) -> str:
        """Sign ``user`` in through the login page; the CSRF token of the form at ``path``."""
        sign_in(self.client, user)
        return CSRF.search(self.client.get(path).text).group(1)

    def survey(self, name: str = "survey.geojson") -> Path:
        path = self.tmp_path / name
        grids = reference.load_grids(side="GD-LJ")[["code", "name_zh", "name_en", "town", "geometry"]]
        grids.to_file(path, driver="GeoJSON")
        return path

    def import_grids(self, path: Path, **form) -> httpx.Response:
        with open(path, "rb") as f:
            files = {"file": (path.name, f)}
            return self.client.post(
                "/api/v1/grids/import", files=files, data=form, headers=self.auth("admin")
            )


def png() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (12, 9), (30, 120, 60)).save(buffer, format="PNG")
    return buffer.getvalue()


Step = Callable[[World, Any], Any]


@dataclass(frozen=True)
class Case:
    action: str  # the action of the one entry a valid request leaves
    users: tuple[str, ...]  # whose tokens the steps use (fetched before measuring)
    valid: Step  # (world, prepared) → response of the request that must succeed
    refused: tuple[tuple[int, Step], ...] = ()  # (status, request) each leaving no entry
    prepare: Callable[[World], Any] = lambda w: None
    channel: str = "api"
    actor: str | None = None  # default: the first of ``users``


def _post(path: str, user: str, **kwargs) -> Step:
    return lambda w, p: w.client.post(path.format(**(p or {})), headers=w.auth(user), **kwargs)


def _act(user: str, action: str, *, stale: bool = False, **extra) -> Step:
    def step(w, incident):
        body = {"action": action, "version": incident["version"] + (5 if stale else 0), **extra}
        return w.client.post(
            f"/api/v1/incidents/{incident['id']}/transitions", json=body, headers=w.auth(user)
        )

    return step


def _refer(user: str, to_side: str, *, stale: bool = False) -> Step:
    def step(w, incident):
        body = {"to_side": to_side, "version": incident["version"] + (5 if stale else 0)}
        return w.client.post(f"/api/v1/incidents/{incident['id']}/referral", json=body, headers=w.auth(user))

    return step


def _link(user: str, patrol: str = "mine") -> Step:
    def step(w, prepared):
        incident, patrol_id = prepared
        body = {"patrol_id": patrol_id if patrol == "mine" else 2**31 - 1}
        return w.client.post(f"/api/v1/incidents/{incident['id']}/patrol", json=body, headers=w.auth(user))

    return step


def _photo(user: str, data: bytes) -> Step:
    def step(w, incident):
        files = {"file": ("p.png", data, "image/png")}
        return w.client.post(f"/api/v1/incidents/{incident['id']}/photos", files=files, headers=w.auth(user))

    return step


def _open_case(user: str, participants: list[str]) -> Step:
    def step(w, incident):
        body = {"title": "英罗湾排污", "incident_ids": [incident["id"]], "participants": participants}
        return w.client.post("/api/v1/joint-cases", json=body, headers=w.auth(user))

    return step


def _case_step(user: str, what: str, body: Callable[[dict], dict]) -> Step:
    def step(w, case):
        return w.client.post(
            f"/api/v1/joint-cases/{case['id']}/{what}", json=body(case), headers=w.auth(user)
        )

    return step


def _page_upload(with_file: bool = True, **form) -> Step:
    def step(w, token):
        files = {"file": ("walk.gpx", w.track(day=3))} if with_file else None
        return w.client.post("/patrols/upload", files=files, data={"csrf_token": token, **form})

    return step


def _page_report(photo: bytes | None, **fields) -> Step:
    def step(w, token):
        data = {"csrf_token": token, "category": "cutting", "lon": str(GQ03[0]), "lat": str(GQ03[1])}
        files = {"photo": ("p.png", photo, "image/png")} if photo is not None else None
        return w.client.post("/incidents/report", data=data | fields, files=files, follow_redirects=False)

    return step


def _page_open_case(participants: list[str], csrf: str | None = None, **fields) -> Step:
    def step(w, prepared):
        incident, token = prepared
        data = {"csrf_token": csrf or token, "title": "英罗湾排污", "incident_ids": str(incident["id"]),
                "participants": participants} | fields  # fmt: skip
        return w.client.post("/joint-cases/new", data=data, follow_redirects=False)

    return step


def _desk_prepare(user: str = "manager", *, case: bool = False) -> Callable[[World], dict]:
    """An incident (and a joint case) and ``user`` signed in on its page: its form's CSRF token."""

    def prepare(w: World) -> dict:
        joint = w.joint_case() if case else None
        incident = w.incident("member", GQ03)
        token = w.page(user, f"/incidents/{incident['id']}")
        return {"incident": incident, "csrf": token, "case": joint}

    return prepare


def _desk(what: str, *, stale: bool = False, forged: bool = False, **fields) -> Step:
    """A form of the incident page sent (the version it was drawn with, unless stale)."""

    def step(w, p):
        incident = p["incident"]
        data = {
            "csrf_token": "forged" if forged else p["csrf"],
            "version": str(incident["version"] + (5 if stale else 0)),
            **({"case_id": str(p["case"]["id"])} if p["case"] else {}),
            **fields,
        }
        return w.client.post(f"/incidents/{incident['id']}/{what}", data=data, follow_redirects=False)

    return step


def _page_case_step(what: str, fields: Callable[[dict], dict], csrf: str | None = None) -> Step:
    def step(w, prepared):
        case, token = prepared
        data = {"csrf_token": csrf or token, **fields(case)}
        return w.client.post(f"/joint-cases/{case['id']}/{what}", data=data, follow_redirects=False)

    return step


def _page_case(user: str, prepare: Callable[[World], dict] = lambda w: w.joint_case()):
    """A joint case (from the API), and ``user`` signed in at its page: (case, CSRF token)."""

    def prepared(w: World) -> tuple[dict, str]:
        case = prepare(w)
        return case, w.page(user, f"/joint-cases/{case['id']}")

    return prepared


def _prepare_both_incidents(w: World) -> dict:
    """A joint case, and a Hepu incident to bring into it."""
    case = w.joint_case()
    theirs = w.incident("member-hp", SK05)
    return {**case, "theirs": theirs["id"], "ours": case["incidents"][0]["id"]}


def _new_user(**overrides) -> dict:
    user = {"username": "yz-member-01", "password": "tide comes in twice", "side": "GD-LJ",
            "roles": [{"role": "patrol_member", "team": "LJ-T-YZ"}]}  # fmt: skip
    return user | overrides


def _quota(w: World, user: str, grid: str, patrols, km) -> httpx.Response:
    body = {"patrols_per_month": patrols, "km_per_month": km}
    return w.client.put(f"/api/v1/grids/{grid}/quota", json=body, headers=w.auth(user))


ROUTE_CASES: dict[tuple[str, str], Case] = {
    ("POST", "/api/v1/grids/import"): Case(
        "grid_import.import",
        ("admin",),
        prepare=lambda w: w.survey(),
        valid=lambda w, path: w.import_grids(path),
        refused=(
            (200, lambda w, path: w.import_grids(path, dry_run="true")),
            (422, lambda w, path: w.import_grids(_text_file(w, "broken.geojson", "{not json"))),
        ),
    ),
    ("PUT", "/api/v1/grids/{code}/quota"): Case(
        "grid_quota.set",
        ("admin", "manager"),
        valid=lambda w, p: _quota(w, "admin", "LJ-GQ-03", 12, 30),
        refused=(
            (422, lambda w, p: _quota(w, "admin", "LJ-GQ-03", -1, 30)),
            (403, lambda w, p: _quota(w, "manager", "LJ-GQ-03", 12, 30)),
            (404, lambda w, p: _quota(w, "admin", "LJ-XX-99", 12, 30)),
        ),
    ),
    ("DELETE", "/api/v1/grids/{code}/quota"): Case(
        "grid_quota.clear",
        ("admin", "manager"),
        prepare=lambda w: (w.sign_in("admin"), _quota(w, "admin", "LJ-GQ-03", 12, 30)),
        valid=lambda w, p: w.client.delete("/api/v1/grids/LJ-GQ-03/quota", headers=w.auth("admin")),
        refused=(
            (403, lambda w, p: w.client.delete("/api/v1/grids/LJ-GQ-03/quota", headers=w.auth("manager"))),
            (200, lambda w, p: w.client.delete("/api/v1/grids/LJ-GQ-04/quota", headers=w.auth("admin"))),
        ),
    ),
    ("POST", "/api/v1/patrols"): Case(
        "patrol.upload",
        ("member",),
        prepare=lambda w: (w.sign_in("member"), w.upload(day=0)),
        valid=lambda w, p: w.upload(day=1),
        refused=(
            (200, lambda w, p: w.upload(day=0)),  # the same file again: the stored patrol, no entry
            (422, lambda w, p: w.upload(day=2, datum="tokyo")),
            (403, lambda w, p: w.upload(day=2, members="member-2")),  # another member's walk
        ),
        actor="member",
    ),
    ("DELETE", "/api/v1/patrols/{patrol_id}"): Case(
        "patrol.delete",
        ("member", "member-2"),
        prepare=lambda w: (w.sign_in("member"), w.upload().json())[1],
        valid=lambda w, p: w.client.delete(f"/api/v1/patrols/{p['id']}", headers=w.auth("member")),
        refused=(
            (403, lambda w, p: w.client.delete(f"/api/v1/patrols/{p['id']}", headers=w.auth("member-2"))),
            (404, lambda w, p: w.client.delete("/api/v1/patrols/999999", headers=w.auth("member"))),
        ),
    ),
    ("POST", "/api/v1/incident-categories"): Case(
        "category.create",
        ("admin", "member"),
        valid=_post(
            "/api/v1/incident-categories",
            "admin",
            json={"code": "oil", "label_zh": "油污", "label_en": "Oil"},
        ),
        refused=(
            (
                409,
                _post(
                    "/api/v1/incident-categories",
                    "admin",
                    json={"code": "rubbish", "label_zh": "垃圾", "label_en": "R"},
                ),
            ),
            (
                422,
                _post(
                    "/api/v1/incident-categories",
                    "admin",
                    json={"code": "Oil spill!", "label_zh": "x", "label_en": "x"},
                ),
            ),
            (
                403,
                _post(
                    "/api/v1/incident-categories",
                    "member",
                    json={"code": "oil", "label_zh": "油", "label_en": "Oil"},
                ),
            ),
        ),
    ),  # fmt: skip
    ("POST", "/api/v1/incidents"): Case(
        "incident.report",
        ("member",),
        valid=lambda w, p: w.report(),
        refused=(
            (422, lambda w, p: w.report(category="alien")),
            (422, lambda w, p: w.report(where=(116.4, 39.9))),  # Beijing
            (422, lambda w, p: w.report(observed_at="2999-01-01T00:00:00Z")),
        ),
    ),
    ("POST", "/api/v1/incidents/{incident_id}/transitions"): Case(
        "incident.transition",
        ("manager", "member"),
        prepare=lambda w: w.incident(),
        valid=_act("manager", "accept", level="town"),
        refused=(
            (409, _act("manager", "accept", stale=True)),
            (422, _act("manager", "reject")),  # a rejection says why
            (409, _act("manager", "close")),
            (403, _act("member", "accept")),
        ),
    ),
    ("POST", "/api/v1/incidents/{incident_id}/referral"): Case(
        "incident.refer",
        ("manager",),
        prepare=lambda w: w.incident(),
        valid=_refer("manager", "GX-HP"),
        refused=((409, _refer("manager", "GX-HP", stale=True)), (422, _refer("manager", "GD-LJ"))),
    ),
    ("POST", "/api/v1/incidents/{incident_id}/patrol"): Case(
        "incident.link_patrol",
        ("member", "member-2"),
        prepare=lambda w: (w.incident(), w.upload().json()["id"]),
        valid=_link("member"),
        refused=((422, _link("member", "unknown")), (404, _link("member-2"))),
    ),
    ("POST", "/api/v1/incidents/{incident_id}/photos"): Case(
        "photo.add",
        ("member", "member-yz"),
        prepare=lambda w: w.incident(),
        valid=_photo("member", png()),
        refused=((422, _photo("member", b"<html>not an image</html>")), (404, _photo("member-yz", png()))),
    ),
    ("POST", "/api/v1/joint-cases"): Case(
        "joint_case.open",
        ("officer-lj",),
        prepare=lambda w: w.incident("member", AP02),
        valid=_open_case("officer-lj", ["officer-hp"]),
        refused=(
            (422, _open_case("officer-lj", ["manager"])),  # one side only
            (422, _open_case("officer-lj", ["member-hp"])),  # a patrol member is no participant
        ),
    ),
    ("POST", "/api/v1/joint-cases/{case_id}/actions"): Case(
        "joint_case.action",
        ("officer-hp", "manager"),
        prepare=lambda w: w.joint_case(),
        valid=_case_step("officer-hp", "actions", lambda c: {"mechanism": "monitoring", "note": "联合采样"}),
        refused=(
            (422, _case_step("officer-hp", "actions", lambda c: {"mechanism": "gossip", "note": "x"})),
            (403, _case_step("manager", "actions", lambda c: {"mechanism": "monitoring", "note": "x"})),
        ),
    ),
    ("POST", "/api/v1/joint-cases/{case_id}/incidents"): Case(
        "joint_case.add_incident",
        ("officer-hp",),
        prepare=_prepare_both_incidents,
        valid=_case_step("officer-hp", "incidents", lambda c: {"incident_id": c["theirs"]}),
        refused=((409, _case_step("officer-hp", "incidents", lambda c: {"incident_id": c["ours"]})),),
    ),
    ("POST", "/api/v1/joint-cases/{case_id}/close"): Case(
        "joint_case.close",
        ("officer-hp",),
        prepare=lambda w: w.joint_case(),
        valid=_case_step("officer-hp", "close", lambda c: {"version": c["version"]}),
        refused=((409, _case_step("officer-hp", "close", lambda c: {"version": c["version"] + 5})),),
    ),
    ("POST", "/patrols/upload"): Case(
        "patrol.upload",
        (),
        prepare=lambda w: w.page("member", "/patrols/upload"),
        valid=_page_upload(datum="wgs84"),
        refused=((422, _page_upload(datum="tokyo")), (422, _page_upload(with_file=False))),
        channel="page",
        actor="member",
    ),
    ("POST", "/incidents/report"): Case(
        # The report and its photo: one submission, one entry (naming the photo).
        "incident.report",
        (),
        prepare=lambda w: w.page("member", "/incidents/report"),
        valid=_page_report(png()),
        refused=(
            (422, _page_report(b"<html>not an image</html>")),  # the incident is not kept either
            (422, _page_report(png(), category="")),
        ),
        channel="page",
        actor="member",
    ),
    # --- joint cases at the desk ---
    ("POST", "/joint-cases/new"): Case(
        "joint_case.open",
        (),
        prepare=lambda w: (w.incident("member", AP02), w.page("officer-lj", "/joint-cases/new")),
        valid=_page_open_case(["officer-hp"]),
        refused=(
            (422, _page_open_case(["manager"])),  # one side only
            (422, _page_open_case(["member-hp"])),  # a patrol member is no participant
            (422, _page_open_case(["officer-hp"], title=" ")),
            (403, _page_open_case(["officer-hp"], csrf="forged")),
        ),
        channel="page",
        actor="officer-lj",
    ),
    # --- the incident desk (pages) ---
    ("POST", "/incidents/{incident_id:int}/transition"): Case(
        "incident.transition",
        (),
        prepare=_desk_prepare("manager"),
        valid=_desk("transition", action="accept", level="town"),
        refused=(
            (403, _desk("transition", forged=True, action="accept")),
            (422, _desk("transition", action="reject", note="")),  # a reason is required
            (409, _desk("transition", stale=True, action="accept")),
            (409, _desk("transition", action="close")),  # not resolved yet: refused, nothing written
        ),
        channel="page",
        actor="manager",
    ),
    ("POST", "/incidents/{incident_id:int}/referral"): Case(
        "incident.refer",
        (),
        prepare=_desk_prepare("manager"),
        valid=_desk("referral", to_side="GX-HP", note="对岸排污 from across the border"),
        refused=(
            (422, _desk("referral", to_side="XX")),
            (409, _desk("referral", stale=True, to_side="GX-HP")),
        ),
        channel="page",
        actor="manager",
    ),
    ("POST", "/incidents/{incident_id:int}/joint"): Case(
        "joint_case.add_incident",
        (),
        prepare=_desk_prepare("officer-lj", case=True),
        valid=_desk("joint"),
        refused=(
            (422, _desk("joint", case_id="424242")),
            (403, _desk("joint", forged=True)),
            (409, _desk("joint", stale=True)),
        ),
        channel="page",
        actor="officer-lj",
    ),
    ("POST", "/joint-cases/{case_id:int}/actions"): Case(
        "joint_case.action",
        (),
        prepare=_page_case("officer-hp"),
        valid=_page_case_step("actions", lambda c: {"mechanism": "monitoring", "note": "联合采样"}),
        refused=(
            (422, _page_case_step("actions", lambda c: {"mechanism": "gossip", "note": "x"})),
            (422, _page_case_step("actions", lambda c: {"mechanism": "monitoring", "note": ""})),
            (403, _page_case_step("actions", lambda c: {"mechanism": "monitoring", "note": "x"}, "forged")),
        ),
        channel="page",
        actor="officer-hp",
    ),
    ("POST", "/joint-cases/{case_id:int}/incidents"): Case(
        "joint_case.add_incident",
        (),
        prepare=_page_case("officer-hp", _prepare_both_incidents),
        valid=_page_case_step("incidents", lambda c: {"incident": str(c["theirs"])}),
        refused=(
            (409, _page_case_step("incidents", lambda c: {"incident": str(c["ours"])})),
            (422, _page_case_step("incidents", lambda c: {"incident": "abc"})),
        ),
        channel="page",
        actor="officer-hp",
    ),
    ("POST", "/joint-cases/{case_id:int}/close"): Case(
        "joint_case.close",
        (),
        prepare=_page_case("officer-hp"),
        valid=_page_case_step("close", lambda c: {"version": str(c["version"])}),
        refused=(
            (409, _page_case_step("close", lambda c: {"version": str(c["version"] + 5)})),
            (422, _page_case_step("close", lambda c: {"version": "x"})),
        ),
        channel="page",
        actor="officer-hp",
    ),
    # --- accounts and signing in ---
    ("POST", "/api/v1/auth/token"): Case(
        "auth.sign_in",
        (),
        valid=lambda w, p: _token(w, "member", PASSWORD),
        refused=((401, lambda w, p: _token(w, "member", "not the password")),),  # counted, not audited
        actor="member",
    ),
    ("POST", "/api/v1/auth/logout"): Case(
        "auth.sign_out",
        ("member",),
        valid=_post("/api/v1/auth/logout", "member"),
        refused=((401, lambda w, p: w.client.post("/api/v1/auth/logout")),),
    ),
    ("POST", "/api/v1/auth/renew"): Case(
        "auth.renew",
        ("member",),
        valid=_post("/api/v1/auth/renew", "member"),
        refused=((401, lambda w, p: w.client.post("/api/v1/auth/renew")),),
    ),
    ("POST", "/api/v1/auth/password"): Case(
        "user.password",
        ("member",),
        valid=_post("/api/v1/auth/password", "member", json={"current_password": PASSWORD, "new_password": NEW_PASSWORD}),
        refused=(
            (403, _post("/api/v1/auth/password", "member", json={"current_password": "not it at all", "new_password": NEW_PASSWORD})),
            (422, _post("/api/v1/auth/password", "member", json={"current_password": PASSWORD, "new_password": "member12345"})),
        ),
    ),
    ("POST", "/api/v1/users"): Case(
        "user.create",
        ("admin", "member"),
        valid=_post("/api/v1/users", "admin", json=_new_user()),
        refused=(
            (409, _post("/api/v1/users", "admin", json=_new_user(username="member"))),
            (422, _post("/api/v1/users", "admin", json=_new_user(password="short"))),
            (403, _post("/api/v1/users", "member", json=_new_user())),
        ),
    ),
    ("PATCH", "/api/v1/users/{username}"): Case(
        "user.update",
        ("admin", "member"),
        valid=lambda w, p: w.client.patch("/api/v1/users/member-2", json={"display_name": "队员 02"}, headers=w.auth("admin")),
        refused=(
            (404, lambda w, p: w.client.patch("/api/v1/users/nobody", json={"is_active": False}, headers=w.auth("admin"))),
            (409, lambda w, p: w.client.patch("/api/v1/users/admin", json={"is_active": False}, headers=w.auth("admin"))),
            (403, lambda w, p: w.client.patch("/api/v1/users/member-2", json={"display_name": "x"}, headers=w.auth("member"))),
        ),
    ),
    ("DELETE", "/api/v1/users/{username}"): Case(
        "user.delete",
        ("admin",),
        prepare=lambda w: w.incident("member"),  # member is referred to; member-2 is not
        valid=lambda w, p: w.client.delete("/api/v1/users/member-2", headers=w.auth("admin")),
        refused=(
            (409, lambda w, p: w.client.delete("/api/v1/users/member", headers=w.auth("admin"))),
            (404, lambda w, p: w.client.delete("/api/v1/users/nobody", headers=w.auth("admin"))),
        ),
    ),
    ("POST", "/api/v1/users/{username}/password"): Case(
        "user.password",
        ("admin",),
        valid=_post("/api/v1/users/member-2/password", "admin", json={"password": NEW_PASSWORD}),
        refused=((422, _post("/api/v1/users/member-2/password", "admin", json={"password": "aaaaaaaaaaaa"})),),
    ),
    ("POST", "/api/v1/users/{username}/unlock"): Case(
        "user.unlock",
        ("admin", "member-2"),
        valid=_post("/api/v1/users/member/unlock", "admin"),
        refused=((403, _post("/api/v1/users/member/unlock", "member-2")), (404, _post("/api/v1/users/nobody/unlock", "admin"))),
    ),
    ("POST", "/login"): Case(
        "auth.sign_in",
        (),
        prepare=lambda w: CSRF.search(w.client.get("/login").text).group(1),
        valid=lambda w, csrf: _page_login(w, csrf, PASSWORD),
        refused=((401, lambda w, csrf: _page_login(w, csrf, "not the password")), (403, lambda w, csrf: _page_login(w, "forged", PASSWORD))),
        channel="page",
        actor="member",
    ),
    ("POST", "/logout"): Case(
        "auth.sign_out",
        (),
        prepare=lambda w: w.page("member", "/"),
        valid=lambda w, csrf: w.client.post("/logout", data={"csrf_token": csrf}, follow_redirects=False),
        refused=((403, lambda w, csrf: w.client.post("/logout", data={"csrf_token": "forged"})),),
        channel="page",
        actor="member",
    ),
}  # fmt: skip


def _token(w: World, username: str, password: str) -> httpx.Response:
    return w.client.post("/api/v1/auth/token", data={"username": username, "password": password})


def _page_login(w: World, csrf: str, password: str) -> httpx.Response:
    form = {"username": "member", "password": password, "csrf_token": csrf, "next": "/"}
    return w.client.post("/login", data=form, follow_redirects=False)


def _text_file(w: World, name: str, text: str) -> Path:
    path = w.tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture
def world(client, sessions, settings, tmp_path, monkeypatch) -> World:
    add_users(sessions)
    return World(client, sessions, settings, tmp_path, monkeypatch)


def test_every_write_route_has_a_case(app):
    routes = write_routes(app)
    assert routes - set(ROUTE_CASES) == set(), "write routes without a case in ROUTE_CASES"
    assert set(ROUTE_CASES) - routes == set(), "cases for routes the app no longer has"


@pytest.mark.parametrize("route", sorted(ROUTE_CASES), ids=lambda r: f"{r[0]} {r[1]}")
def test_a_write_route_leaves_one_entry_and_a_refusal_none(world, route):
    case = ROUTE_CASES[route]
    prepared = case.prepare(world)
    world.sign_in(*case.users)
    for status, refused in case.refused:
        before = entry_count(world.sessions)
        response = refused(world, prepared)
        assert response.status_code == status, response.text
        assert entry_count(world.sessions) == before, f"a refused {route} wrote an audit entry"
    before = entry_count(world.sessions)
    response = case.valid(world, prepared)
    assert response.status_code < 400, response.text
    assert entry_count(world.sessions) == before + 1
    [entry] = newest(world.sessions)
    assert (entry.action, entry.object_type) == (case.action, case.action.split(".")[0])
    assert (entry.actor, entry.channel, entry.address) == (
        case.actor or case.users[0],
        case.channel,
        "testclient",
    )
    assert entry.object_id and entry.changes
    with world.sessions() as session:
        assert audit.verify(session).ok


# --- what the entries say -----------------------------------------------------------------------


def test_a_transition_records_the_status_level_and_note(world):
    incident = world.incident()
    world.sign_in("manager")
    _act("manager", "accept", level="county", note="现场核实 checked")(world, incident)
    [entry] = newest(world.sessions)
    assert entry.object_id == str(incident["id"])
    assert entry.changes["status"] == ["reported", "accepted"]
    assert entry.changes["level"] == ["village", "county"]
    assert entry.changes["version"] == [1, 2]
    assert entry.changes["note"] == [None, "现场核实 checked"]
    assert "description" not in entry.changes and "category" not in entry.changes  # unchanged


def test_a_report_with_a_photo_is_one_entry_naming_the_photo(world):
    token = world.page("member", "/incidents/report")
    response = _page_report(png())(world, token)
    assert response.status_code == 303
    [entry] = newest(world.sessions)
    assert entry.action == "incident.report" and entry.changes["grid"] == [None, "LJ-GQ-03"]
    [photo] = entry.changes["photos"][1]
    assert photo["size_bytes"] == len(png()) and len(photo["sha256"]) == 64


def test_a_deleted_patrol_leaves_its_key_fields(world):
    world.sign_in("member")
    patrol = world.upload().json()
    world.client.delete(f"/api/v1/patrols/{patrol['id']}", headers=world.auth("member"))
    deleted, uploaded = newest(world.sessions, 2)
    assert deleted.changes["members"] == [["member"], None]
    assert deleted.changes["team"] == ["LJ-T-GQ", None] and deleted.changes["fix_count"][1] is None
    assert uploaded.changes["file_sha256"] == [None, deleted.changes["file_sha256"][0]]


def test_a_joint_case_entry_names_participants_and_incidents(world):
    case = world.joint_case()
    [entry] = newest(world.sessions)
    assert entry.action == "joint_case.open" and entry.object_id == str(case["id"])
    assert entry.changes["participants"] == [None, ["officer-hp", "officer-lj"]]
    assert entry.changes["incidents"] == [None, [case["incidents"][0]["id"]]]


# --- the command line ----------------------------------------------------------------------------


def run(args: list[str]) -> int:
    try:
        return cli(args)
    except SystemExit as exc:  # argparse
        return exc.code


@dataclass(frozen=True)
class CliCase:
    action: str
    valid: Callable[[World, Any], list[str]]  # (world, prepared) → arguments of a command that succeeds
    refused: tuple[tuple[int, Callable[[World, Any], list[str]]], ...] = ()  # (exit code, arguments)
    prepare: Callable[[World], Any] = lambda w: None
    actor: str | None = None  # default: the operator, cli:<login>
    invoke: Callable[[World, list[str]], int] = lambda w, args: run(args)  # how the command runs


def _domain_incident(w: World) -> Incident:
    with w.sessions() as session:
        user = session.query(User).filter_by(username="member").one()
        lon, lat = GQ03
        incident = report_incident(
            session,
            Principal.of(user, channel="cli"),
            IncidentReport("rubbish", lon, lat),
            w.settings.incidents,
        )
        session.commit()
        return incident.id


def _track_file(w: World, day: int) -> str:
    path = w.tmp_path / f"cli-walk-{day}.gpx"
    path.write_bytes(w.track(day))
    return str(path)


def _cli_upload_first(w: World) -> str:
    """The file of a patrol uploaded already."""
    path = _track_file(w, 0)
    assert run(["patrols", "upload", path, "--as", "member"]) == 0
    return path


def _cli_patrol(w: World) -> int:
    _cli_upload_first(w)
    with w.sessions() as session:
        return session.query(Patrol.id).scalar()


def _with_stdin(w: World, text: str, args: list[str]) -> int:
    import io

    w.monkeypatch.setattr("sys.stdin", io.StringIO(text + "\n"))
    return run(args)


def _changed_setting(variable: str, value: str, args: list[str]):
    def step(w: World, _) -> list[str]:
        w.monkeypatch.setenv(variable, value)
        get_settings.cache_clear()
        return args

    return step


def _tile_file(w: World) -> str:
    """A raster MBTiles file, with this test's own tile folder for the command line."""
    from utils.tiles import write_mbtiles

    w.monkeypatch.setenv("MANGROVE_MAP_TILE_DIR", str(w.tmp_path / "tiles"))
    get_settings.cache_clear()
    return str(write_mbtiles(w.tmp_path / "station.mbtiles"))


def _tile_set(w: World) -> str:
    assert run(["tiles", "add", _tile_file(w), "--name", "station"]) == 0
    return "station"


def _package_args(w: World, case_id: int, user: str) -> list[str]:
    out = w.tmp_path / f"case-{case_id}-{user}.zip"
    return ["evidence-package", str(case_id), "-o", str(out), "--as", user]


CLI_CASES: dict[tuple[str, ...], CliCase] = {
    ("tiles", "add"): CliCase(
        "tileset.add",
        prepare=_tile_file,
        valid=lambda w, path: ["tiles", "add", path],
        refused=(
            (2, lambda w, path: ["tiles", "add", _text_file(w, "x.mbtiles", "not tiles").as_posix()]),
            (2, lambda w, path: ["tiles", "add", path, "--name", "No Good"]),
        ),
    ),
    ("tiles", "remove"): CliCase(
        "tileset.remove",
        prepare=_tile_set,
        valid=lambda w, name: ["tiles", "remove", name],
        refused=((2, lambda w, name: ["tiles", "remove", "elsewhere"]),),
    ),
    ("patrols", "upload"): CliCase(
        "patrol.upload",
        prepare=_cli_upload_first,
        valid=lambda w, first: ["patrols", "upload", _track_file(w, 1), "--as", "member"],
        refused=(
            (0, lambda w, first: ["patrols", "upload", first, "--as", "member"]),  # already uploaded
            (
                2,
                lambda w, first: [
                    "patrols",
                    "upload",
                    _track_file(w, 2),
                    "--as",
                    "member",
                    "--datum",
                    "tokyo",
                ],
            ),
        ),
        actor="member",
    ),
    ("patrols", "delete"): CliCase(
        "patrol.delete",
        prepare=_cli_patrol,
        valid=lambda w, pid: ["patrols", "delete", str(pid)],
        refused=((2, lambda w, pid: ["patrols", "delete", "999999"]),),
    ),
    ("incidents", "report"): CliCase(
        "incident.report",
        valid=lambda w, p: [
            "incidents",
            "report",
            "--as",
            "member",
            "--lon",
            str(GQ03[0]),
            "--lat",
            str(GQ03[1]),
            "--category",
            "rubbish",
        ],
        refused=(
            (
                2,
                lambda w, p: [
                    "incidents",
                    "report",
                    "--as",
                    "member",
                    "--lon",
                    str(GQ03[0]),
                    "--lat",
                    str(GQ03[1]),
                    "--category",
                    "alien",
                ],
            ),
        ),
        actor="member",
    ),  # fmt: skip
    ("incidents", "act"): CliCase(
        "incident.transition",
        prepare=_domain_incident,
        valid=lambda w, iid: ["incidents", "act", str(iid), "accept", "--as", "manager"],
        refused=(
            (2, lambda w, iid: ["incidents", "act", str(iid), "accept", "--as", "manager", "--version", "9"]),
            (2, lambda w, iid: ["incidents", "act", str(iid), "accept", "--as", "member"]),
        ),
        actor="manager",
    ),
    ("incidents", "categories"): CliCase(
        "category.create",
        valid=lambda w, p: ["incidents", "categories", "--add", "oil", "油污", "Oil"],
        refused=((2, lambda w, p: ["incidents", "categories", "--add", "rubbish", "垃圾", "Rubbish"]),),
    ),
    ("grids", "import"): CliCase(
        "grid_import.import",
        prepare=lambda w: str(w.survey()),
        valid=lambda w, path: ["grids", "import", path],
        refused=(
            (0, lambda w, path: ["grids", "import", path, "--dry-run"]),
            (2, lambda w, path: ["grids", "import", _text_file(w, "x.geojson", "{").as_posix()]),
        ),
    ),
    ("quotas", "set"): CliCase(
        "grid_quota.set",
        valid=lambda w, p: ["quotas", "set", "LJ-GQ-03", "--patrols", "12", "--km", "30"],
        refused=(
            (2, lambda w, p: ["quotas", "set", "LJ-GQ-03", "--patrols", "0", "--km", "0"]),
            (2, lambda w, p: ["quotas", "set", "LJ-XX-99", "--patrols", "12", "--km", "30"]),
        ),
    ),
    ("quotas", "clear"): CliCase(
        "grid_quota.clear",
        prepare=lambda w: run(["quotas", "set", "LJ-GQ-03", "--patrols", "12", "--km", "30"]),
        valid=lambda w, p: ["quotas", "clear", "LJ-GQ-03"],
        refused=(
            (0, lambda w, p: ["quotas", "clear", "LJ-GQ-04"]),  # no quota of its own: nothing to clear
            (2, lambda w, p: ["quotas", "clear", "LJ-XX-99"]),
        ),
    ),
    ("db", "upgrade"): CliCase(
        # Records the behaviour settings when they differ from the last recorded ones.
        "setting.change",
        prepare=lambda w: run(["db", "upgrade"]),  # the first start records them all
        valid=_changed_setting("MANGROVE_INCIDENT_ACCEPT_WITHIN_HOURS", "6", ["db", "upgrade"]),
        refused=((0, lambda w, p: ["db", "upgrade"]),),  # the same settings again
    ),
    ("users", "add"): CliCase(
        "user.create",
        valid=lambda w, p: [
            "users",
            "add",
            "yz-member-01",
            "--side",
            "GD-LJ",
            "--role",
            "patrol_member:LJ-T-YZ",
            "--password-stdin",
        ],
        refused=(
            (
                2,
                lambda w, p: [
                    "users",
                    "add",
                    "member",
                    "--side",
                    "GD-LJ",
                    "--role",
                    "patrol_member:LJ-T-GQ",
                    "--password-stdin",
                ],
            ),
            (
                2,
                lambda w, p: [
                    "users",
                    "add",
                    "yz-member-02",
                    "--side",
                    "GD-LJ",
                    "--role",
                    "patrol_member:LJ-T-GX",
                    "--password-stdin",
                ],
            ),
        ),
        invoke=lambda w, args: _with_stdin(w, NEW_PASSWORD, args),
    ),
    ("users", "passwd"): CliCase(
        "user.password",
        valid=lambda w, p: ["users", "passwd", "member-2", "--password-stdin"],
        refused=((2, lambda w, p: ["users", "passwd", "nobody", "--password-stdin"]),),
        invoke=lambda w, args: _with_stdin(w, NEW_PASSWORD, args),
    ),
    ("users", "disable"): CliCase(
        "user.update",
        valid=lambda w, p: ["users", "disable", "member-2"],
        refused=((2, lambda w, p: ["users", "disable", "admin"]),),  # the last active admin
    ),
    ("users", "enable"): CliCase(
        "user.update",
        prepare=lambda w: run(["users", "disable", "member-2"]),
        valid=lambda w, p: ["users", "enable", "member-2"],
        refused=((2, lambda w, p: ["users", "enable", "nobody"]),),
    ),
    ("users", "delete"): CliCase(
        "user.delete",
        prepare=_domain_incident,  # member is referred to; member-2 is not
        valid=lambda w, p: ["users", "delete", "member-2"],
        refused=((2, lambda w, p: ["users", "delete", "member"]),),
    ),
    ("users", "unlock"): CliCase(
        "user.unlock",
        valid=lambda w, p: ["users", "unlock", "member"],
        refused=((2, lambda w, p: ["users", "unlock", "nobody"]),),
    ),
    ("backup",): CliCase(
        "backup.create",
        valid=lambda w, p: ["backup", "-o", str(w.tmp_path / "station.backup")],
        refused=((2, lambda w, p: ["backup", "-o", str(w.tmp_path / "no-such-folder" / "b.backup")]),),
    ),
    ("evidence-package",): CliCase(
        # Taking a joint case's evidence away is recorded, like a backup.
        "joint_case.package",
        prepare=lambda w: w.joint_case()["id"],
        valid=lambda w, cid: _package_args(w, cid, "officer-hp"),
        refused=(
            (2, lambda w, cid: _package_args(w, cid, "manager")),  # not a participant
            (2, lambda w, cid: _package_args(w, 999999, "officer-hp")),
        ),
        actor="officer-hp",
    ),
    ("serve",): CliCase(
        # The real service in a child process, answering requests: one entry per start, none per
        # request, and none when the settings are those last recorded.
        "setting.change",
        prepare=lambda w: run(["db", "upgrade"]),
        valid=_changed_setting("MANGROVE_PATROL_SWATH_WIDTH_M", "40", ["serve", "--patrol-days", "0"]),
        refused=((0, lambda w, p: ["serve", "--patrol-days", "0"]),),
        invoke=lambda w, args: serve(w.tmp_path, args),
    ),
}
# Commands that only read: each is run once and must leave no entry.
CLI_READ_ONLY: dict[tuple[str, ...], Callable[[World, dict], list[str]]] = {
    ("db", "current"): lambda w, ids: ["db", "current"],
    ("users", "list"): lambda w, ids: ["users", "list"],
    ("grids", "list"): lambda w, ids: ["grids", "list"],
    ("tiles", "list"): lambda w, ids: ["tiles", "list"],
    ("patrols", "list"): lambda w, ids: ["patrols", "list"],
    ("patrols", "show"): lambda w, ids: ["patrols", "show", str(ids["patrol"])],
    ("patrols", "near"): lambda w, ids: ["patrols", "near", "--lon", "109.7", "--lat", "21.5", "--radius-m",
                                         "300", "--datetime", "2026-03-01"],
    ("effort",): lambda w, ids: ["effort"],
    ("maps", "station"): lambda w, ids: ["maps", "station", "-o", str(w.tmp_path / "station.html")],
    ("maps", "joint"): lambda w, ids: ["maps", "joint", "-o", str(w.tmp_path / "joint.html")],
    ("maps", "replay"): lambda w, ids: ["maps", "replay", "--patrol", str(ids["patrol"]), "-o",
                                        str(w.tmp_path / "replay.html")],
    ("incidents", "list"): lambda w, ids: ["incidents", "list"],
    ("incidents", "show"): lambda w, ids: ["incidents", "show", str(ids["incident"])],
    ("incidents", "stats"): lambda w, ids: ["incidents", "stats"],
    ("quotas", "list"): lambda w, ids: ["quotas", "list"],
    ("analysis", "rates"): lambda w, ids: ["analysis", "rates"],
    ("analysis", "hotspots"): lambda w, ids: ["analysis", "hotspots"],
    ("analysis", "recurring"): lambda w, ids: ["analysis", "recurring"],
    ("analysis", "priorities"): lambda w, ids: ["analysis", "priorities"],
    ("assessment",): lambda w, ids: ["assessment", "--month", f"{datetime.now(UTC) + timedelta(hours=8):%Y-%m}"],
    ("export",): lambda w, ids: ["export", "gpkg", "-o", str(w.tmp_path / "export.gpkg")],
    ("briefing",): lambda w, ids: ["briefing", "--month", f"{datetime.now(UTC) + timedelta(hours=8):%Y-%m}",
                                   "-o", str(w.tmp_path / "briefing.pdf")],
    ("verify-package",): lambda w, ids: ["verify-package", str(tiny_package(w.tmp_path / "tiny.zip"))],
    ("audit", "list"): lambda w, ids: ["audit", "list"],
    ("audit", "verify"): lambda w, ids: ["audit", "verify"],
}  # fmt: skip
# Loads the demo data through the domain functions: an entry per object made (tested below).
CLI_BULK = {("demo",)}
# Replaces the whole database, trail included, by a backup's: the restored trail gains one
# backup.restore entry (tests/patrol/test_backup.py).
CLI_REPLACES_DATABASE = {("restore",)}
# PostGIS storage upkeep (SpatiaLite refuses them): listing and creating months change no data;
# archiving records one partition.archive entry per month (tests/patrol/test_partitions.py).
CLI_PARTITIONS = {("partitions", "list"), ("partitions", "create"), ("partitions", "archive")}


def test_every_cli_command_is_classified():
    commands = set(cli_commands(build_parser()))
    classified = set(CLI_CASES) | set(CLI_READ_ONLY) | CLI_BULK | CLI_REPLACES_DATABASE | CLI_PARTITIONS
    assert commands - classified == set(), "commands neither in CLI_CASES nor CLI_READ_ONLY"
    assert classified - commands == set(), "cases for commands the CLI no longer has"


@pytest.mark.parametrize("command", sorted(CLI_CASES), ids=" ".join)
def test_a_cli_write_leaves_one_entry_and_a_refusal_none(world, configured, command, capsys):
    case = CLI_CASES[command]
    prepared = case.prepare(world)
    for code, refused in case.refused:
        before = entry_count(world.sessions)
        assert case.invoke(world, refused(world, prepared)) == code, capsys.readouterr()
        assert entry_count(world.sessions) == before, f"a refused `{' '.join(command)}` wrote an entry"
    args = case.valid(world, prepared)
    before = entry_count(world.sessions)
    assert case.invoke(world, args) == 0, capsys.readouterr()
    assert entry_count(world.sessions) == before + 1
    [entry] = newest(world.sessions)
    assert entry.action == case.action and entry.channel == "cli" and entry.address is None
    assert entry.actor == (case.actor or f"cli:{_login()}")


def test_cli_reads_leave_no_entry(world, configured, capsys):
    patrol = _cli_patrol(world)
    ids = {"patrol": patrol, "incident": _domain_incident(world)}
    before = entry_count(world.sessions)
    for command, args in CLI_READ_ONLY.items():
        assert run(args(world, ids)) == 0, (command, capsys.readouterr())
    assert entry_count(world.sessions) == before


def test_a_batch_upload_is_one_entry_per_stored_file(world, configured, capsys):
    folder = world.tmp_path / "batch"
    folder.mkdir()
    for day in range(3):
        (folder / f"day-{day}.gpx").write_bytes(world.track(day))
    (folder / "broken.gpx").write_bytes(b"<gpx><trk><trkseg><trkpt lat='21.6'")
    assert run(["patrols", "upload", str(folder), "--as", "member"]) == 2  # one refused
    assert [e.object_id for e in entries_of(world.sessions, "patrol.upload")] == [
        str(i) for i in sorted(_patrol_ids(world))
    ]


def test_demo_data_leaves_an_entry_per_object_it_makes(sessions, configured, capsys):
    assert run(["demo", "--patrol-days", "3"]) == 0
    with sessions() as session:
        patrols = session.query(Patrol).count()
        incidents = session.query(Incident).count()
        assert audit.verify(session).ok
    uploads, reports = entries_of(sessions, "patrol.upload"), entries_of(sessions, "incident.report")
    assert patrols and incidents and (len(uploads), len(reports)) == (patrols, incidents)
    assert {e.channel for e in uploads + reports} == {"cli"}


def _patrol_ids(w: World) -> list[int]:
    with w.sessions() as session:
        return list(session.scalars(session.query(Patrol.id).statement))


def _login() -> str:
    import getpass

    return getpass.getuser()


# --- a real service start ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(tmp_path: Path, args: list[str], requests: int = 3) -> int:
    """Run `mangrove ARGS` (a serve) as a child process with this test's environment, ask it for
    its health a few times, stop it, and return its exit status."""
    port = free_port()
    log = open(tmp_path / f"serve-{port}.log", "wb")
    child = subprocess.Popen(
        [sys.executable, "-m", "api.cli", *args, "--port", str(port)],
        cwd=WORKTREE,
        env=os.environ.copy(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 90
        answered = 0
        while answered < requests:
            assert child.poll() is None, (tmp_path / f"serve-{port}.log").read_text()
            assert time.monotonic() < deadline, "the service did not answer within 90 s"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=2).status_code == 200:
                    answered += 1
            except httpx.TransportError:
                time.sleep(0.3)
    finally:
        child.terminate()
        code = child.wait(timeout=30)
        log.close()
    # uvicorn shuts down on SIGTERM, then re-raises the signal: that is a clean stop.
    return 0 if code == -signal.SIGTERM else code
