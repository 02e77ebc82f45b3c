"""Per-grid patrol quotas: defaults, an admin's own values, refusals, the audit entry, who may."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from utils.audit import entry_count, newest
from utils.factories import add_users, auth

from patrol.accounts import Principal
from patrol.analysis.quotas import clear_quota, effective_quotas, set_quota
from patrol.errors import InvalidRequest, NotFound, PermissionDenied
from patrol.models import GridQuota, User
from patrol.settings import AnalysisSettings


def principal(session, username: str) -> Principal:
    return Principal.of(session.scalar(select(User).where(User.username == username)))


def test_defaults_then_own_values_then_back(sessions):
    add_users(sessions, "admin")
    defaults = AnalysisSettings(quota_patrols_per_month=5, quota_km_per_month=12.5)
    with sessions() as session:
        frame = effective_quotas(session, defaults)
        assert len(frame) == 32 and set(frame.source) == {"default"}
        assert set(frame.patrols_per_month) == {5} and set(frame.km_per_month) == {12.5}

        before = entry_count(sessions)
        assert set_quota(session, principal(session, "admin"), "LJ-GQ-03", 10, 30.5)
        session.commit()
        assert entry_count(sessions) == before + 1
        [entry] = newest(sessions)
        assert (entry.action, entry.object_type, entry.object_id) == (
            "grid_quota.set",
            "grid_quota",
            "LJ-GQ-03",
        )
        assert entry.changes == {"patrols_per_month": [None, 10], "km_per_month": [None, 30.5]}
        assert entry.actor == "admin"

        frame = effective_quotas(session, defaults, ["LJ-GQ-03", "LJ-GQ-04"]).set_index("code")
        assert frame.loc["LJ-GQ-03", ["patrols_per_month", "km_per_month", "source", "updated_by"]].tolist() == [
            10, 30.5, "grid", "admin"
        ]  # fmt: skip
        assert frame.loc["LJ-GQ-04", ["patrols_per_month", "km_per_month", "source"]].tolist() == [
            5,
            12.5,
            "default",
        ]
        # By id too.
        grid_id = int(frame.loc["LJ-GQ-03", "grid_id"])
        assert effective_quotas(session, defaults, [grid_id]).code.tolist() == ["LJ-GQ-03"]

        # The same values again change nothing and record nothing.
        assert not set_quota(session, principal(session, "admin"), "LJ-GQ-03", 10, 30.5)
        session.commit()
        assert entry_count(sessions) == before + 1

        assert clear_quota(session, principal(session, "admin"), "LJ-GQ-03")
        session.commit()
        [entry] = newest(sessions)
        assert entry.action == "grid_quota.clear" and entry.changes["patrols_per_month"] == [10, None]
        assert effective_quotas(session, defaults, ["LJ-GQ-03"]).source.tolist() == ["default"]
        assert not clear_quota(session, principal(session, "admin"), "LJ-GQ-03")  # nothing to clear
        session.commit()
        assert entry_count(sessions) == before + 2


@pytest.mark.parametrize(
    ("patrols", "km", "field"),
    [
        (-1, 10, "patrols_per_month"),
        (2.5, 10, "patrols_per_month"),
        (1001, 10, "patrols_per_month"),
        ("8", 10, "patrols_per_month"),
        (8, -0.5, "km_per_month"),
        (8, 100_001, "km_per_month"),
        (8, float("nan"), "km_per_month"),
        (0, 0, "both 0"),
    ],
)
def test_values_that_make_no_sense_are_refused_naming_the_field(sessions, patrols, km, field):
    add_users(sessions, "admin")
    before = entry_count(sessions)
    with sessions() as session:
        with pytest.raises(InvalidRequest, match=field):
            set_quota(session, principal(session, "admin"), "LJ-GQ-03", patrols, km)
        session.rollback()
        assert session.scalar(select(GridQuota)) is None
    assert entry_count(sessions) == before


def test_only_admins_and_only_known_grids(sessions):
    add_users(sessions, "admin", "manager", "officer-lj")
    with sessions() as session:
        for who in ("manager", "officer-lj"):
            with pytest.raises(PermissionDenied):
                set_quota(session, principal(session, who), "LJ-GQ-03", 4, 4)
            with pytest.raises(PermissionDenied):
                clear_quota(session, principal(session, who), "LJ-GQ-03")
        with pytest.raises(NotFound, match="LJ-XX-99"):
            set_quota(session, principal(session, "admin"), "LJ-XX-99", 4, 4)
        with pytest.raises(NotFound):
            clear_quota(session, principal(session, "admin"), "LJ-XX-99")


def test_quota_api(client, sessions, settings):
    add_users(sessions, "admin", "member")
    admin, member = auth(client, "admin"), auth(client, "member")
    body = client.get("/api/v1/quotas", headers=member).json()
    assert body["defaults"] == {
        "patrols_per_month": settings.analysis.quota_patrols_per_month,
        "km_per_month": settings.analysis.quota_km_per_month,
    }
    assert len(body["grids"]) == 32 and {g["source"] for g in body["grids"]} == {"default"}
    assert client.get("/api/v1/quotas").status_code == 401

    put = client.put(
        "/api/v1/grids/LJ-YZ-02/quota", json={"patrols_per_month": 12, "km_per_month": 40}, headers=admin
    )
    assert put.status_code == 200, put.text
    assert put.json() | {"updated_at": None} == put.json() | {
        "code": "LJ-YZ-02", "patrols_per_month": 12, "km_per_month": 40.0, "source": "grid",
        "updated_by": "admin", "updated_at": None,
    }  # fmt: skip
    grids = {g["code"]: g for g in client.get("/api/v1/quotas", headers=member).json()["grids"]}
    assert grids["LJ-YZ-02"]["patrols_per_month"] == 12 and grids["LJ-YZ-02"]["source"] == "grid"

    refused = client.put("/api/v1/grids/LJ-YZ-02/quota", json={"patrols_per_month": 2.5, "km_per_month": 4},
                         headers=admin)  # fmt: skip
    assert refused.status_code == 422
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert "patrols_per_month" in refused.json()["detail"]
    assert client.put("/api/v1/grids/LJ-YZ-02/quota", json={"patrols_per_month": 1, "km_per_month": 1},
                      headers=member).status_code == 403  # fmt: skip
    assert client.put("/api/v1/grids/NOPE/quota", json={"patrols_per_month": 1, "km_per_month": 1},
                      headers=admin).status_code == 404  # fmt: skip

    assert client.delete("/api/v1/grids/LJ-YZ-02/quota", headers=member).status_code == 403
    cleared = client.delete("/api/v1/grids/LJ-YZ-02/quota", headers=admin)
    assert cleared.status_code == 200 and cleared.json()["source"] == "default"
    assert cleared.json()["patrols_per_month"] == settings.analysis.quota_patrols_per_month
