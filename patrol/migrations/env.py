"""Alembic environment. Migrations run on the engine the service itself builds (see patrol.db),
so SpatiaLite is loaded and initialised before the first DDL statement."""

from alembic import context
from geoalchemy2 import alembic_helpers  # noqa: F401  (registers the geospatial operations)

from patrol.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    connection = config.attributes["connection"]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_object=alembic_helpers.include_object,
        process_revision_directives=alembic_helpers.writer,
        render_item=alembic_helpers.render_item,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("Offline (SQL script) migrations are not supported; run `mangrove db upgrade`.")
run_migrations_online()
