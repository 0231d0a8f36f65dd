"""Opens the database: engine, sessions and schema migrations, the same on SQLite and PostgreSQL."""

from __future__ import annotations

import fcntl
import os
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from yizhan import crashpoints
from yizhan.mailstore import auditchain

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine; SQLite gets WAL, full fsync, foreign keys and a busy timeout."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        if database and database != ":memory:":
            # Its turn is taken before the BEGIN below.
            WriterTurns(engine, database)
        # pysqlite's own transaction handling defers BEGIN; take control so that
        # "BEGIN IMMEDIATE" can be issued where a writer must not be upgraded later.
        event.listen(engine, "begin", _sqlite_begin)
    else:
        engine = create_engine(url, pool_pre_ping=True, **kwargs)
    if crashpoints.armed("db.commit"):
        event.listen(engine, "commit", lambda _connection: crashpoints.reached("db.commit"))
    return engine


class WriterTurns:
    """Writers of one SQLite database take turns, first come first served, through two lock
    files, before they ask for SQLite's own lock.

    SQLite's lock makes a writer that finds it taken sleep and try again, for up to 100 ms a
    time: under load the gateway, whose 250 waits on a short commit, lost the race to the
    processor again and again (issue 16: a group commit waited up to 10 s). A writer waiting
    in flock(2) is woken the moment the turn is given back, by any thread or process (the
    CLI, a second daemon). flock alone is no queue either: the processor, giving its turn
    back and taking the next at once, would win it before the woken gateway ran. So a writer
    passes a doorway first: it holds the doorway while it waits for the turn, and lets go
    once it has it; whoever comes next waits at the doorway behind it.

    The turn is taken before BEGIN IMMEDIATE and given back once COMMIT or ROLLBACK has
    returned (the engine's commit event comes before the commit, whose fsync still holds
    SQLite's lock). Each connection opens the files itself, so threads of one process wait
    for each other too; a process that dies gives its turn back with its files.
    """

    def __init__(self, engine: Engine, database: str) -> None:
        self.turn = Path(f"{database}-writers.lock")
        self.doorway = Path(f"{database}-writers.queue")
        self._files: dict[int, tuple[int, int]] = {}
        self._held: set[int] = set()
        dialect = engine.dialect
        commit, rollback = dialect.do_commit, dialect.do_rollback

        def do_commit(dbapi_connection: Any) -> None:
            try:
                commit(dbapi_connection)
            finally:
                self.give_back(dbapi_connection)

        def do_rollback(dbapi_connection: Any) -> None:
            try:
                rollback(dbapi_connection)
            finally:
                self.give_back(dbapi_connection)

        dialect.do_commit = do_commit  # type: ignore[method-assign]
        dialect.do_rollback = do_rollback  # type: ignore[method-assign]
        event.listen(engine, "connect", self.connected)
        event.listen(engine, "begin", self.take)
        event.listen(engine, "checkin", self.checked_in)
        event.listen(engine, "close", self.closed)

    def connected(self, dbapi_connection: Any, _record: Any) -> None:
        flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC
        self._files[id(dbapi_connection)] = (
            os.open(self.doorway, flags, 0o600),
            os.open(self.turn, flags, 0o600),
        )

    def take(self, connection: Any) -> None:
        if connection.get_execution_options().get(SNAPSHOT):
            return
        key = id(connection.connection.dbapi_connection)
        files = self._files.get(key)
        if files is not None and key not in self._held:
            doorway, turn = files
            fcntl.flock(doorway, fcntl.LOCK_EX)
            try:
                fcntl.flock(turn, fcntl.LOCK_EX)
            finally:
                fcntl.flock(doorway, fcntl.LOCK_UN)
            self._held.add(key)

    def give_back(self, dbapi_connection: Any) -> None:
        # The dialect's do_commit gets the pool's proxy; the events get the connection.
        key = id(getattr(dbapi_connection, "dbapi_connection", dbapi_connection))
        if key in self._held:
            self._held.discard(key)
            fcntl.flock(self._files[key][1], fcntl.LOCK_UN)

    def checked_in(self, dbapi_connection: Any, _record: Any) -> None:
        # A connection back in the pool holds no turn, whatever ended its transaction.
        if dbapi_connection is not None:
            self.give_back(dbapi_connection)

    def closed(self, dbapi_connection: Any, _record: Any) -> None:
        self.give_back(dbapi_connection)
        for fd in self._files.pop(id(dbapi_connection), ()):
            os.close(fd)


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
    # Alembic (and Mako under it) is imported only by what migrates or checks the schema: it
    # takes ~11 MiB of a process, and a processing worker or a verb that reads never needs it.
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(resources.files("yizhan.mailstore") / "migrations"))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine) -> None:
    """Bring the schema up to the newest migration."""
    from alembic import command

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
    from alembic.migration import MigrationContext
    from alembic.script import ScriptDirectory

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


_REVISION = re.compile(r"""^(down_)?revision\s*=\s*(?:["']([^"']+)["']|None)\s*$""", re.MULTILINE)


def packaged_head() -> str | None:
    """The newest packaged migration, read from the scripts' ``revision`` lines without
    Alembic; None unless they form one line from the first (Alembic then decides).

    The daemon checks its schema at every start; this answer, when the database is at it,
    spares the daemon Alembic's ~10 MiB (issue 16). A test holds it to Alembic's own answer.
    """
    down_of: dict[str, str | None] = {}
    versions = resources.files("yizhan.mailstore") / "migrations" / "versions"
    for script in versions.iterdir():
        if not script.name.endswith(".py") or script.name.startswith("_"):
            continue
        found = {bool(m.group(1)): m.group(2) for m in _REVISION.finditer(script.read_text())}
        if False not in found or True not in found:
            return None
        down_of[found[False]] = found[True]
    heads = set(down_of) - set(down_of.values())
    if len(heads) != 1 or list(down_of.values()).count(None) != 1:
        return None
    head = heads.pop()
    # One line: the head's chain of down revisions reaches the first and holds every script.
    seen, at = 0, down_of.get(head)
    while at is not None and seen <= len(down_of):
        seen, at = seen + 1, down_of.get(at)
    return head if seen == len(down_of) - 1 else None


def _current_revision(engine: Engine) -> str | None:
    """The database's revision as Alembic records it (one row), or None."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        rows = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    return rows[0] if len(rows) == 1 else None


def require_current_schema(engine: Engine) -> None:
    """Refuse to run on a schema older or newer than this code, saying what to run instead.

    A daemon never migrates on its own: with several daemons on one database, the one started
    first would change the tables under the others, and the operator backs up before upgrading.
    """
    head = packaged_head()
    if head is not None and _current_revision(engine) == head:
        return
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
