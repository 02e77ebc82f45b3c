"""Several service processes on one database: what one writes, the other sees at once — reports,
transitions, sign-outs, disabled accounts, grid changes — because no process keeps state that
another's change could leave stale. And ``mangrove serve --workers N`` starts N of them."""

from __future__ import annotations

import re
import time

import httpx
import pytest
from utils.factories import PASSWORD, add_users
from utils.places import inside
from utils.service import Service

GQ03 = inside("LJ-GQ-03")


def sign_in(base: str, username: str) -> dict[str, str]:
    response = httpx.post(f"{base}/api/v1/auth/token", data={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@pytest.fixture
def two_services(backend, engine, sessions, tmp_path):
    _, settings, _ = backend
    add_users(sessions, "admin", "member", "manager", "officer-lj")
    url = settings.storage.resolved_database_url()
    with Service(url, tmp_path / "a") as a, Service(url, tmp_path / "b") as b:
        yield a.url, b.url


def test_what_one_process_writes_the_other_sees_at_once(two_services):
    """Both services start once (each start imports the whole service): the checks run in turn."""
    a, b = two_services
    member_a, member_b = sign_in(a, "member"), sign_in(b, "member")
    manager_b = sign_in(b, "manager")
    reported = httpx.post(
        f"{a}/api/v1/incidents",
        json={"category": "rubbish", "lon": GQ03[0], "lat": GQ03[1], "description": "nets"},
        headers=member_a,
    )
    assert reported.status_code == 201, reported.text
    incident = reported.json()
    seen = httpx.get(f"{b}/api/v1/incidents/{incident['id']}", headers=member_b)
    assert seen.status_code == 200 and seen.json()["status"] == "reported"
    accepted = httpx.post(
        f"{b}/api/v1/incidents/{incident['id']}/transitions",
        json={"action": "accept", "version": incident["version"], "level": "town"},
        headers=manager_b,
    )
    assert accepted.status_code == 200, accepted.text
    again = httpx.get(f"{a}/api/v1/incidents/{incident['id']}", headers=member_a).json()
    assert again["status"] == "accepted" and again["version"] == accepted.json()["version"]
    # A stale version sent to the first process is refused: both read the same row.
    stale = httpx.post(
        f"{a}/api/v1/incidents/{incident['id']}/transitions",
        json={"action": "start", "version": incident["version"]},
        headers=sign_in(a, "manager"),
    )
    assert stale.status_code == 409

    # A sign-out or a disabled account counts in every process at once.
    token = sign_in(a, "member")
    assert httpx.get(f"{b}/api/v1/auth/me", headers=token).status_code == 200
    assert httpx.post(f"{b}/api/v1/auth/logout", headers=token).status_code in (200, 204)
    assert httpx.get(f"{a}/api/v1/auth/me", headers=token).status_code == 401

    officer = sign_in(b, "officer-lj")
    assert httpx.get(f"{a}/api/v1/incidents", headers=officer).status_code == 200
    disabled = httpx.patch(
        f"{a}/api/v1/users/officer-lj", json={"is_active": False}, headers=sign_in(a, "admin")
    )
    assert disabled.status_code == 200, disabled.text
    assert httpx.get(f"{b}/api/v1/incidents", headers=officer).status_code == 401

    # Roles changed through one process apply in the other.
    member = sign_in(b, "member")
    assert httpx.get(f"{b}/api/v1/users", headers=member).status_code == 403
    promoted = httpx.patch(
        f"{a}/api/v1/users/member", json={"roles": [{"role": "admin"}]}, headers=sign_in(a, "admin")
    )
    assert promoted.status_code == 200, promoted.text
    # Changing roles ends the account's sessions: the old token is refused, a new one is an admin's.
    assert httpx.get(f"{b}/api/v1/users", headers=member).status_code == 401
    assert httpx.get(f"{b}/api/v1/users", headers=sign_in(b, "member")).status_code == 200


def test_serve_with_two_workers_runs_two_processes_answering(backend, engine, sessions, tmp_path):
    _, settings, _ = backend
    add_users(sessions, "member")
    url = settings.storage.resolved_database_url()
    with Service(url, tmp_path / "w", serve_args=("--workers", "2")) as service:
        headers = sign_in(service.url, "member")
        # Each request on a new connection: the kernel spreads them over the workers.
        for _ in range(20):
            assert httpx.get(f"{service.url}/api/v1/auth/me", headers=headers).status_code == 200
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            workers = set(re.findall(r"Started server process \[(\d+)\]", service.log()))
            if len(workers) == 2:
                break
            time.sleep(0.1)
        assert len(workers) == 2, service.log()
        assert "2 worker processes" in service.log()


def test_a_bad_worker_count_is_refused(backend, tmp_path):
    from utils.service import cli, service_env

    _, settings, _ = backend
    env = service_env(settings.storage.resolved_database_url(), tmp_path)
    for bad in ("0", "many", "65"):
        done = cli("serve", "--workers", bad, env=env)
        assert done.returncode == 2 and "--workers" in done.stderr, done.stderr
