"""What a request gets when the database cannot serve: 503 with Retry-After and a problem+json
body, never a 500 or a traceback — and a database error that is a bug is still a 500."""

from __future__ import annotations

import secrets

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select, text
from sqlalchemy.exc import IntegrityError
from utils.factories import add_users, auth
from utils.faults import hold_write_lock, settings_for
from utils.phone import upload_track
from utils.service import free_port

from api.app import create_app
from api.problems import database_unavailable
from patrol.db import create_db_engine
from patrol.models import User


def assert_unavailable(response, retry_after: str = "5"):
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == retry_after
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == "urn:mangrove-patrol:problem:database-unavailable"
    assert body["retry_after_s"] == int(retry_after) and "Traceback" not in response.text


def test_every_kind_of_request_answers_503_while_postgres_cannot_be_reached(tmp_path):
    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/mangrove"  # nothing listens there
    settings = settings_for(url, tmp_path)
    app = create_app(settings=settings, engine=create_db_engine(url, settings=settings))
    # A token as the service issues them: checking whose session it names needs the database.
    token = secrets.token_urlsafe(32)
    with TestClient(app) as client:
        assert_unavailable(client.get("/api/v1/health"))
        assert_unavailable(client.get("/api/v1/grids"))
        assert_unavailable(client.post("/api/v1/auth/token", data={"username": "a", "password": "b"}))
        assert_unavailable(upload_track(client, {"Authorization": f"Bearer {token}"}))
        assert_unavailable(client.get("/api/v1/places"))


def terminate_connections(engine) -> int:
    """Cut every connection to the test database, as a server restart does (the database of
    this test alone; the server keeps running)."""
    with psycopg.connect(host="127.0.0.1", port=engine.url.port, user="postgres", autocommit=True) as c:
        return c.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (engine.url.database,),
        ).fetchone()[0]


def test_connections_cut_by_the_server_are_replaced_without_a_restart(postgis, app, sessions):
    add_users(sessions, "member")
    with TestClient(app) as client:
        headers = auth(client, "member")
        assert client.get("/api/v1/health").status_code == 200
        assert terminate_connections(postgis) >= 1  # the service's pooled connection among them
        assert client.get("/api/v1/health").status_code == 200
        assert upload_track(client, headers).status_code == 201


def test_a_connection_cut_mid_transaction_is_an_outage_and_is_discarded(postgis, sessions):
    with sessions() as session:
        session.scalar(select(User.id))  # a transaction holding a connection
        terminate_connections(postgis)
        with pytest.raises(Exception) as raised:
            session.scalar(select(User.id))
        assert raised.value.connection_invalidated
        assert database_unavailable(raised.value) is raised.value
    # The session closed without an error; the next one gets a working connection.
    with sessions() as session:
        assert session.scalar(text("SELECT 1")) == 1


def test_no_free_pooled_connection_answers_503(postgis, settings):
    one = create_engine(postgis.url, pool_size=1, max_overflow=0, pool_timeout=0.2)
    with one.connect(), TestClient(create_app(settings=settings, engine=one)) as client:
        assert_unavailable(client.get("/api/v1/health"), retry_after="2")
    one.dispose()


def test_the_write_lock_held_past_the_busy_timeout_answers_503_and_reads_go_on(
    spatialite, settings, sessions
):
    add_users(sessions, "member")
    app = create_app(settings=settings, engine=create_db_engine(settings=settings, busy_timeout_s=0.3))
    with TestClient(app) as client:
        headers = auth(client, "member")
        lock = hold_write_lock(spatialite)
        try:
            response = upload_track(client, headers)
            assert_unavailable(response, retry_after="2")
            assert "busy" in response.json()["detail"] and "locked" not in response.text
            assert client.get("/api/v1/patrols", headers=headers).status_code == 200  # WAL: readers go on
        finally:
            lock.rollback()
            lock.close()
        assert upload_track(client, headers).status_code == 201


# --- telling an outage from a bug -----------------------------------------------------------------


def refused_connection() -> psycopg.OperationalError:
    try:
        psycopg.connect(host="127.0.0.1", port=free_port(), user="postgres", connect_timeout=2)
    except psycopg.OperationalError as exc:
        return exc
    raise AssertionError("something listens on a free port")


def test_an_outage_is_found_however_it_is_wrapped():
    refused = refused_connection()
    assert database_unavailable(refused) is refused
    try:
        try:
            raise refused
        except psycopg.OperationalError as exc:
            raise RuntimeError("while loading the station map") from exc
    except RuntimeError as wrapped:
        assert database_unavailable(wrapped) is refused
    assert database_unavailable(ExceptionGroup("tasks", [ValueError("x"), refused])) is refused


def test_a_database_error_that_is_a_bug_is_not_an_outage(sessions):
    with sessions() as session:
        with pytest.raises(Exception) as missing_table:
            session.execute(text("SELECT * FROM no_such_table"))
        assert database_unavailable(missing_table.value) is None
    with sessions() as session:
        with pytest.raises(IntegrityError) as duplicate:
            session.execute(text("INSERT INTO sides (code, name_zh, name_en) VALUES ('GD-LJ', 'x', 'x')"))
        assert database_unavailable(duplicate.value) is None


def test_wrapped_outages_and_bugs_reach_clients_as_503_and_500(app):
    refused = refused_connection()

    def wrapped_outage():
        raise RuntimeError("rendering failed") from refused

    def bug():
        raise KeyError("a bug")

    app.add_api_route("/test/wrapped-outage", wrapped_outage)
    app.add_api_route("/test/bug", bug)
    with TestClient(app, raise_server_exceptions=False) as client:
        assert_unavailable(client.get("/test/wrapped-outage"))
        response = client.get("/test/bug")
        assert response.status_code == 500 and "Traceback" not in response.text
