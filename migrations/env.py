"""Alembic environment: runs migrations on the connection CareLine hands it.

`assistant db upgrade` passes a live connection in `config.attributes["connection"]`;
the `alembic` command line (for `alembic revision --autogenerate`) builds one from
CareLine's settings instead, so both use the same URL rules.
"""

from alembic import context

from assistant.booking.models import Base

target_metadata = Base.metadata


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    from assistant.bootstrap import build
    from assistant.config import load_settings

    app = build(load_settings())
    try:
        with app.engine.connect() as connection:
            _run(connection)
            connection.commit()
    finally:
        app.close()


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
