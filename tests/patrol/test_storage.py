"""The schema on both backends: migrations, spatial indexes that the queries really use, SQLite
pragmas, and the reference geodata loaded idempotently."""

import shapely
from sqlalchemy import func, select, text

from geodata import reference
from patrol import migrate
from patrol.grids import list_grids
from patrol.models import Grid, Team
from patrol.reference import load_reference

GAOQIAO_BOX = (109.78, 21.47, 109.83, 21.52)


def test_schema_is_at_head(engine):
    assert migrate.head_revision() is not None
    assert migrate.current_revision(engine) == migrate.head_revision()


def test_grid_geometries_have_a_spatial_index(engine):
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            enabled = conn.execute(
                text("SELECT spatial_index_enabled FROM geometry_columns WHERE f_table_name = 'grids'")
            ).scalar()
            assert enabled == 1
            assert conn.execute(text("SELECT CheckSpatialIndex('grids', 'geom')")).scalar() == 1
        else:
            indexdef = conn.execute(
                text("SELECT indexdef FROM pg_indexes WHERE indexname = 'idx_grids_geom'")
            ).scalar()
            assert "gist" in indexdef.lower()


def test_bbox_query_goes_through_the_spatial_index(session):
    """SpatiaLite must be told to use its R*Tree (SpatialIndex virtual table); PostGIS uses GiST."""
    from patrol.spatial import intersects_bbox

    dialect = session.bind.dialect.name
    query = select(Grid.code).where(intersects_bbox(dialect, Grid.id, Grid.geom, GAOQIAO_BOX))
    compiled = query.compile(session.bind, compile_kwargs={"literal_binds": True})
    if dialect == "sqlite":
        plan = " ".join(str(r) for r in session.execute(text(f"EXPLAIN QUERY PLAN {compiled}")).all())
        assert "SpatialIndex" in plan
    else:
        session.execute(text("SET LOCAL enable_seqscan = off"))  # the table is tiny; force the choice
        plan = " ".join(r[0] for r in session.execute(text(f"EXPLAIN {compiled}")).all())
        assert "idx_grids_geom" in plan


def test_bbox_query_matches_shapely(session):
    everything = list_grids(session)
    expected = sorted(g.code for g in everything if g.geometry.intersects(shapely.box(*GAOQIAO_BOX)))
    got = [g.code for g in list_grids(session, bbox=GAOQIAO_BOX)]
    assert got == expected and 0 < len(got) < len(everything)


def test_sqlite_runs_in_wal_mode_with_foreign_keys(engine):
    if engine.dialect.name != "sqlite":
        return
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_foreign_keys_are_enforced(session):
    import pytest
    from sqlalchemy.exc import IntegrityError

    session.add(Team(code="LJ-T-XX", name_zh="x", name_en="x", side="NO-SIDE"))
    with pytest.raises(IntegrityError):
        session.flush()


def test_reference_geodata_round_trips(session):
    stored = {g.code: g for g in list_grids(session)}
    shipped = reference.load_grids()
    assert set(stored) == set(shipped.code)
    for row in shipped.itertuples():
        grid = stored[row.code]
        assert grid.approximate and grid.area_ha == row.area_ha and grid.team == row.team
        assert shapely.equals_exact(
            shapely.normalize(grid.geometry),
            shapely.normalize(
                shapely.MultiPolygon([row.geometry]) if row.geometry.geom_type == "Polygon" else row.geometry
            ),
            tolerance=1e-9,
        )


def test_loading_the_reference_twice_changes_nothing(session):
    before = session.scalar(select(func.count(Grid.id)))
    summary = load_reference(session)
    session.commit()
    assert summary["grids_added"] == 0 and session.scalar(select(func.count(Grid.id))) == before


def test_models_and_migrations_agree(engine):
    """The hand-written migrations create exactly the tables, columns and indexes the models
    declare (Alembic's autogenerate comparison finds nothing to add or drop)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from patrol.models import Base

    def ours(obj, name, type_, reflected, compare_to):
        # SpatiaLite/PostGIS bookkeeping tables and spatial index objects are not ours to compare.
        if type_ == "table" and name not in Base.metadata.tables:
            return False
        if type_ == "index" and name and name.startswith("idx_"):
            return False
        # A partitioned patrol_visits cannot have a PRIMARY KEY without its (nullable) partition
        # column: on PostGIS its id is kept unique by its sequence and found by this index instead.
        if type_ == "index" and name == "ix_patrol_visits_id":
            return False
        return True

    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"include_object": ours, "compare_type": False, "compare_server_default": False}
        )
        diff = compare_metadata(context, Base.metadata)
    assert [
        d
        for d in diff
        if d[0] in ("add_table", "remove_table", "add_column", "remove_column", "add_index", "remove_index")
    ] == []
