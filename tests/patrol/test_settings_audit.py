"""Behaviour settings in the audit trail: recorded at the first start, again only when they
differ from the last recorded values, and never a secret or a path."""

import json

import pytest
from sqlalchemy import select

from patrol.accounts import Principal
from patrol.models import AuditEntry, Role
from patrol.settings import Settings
from patrol.settings_audit import effective_settings, record_settings

OPERATOR = Principal(
    user_id=0, username="cli:ops", display_name="ops", side="", roles=frozenset({Role.ADMIN}), channel="cli"
)
SECRET = "a-secret-that-must-never-be-written-" + "x" * 20


@pytest.fixture
def environment(monkeypatch, tmp_path):
    """Settings from a controlled environment, as the service reads them at start-up."""
    monkeypatch.setenv("MANGROVE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MANGROVE_AUTH_SECRET_KEY", SECRET)
    monkeypatch.setenv("MANGROVE_MAP_TIANDITU_KEY", "tianditu-" + SECRET)
    monkeypatch.setenv("MANGROVE_INCIDENT_PHOTO_DIR", str(tmp_path / "photos"))
    return monkeypatch


def start(sessions) -> int | None:
    with sessions() as session:
        seq = record_settings(session, OPERATOR, Settings())
        session.commit()
        return seq


def setting_entries(sessions) -> list[AuditEntry]:
    with sessions() as session:
        return list(
            session.scalars(
                select(AuditEntry).where(AuditEntry.action == "setting.change").order_by(AuditEntry.seq)
            )
        )


def test_behaviour_settings_are_recorded_without_secrets_or_paths(environment):
    values = effective_settings(Settings())
    assert values["MANGROVE_INCIDENT_ACCEPT_WITHIN_HOURS"] == 4.0
    assert values["MANGROVE_PATROL_MAX_SPEED_FOOT_MPS"] == 4.0
    assert values["MANGROVE_MAP_MAX_INCIDENTS"] == 200_000
    assert values["MANGROVE_INCIDENT_PHOTO_MAX_BYTES"] == 10 * 1024 * 1024
    assert values["MANGROVE_AUTH_TOKEN_TTL_MINUTES"] == 7 * 24 * 60
    for left_out in ("MANGROVE_AUTH_SECRET_KEY", "MANGROVE_MAP_TIANDITU_KEY", "MANGROVE_INCIDENT_PHOTO_DIR",
                     "MANGROVE_DATA_DIR", "MANGROVE_DATABASE_URL"):  # fmt: skip
        assert left_out not in values
    assert SECRET not in json.dumps(values)


def test_the_first_start_records_all_then_only_changes(sessions, environment):
    assert start(sessions) is not None
    [first] = setting_entries(sessions)
    assert first.changes["MANGROVE_INCIDENT_NEAR_GRID_M"] == [None, 300.0]
    assert (first.object_type, first.actor, first.channel) == ("setting", "cli:ops", "cli")
    assert SECRET not in json.dumps(first.changes)

    assert start(sessions) is None  # the same values: no entry
    environment.setenv("MANGROVE_INCIDENT_ACCEPT_WITHIN_HOURS", "6")
    environment.setenv("MANGROVE_MAP_DEFAULT_BASEMAP", "osm")
    environment.setenv("MANGROVE_AUTH_SECRET_KEY", "another-" + SECRET)  # a secret is not a change
    assert start(sessions) is not None
    changed = setting_entries(sessions)[-1].changes
    assert changed == {
        "MANGROVE_INCIDENT_ACCEPT_WITHIN_HOURS": [4.0, 6.0],
        "MANGROVE_MAP_DEFAULT_BASEMAP": ["none", "osm"],
    }
    environment.delenv("MANGROVE_INCIDENT_ACCEPT_WITHIN_HOURS")
    start(sessions)
    assert setting_entries(sessions)[-1].changes == {"MANGROVE_INCIDENT_ACCEPT_WITHIN_HOURS": [6.0, 4.0]}
    assert len(setting_entries(sessions)) == 3
