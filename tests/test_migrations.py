"""Schema migrations: a ledger written by the previous schema is refused until upgraded, and
``p402 db upgrade`` carries every event forward into exactly the current schema."""

from __future__ import annotations

import sqlite3
import subprocess
import uuid
from pathlib import Path

import pytest
import sqlalchemy
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from p402.ledger.migrate import HEAD, upgrade
from p402.ledger.schema import EVENT_COLUMNS, SCHEMA_VERSION, event_row, metadata
from p402.ledger.store import Ledger, StoreError
from p402.period import parse_period
from tests.conftest import POSTGRES_URL, REQUIRE_POSTGRES, TENANT, small_events
from tests.test_cli import P402

DUMP = Path(__file__).parent / "data" / "ledger-v2.sql"


def _v2_file(tmp_path: Path) -> Path:
    path = tmp_path / "v2.db"
    with sqlite3.connect(path) as connection:
        connection.executescript(DUMP.read_text())
    return path


def _differences(engine: sqlalchemy.Engine) -> list[object]:
    with engine.connect() as connection:
        return list(compare_metadata(MigrationContext.configure(connection), metadata))


def test_the_migration_scripts_end_at_the_schema_version() -> None:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", "p402.ledger:migrations")
    heads = ScriptDirectory.from_config(config).get_heads()
    assert heads == [HEAD] == [f"v{SCHEMA_VERSION}"]


def test_a_previous_schema_is_refused_with_the_command_that_fixes_it(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="schema version 2") as raised:
        Ledger.open(str(_v2_file(tmp_path)))
    assert "p402 db upgrade" in (raised.value.hint or "")


def test_upgrade_keeps_every_event_and_matches_a_new_ledger(tmp_path: Path) -> None:
    path = _v2_file(tmp_path)
    engine = sqlalchemy.create_engine(f"sqlite:///{path}")
    done = upgrade(engine)
    assert (done.before, done.after, done.changed) == (2, SCHEMA_VERSION, True)
    assert _differences(engine) == []
    assert not upgrade(engine).changed
    engine.dispose()
    ledger = Ledger.open(str(path))
    try:
        stored = list(ledger.stream(TENANT))
        assert stored == sorted(small_events(), key=lambda e: (e.occurred_at, e.event_id))
        assert ledger.count(TENANT, parse_period("2026-10")) == 24
    finally:
        ledger.close()


@pytest.mark.slow
def test_db_upgrade_command(tmp_path: Path) -> None:
    path = _v2_file(tmp_path)

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [P402, "db", "upgrade", "--db", str(path)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip

    first, second = run(), run()
    assert first.returncode == 0, first.stderr
    assert f"from schema version 2 to {SCHEMA_VERSION}" in first.stdout
    assert f"already at schema version {SCHEMA_VERSION}" in second.stdout


@pytest.mark.postgres
def test_postgres_upgrade_from_the_previous_schema() -> None:
    if not POSTGRES_URL:
        if REQUIRE_POSTGRES:
            pytest.fail("P402_TEST_POSTGRES_URL is not set")
        pytest.skip("P402_TEST_POSTGRES_URL is not set")
    from alembic import command
    from alembic.config import Config

    schema = f"p402_mig_{uuid.uuid4().hex[:12]}"
    base = POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://", 1)
    admin = sqlalchemy.create_engine(base)
    with admin.begin() as connection:
        connection.execute(sqlalchemy.text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in base else "?"
    engine = sqlalchemy.create_engine(f"{base}{separator}options=-csearch_path%3D{schema}")
    try:
        # Version 2 exactly as its revision creates it, without Alembic's bookkeeping (as the
        # releases before migrations left it), holding events.
        with engine.begin() as connection:
            config = Config()
            config.set_main_option("script_location", "p402.ledger:migrations")
            config.attributes["connection"] = connection
            command.upgrade(config, "v2")
            connection.execute(sqlalchemy.text("DROP TABLE alembic_version"))
        with engine.begin() as connection:  # the events, in the columns version 2 has
            table = sqlalchemy.Table("events", sqlalchemy.MetaData(), autoload_with=connection)
            rows = [
                dict(zip(EVENT_COLUMNS, event_row(item), strict=True)) for item in small_events()
            ]
            connection.execute(
                table.insert(),
                [
                    {name: row[name] for name in (column.name for column in table.c) if name in row}
                    for row in rows
                ],
            )
        done = upgrade(engine)
        assert (done.before, done.after) == (2, SCHEMA_VERSION)
        assert _differences(engine) == []
        assert Ledger(engine).count(TENANT) == 24
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.execute(sqlalchemy.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
