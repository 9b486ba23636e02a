"""Schema migrations: `assistant db upgrade` and the check that migrations match models.

Rule: the schema is created and changed only by the Alembic scripts in migrations/;
this module runs them on CareLine's own engine.
"""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from assistant.booking.identity import Keyring
from assistant.booking.models import Base
from assistant.config import PROJECT_ROOT

MIGRATIONS_DIR = PROJECT_ROOT / "migrations"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def upgrade(engine: Engine, revision: str = "head", *, keyring: Keyring | None = None) -> None:
    """Migrations that move patients' data re-encrypt it, so they need the keyring; on a
    database without patients they run without one."""
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        config.attributes["keyring"] = keyring
        command.upgrade(config, revision)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def differences(engine: Engine) -> list:
    """What the models have that the migrated database lacks (or the reverse)."""
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, Base.metadata)
