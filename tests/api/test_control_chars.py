"""Control characters are refused once, at the edge, on both backends: a NUL byte anywhere (the
path, a query parameter, a header, a JSON string, a form field, signed in or not) answers 422
problem+json naming where it was, and changes nothing. Free text keeps tab and line breaks; file
contents are not looked at, and file names are stored repaired. Behind the edge, ``patrol.db`` refuses NUL text before it reaches the
database."""

import io

import pytest
from PIL import Image
from sqlalchemy import func, select
from utils.factories import CSRF, PASSWORD, add_users, auth, sign_in
from utils.places import inside
from utils.tracks import crossing, gpx

from patrol.accounts import Principal, RoleGrant, create_user
from patrol.errors import InvalidRequest
from patrol.incidents import add_category
from patrol.models import Incident, IncidentCategory, Patrol, Role, User

GQ03 = inside("LJ-GQ-03")


def refused(response, location: str, name: str, character: str = "U+0000") -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"].endswith(":control-character")
    assert problem["problems"] == [
        {
            "kind": "control-character",
            "message": problem["detail"],
            "location": location,
            "name": name,
            "character": character,
        }
    ]


def count(sessions, model) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(model))


def jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 12), (30, 120, 60)).save(buffer, format="JPEG")
    return buffer.getvalue()


def test_a_nul_in_the_path_is_refused_before_sign_in(client):
    response = client.get("/api/v1/grids/a%00b")
    refused(response, "path", "path")
    assert "the path holds the control character U+0000" in response.json()["detail"]


def test_a_nul_in_a_user_name_is_refused_by_the_token_endpoint_and_the_login_page(client, sessions):
    add_users(sessions, "member")
    refused(
        client.post("/api/v1/auth/token", data={"username": "mem\x00ber", "password": PASSWORD}),
        "form",
        "username",
    )
    token = CSRF.search(client.get("/login").text).group(1)
    login = client.post("/login", data={"username": "mem\x00ber", "password": PASSWORD, "csrf_token": token})
    refused(login, "form", "username")
    assert client.get("/api/v1/auth/me").status_code == 401  # not signed in


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/incidents?category=rub%00bish",
        "/api/v1/incidents/counts?grid=LJ-GQ-03&grid=LJ%00",
        "/api/v1/patrols?team=LJ-T-GQ%01",
        "/api/v1/effort?member=a%0Ab",  # a line feed is no part of a user name either
        "/api/v1/grids?side=GD-LJ%00",
        "/maps/station?station=LJ-S-GQ%00",
    ],
)
def test_control_characters_in_query_parameters_are_refused(client, sessions, path):
    add_users(sessions, "admin")
    response = client.get(path, headers=auth(client, "admin"))
    name = path.split("?")[1].split("&")[-1].split("=")[0]
    refused(response, "query", name, "U+000A" if "%0A" in path else "U+0001" if "%01" in path else "U+0000")


def test_a_control_character_in_a_header_is_refused(client, sessions):
    add_users(sessions, "member")
    response = client.get("/api/v1/auth/me", headers={**auth(client, "member"), "X-CSRF-Token": "a\x01b"})
    refused(response, "header", "x-csrf-token", "U+0001")


def test_json_strings_refuse_nul_and_free_text_keeps_tabs_and_line_breaks(client, sessions):
    add_users(sessions, "member", "admin")
    member = auth(client, "member")
    body = {"category": "rubbish", "lon": GQ03[0], "lat": GQ03[1]}
    refused(
        client.post("/api/v1/incidents", json=body | {"description": "bags\x00"}, headers=member),
        "body",
        "description",
    )
    refused(
        client.post("/api/v1/incidents", json=body | {"description": "bell \x07"}, headers=member),
        "body",
        "description",
        "U+0007",
    )
    assert count(sessions, Incident) == 0
    # A code or a user name may hold no control character at all, not even a line break.
    category = {"code": "nets\n", "label_zh": "渔网", "label_en": "Nets"}
    refused(
        client.post("/api/v1/incident-categories", json=category, headers=auth(client, "admin")),
        "body",
        "code",
        "U+000A",
    )
    created = client.post(
        "/api/v1/incidents", json=body | {"description": "bags\tand\r\nnets"}, headers=member
    )
    assert created.status_code == 201, created.text
    assert created.json()["description"] == "bags\tand\r\nnets"


def test_multipart_text_fields_are_checked_but_file_contents_are_not(client, sessions):
    add_users(sessions, "member")
    member = auth(client, "member")
    lon, lat, times, _ = crossing("LJ-GQ-03")
    track = {"file": ("walk.gpx", gpx(lon, lat, times))}
    refused(
        client.post("/api/v1/patrols", files=track, data={"notes": "ok\x00"}, headers=member), "form", "notes"
    )
    refused(
        client.post("/api/v1/patrols", files=track, data={"datum": "wgs\x0084"}, headers=member),
        "form",
        "datum",
    )
    # Clients percent-encode odd file names; one written by hand may hold the raw byte. A file
    # name comes from the device, not the user: the file is taken and its name stored repaired.
    raw = b"".join(
        [
            b'--B\r\nContent-Disposition: form-data; name="file"; filename="walk\x01.gpx"\r\n\r\n',
            gpx(lon, lat, times),
            b"\r\n--B--\r\n",
        ]
    )
    named = client.post(
        "/api/v1/patrols", content=raw, headers=member | {"Content-Type": "multipart/form-data; boundary=B"}
    )
    assert named.status_code == 201, named.text
    assert named.json()["source_name"] == "walk\ufffd.gpx"
    assert count(sessions, Patrol) == 1
    created = client.post(
        "/api/v1/incidents", json={"category": "rubbish", "lon": GQ03[0], "lat": GQ03[1]}, headers=member
    )
    photo = jpeg()
    assert b"\x00" in photo  # binary content is full of NUL bytes, and that is fine
    added = client.post(
        f"/api/v1/incidents/{created.json()['id']}/photos", files={"file": ("p.jpg", photo)}, headers=member
    )
    assert added.status_code == 201, added.text


def test_the_report_page_refuses_a_nul_in_its_description(client, sessions):
    add_users(sessions, "member")
    sign_in(client, "member")
    token = CSRF.search(client.get("/incidents/report").text).group(1)
    form = {
        "csrf_token": token,
        "category": "cutting",
        "lon": str(GQ03[0]),
        "lat": str(GQ03[1]),
        "description": "cut\x00",
    }
    refused(client.post("/incidents/report", data=form, files={"photo": ("", b"")}), "form", "description")
    refused(client.post("/incidents/report", data=form), "form", "description")
    assert count(sessions, Incident) == 0


def test_nul_text_never_reaches_the_database(sessions):
    """The backstop for text that arrives some other way than HTTP (the command line, a file)."""
    with sessions() as session:
        # accounts check their own fields first and name the field
        with pytest.raises(InvalidRequest, match="display name must not contain control characters"):
            create_user(
                session,
                username="nul-user",
                display_name="N\x00L",
                password=PASSWORD,
                side="GD-LJ",
                grants=[RoleGrant(Role.ADMIN)],
            )
        session.rollback()
        admin = create_user(
            session, username="admin", password=PASSWORD, side="GD-LJ", grants=[RoleGrant(Role.ADMIN)]
        )
        session.commit()
        with pytest.raises(InvalidRequest, match="NUL"):
            add_category(session, Principal.of(admin), "nets", "渔网\x00", "Nets")
        session.rollback()
    assert count(sessions, User) == 1 and count(sessions, IncidentCategory) == 11
