"""Alembic environment: migrations run on the connection the store hands over."""

from alembic import context

from pipeline.store import Base

target_metadata = Base.metadata
connection = context.config.attributes.get("connection")

if connection is None:  # plain `alembic` CLI use with sqlalchemy.url set
    from sqlalchemy import create_engine

    engine = create_engine(context.config.get_main_option("sqlalchemy.url"))
    with engine.begin() as conn:
        context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True)
        context.run_migrations()
else:
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
