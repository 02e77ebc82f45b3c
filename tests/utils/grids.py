"""Grid state for tests that must prove a refused import changed nothing."""

from __future__ import annotations

import hashlib

from sqlalchemy import func, select

from patrol.models import Grid, GridImport


def grid_fingerprint(sessions) -> str:
    """Every grid row (attributes and geometry) and the number of recorded imports, as one string."""
    with sessions() as session:
        rows = session.execute(
            select(
                Grid.code, Grid.version, Grid.retired_at, Grid.source, func.ST_AsBinary(Grid.geom)
            ).order_by(Grid.code)
        ).all()
        imports = session.scalar(select(func.count(GridImport.id)))
    digest = hashlib.sha256()
    for code, version, retired, source, wkb in rows:
        digest.update(f"{code}|{version}|{retired}|{source}|".encode() + bytes(wkb))
    return f"{len(rows)}:{imports}:{digest.hexdigest()}"
