"""Every file of the hostile corpus (``utils.hostile``) through the real upload, on both backends.

An upload is never answered with a 5xx: it is either a patrol that then reads back everywhere (the
patrol, the list, its fixes as CSV and GeoJSON, the station map and its replay), or a 4xx
problem+json whose detail names the problem — and a refusal leaves no row behind.
"""

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from utils.databases import reset_database
from utils.factories import add_users, auth, sign_in
from utils.hostile import MIB, corpus

from patrol.db import make_session_factory
from patrol.models import Patrol, PatrolFixes, PatrolMember, PatrolVisit

CORPUS = list(corpus())
PROBLEM_JSON = "application/problem+json"


@pytest.fixture(scope="module")
def served(backend):
    """(client, member's headers, session factory), set up once per backend for the ~100 files:
    an emptied database with the reference data (as the ``engine`` fixture makes it), a patrol
    member of LJ-T-GQ signed in for the API and the map pages, uploads up to 16 MiB (the
    million-column CSV is 7 MiB). Each test leaves the database as it found it."""
    from api.app import create_app

    _, settings, engine = backend
    reset_database(engine)
    sessions = make_session_factory(engine)
    add_users(sessions, "member")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(settings.imports, "max_upload_bytes", 16 * MIB)
        with TestClient(create_app(settings=settings, engine=engine)) as client:
            headers = auth(client, "member")
            sign_in(client, "member")
            yield client, headers, sessions


def rows(sessions) -> tuple[int, ...]:
    with sessions() as session:
        return tuple(
            session.scalar(select(func.count()).select_from(t))
            for t in (Patrol, PatrolMember, PatrolFixes, PatrolVisit)
        )


def reads_back(client, headers, patrol: dict) -> None:
    pid = patrol["id"]
    for path in (
        f"/api/v1/patrols/{pid}",
        "/api/v1/patrols",
        f"/api/v1/patrols/{pid}/fixes?format=csv",
        f"/api/v1/patrols/{pid}/fixes?format=geojson",
        "/maps/station?from=2026-03-01&to=2026-03-04&basemap=none",
    ):
        response = client.get(path, headers=headers)
        assert response.status_code == 200, f"{path}: {response.status_code} {response.text[:300]}"
    replay = client.get(f"/maps/replay/patrol/{pid}?basemap=none", headers=headers)
    if patrol["started_at"]:
        assert replay.status_code == 200, replay.text[:300]
    else:  # a track without times cannot be replayed, and the page says so
        assert replay.status_code == 422 and "no timed fixes to replay" in replay.text


@pytest.mark.parametrize("item", CORPUS, ids=[h.name for h in CORPUS])
def test_a_hostile_upload_is_a_patrol_that_reads_back_or_a_refusal_that_names_the_problem(served, item):
    client, headers, sessions = served
    before = rows(sessions)
    response = client.post(
        "/api/v1/patrols", files={"file": (item.filename, item.content())}, headers=headers
    )
    assert response.status_code == item.status, response.text[:500]
    if item.status == 201:
        try:
            reads_back(client, headers, response.json())
        finally:
            assert (
                client.delete(f"/api/v1/patrols/{response.json()['id']}", headers=headers).status_code == 204
            )
    else:
        assert response.headers["content-type"] == PROBLEM_JSON
        assert item.names in response.json()["detail"].lower(), response.json()["detail"]
    assert rows(sessions) == before


def test_the_corpus_holds_the_classes_the_issue_names():
    names = {h.name for h in corpus(big=True)}
    for wanted in (
        "geojson-integer-of-5000-digits",
        "geojson-nested-100000-deep",
        "gpx-segment-of-one-fix",
        "gpx-fix-isolated-between-two-long-gaps",
        "gpx-times-in-year-10000",
        "csv-year-one-without-zone",
        "csv-14-digit-epoch-times",
        "csv-one-huge-field",
        "csv-one-40-mb-line",
        "csv-a-million-columns",
        "gpx-very-long-chinese-track-name",
        "gpx-every-fix-its-own-segment",
        "kml-two-copies-of-one-flight",
        "gpx-32-bit-epoch-minimum-times",
    ):
        assert wanted in names
