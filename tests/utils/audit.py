"""Reading the audit trail in tests, and listing what the app and the CLI can write through."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from fastapi.routing import iter_route_contexts
from sqlalchemy import func, select

from patrol.models import AuditEntry

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def entry_count(sessions) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(AuditEntry))


def newest(sessions, n: int = 1) -> list[AuditEntry]:
    """The ``n`` newest entries, newest first (detached, read-only)."""
    with sessions() as session:
        entries = session.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(n)).all()
        session.expunge_all()
        return list(entries)


def entries_of(sessions, action: str) -> list[AuditEntry]:
    with sessions() as session:
        entries = session.scalars(
            select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.seq)
        ).all()
        session.expunge_all()
        return list(entries)


def write_routes(app) -> set[tuple[str, str]]:
    """(METHOD, path) of every route that may change state: any method but GET, HEAD, OPTIONS.
    (FastAPI nests included routers in ``app.routes``; ``iter_route_contexts`` flattens them.)"""
    found = set()
    for route in iter_route_contexts(app.routes):
        for method in route.methods or ():
            if method not in SAFE_METHODS:
                found.add((method, route.path))
    return found


def cli_commands(parser: argparse.ArgumentParser) -> Iterator[tuple[str, ...]]:
    """Every leaf command of an argparse parser, e.g. ("patrols", "upload"), ("effort",)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                leaves = list(cli_commands(sub))
                yield from ((name, *leaf) for leaf in leaves) if leaves else [(name,)]
