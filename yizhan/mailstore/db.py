"""Opens the database: engine, sessions and schema migrations, the same on SQLite and PostgreSQL."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from yizhan.mailstore import auditchain


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine; SQLite gets WAL, full fsync, foreign keys and a busy timeout."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        # pysqlite's own transaction handling defers BEGIN; take control so that
        # "BEGIN IMMEDIATE" can be issued where a writer must not be upgraded later.
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    # Every transaction that may write takes the write lock up front, so two daemons never
    # deadlock upgrading shared locks; readers in WAL mode are not blocked by it.
    if connection.get_execution_options().get(SNAPSHOT):
        connection.exec_driver_sql("BEGIN DEFERRED")
    else:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


#: Execution option of a connection that only reads, in one snapshot, for long (``audit
#: verify``): on SQLite it begins without the write lock, so writers are not held up.
SNAPSHOT = "yizhan_snapshot"


def make_sessionmaker(engine: Engine, *, audit_key: bytes | None = None) -> sessionmaker[Session]:
    """A session factory whose objects stay readable after commit.

    Each of its sessions seals the audit rows it inserted into the hash chain when it commits,
    under ``audit_key`` (``auditchain.key_from_secret``); without a key it may only read them.
    """
    factory = sessionmaker(engine, expire_on_commit=False, info={auditchain.KEY_INFO: audit_key})
    auditchain.install(factory)
    return factory


def alembic_config(engine: Engine) -> AlembicConfig:
    """An Alembic configuration that runs the packaged migrations on ``engine``."""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(resources.files("yizhan.mailstore") / "migrations"))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine) -> None:
    """Bring the schema up to the newest migration."""
    command.upgrade(alembic_config(engine), "head")
