"""Request bodies are capped while they stream in, on a real server: a declared length above the
limit is refused before a byte of the body is read, a chunked body is cut off at the limit (the
disk never holds more), a body that stops arriving is abandoned, and every multipart route has a
limit of its kind."""

import json
import socket
import tempfile
import threading
import time

import httpx
import pytest
from utils.factories import add_users, auth
from utils.server import CountingApp, page_session, serving

from api.limits import MULTIPART_OVERHEAD, PHOTO_ROUTES, UPLOAD_ROUTES, body_limit

BOUNDARY = "limit-test-boundary"


def raw_request(base: str, head: str, body: bytes = b"", *, wait: float = 10) -> tuple[int, dict, bytes]:
    """Send ``head`` (and ``body``) on a plain socket; return the status, headers and body answered."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=wait) as s:
        s.sendall(head.encode() + body)
        answer = b""
        while b"\r\n\r\n" not in answer or len(answer.split(b"\r\n\r\n", 1)[1]) < _length(answer):
            chunk = s.recv(65536)
            if not chunk:
                break
            answer += chunk
    head_part, _, content = answer.partition(b"\r\n\r\n")
    lines = head_part.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, content


def _length(answer: bytes) -> int:
    for line in answer.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":")[1])
    return 0


def multipart_head(path: str, token: str, extra: str) -> str:
    return (
        f"POST {path} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n{extra}\r\n"
    )


def file_part_start(name: str = "track.gpx") -> bytes:
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()


def test_a_declared_length_above_the_limit_is_refused_before_the_body_is_read(
    app, sessions, settings, client
):
    add_users(sessions, "member")
    token = auth(client, "member")["Authorization"].split()[1]
    counting = CountingApp(app)
    too_big = settings.imports.max_upload_bytes + MULTIPART_OVERHEAD + 1
    with serving(counting) as base:
        status, headers, content = raw_request(
            base, multipart_head("/api/v1/patrols", token, f"Content-Length: {too_big}\r\n")
        )
    assert status == 413 and headers["content-type"] == "application/problem+json"
    problem = json.loads(content)
    assert problem["status"] == 413 and "MANGROVE_IMPORT_MAX_UPLOAD_BYTES" in problem["detail"]
    assert counting.body_bytes == 0


def test_a_chunked_upload_is_cut_off_at_the_limit_before_it_is_spooled(
    app, sessions, settings, client, tmp_path, monkeypatch
):
    """No Content-Length: the bytes are counted as they arrive. The multipart parser spools the
    file to the temporary directory; it never holds more than the limit."""
    add_users(sessions, "member")
    headers = auth(client, "member")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the parser spools files
    limit = settings.imports.max_upload_bytes
    sent = 0
    chunk = b"<trkpt/>" * 8192  # 64 KiB

    def body():
        nonlocal sent
        yield file_part_start()
        while sent < 20 * limit:
            sent += len(chunk)
            yield chunk

    peak, done = 0, threading.Event()

    def watch_spool():
        nonlocal peak
        while not done.is_set():
            usage = sum(p.stat().st_size for p in tmp_path.rglob("*") if p.is_file())
            peak = max(peak, usage)
            time.sleep(0.005)

    watcher = threading.Thread(target=watch_spool)
    counting = CountingApp(app)
    with serving(counting) as base:
        watcher.start()
        try:
            response = httpx.post(
                f"{base}/api/v1/patrols",
                content=body(),
                headers=headers | {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
                timeout=60,
            )
        finally:
            done.set()
            watcher.join()
    assert response.status_code == 413, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert "MANGROVE_IMPORT_MAX_UPLOAD_BYTES" in response.json()["detail"]
    # uvicorn hands the body over as it arrived: asyncio reads up to 256 KiB from the socket at a
    # time and uvicorn pauses reading once 64 KiB wait unread, so a busy machine may hand over
    # more than one read at once. Far below the 20 × limit sent.
    one_read = 256 * 1024 + 64 * 1024
    assert counting.body_bytes <= limit + MULTIPART_OVERHEAD + one_read
    assert peak <= limit + MULTIPART_OVERHEAD + one_read
    assert list(tmp_path.rglob("*")) == []  # the spooled part is gone with the request


def test_a_json_body_above_the_small_limit_is_refused(client, sessions, settings):
    add_users(sessions, "member")
    big = {
        "category": "rubbish",
        "lon": 109.81,
        "lat": 21.5,
        "description": "x" * settings.server.max_body_bytes,
    }
    response = client.post("/api/v1/incidents", json=big, headers=auth(client, "member"))
    assert response.status_code == 413 and "MANGROVE_SERVER_MAX_BODY_BYTES" in response.json()["detail"]


def test_a_photo_has_the_photo_limit(client, sessions, settings):
    add_users(sessions, "member")
    member = auth(client, "member")
    incident = client.post(
        "/api/v1/incidents", json={"category": "rubbish", "lon": 109.81, "lat": 21.5}, headers=member
    ).json()
    too_big = b"\xff\xd8" + b"0" * (settings.incidents.photo_max_bytes + MULTIPART_OVERHEAD)
    response = client.post(
        f"/api/v1/incidents/{incident['id']}/photos", files={"file": ("p.jpg", too_big)}, headers=member
    )
    assert response.status_code == 413 and "MANGROVE_INCIDENT_PHOTO_MAX_BYTES" in response.json()["detail"]


def test_a_body_that_stops_arriving_is_abandoned_and_frees_its_connection(
    app, engine, sessions, settings, client, monkeypatch
):
    """A phone that loses its link mid-upload (or a client that stalls on purpose) must not hold a
    request, and the database connection its page has open, for ever."""
    add_users(sessions, "member")
    token = auth(client, "member")["Authorization"].split()[1]
    monkeypatch.setattr(settings.server, "body_idle_timeout_s", 0.5)
    with serving(app) as base:
        started = time.monotonic()
        status, _, content = raw_request(
            base,
            multipart_head("/api/v1/patrols", token, "Content-Length: 100000\r\n"),
            file_part_start() + b"<gpx>",
        )
        waited = time.monotonic() - started
    assert status == 408 and "stopped arriving" in json.loads(content)["detail"]
    assert waited < 5
    assert engine.pool.checkedout() == 0


def test_every_multipart_route_has_an_upload_or_photo_limit(app, settings):
    """A new upload route must be added to the limits (else the small body limit refuses it)."""
    for path, methods in app.openapi()["paths"].items():
        for method, operation in methods.items():
            content = operation.get("requestBody", {}).get("content", {})
            if "multipart/form-data" in content:
                concrete = path.replace("{incident_id}", "7")
                assert concrete in UPLOAD_ROUTES or PHOTO_ROUTES.match(concrete), (method, path)
                assert (
                    body_limit(settings, method.upper(), concrete).max_bytes > settings.server.max_body_bytes
                )


@pytest.mark.parametrize("path", ["/patrols/upload", "/incidents/report"])
def test_the_upload_pages_have_upload_limits(settings, path):
    limit = body_limit(settings, "POST", path)
    assert limit.max_bytes > settings.server.max_body_bytes


@pytest.mark.parametrize("path", ["/api/v1/patrols", "/patrols/upload", "/incidents/report"])
def test_a_client_gone_mid_body_is_not_logged_as_a_server_error(app, sessions, client, caplog, path):
    """Phones lose their link: a body cut short is the client's doing, not an internal error."""
    add_users(sessions, "member")
    token = auth(client, "member")["Authorization"].split()[1]
    with serving(app) as base:
        cookie = page_session(base, "member")
        host, port = base.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port))) as s:
            head = multipart_head(path, token, f"Cookie: {cookie}\r\nContent-Length: 100000\r\n")
            s.sendall(head.encode() + file_part_start())
            time.sleep(0.2)
        time.sleep(0.5)  # the server notices and ends the request
        assert httpx.get(f"{base}/api/v1/health", timeout=10).status_code == 200
    assert not [r for r in caplog.records if r.levelno >= 40], [r.getMessage() for r in caplog.records]
