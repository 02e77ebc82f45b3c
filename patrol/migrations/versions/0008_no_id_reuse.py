"""Ids never reused on SpatiaLite: AUTOINCREMENT for the tables whose ids appear in links and
tokens and whose rows can be deleted.

Without AUTOINCREMENT SQLite gives a new row max(id) + 1, so deleting the newest patrol and
uploading another hands its id to a different patrol: an old replay link (/maps/replay/patrol/7)
then shows the new one, and a deleted user's id (in tokens and session cookies) would name the
next user made. AUTOINCREMENT keeps the largest id ever used (in sqlite_sequence) and never goes
below it. PostgreSQL sequences never reuse a value: nothing to do there.

SQLite cannot add AUTOINCREMENT to a table: each table is rebuilt — its own CREATE statement with
the primary key rewritten, rows copied, indexes and triggers recreated, geometry columns registered
again and their spatial indexes rebuilt from the rows. Foreign keys must be off meanwhile
(``patrol.migrate`` turns them off and checks them all before the commit); with them on, dropping
the old table would first delete its rows and cascade into every table that refers to it.

Revision ID: 0008
Revises: 0006
Create Date: 2026-12-04
"""

import re

from alembic import op

revision = "0008"
down_revision = "0006"
branch_labels = None
depends_on = None

TABLES = ("users", "patrols", "joint_cases", "incidents", "incident_photos")

GEOMETRY_TYPES = {
    0: "GEOMETRY", 1: "POINT", 2: "LINESTRING", 3: "POLYGON", 4: "MULTIPOINT", 5: "MULTILINESTRING",
    6: "MULTIPOLYGON", 7: "GEOMETRYCOLLECTION",
}  # fmt: skip
DIMENSIONS = {2: "XY", 3: "XYZ", 4: "XYZM"}


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for table in TABLES:
            rebuild(table, autoincrement=True)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for table in reversed(TABLES):
            rebuild(table, autoincrement=False)


def _rows(sql: str, *params):
    return op.get_bind().exec_driver_sql(sql, params).all()


def _run(sql: str, *params) -> None:
    op.get_bind().exec_driver_sql(sql, params)


def rebuild(table: str, *, autoincrement: bool) -> None:
    """Rebuild ``table`` with (or without) AUTOINCREMENT on its ``id``, keeping everything else."""
    if _rows("PRAGMA foreign_keys")[0][0]:
        raise RuntimeError(
            "foreign keys are on: rebuilding a table would cascade deletes; run migrations through "
            "patrol.migrate (mangrove db upgrade), which turns them off and checks them afterwards"
        )
    create = _rows("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", table)[0][0]
    if ("AUTOINCREMENT" in create.upper()) == autoincrement:
        return
    new_create = _rewritten(create, table, autoincrement)

    geometry = _rows(
        "SELECT f_geometry_column, geometry_type, coord_dimension, srid, spatial_index_enabled "
        "FROM geometry_columns WHERE lower(f_table_name) = lower(?)",
        table,
    )
    for column, _, _, _, indexed in geometry:
        if indexed:
            _run("SELECT DisableSpatialIndex(?, ?)", table, column)
            _run(f'DROP TABLE IF EXISTS "idx_{table}_{column}"')
        _run("SELECT DiscardGeometryColumn(?, ?)", table, column)  # and SpatiaLite's triggers
    # What is left on the table is ours: its indexes and triggers, recreated after the copy.
    extras = _rows(
        "SELECT sql FROM sqlite_master WHERE tbl_name = ? AND type IN ('index', 'trigger') "
        "AND sql IS NOT NULL",
        table,
    )
    _run(new_create)
    _run(f'INSERT INTO "{table}__rebuilt" SELECT * FROM "{table}"')
    _run(f'DROP TABLE "{table}"')
    _run(f'ALTER TABLE "{table}__rebuilt" RENAME TO "{table}"')
    for (sql,) in extras:
        _run(sql)
    for column, type_code, dimension, srid, indexed in geometry:
        kind, dims = GEOMETRY_TYPES[type_code % 1000], DIMENSIONS[dimension]
        if _rows("SELECT RecoverGeometryColumn(?, ?, ?, ?, ?)", table, column, srid, kind, dims)[0][0] != 1:
            raise RuntimeError(f"could not register {table}.{column} again as a {kind} column")
        if indexed:
            _run("SELECT CreateSpatialIndex(?, ?)", table, column)  # filled from the rows
    if autoincrement:  # start after the largest id in use (what SQLite would do on first insert)
        _run("DELETE FROM sqlite_sequence WHERE name = ?", table)
        _run(
            f'INSERT INTO sqlite_sequence (name, seq) SELECT ?, max(id) FROM "{table}" HAVING max(id)', table
        )


def _rewritten(create: str, table: str, autoincrement: bool) -> str:
    """The table's CREATE statement for ``{table}__rebuilt`` with the primary key rewritten."""
    sql, named = re.subn(rf'^CREATE TABLE\s+"?{table}"?\s*\(', f'CREATE TABLE "{table}__rebuilt" (', create)
    if autoincrement:
        sql, column = re.subn(
            r"\bid INTEGER NOT NULL,", "id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,", sql
        )
        sql, constraint = re.subn(r"\bPRIMARY KEY \(id\),\s*", "", sql)
    else:
        sql, column = re.subn(
            r"\bid INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,", "id INTEGER NOT NULL,", sql
        )
        sql, constraint = re.subn(
            r"(\n\s*)(CONSTRAINT|FOREIGN KEY|UNIQUE)", r"\1PRIMARY KEY (id), \n\t\2", sql, count=1
        )
    if (named, column, constraint) != (1, 1, 1):
        raise RuntimeError(
            f"unexpected CREATE statement of {table}; cannot rewrite its primary key:\n{create}"
        )
    return sql
