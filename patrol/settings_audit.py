"""Settings that change behaviour, in the audit trail.

Time limits, distances, speed limits, photo and map limits decide what the service accepts and
when an incident is overdue, so a change of them is a change of the service. They come from the
environment, not from a request; so each start of the service (and each ``mangrove db upgrade``)
compares the effective values with the last ones recorded and appends one ``setting.change``
entry with those that differ (the first start records them all).

Not recorded: secrets (keys, passwords) — the trail must never hold them — and where data lives
(paths, the database URL), which says nothing about behaviour. A setting added to any concern of
:class:`~patrol.settings.Settings` is recorded without further work unless its name marks it as
one of those.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic_settings import BaseSettings
from sqlalchemy import select
from sqlalchemy.orm import Session

from patrol import audit
from patrol.accounts import Principal
from patrol.models import AuditEntry
from patrol.settings import Settings

ACTION = "setting.change"
# Whole concerns that only say where things are (data, database; the TLS certificate and key).
NOT_BEHAVIOUR = frozenset({"storage", "tls"})  # tls: the certificate and key files
# Names of secrets and of places: never recorded.
UNRECORDED_NAME = re.compile(r"(secret|password|passphrase|_key$|^key$|_url$|_dir$|_path$|_file$|library)")


def effective_settings(settings: Settings) -> dict[str, Any]:
    """``{ENVIRONMENT_VARIABLE: value}`` of every behaviour-relevant setting, JSON-native."""
    values: dict[str, Any] = {}
    for concern, model in vars(settings).items():
        if concern in NOT_BEHAVIOUR or not isinstance(model, BaseSettings):
            continue
        prefix = model.model_config.get("env_prefix", "")
        for name in type(model).model_fields:
            value = getattr(model, name)
            if UNRECORDED_NAME.search(name) or isinstance(value, Path):
                continue
            values[f"{prefix}{name}".upper()] = audit.jsonable(value)
    return dict(sorted(values.items()))


def recorded_settings(session: Session) -> dict[str, Any]:
    """The values as the trail last recorded them: every ``setting.change`` entry replayed in order."""
    values: dict[str, Any] = {}
    entries = session.scalars(
        select(AuditEntry.changes).where(AuditEntry.action == ACTION).order_by(AuditEntry.seq)
    )
    for changes in entries:
        for name, (_, after) in (changes or {}).items():
            values[name] = after
    return values


def record_settings(session: Session, principal: Principal | None, settings: Settings) -> int | None:
    """Append a ``setting.change`` entry if the effective settings differ from the last recorded
    ones; its position, or None when nothing changed. The caller commits."""
    changed = audit.changes(recorded_settings(session), effective_settings(settings))
    if not changed:
        return None
    return audit.record(session, principal, ACTION, "setting", None, changed)
