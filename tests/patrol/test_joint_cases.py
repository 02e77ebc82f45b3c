"""Who takes part in a joint case: station managers, enforcement officers or admins of both sides;
a patrol member does not count for a side and is refused by name, with nothing written."""

import pytest
from sqlalchemy import func, select
from utils.factories import PASSWORD, add_users
from utils.places import inside

from patrol.accounts import Principal, RoleGrant, create_user
from patrol.errors import InvalidRequest
from patrol.incidents import IncidentReport, report_incident
from patrol.joint import open_joint_case
from patrol.models import AuditEntry, JointCase, Role, User
from patrol.settings import IncidentSettings

RULES = IncidentSettings()


def who(session, name) -> Principal:
    return Principal.of(session.scalars(select(User).where(User.username == name)).one())


@pytest.fixture
def people(sessions):
    """The standard users, a Hepu station manager and a Hepu admin."""
    add_users(sessions)
    with sessions() as session:
        create_user(
            session, username="manager-hp", password=PASSWORD, side="GX-HP",
            grants=[RoleGrant(Role.STATION_MANAGER, station="HP-S-SK")],
        )  # fmt: skip
        create_user(
            session, username="admin-hp", password=PASSWORD, side="GX-HP", grants=[RoleGrant(Role.ADMIN)]
        )
        session.commit()


def open_case(sessions, opener: str, participants: list[str]) -> int:
    with sessions() as session:
        lon, lat = inside("LJ-AP-02")
        incident = report_incident(
            session, who(session, "member"), IncidentReport("pollution", lon, lat), RULES
        )
        case = open_joint_case(
            session, who(session, opener), title="英罗湾排污", incident_ids=[incident.id],
            participants=participants, settings=RULES,
        )  # fmt: skip
        session.commit()
        return case.id


def written(sessions) -> tuple[int, int]:
    with sessions() as session:
        return tuple(session.scalar(select(func.count()).select_from(t)) for t in (JointCase, AuditEntry))


@pytest.mark.parametrize("other_side", ["officer-hp", "manager-hp", "admin-hp"])
def test_a_manager_officer_or_admin_of_the_other_side_makes_a_joint_case(sessions, people, other_side):
    case_id = open_case(sessions, "officer-lj", [other_side])
    with sessions() as session:
        assert session.get(JointCase, case_id).status == "open"


def test_a_patrol_member_of_the_other_side_is_no_participant(sessions, people):
    """The hole this closes: the member made the case "two-sided" without anyone of Hepu able to
    work it."""
    before = written(sessions)
    with pytest.raises(InvalidRequest, match="member-hp") as refused:
        open_case(sessions, "officer-lj", ["member-hp"])
    assert "not station managers, enforcement officers or admins" in refused.value.message
    assert written(sessions) == before


def test_patrol_members_are_refused_by_name_even_beside_real_participants(sessions, people):
    with pytest.raises(InvalidRequest) as refused:
        open_case(sessions, "officer-lj", ["officer-hp", "member-2", "member-hp"])
    assert "member-2, member-hp" in refused.value.message


def test_both_sides_need_a_real_participant(sessions, people):
    with pytest.raises(InvalidRequest, match="both sides"):
        open_case(sessions, "officer-lj", ["manager"])
    with pytest.raises(InvalidRequest, match="both sides"):
        open_case(sessions, "admin", [])
