"""The schema: one set of SQLAlchemy 2 + GeoAlchemy2 models for SpatiaLite and PostGIS.

Geometries are stored in WGS84 lon/lat (SRID 4326) with a spatial index; metric work is done in
UTM 49N on the way in (areas are stored, not recomputed per query).
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from geoalchemy2 import Geometry
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

SRID = 4326


class UTCDateTime(TypeDecorator):
    """An instant, stored in UTC. Every value bound to SQL — stored, or compared in a filter — is
    turned into UTC first: SQLite keeps times as text and compares text, so a bound in another zone
    (a China-time midnight) would be compared as if it were UTC, eight hours off. Naive values are
    taken as UTC, as SQLite hands them back."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if isinstance(value, datetime):
            return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value


def utcnow() -> datetime:
    return datetime.now(UTC)


# The zones UTC values come back in: psycopg hands timestamptz back in the connection's zone, a
# ZoneInfo (cached, so the same object each time). Known by identity: a ZoneInfo's utcoffset()
# costs more than formatting the value.
_UTC_ZONES = frozenset({UTC, ZoneInfo("UTC"), ZoneInfo("Etc/UTC")})


def iso_utc(value: datetime | None) -> str | None:
    """An instant as RFC 3339 UTC text ending in Z; naive values (as SQLite returns them) are UTC.
    Called for every time of every listed row, so it avoids the zone arithmetic where it can."""
    if value is None:
        return None
    zone = value.tzinfo
    if zone is None:
        return value.isoformat() + "Z"
    if zone not in _UTC_ZONES:
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None).isoformat() + "Z"


class Base(DeclarativeBase):
    pass


# For tables whose ids appear in links and tokens and whose rows can be deleted: on SQLite an id is
# otherwise reused (max + 1) once the newest row is deleted, and an old link shows another object.
# PostgreSQL sequences never reuse. (Migration 0008 rebuilds the tables made before.)
NEVER_REUSE_IDS = {"sqlite_autoincrement": True}


class Role(str, enum.Enum):
    PATROL_MEMBER = "patrol_member"  # in a team; uploads tracks, reports incidents
    STATION_MANAGER = "station_manager"  # of a station; sees its grids, patrols and incidents
    ENFORCEMENT_OFFICER = "enforcement_officer"  # works their side's incidents and joint cases
    ADMIN = "admin"  # everything, including grid import and accounts


ROLE_VALUES = tuple(r.value for r in Role)


class Side(Base):
    """Guangdong·Lianjiang (GD-LJ) or Guangxi·Hepu (GX-HP)."""

    __tablename__ = "sides"
    code: Mapped[str] = mapped_column(String(8), primary_key=True)
    name_zh: Mapped[str] = mapped_column(String(64))
    name_en: Mapped[str] = mapped_column(String(64))


class Town(Base):
    __tablename__ = "towns"
    code: Mapped[str] = mapped_column(String(8), primary_key=True)
    name_zh: Mapped[str] = mapped_column(String(64))
    name_en: Mapped[str] = mapped_column(String(64))
    side: Mapped[str] = mapped_column(ForeignKey("sides.code"))
    seat = mapped_column(Geometry("POINT", srid=SRID, spatial_index=False), nullable=True)


class Station(Base):
    __tablename__ = "stations"
    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    name_zh: Mapped[str] = mapped_column(String(64))
    name_en: Mapped[str] = mapped_column(String(128))
    side: Mapped[str] = mapped_column(ForeignKey("sides.code"))
    town: Mapped[str | None] = mapped_column(ForeignKey("towns.code"))
    approximate: Mapped[bool] = mapped_column(Boolean, default=True)
    note: Mapped[str | None] = mapped_column(Text)
    location = mapped_column(Geometry("POINT", srid=SRID, spatial_index=False), nullable=True)


class Team(Base):
    """A patrol team, e.g. one of Lianjiang's five Party-member patrol vanguard teams."""

    __tablename__ = "teams"
    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    name_zh: Mapped[str] = mapped_column(String(64))
    name_en: Mapped[str] = mapped_column(String(128))
    side: Mapped[str] = mapped_column(ForeignKey("sides.code"))
    town: Mapped[str | None] = mapped_column(ForeignKey("towns.code"))
    station: Mapped[str | None] = mapped_column(ForeignKey("stations.code"))


class Grid(Base):
    """A protection grid (Lianjiang) or patrol zone (Hepu). Never deleted: retired when an import
    drops it, so the patrols and incidents that refer to it keep their grid."""

    __tablename__ = "grids"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name_zh: Mapped[str] = mapped_column(String(128))
    name_en: Mapped[str] = mapped_column(String(160))
    side: Mapped[str] = mapped_column(ForeignKey("sides.code"), index=True)
    town: Mapped[str | None] = mapped_column(ForeignKey("towns.code"), index=True)
    team: Mapped[str | None] = mapped_column(ForeignKey("teams.code"))
    station: Mapped[str | None] = mapped_column(ForeignKey("stations.code"))
    kind: Mapped[str] = mapped_column(String(8), default="grid")
    area_ha: Mapped[float] = mapped_column(Float)
    source: Mapped[str] = mapped_column(String(256))
    approximate: Mapped[bool] = mapped_column(Boolean, default=False)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    geom = mapped_column(Geometry("MULTIPOLYGON", srid=SRID, spatial_index=True), nullable=False)

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (CheckConstraint("kind IN ('grid', 'zone')", name="ck_grids_kind"),)


class GridQuota(Base):
    """A grid's own monthly patrol quota, set by an admin; grids without a row take the defaults
    of ``AnalysisSettings`` (see ``patrol.analysis.quotas``)."""

    __tablename__ = "grid_quotas"
    grid_id: Mapped[int] = mapped_column(ForeignKey("grids.id", ondelete="CASCADE"), primary_key=True)
    patrols_per_month: Mapped[int] = mapped_column(Integer)
    km_per_month: Mapped[float] = mapped_column(Float)
    updated_by: Mapped[str] = mapped_column(String(80))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        CheckConstraint("patrols_per_month >= 0", name="ck_grid_quotas_patrols"),
        CheckConstraint("km_per_month >= 0", name="ck_grid_quotas_km"),
    )


class Boundary(Base):
    """Lines of reference such as the Guangdong–Guangxi provincial border."""

    __tablename__ = "boundaries"
    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name_zh: Mapped[str] = mapped_column(String(128))
    name_en: Mapped[str] = mapped_column(String(160))
    approximate: Mapped[bool] = mapped_column(Boolean, default=True)
    geom = mapped_column(Geometry("LINESTRING", srid=SRID, spatial_index=False), nullable=False)


class GridImport(Base):
    """Audit record of each accepted grid import."""

    __tablename__ = "grid_imports"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    imported_by: Mapped[str] = mapped_column(String(64))
    side: Mapped[str] = mapped_column(ForeignKey("sides.code"))
    source_name: Mapped[str] = mapped_column(String(256))
    source_format: Mapped[str] = mapped_column(String(32))
    source_crs: Mapped[str] = mapped_column(String(128))
    created: Mapped[int] = mapped_column(Integer)
    updated: Mapped[int] = mapped_column(Integer)
    unchanged: Mapped[int] = mapped_column(Integer)
    retired: Mapped[int] = mapped_column(Integer)
    report: Mapped[dict] = mapped_column(JSON)


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(128))
    side: Mapped[str] = mapped_column(ForeignKey("sides.code"))
    password_hash: Mapped[str] = mapped_column(String(256))
    # A disabled account cannot sign in; disabling it also ends its sessions (see AuthSession).
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    roles: Mapped[list[UserRole]] = relationship(
        back_populates="user", cascade="all, delete-orphan", lazy="selectin"
    )

    __table_args__ = NEVER_REUSE_IDS


class UserRole(Base):
    """A role held by a user, scoped to a team (patrol members) or station (station managers)."""

    __tablename__ = "user_roles"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(32))
    team: Mapped[str | None] = mapped_column(ForeignKey("teams.code"))
    station: Mapped[str | None] = mapped_column(ForeignKey("stations.code"))

    user: Mapped[User] = relationship(back_populates="roles")

    __table_args__ = (
        UniqueConstraint("user_id", "role", "team", "station", name="uq_user_roles"),
        CheckConstraint(
            "role IN ('patrol_member', 'station_manager', 'enforcement_officer', 'admin')",
            name="ck_user_roles_role",
        ),
        CheckConstraint(
            "(role = 'patrol_member' AND team IS NOT NULL) OR role <> 'patrol_member'",
            name="ck_user_roles_member_team",
        ),
        CheckConstraint(
            "(role = 'station_manager' AND station IS NOT NULL) OR role <> 'station_manager'",
            name="ck_user_roles_manager_station",
        ),
    )


class AuthSession(Base):
    """One sign-in: a bearer token for apps (kind ``token``) or the pages' browser session (``page``).

    The client keeps a random secret; only its SHA-256 is stored, so a copy of this table signs
    no one in. ``id`` is a random public name (for the audit trail), never an integer that SQLite
    could hand out again. A session ends when it expires or when ``revoked_at`` is set: by sign-out,
    a password change, disabling the account or changing its roles. Expired rows are purged at
    sign-in."""

    __tablename__ = "auth_sessions"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Updated at most every few minutes, not on every request (see patrol.accounts.TOUCH_EVERY).
    last_used_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    channel: Mapped[str] = mapped_column(String(8))  # api or page: where it was signed in
    address: Mapped[str | None] = mapped_column(String(64))  # the client's address then

    __table_args__ = (CheckConstraint("kind IN ('token', 'page')", name="ck_auth_sessions_kind"),)


class LoginThrottle(Base):
    """Failed sign-ins per account name and per client address, shared by every service process.

    ``subject`` is the SHA-256 of the lower-cased name typed (scope ``account``; names that exist
    and names that do not are counted alike, and a password typed into the name field is not kept
    in clear) or the client's address (scope ``address``). Failed attempts are kept here only, not
    in the audit trail; the lock of an account is audited."""

    __tablename__ = "login_throttle"
    scope: Mapped[str] = mapped_column(String(8), primary_key=True)
    subject: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    last_failed_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    blocked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    locked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (CheckConstraint("scope IN ('account', 'address')", name="ck_login_throttle_scope"),)


class Patrol(Base):
    """One uploaded track: who walked or boated it, its cleaned line and its summary.

    The same file uploaded twice is the same patrol (``file_sha256`` is unique)."""

    __tablename__ = "patrols"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    side: Mapped[str] = mapped_column(ForeignKey("sides.code"), index=True)
    team: Mapped[str | None] = mapped_column(ForeignKey("teams.code"), index=True)
    uploaded_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    file_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    source_name: Mapped[str] = mapped_column(String(256))
    source_format: Mapped[str] = mapped_column(String(32))
    datum: Mapped[str] = mapped_column(String(16))
    transport: Mapped[str] = mapped_column(String(8))
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    fix_count: Mapped[int] = mapped_column(Integer)
    flagged_count: Mapped[int] = mapped_column(Integer)
    distance_m: Mapped[float] = mapped_column(Float)
    duration_s: Mapped[float | None] = mapped_column(Float)
    outside_distance_m: Mapped[float] = mapped_column(Float)
    outside_duration_s: Mapped[float | None] = mapped_column(Float)
    notes: Mapped[str | None] = mapped_column(Text)
    summary: Mapped[dict] = mapped_column(JSON)  # flags per rule, warnings, grids visited
    geom = mapped_column(Geometry("MULTILINESTRING", srid=SRID, spatial_index=True), nullable=True)
    geom_simplified = mapped_column(
        Geometry("MULTILINESTRING", srid=SRID, spatial_index=False), nullable=True
    )

    __table_args__ = (
        CheckConstraint("transport IN ('foot', 'boat')", name="ck_patrols_transport"),
        NEVER_REUSE_IDS,
    )


class PatrolMember(Base):
    __tablename__ = "patrol_members"
    patrol_id: Mapped[int] = mapped_column(ForeignKey("patrols.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True, index=True)


class PatrolFixes(Base):
    """The fixes as read from the file (before datum conversion) plus their cleaning flags, as one
    compressed columnar blob: lossless, written and read whole, never queried fix by fix."""

    __tablename__ = "patrol_fixes"
    patrol_id: Mapped[int] = mapped_column(ForeignKey("patrols.id", ondelete="CASCADE"), primary_key=True)
    fix_count: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class PatrolVisit(Base):
    """One pass of a patrol through one grid (``grid_id`` NULL: outside every grid)."""

    __tablename__ = "patrol_visits"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patrol_id: Mapped[int] = mapped_column(ForeignKey("patrols.id", ondelete="CASCADE"), index=True)
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("grids.id"))
    seq: Mapped[int] = mapped_column(Integer)
    entered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    exited_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    distance_m: Mapped[float] = mapped_column(Float)
    duration_s: Mapped[float | None] = mapped_column(Float)
    geom = mapped_column(Geometry("LINESTRING", srid=SRID, spatial_index=False), nullable=True)

    __table_args__ = (Index("ix_patrol_visits_grid_entered", "grid_id", "entered_at"),)


class PatrolSegment(Base):
    """A short timed piece of a patrol's cleaned track, for "who was near here, when"
    (``patrol.segments``). ``times``: each vertex's milliseconds after ``started_at`` (int32 LE).

    On PostGIS the table is partitioned by month of ``started_at`` (``patrol.partitions``), its
    primary key (id, started_at); on SpatiaLite ``id`` is the rowid its spatial index points at."""

    __tablename__ = "patrol_segments"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    patrol_id: Mapped[int] = mapped_column(ForeignKey("patrols.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    ended_at: Mapped[datetime] = mapped_column(UTCDateTime())
    fix_count: Mapped[int] = mapped_column(Integer)
    times: Mapped[bytes] = mapped_column(LargeBinary)
    geom = mapped_column(Geometry("LINESTRING", srid=SRID, spatial_index=True), nullable=False)


# --- incidents and joint enforcement -------------------------------------------------------------


class IncidentCategory(Base):
    """What was found: a fixed starting taxonomy that an admin may extend (never delete: retire)."""

    __tablename__ = "incident_categories"
    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    label_zh: Mapped[str] = mapped_column(String(64))
    label_en: Mapped[str] = mapped_column(String(128))
    sort_order: Mapped[int] = mapped_column(Integer, default=100)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class JointCase(Base):
    """A case both sides work together under the five-joint mechanism (五联)."""

    __tablename__ = "joint_cases"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="open")
    opened_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        CheckConstraint("status IN ('open', 'closed')", name="ck_joint_cases_status"),
        NEVER_REUSE_IDS,
    )


class JointCaseParticipant(Base):
    __tablename__ = "joint_case_participants"
    case_id: Mapped[int] = mapped_column(ForeignKey("joint_cases.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)


class JointCaseAction(Base):
    """One entry of a joint case's log, typed by the mechanism it belongs to."""

    __tablename__ = "joint_case_actions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("joint_cases.id", ondelete="CASCADE"), index=True)
    mechanism: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    actor_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    note: Mapped[str] = mapped_column(Text)


class Incident(Base):
    """A reported finding at a point, placed in its grid and side, followed to closure.

    ``lon``/``lat`` duplicate the point so that lists and CSV need no geometry decoding; the
    geometry carries the spatial index. Due times are fixed when the incident is reported (and the
    resolve deadline again when the handling level changes), so "overdue" is a plain comparison."""

    __tablename__ = "incidents"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    category: Mapped[str] = mapped_column(ForeignKey("incident_categories.code"))
    severity: Mapped[str] = mapped_column(String(8))
    level: Mapped[str] = mapped_column(String(8))  # handling level: village, town, county
    description: Mapped[str] = mapped_column(Text)
    observed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    reported_at: Mapped[datetime] = mapped_column(UTCDateTime())
    reporter_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    patrol_id: Mapped[int | None] = mapped_column(ForeignKey("patrols.id", ondelete="SET NULL"))
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    geom = mapped_column(Geometry("POINT", srid=SRID, spatial_index=True), nullable=False)
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("grids.id"))
    grid_match: Mapped[str] = mapped_column(String(8))  # inside, near (nearest within limit), none
    grid_distance_m: Mapped[float | None] = mapped_column(Float)
    side: Mapped[str] = mapped_column(ForeignKey("sides.code"))
    town: Mapped[str | None] = mapped_column(String(8))
    border_distance_m: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16))
    duplicate_of: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"))
    referred_to: Mapped[str | None] = mapped_column(ForeignKey("sides.code"))
    joint_case_id: Mapped[int | None] = mapped_column(ForeignKey("joint_cases.id"), index=True)
    accept_due: Mapped[datetime] = mapped_column(UTCDateTime())
    resolve_due: Mapped[datetime] = mapped_column(UTCDateTime())
    responded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        # The visibility columns ride along so that counts per grid for an officer read the
        # index alone (SpatiaLite, 1 M rows: 1,057 ms → 69 ms; bench/RESULTS.md).
        Index(
            "ix_incidents_grid_observed",
            "grid_id",
            "observed_at",
            "id",
            "side",
            "referred_to",
            "joint_case_id",
            "border_distance_m",
            "reporter_id",
        ),  # fmt: skip
        Index("ix_incidents_side_observed", "side", "observed_at", "id"),
        Index("ix_incidents_observed", "observed_at", "id"),
        Index("ix_incidents_status", "status", "resolve_due"),
        CheckConstraint("severity IN ('low', 'medium', 'high', 'critical')", name="ck_incidents_severity"),
        CheckConstraint("level IN ('village', 'town', 'county')", name="ck_incidents_level"),
        CheckConstraint("grid_match IN ('inside', 'near', 'none')", name="ck_incidents_grid_match"),
        NEVER_REUSE_IDS,
    )


class IncidentEvent(Base):
    """The history of an incident: every transition, referral, photo and note, with who and when."""

    __tablename__ = "incident_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(16))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str | None] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict | None] = mapped_column(JSON)


class IncidentPhoto(Base):
    """A validated image stored as a file under the photo directory; the row records where."""

    __tablename__ = "incident_photos"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    path: Mapped[str] = mapped_column(String(256))  # relative to the photo directory
    content_type: Mapped[str] = mapped_column(String(32))
    size_bytes: Mapped[int] = mapped_column(Integer)  # of the stored (re-encoded) file
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))  # of the file as sent: evidence, no photo twice
    uploaded_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = NEVER_REUSE_IDS


# --- the audit trail ------------------------------------------------------------------------------


class AuditEntry(Base):
    """One change, append-only and hash-chained (see ``patrol.audit``). No foreign keys: an entry
    outlives the user and the object it names, and must never block their removal."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, unique=True)  # position in the chain, from 1
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor_id: Mapped[int | None] = mapped_column(Integer)
    actor: Mapped[str] = mapped_column(String(80))  # the username then (or cli:<login>)
    channel: Mapped[str] = mapped_column(String(8))  # api, page, cli
    address: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(48))
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str | None] = mapped_column(String(64))
    changes: Mapped[dict | None] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_audit_log_object", "object_type", "object_id", "seq"),
        Index("ix_audit_log_actor", "actor", "seq"),
        Index("ix_audit_log_at", "at"),
    )


class AuditHead(Base):
    """The end of the chain: its last position and hash, in one row. Appending updates this row
    first, which serialises appenders on both backends and makes a deleted newest entry visible."""

    __tablename__ = "audit_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))


# --- safe retries ----------------------------------------------------------------------------------


class IdempotencyKey(Base):
    """A client-made key of one create and the response it got (see ``patrol.idempotency``): saved
    in the same transaction as the object it made, so a repeat is answered with that response."""

    __tablename__ = "idempotency_keys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Keys are scoped per user: the same key from someone else is another key.
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(256))
    fingerprint: Mapped[str] = mapped_column(String(64))  # SHA-256 of the request's content
    status: Mapped[int] = mapped_column(Integer)
    body: Mapped[dict | list | None] = mapped_column(JSON)
    location: Mapped[str | None] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)

    __table_args__ = (UniqueConstraint("user_id", "key", name="uq_idempotency_keys_user_key"),)
