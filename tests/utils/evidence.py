"""A joint case worked by both sides, with photos and an action log, made through the API; and a
fresh database for fixtures wider than one test (tests/evidence)."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from utils.databases import reset_database  # noqa: F401  (re-exported for the evidence tests)
from utils.factories import add_users, auth
from utils.places import inside

AP02 = inside("LJ-AP-02")  # Lianjiang, far from the border
SK05 = inside("HP-SK-05")  # Hepu


def image(fmt: str, colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (24, 16), colour).save(buffer, format=fmt)
    return buffer.getvalue()


@dataclass
class Case:
    id: int
    title: str
    incidents: list[int]
    photos: dict[str, int]  # "<incident>-<photo>" → photo id
    headers: dict[str, dict[str, str]]


def make_case(client, sessions) -> Case:
    """A case with two incidents (one per side; three photos) and two actions, participants
    officer-lj and officer-hp; manager (Lianjiang) sees cases but takes no part."""
    add_users(sessions, "admin", "member", "member-hp", "manager", "officer-lj", "officer-hp")
    headers = {u: auth(client, u) for u in ("member", "member-hp", "manager", "officer-lj", "officer-hp")}
    ids, photos = [], {}
    for user, where, description in (
        ("member", AP02, '排污口 outfall, =HYPERLINK("x")'),
        ("member-hp", SK05, "渔船 fishing boat"),
    ):
        body = {"category": "pollution", "lon": where[0], "lat": where[1], "description": description}
        response = client.post("/api/v1/incidents", json=body, headers=headers[user])
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    for incident, user, data in (
        (ids[0], "member", image("JPEG", (200, 40, 40))),
        (ids[0], "member", image("PNG", (40, 200, 40))),
        (ids[1], "member-hp", image("JPEG", (40, 40, 200))),
    ):
        files = {"file": ("photo", data)}
        response = client.post(f"/api/v1/incidents/{incident}/photos", files=files, headers=headers[user])
        assert response.status_code == 201, response.text
        photos[f"{incident}-{response.json()['id']}"] = response.json()["id"]
    title = "英罗湾排污 Yingluo Bay <effluent> & oil"  # markup in it: shown as text everywhere
    body = {"title": title, "incident_ids": [ids[0]], "participants": ["officer-hp"]}
    response = client.post("/api/v1/joint-cases", json=body, headers=headers["officer-lj"])
    assert response.status_code == 201, response.text
    case_id = response.json()["id"]
    response = client.post(
        f"/api/v1/joint-cases/{case_id}/incidents",
        json={"incident_id": ids[1]},
        headers=headers["officer-hp"],
    )
    assert response.status_code == 200, response.text
    for user, mechanism, note in (
        ("officer-lj", "monitoring", "联合监测采样 joint sampling"),
        ("officer-hp", "enforcement", "=1+1 联合执法 joint patrol"),
    ):
        response = client.post(
            f"/api/v1/joint-cases/{case_id}/actions",
            json={"mechanism": mechanism, "note": note},
            headers=headers[user],
        )
        assert response.status_code == 201, response.text
    return Case(case_id, title, ids, photos, headers)


# --- reading and altering packages ---------------------------------------------------------------


def rewrite(source: Path, target: Path, *, change=None, drop=(), add=None) -> Path:
    """A copy of the package with members changed (name → bytes), dropped or added."""
    change, add = change or {}, add or {}
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            if info.filename in drop:
                continue
            new.writestr(info, change.get(info.filename, old.read(info)))
        for name, data in add.items():
            new.writestr(name, data)
    return target


def manifest_of(path: Path) -> dict:
    with zipfile.ZipFile(path) as z:
        return json.loads(z.read("manifest.json"))


def first_photo(path: Path) -> tuple[str, bytes]:
    with zipfile.ZipFile(path) as z:
        name = next(n for n in z.namelist() if n.startswith("photos/"))
        return name, z.read(name)


def tiny_package(path: Path) -> Path:
    """A package of one file with its manifest: enough for ``verify-package`` to say OK."""
    data = b"note"
    files = [{"path": "note.txt", "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}]
    manifest = {"format": "mangrove-patrol-joint-case-package", "files": files}
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("note.txt", data)
        z.writestr("manifest.json", json.dumps(manifest))
    return path
