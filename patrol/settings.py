"""Settings, one pydantic-settings class per concern, each with its own environment prefix.

Read once at start-up (``get_settings``) and validated then, so a bad value stops the service with a
clear message instead of failing on the first request.
"""

from __future__ import annotations

import os
import re
import secrets
from functools import lru_cache
from pathlib import Path

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "mangrove-patrol"


class StorageSettings(BaseSettings):
    """Where the data lives. ``MANGROVE_DATABASE_URL`` picks the backend; empty means SpatiaLite."""

    model_config = SettingsConfigDict(env_prefix="MANGROVE_", extra="ignore")

    data_dir: Path = Field(default_factory=default_data_dir)
    database_url: str = ""
    spatialite_library: str = "mod_spatialite"
    # PostgreSQL only. No statement of the service runs longer than this (0: no limit): a runaway
    # query is cancelled instead of holding its connection, and its locks, for ever.
    db_statement_timeout_s: float = Field(default=30.0, ge=0)
    # How long a request waits for a free connection before it is answered 503 (both backends).
    db_pool_timeout_s: float = Field(default=10.0, gt=0)
    # PostGIS connections per process: a pool of db_pool_size kept open, up to db_max_overflow
    # more under load. With N workers the service may hold N × (size + overflow) connections:
    # keep that under PostgreSQL's max_connections (README, "Several workers").
    db_pool_size: int = Field(default=10, ge=1, le=200)
    db_max_overflow: int = Field(default=10, ge=0, le=200)

    @field_validator("database_url")
    @classmethod
    def _known_backend(cls, url: str) -> str:
        if url and not url.startswith(("sqlite", "postgresql")):
            raise ValueError(
                "MANGROVE_DATABASE_URL must be a sqlite:///… (SpatiaLite) or postgresql+psycopg://… "
                f"(PostGIS) URL, got {url.split(':', 1)[0]!r}"
            )
        return url

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'mangrove.sqlite'}"


class AuthSettings(BaseSettings):
    """Tokens for the API, sessions for the service's own pages, and login throttling."""

    model_config = SettingsConfigDict(env_prefix="MANGROVE_AUTH_", extra="ignore")

    # Empty: a random key is generated once and kept in the data directory (mode 0600). It signs
    # the pages' cookie (which names a server-side session and holds the CSRF token).
    secret_key: str = ""
    # Patrol members upload from the field over a working day or more; a week keeps them signed in.
    token_ttl_minutes: int = Field(default=7 * 24 * 60, ge=5)
    session_ttl_minutes: int = Field(default=12 * 60, ge=5)
    # Set to true behind HTTPS so the session cookie is never sent in clear.
    secure_cookies: bool = False
    # Login throttling, per account name and per client address: this many failures go free, then
    # each further failure doubles the wait (1, 2, 4 … seconds) up to max_delay_seconds.
    free_attempts: int = Field(default=5, ge=1, le=1000)
    # A station's phones may share one address: it gets more free failures than one account.
    address_free_attempts: int = Field(default=20, ge=1, le=10_000)
    max_delay_seconds: int = Field(default=300, ge=1, le=24 * 3600)
    # After this many failures in a row an account is locked until an admin unlocks it.
    lock_after_failures: int = Field(default=20, ge=2, le=10_000)
    # Failures are forgotten after this long without another one (a lock is not).
    forget_after_minutes: int = Field(default=24 * 60, ge=1)

    @field_validator("lock_after_failures")
    @classmethod
    def _lock_after_the_free_attempts(cls, value: int, info) -> int:
        free = info.data.get("free_attempts")
        if free is not None and value <= free:
            raise ValueError(
                f"must be more than MANGROVE_AUTH_FREE_ATTEMPTS ({free}), or an account locks "
                f"before it is ever slowed down; got {value}"
            )
        return value


class ImportSettings(BaseSettings):
    """Limits for files users upload."""

    model_config = SettingsConfigDict(env_prefix="MANGROVE_IMPORT_", extra="ignore")

    max_upload_bytes: int = Field(default=50 * 1024 * 1024, ge=1024)
    overlap_tolerance_m2: float = Field(default=1.0, ge=0)
    max_grid_features: int = Field(default=10_000, ge=1)  # far above any real survey (26 + 4 grids)


class ServerSettings(BaseSettings):
    """What one request may cost the running service, and how it gives memory back."""

    model_config = SettingsConfigDict(env_prefix="MANGROVE_SERVER_", extra="ignore")

    # Bodies of requests other than uploads and photos (JSON, forms) are refused above this.
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    # A request body that sends nothing for this long is abandoned (408), freeing what it holds.
    body_idle_timeout_s: float = Field(default=60.0, gt=0)
    # After a request whose body was at least this large, unused heap is handed back to the
    # system (glibc malloc_trim); 0 never does.
    trim_memory_after_bytes: int = Field(default=8 * 1024 * 1024, ge=0)
    # glibc malloc arenas for `mangrove serve` (fewer arenas: less memory kept per thread); 0 keeps
    # glibc's default (8 × cores). MALLOC_ARENA_MAX in the environment wins.
    malloc_arena_max: int = Field(default=2, ge=0)
    # Blocks this large or larger are mmapped and returned when freed (glibc's threshold is fixed
    # instead of rising after large frees); 0 keeps glibc's dynamic threshold.
    # MALLOC_MMAP_THRESHOLD_ in the environment wins.
    malloc_mmap_threshold: int = Field(default=128 * 1024, ge=0, le=32 * 1024 * 1024)


class PatrolSettings(BaseSettings):
    """Track uploads and patrol effort."""

    model_config = SettingsConfigDict(env_prefix="MANGROVE_PATROL_", extra="ignore")

    # Nearly six days at one fix a second. Memory of an upload grows with its fixes (about 250 bytes
    # each at the peak): this keeps the largest one allowed well inside the service's 500 MB.
    max_fixes: int = Field(default=500_000, ge=10)
    max_speed_foot_mps: float = Field(default=4.0, gt=0)  # brisk walk on mudflats, with margin
    max_speed_boat_mps: float = Field(default=20.0, gt=0)  # small outboard boat, ~39 knots
    gap_split_s: float = Field(default=600, gt=0)  # a new track segment after 10 minutes without fixes
    # A pass through a grid shorter than this is GPS jitter across its boundary (a dike walked
    # between two grids), counted in the grid the track was already in.
    min_pass_m: float = Field(default=20.0, ge=0)
    simplify_tolerance_m: float = Field(default=5.0, ge=0)  # the simplified copy used by maps
    swath_width_m: float = Field(default=50.0, gt=0, le=500)  # what a patrol sees across its track
    unpatrolled_days: int = Field(default=7, ge=1)  # a grid not patrolled this long is listed


class IncidentSettings(BaseSettings):
    """Incident handling: time limits, grid and border distances, photo storage."""

    model_config = SettingsConfigDict(env_prefix="MANGROVE_INCIDENT_", extra="ignore")

    accept_within_hours: float = Field(default=4.0, gt=0)  # answer every report within 4 hours
    resolve_within_days_village: float = Field(default=2.0, gt=0)
    resolve_within_days_town: float = Field(default=3.0, gt=0)
    resolve_within_days_county: float = Field(default=4.0, gt=0)
    near_grid_m: float = Field(default=300.0, ge=0)  # outside every grid: nearest grid within this
    border_distance_m: float = Field(default=2000.0, ge=0)  # the other side sees incidents this near
    photo_dir: Path | None = None  # default: <data dir>/photos
    photo_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    photo_max_pixels: int = Field(default=40_000_000, ge=10_000)

    def resolve_within(self, level: str) -> float:
        return {
            "village": self.resolve_within_days_village,
            "town": self.resolve_within_days_town,
            "county": self.resolve_within_days_county,
        }[level]


class AnalysisSettings(BaseSettings):
    """Work ahead of complaints: encounter rates, hot spots, recurring places, priorities, quotas."""

    model_config = SettingsConfigDict(env_prefix="MANGROVE_ANALYSIS_", extra="ignore")

    max_period_days: int = Field(default=400, ge=1, le=3660)  # the longest period one analysis covers
    confidence: float = Field(default=0.95, gt=0.5, lt=1)  # of the Poisson intervals of rates
    # Below this effort in a grid a rate says nothing: it is shown, flagged "too little effort".
    min_effort_km: float = Field(default=5.0, ge=0)
    min_effort_hours: float = Field(default=5.0, ge=0)
    hotspot_cell_m: float = Field(default=250.0, gt=0, le=5000)
    hotspot_alpha: float = Field(default=0.05, gt=0, lt=0.5)  # after the false-discovery-rate correction
    recurring_distance_m: float = Field(default=200.0, gt=0, le=5000)
    recurring_min_months: int = Field(default=3, ge=2, le=60)
    # A grid's quota unless an admin sets its own.
    quota_patrols_per_month: int = Field(default=8, ge=0, le=1000)
    quota_km_per_month: float = Field(default=20.0, ge=0, le=100_000)


class IdempotencySettings(BaseSettings):
    """Safe retries: how long a create's Idempotency-Key is remembered."""

    model_config = SettingsConfigDict(env_prefix="MANGROVE_IDEMPOTENCY_", extra="ignore")

    # The field app may stay offline for days before it sends its outbox again.
    retention_days: float = Field(default=30.0, gt=0)


BASEMAPS = ("none", "osm", "tianditu", "satellite", "amap")
# A station's own tile file (``mangrove tiles add``) is the basemap ``local:NAME``.
LOCAL_BASEMAP_PREFIX = "local:"
TILESET_NAME = re.compile(r"[a-z0-9_-]{1,40}")


def is_local_basemap(name: str) -> bool:
    """``local:NAME`` with a well-formed NAME (whether that tile set exists is checked on use)."""
    return name.startswith(LOCAL_BASEMAP_PREFIX) and bool(
        TILESET_NAME.fullmatch(name.removeprefix(LOCAL_BASEMAP_PREFIX))
    )


class MapSettings(BaseSettings):
    """The station, joint-enforcement and replay maps."""

    model_config = SettingsConfigDict(env_prefix="MANGROVE_MAP_", extra="ignore")

    # none: no tiles, works offline; local:NAME: the station's own tile file, served by the
    # service; the others load tiles from the internet when chosen.
    default_basemap: str = "none"
    tile_dir: Path | None = None  # the station's tile files (MBTiles, PMTiles); default <data dir>/tiles
    tianditu_key: str = ""  # 天地图 browser key; the Tianditu basemap is offered only when set
    default_days: int = Field(default=30, ge=1, le=3660)  # station map period when none is given
    # Tracks are simplified again for an overview map (the stored copy keeps 5 m).
    track_tolerance_m: float = Field(default=15.0, ge=0)
    coordinate_decimals: int = Field(default=5, ge=4, le=7)  # 5 decimals ≈ 1 m
    replay_max_points: int = Field(default=3000, ge=100)  # per patrol in a replay
    max_incidents: int = Field(default=200_000, ge=1)  # a map never embeds more than this

    @field_validator("default_basemap")
    @classmethod
    def _known_basemap(cls, value: str) -> str:
        if value not in BASEMAPS and not is_local_basemap(value):
            raise ValueError(
                f"MANGROVE_MAP_DEFAULT_BASEMAP must be one of {', '.join(BASEMAPS)} or local:NAME "
                f"(a tile set added with `mangrove tiles add`), got {value!r}"
            )
        return value

    def check_basemap(self, name: str) -> str:
        """``name`` if it can be drawn here; a ValueError naming the problem otherwise."""
        if is_local_basemap(name):
            return name  # whether the tile set exists is known only when a map is drawn
        if name not in BASEMAPS:
            raise ValueError(f"unknown basemap {name!r}: use one of {', '.join(BASEMAPS)} or local:NAME")
        if name == "tianditu" and not self.tianditu_key:
            raise ValueError("the Tianditu basemap needs a key: set MANGROVE_MAP_TIANDITU_KEY")
        return name


class TLSSettings(BaseSettings):
    """HTTPS for `mangrove serve`: browsers give geolocation, the camera and service workers only
    to secure contexts. Both files or neither (see ``scripts/station-cert``)."""

    model_config = SettingsConfigDict(env_prefix="MANGROVE_TLS_", extra="ignore")

    certfile: Path | None = None  # PEM: the server certificate (and its chain)
    keyfile: Path | None = None  # PEM: its private key, unencrypted


class ExportSettings(BaseSettings):
    """Exports in GIS and spreadsheet formats (``patrol.exports``)."""

    model_config = SettingsConfigDict(env_prefix="MANGROVE_EXPORT_", extra="ignore")

    # More features than this in one export is refused with the count and how to narrow it.
    max_features: int = Field(default=2_000_000, ge=1)
    # Incidents and patrols are read and written this many at a time, never all at once.
    page_size: int = Field(default=5000, ge=1, le=10_000)


class SettingsError(ValueError):
    """A setting from the environment that cannot be used; the message names the variable."""


def _read(kind: type[BaseSettings]) -> BaseSettings:
    try:
        return kind()
    except ValidationError as exc:
        prefix = kind.model_config.get("env_prefix", "")
        problems = []
        for error in exc.errors():
            name = prefix + "_".join(str(part) for part in error["loc"]).upper()
            if error["type"] == "value_error":  # our validators' own words already name the value
                problems.append(f"{name}: {error['msg'].removeprefix('Value error, ')}")
            else:
                problems.append(f"{name}: {error['msg']} (got {error.get('input')!r})")
        raise SettingsError("bad setting: " + "; ".join(problems)) from None


class Settings:
    """All concerns together, validated at once (a ``SettingsError`` names what is wrong)."""

    def __init__(self) -> None:
        self.storage = _read(StorageSettings)
        self.auth = _read(AuthSettings)
        self.imports = _read(ImportSettings)
        self.server = _read(ServerSettings)
        self.patrols = _read(PatrolSettings)
        self.incidents = _read(IncidentSettings)
        self.maps = _read(MapSettings)
        self.idempotency = _read(IdempotencySettings)
        self.analysis = _read(AnalysisSettings)
        self.tls = _read(TLSSettings)
        self.exports = _read(ExportSettings)
        try:
            self.maps.check_basemap(self.maps.default_basemap)
        except ValueError as exc:
            raise SettingsError(f"bad setting: MANGROVE_MAP_DEFAULT_BASEMAP: {exc}") from None

    def photo_dir(self) -> Path:
        return self.incidents.photo_dir or self.storage.data_dir / "photos"

    def tile_dir(self) -> Path:
        return self.maps.tile_dir or self.storage.data_dir / "tiles"

    def secret_key(self) -> str:
        if self.auth.secret_key:
            return self.auth.secret_key
        path = self.storage.data_dir / "secret.key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            # Written whole under a temporary name, then linked into place: another worker starting
            # at the same moment either links first (this one reads theirs) or reads this one.
            tmp = path.with_name(f".secret.key.{os.getpid()}")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(48))
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass
            finally:
                tmp.unlink(missing_ok=True)
        return path.read_text().strip()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
