"""Schema migrations: bring a ledger written by an earlier p402 to :data:`SCHEMA_VERSION`.

Each schema version is an Alembic revision named ``v<N>`` in ``p402/ledger/migrations``. A new
ledger is created from the current tables and stamped with the head revision, so it never needs
migrating; :func:`upgrade` runs the revisions an older ledger lacks, in one transaction (on
PostgreSQL; SQLite commits DDL as it goes, which is why the file is copied first when asked).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Column, Connection, Engine, MetaData, String, Table, inspect, select

from p402.ledger.schema import SCHEMA_VERSION, meta_table

__all__ = ["HEAD", "Upgrade", "create_new", "schema_version", "stamp_head", "upgrade"]

HEAD = f"v{SCHEMA_VERSION}"
# Alembic's own bookkeeping table, declared here so a new ledger can be stamped without
# loading the migration scripts.
_alembic_version = Table(
    "alembic_version",
    MetaData(),
    Column("version_num", String(32), primary_key=True),
)


@dataclass(frozen=True, slots=True)
class Upgrade:
    """What :func:`upgrade` did."""

    before: int | None
    after: int

    @property
    def changed(self) -> bool:
        """Whether any migration ran."""
        return self.before != self.after


def schema_version(connection: Connection) -> int | None:
    """The ledger's schema version: ``None`` for an empty database, 1 for a ledger written
    before versions were recorded."""
    tables = set(inspect(connection).get_table_names())
    if "events" not in tables:
        return None
    if "p402_meta" not in tables:
        return 1
    found = connection.execute(
        select(meta_table.c.value).where(meta_table.c.key == "schema")
    ).scalar()
    return 1 if found is None else int(found)


def create_new(connection: Connection) -> bool:
    """Create the current tables and stamp them at the head if the database holds no ledger;
    whether it did."""
    from p402.ledger.schema import metadata

    if schema_version(connection) is not None:
        return False
    metadata.create_all(connection)
    stamp_head(connection)
    return True


def stamp_head(connection: Connection) -> None:
    """Record a ledger just created from the current tables as being at the head revision."""
    _alembic_version.create(connection, checkfirst=True)
    connection.execute(_alembic_version.delete())
    connection.execute(_alembic_version.insert().values(version_num=HEAD))
    connection.execute(meta_table.delete().where(meta_table.c.key == "schema"))
    connection.execute(meta_table.insert().values(key="schema", value=str(SCHEMA_VERSION)))


def upgrade(engine: Engine) -> Upgrade:
    """Run every migration the ledger lacks. An empty database is created at the head."""
    from alembic import command
    from alembic.config import Config as AlembicConfig

    with engine.begin() as connection:
        if create_new(connection):
            return Upgrade(None, SCHEMA_VERSION)
        before = schema_version(connection)
        assert before is not None
        if before == SCHEMA_VERSION:
            return Upgrade(before, before)
        if before < 2 or before > SCHEMA_VERSION:
            from p402.ledger.store import StoreError

            raise StoreError(
                f"this ledger has schema version {before}; this p402 migrates versions 2 to "
                f"{SCHEMA_VERSION}",
                hint="export it with the p402 that wrote it and import into a new ledger",
            )
        config = AlembicConfig()
        config.set_main_option("script_location", "p402.ledger:migrations")
        config.attributes["connection"] = connection
        if not inspect(connection).has_table("alembic_version"):
            # Ledgers of version 2 predate Alembic: their schema is exactly revision v2.
            command.stamp(config, f"v{before}")
        command.upgrade(config, HEAD)
        return Upgrade(before, SCHEMA_VERSION)
