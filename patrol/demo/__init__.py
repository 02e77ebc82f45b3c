"""Demo mode: the reference geodata plus invented demo users (never real people), a season of
synthetic patrols (``patrol.demo.patrols``) uploaded through the real pipeline and the incidents
found on them (``patrol.demo.incidents``)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from patrol.accounts import RoleGrant, create_user
from patrol.models import Role, User
from patrol.reference import load_reference
from patrol.settings import IncidentSettings, PatrolSettings, get_settings

# Printed by `mangrove demo` and in the README. Demo databases only; never reuse in production.
DEMO_PASSWORD = "mangrove-demo"


@dataclass(frozen=True)
class DemoUser:
    username: str
    display_name: str
    side: str
    grants: tuple[RoleGrant, ...]


DEMO_USERS = (
    DemoUser("admin", "管理员 Admin", "GD-LJ", (RoleGrant(Role.ADMIN),)),
    DemoUser(
        "gq-member-07", "队员 07 (高桥先锋队)", "GD-LJ", (RoleGrant(Role.PATROL_MEMBER, team="LJ-T-GQ"),)
    ),
    DemoUser(
        "yz-member-12", "队员 12 (营仔先锋队)", "GD-LJ", (RoleGrant(Role.PATROL_MEMBER, team="LJ-T-YZ"),)
    ),
    DemoUser(
        "cb-member-02", "队员 02 (车板先锋队)", "GD-LJ", (RoleGrant(Role.PATROL_MEMBER, team="LJ-T-CB"),)
    ),
    DemoUser(
        "ap-member-05", "队员 05 (安铺先锋队)", "GD-LJ", (RoleGrant(Role.PATROL_MEMBER, team="LJ-T-AP"),)
    ),
    DemoUser(
        "ld-member-09", "队员 09 (良垌先锋队)", "GD-LJ", (RoleGrant(Role.PATROL_MEMBER, team="LJ-T-LD"),)
    ),
    DemoUser(
        "gq-manager", "站长 A (高桥管理站)", "GD-LJ", (RoleGrant(Role.STATION_MANAGER, station="LJ-S-GQ"),)
    ),
    DemoUser("lj-officer", "执法队员 B (廉江)", "GD-LJ", (RoleGrant(Role.ENFORCEMENT_OFFICER),)),
    DemoUser("hp-officer", "执法队员 C (合浦)", "GX-HP", (RoleGrant(Role.ENFORCEMENT_OFFICER),)),
    DemoUser(
        "sk-member-03", "队员 03 (山口巡护队)", "GX-HP", (RoleGrant(Role.PATROL_MEMBER, team="HP-T-SK"),)
    ),
)


def load_demo(session: Session) -> dict[str, object]:
    """Reference geodata and demo users; running it again changes nothing."""
    summary = load_reference(session)
    existing = set(session.scalars(select(User.username)))
    created = []
    for demo in DEMO_USERS:
        if demo.username in existing:
            continue
        create_user(
            session,
            username=demo.username,
            password=DEMO_PASSWORD,
            side=demo.side,
            grants=list(demo.grants),
            display_name=demo.display_name,
        )
        created.append(demo.username)
    session.flush()
    return {**summary, "users_created": created}


def load_demo_patrols(
    session: Session,
    settings: PatrolSettings,
    *,
    days: int = 90,
    seed: int = 2026,
    incident_settings: IncidentSettings | None = None,
    patrols_per_team_week: float = 3.0,
) -> dict:
    """A season of synthetic patrols (see ``patrol.demo.patrols``), uploaded through the real
    pipeline, then the incidents found on them (see ``patrol.demo.incidents``). Idempotent for the
    same day and seed: a file uploaded before is the same patrol; incidents are added only to a
    database without any."""
    import tempfile
    from pathlib import Path

    from geodata.cleaning import Transport
    from geodata.datum import Datum
    from patrol.accounts import Principal
    from patrol.demo.incidents import load_demo_incidents
    from patrol.demo.patrols import season
    from patrol.models import Patrol
    from patrol.patrols import UploadOptions, upload_patrol

    def incidents() -> dict:
        chosen = incident_settings or get_settings().incidents
        return {"incidents_created": load_demo_incidents(session, days=days, settings=chosen, seed=seed)}

    already = session.scalar(select(func.count(Patrol.id)))
    if already:
        # The season is generated relative to today; loading it again another day would add a
        # shifted copy. A database that has patrols keeps them.
        return {"patrols_created": 0, "patrols_existing": already, **incidents()}
    members = {u.username: Principal.of(u, channel="cli") for u in session.scalars(select(User))}
    created = existing = 0
    with tempfile.TemporaryDirectory(prefix="mangrove-demo-") as folder:
        for patrol in season(days=days, seed=seed, patrols_per_team_week=patrols_per_team_week):
            path = Path(folder) / patrol.filename
            path.write_bytes(patrol.gpx)
            result = upload_patrol(
                session,
                path,
                filename=patrol.filename,
                principal=members[patrol.member],
                options=UploadOptions(
                    datum=Datum.parse(patrol.datum), transport=Transport.parse(patrol.transport)
                ),
                settings=settings,
            )
            path.unlink()
            created += result.created
            existing += not result.created
    session.flush()
    return {"patrols_created": created, "patrols_existing": existing, **incidents()}
