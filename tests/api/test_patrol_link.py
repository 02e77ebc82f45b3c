"""Naming the patrol a report was found on, after the report: the field app reports at once (the
time limits run from then) while the patrol is still being recorded, and links the two once the
patrol is uploaded. Only the reporter, once, to a patrol they may see; a repeat changes nothing."""

from __future__ import annotations

import pytest
from utils.factories import add_users, auth
from utils.phone import upload_track

pytestmark = pytest.mark.backend

GQ03 = (109.7735, 21.5655)


@pytest.fixture
def world(client, sessions):
    add_users(sessions, "member", "member-2", "manager")
    member = auth(client, "member")
    made = client.post(
        "/api/v1/incidents", json={"category": "cutting", "lon": GQ03[0], "lat": GQ03[1]}, headers=member
    )
    assert made.status_code == 201, made.text
    patrol = upload_track(client, member, 0)
    assert patrol.status_code == 201, patrol.text
    return client, member, made.json()["id"], patrol.json()["id"]


def link(client, headers, incident_id, patrol_id):
    return client.post(
        f"/api/v1/incidents/{incident_id}/patrol", json={"patrol_id": patrol_id}, headers=headers
    )


def test_the_reporter_links_the_report_to_the_patrol_once(world):
    client, member, incident_id, patrol_id = world
    linked = link(client, member, incident_id, patrol_id)
    assert linked.status_code == 200 and linked.json()["patrol_id"] == patrol_id
    assert linked.json()["history"][-1]["action"] == "link_patrol"
    # A retry (the answer was lost) changes nothing: no second history entry.
    again = link(client, member, incident_id, patrol_id)
    assert again.status_code == 200 and again.json()["history"] == linked.json()["history"]


def test_a_linked_report_is_not_moved_to_another_patrol(world):
    client, member, incident_id, patrol_id = world
    other = upload_track(client, member, 1).json()["id"]
    assert link(client, member, incident_id, patrol_id).status_code == 200
    moved = link(client, member, incident_id, other)
    assert moved.status_code == 409 and moved.headers["content-type"] == "application/problem+json"
    assert f"already linked to patrol {patrol_id}" in moved.json()["detail"]


def test_only_the_reporter_and_only_to_a_patrol_they_may_see(world, client):
    client, member, incident_id, patrol_id = world
    manager = auth(client, "manager")
    refused = link(client, manager, incident_id, patrol_id)  # the manager sees it, but did not report it
    assert refused.status_code == 403 and "only the reporter" in refused.json()["detail"]
    assert link(client, auth(client, "member-2"), incident_id, patrol_id).status_code == 404
    unknown = link(client, member, incident_id, 2**31 - 1)
    assert unknown.status_code == 422 and "unknown patrol" in unknown.json()["detail"]
    assert client.get(f"/api/v1/incidents/{incident_id}", headers=member).json()["patrol_id"] is None
