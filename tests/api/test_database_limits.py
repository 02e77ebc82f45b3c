"""The service stays able to answer whatever its clients do: a client that goes away or stalls
mid-request leaves no database connection behind (a stalled page upload once held one for ever,
and enough of them left the service unable to answer until restarted), a request that finds every
connection in use is answered 503 instead of hanging, and no PostgreSQL statement runs for ever."""

import socket
import time

import httpx
import pytest
from conftest import PG_ADMIN_URL, make_settings
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from utils.factories import add_users, auth
from utils.server import page_session, serving
from utils.tracks import crossing, gpx

from api.app import create_app
from api.problems import RETRY_AFTER_BUSY_S
from patrol.db import create_db_engine
from patrol.settings import StorageSettings

BOUNDARY = "db-limits-boundary"


def start_upload(base: str, path: str, credentials: str) -> socket.socket:
    """Headers and the start of a multipart body, then nothing more (the socket is returned)."""
    host, port = base.removeprefix("http://").split(":")
    s = socket.create_connection((host, int(port)))
    s.sendall(
        (
            f"POST {path} HTTP/1.1\r\nHost: test\r\n{credentials}\r\n"
            f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: 1000000\r\n\r\n"
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="t.gpx"\r\n\r\n<gpx>'
        ).encode()
    )
    return s


def settled(engine, seconds: float = 20) -> int:
    """Connections still checked out once the server has had time to finish what it was doing."""
    deadline = time.monotonic() + seconds
    while engine.pool.checkedout() and time.monotonic() < deadline:
        time.sleep(0.05)
    return engine.pool.checkedout()


def test_a_stalled_page_upload_holds_no_database_connection(app, engine, sessions):
    add_users(sessions, "member")
    with serving(app) as base:
        cookie = page_session(base, "member")
        stalled = [
            start_upload(base, path, f"Cookie: {cookie}") for path in ("/patrols/upload", "/incidents/report")
        ]
        time.sleep(0.5)  # the pages have signed the user in and are waiting for the body
        try:
            assert engine.pool.checkedout() == 0
            assert httpx.get(f"{base}/api/v1/health", timeout=10).status_code == 200
        finally:
            for s in stalled:
                s.close()


def test_clients_that_go_away_mid_request_leave_no_connection_checked_out(app, engine, sessions, client):
    add_users(sessions, "member")
    token = auth(client, "member")["Authorization"]
    lon, lat, times, _ = crossing("LJ-GQ-03", interval=0.2)
    track = gpx(lon, lat, times)
    with serving(app) as base:
        cookie = page_session(base, "member")
        for path, credentials in (
            ("/api/v1/patrols", f"Authorization: {token}"),
            ("/patrols/upload", f"Cookie: {cookie}"),
            ("/incidents/report", f"Cookie: {cookie}"),
        ):
            start_upload(base, path, credentials).close()  # gone in the middle of the body
        with pytest.raises(httpx.TimeoutException):  # gone while the upload is being processed
            httpx.post(
                f"{base}/api/v1/patrols",
                files={"file": ("t.gpx", track)},
                headers={"Authorization": token},
                timeout=0.05,
            )
        assert settled(engine) == 0
        assert httpx.get(f"{base}/api/v1/health", timeout=10).status_code == 200


def test_a_request_that_finds_every_connection_in_use_is_answered_503(backend, engine, tmp_path):
    _, settings, _ = backend
    busy_settings = make_settings(tmp_path, settings.storage.database_url)
    busy_settings.storage = StorageSettings(
        data_dir=tmp_path, database_url=settings.storage.database_url, db_pool_timeout_s=0.3
    )
    busy = create_db_engine(settings=busy_settings)
    held = [busy.connect() for _ in range(busy.pool.size() + busy.pool._max_overflow)]
    try:
        with serving(create_app(settings=busy_settings, engine=busy)) as base:
            started = time.monotonic()
            answer = httpx.get(f"{base}/api/v1/health", timeout=30)
            waited = time.monotonic() - started
        assert answer.status_code == 503 and answer.headers["content-type"] == "application/problem+json"
        assert (
            answer.headers["retry-after"] == str(RETRY_AFTER_BUSY_S) and "in use" in answer.json()["detail"]
        )
        assert waited < 5
    finally:
        for connection in held:
            connection.close()
        busy.dispose()


def test_no_postgres_statement_runs_longer_than_the_setting(tmp_path):
    """Every connection the service opens carries the limit; a runaway statement is cancelled."""
    settings = make_settings(tmp_path, PG_ADMIN_URL)
    settings.storage = StorageSettings(
        data_dir=tmp_path, database_url=PG_ADMIN_URL, db_statement_timeout_s=0.3
    )
    engine = create_db_engine(settings=settings)
    try:
        with engine.connect() as first, engine.connect() as second:
            for conn in (first, second):
                assert conn.execute(text("SHOW statement_timeout")).scalar() == "300ms"
            started = time.monotonic()
            with pytest.raises(OperationalError) as stopped:
                second.execute(text("SELECT pg_sleep(10)"))
            assert type(stopped.value.orig).__name__ == "QueryCanceled" and time.monotonic() - started < 5
    finally:
        engine.dispose()
