"""Opens the database: engine, sessions and schema migrations, the same on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from yizhan import crashpoints
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
    else:
        engine = create_engine(url, pool_pre_ping=True, **kwargs)
    if crashpoints.armed("db.commit"):
        event.listen(engine, "commit", lambda _connection: crashpoints.reached("db.commit"))
    return engine


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


class SchemaMismatch(Exception):
    """The database's schema is not the one this code was written for; the message says what
    to run."""


@dataclass(frozen=True)
class SchemaState:
    """Where a database's schema stands against the migrations this code ships."""

    #: The database's Alembic revision; None: never initialised.
    current: str | None
    #: The newest revision this code knows.
    head: str
    #: The revisions ``yizhan migrate`` would apply, oldest first, with their one-line titles.
    pending: tuple[tuple[str, str], ...]
    #: The database's revision is one this code does not know: it was made by a newer Yizhan.
    newer: bool

    @property
    def up_to_date(self) -> bool:
        """The schema is exactly the one this code expects."""
        return self.current == self.head


def schema_state(engine: Engine) -> SchemaState:
    """Read the database's revision and compare it with the packaged migrations."""
    scripts = ScriptDirectory.from_config(alembic_config(engine))
    head = scripts.get_current_head()
    assert head is not None, "the packaged migrations have no head"
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    known = {rev.revision for rev in scripts.walk_revisions()}
    if current is not None and current not in known:
        return SchemaState(current=current, head=head, pending=(), newer=True)
    steps = list(scripts.iterate_revisions(head, current or "base"))
    steps.reverse()
    pending = tuple((rev.revision, (rev.doc or "").strip().splitlines()[0]) for rev in steps)
    return SchemaState(current=current, head=head, pending=pending, newer=False)


def require_current_schema(engine: Engine) -> None:
    """Refuse to run on a schema older or newer than this code, saying what to run instead.

    A daemon never migrates on its own: with several daemons on one database, the one started
    first would change the tables under the others, and the operator backs up before upgrading.
    """
    state = schema_state(engine)
    if state.up_to_date:
        return
    if state.current is None:
        raise SchemaMismatch("the database is not initialised; run `yizhan init` first")
    if state.newer:
        raise SchemaMismatch(
            f"the database's schema is at revision {state.current}, newer than this Yizhan "
            f"(which knows up to {state.head}); run the Yizhan version that migrated it, or "
            "restore the backup taken before that upgrade with `yizhan restore DIR`"
        )
    raise SchemaMismatch(
        f"the database's schema is at revision {state.current}, older than this Yizhan "
        f"({state.head}, {len(state.pending)} migration(s) to apply); back it up with "
        "`yizhan backup DIR` using the previous version, then run `yizhan migrate` "
        "(`yizhan migrate --dry-run` lists what it would do)"
    )
