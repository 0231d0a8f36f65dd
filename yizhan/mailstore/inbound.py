"""Stores accepted messages durably, many per fsync, before the SMTP listener says 250.

Each message takes one trip to a worker thread, where its bytes are written and fsynced, so
concurrent messages reach the disk in parallel. Its ``inbound`` row is then committed in a group
(leader/follower group commit, as databases do for their own logs): the first thread to find no
group being formed leads; it waits briefly for messages still being written, fsyncs their
raw-store directories once (the renames), then inserts all their rows in one transaction.
Messages that arrive meanwhile wait, and the first of them leads the next group as soon as the
directories are fsynced, so that its fsync overlaps this group's commit. Only then is each
sender told its row id. Under load one commit serves many messages, which is what makes durable
acceptance nearly as cheap as writing the files (docs/architecture.md, "Durability").

A failure fails only the messages of its group, and a row the database refuses fails only its
own message; their files are removed, and the senders get a temporary error and send again.

The SMTP gateway's writer spools instead (``spool=``): the leader writes the group's envelopes
into the incoming spool (``mailstore/spool.py``) and fsyncs it with the raw-store directories,
and that is the acknowledgement; the pickup (``daemon/pickup.py``) makes the rows. Then no
database transaction, not even another process's, stands between a message and its 250.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import logging
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, NotRequired, Protocol, TypedDict, Unpack

from sqlalchemy import Engine, insert, select

from yizhan.mailstore.models import Inbound
from yizhan.mailstore.rawstore import RawStore, StoredFile, sync_directories
from yizhan.mailstore.spool import IncomingSpool

__all__ = [
    "AREA",
    "AUTH_METHODS",
    "InboundWriter",
    "StoreFailed",
    "StoreHandles",
    "message_id_of",
    "record_spooled",
]

log = logging.getLogger("yizhan.inbound")

#: The raw-store area of accepted messages.
AREA: Final = "inbound"

#: Values of ``Inbound.auth_method``: how the sender's identity was established.
#: "smtp-auth": SMTP AUTH at our listener; "relay-auth": the trusted MTA's
#: Authentication-Results ``auth=pass smtp.auth=``; "relay-dkim": its ``dkim=pass`` for the
#: From address; "admin-page": written by the admin page for the person logged in there (a
#: page action that a mail command does, sent as that mail); "none": not established (the
#: processor answers such mail, never acts on it).
AUTH_WEB: Final = "admin-page"
AUTH_METHODS: Final = ("smtp-auth", "relay-auth", "relay-dkim", AUTH_WEB, "none")

#: Worker threads of a writer: how many messages can be written and waiting at once.
DEFAULT_THREADS: Final = 32

#: How long a leader waits at most for messages still being written to join its group.
GATHER_SECONDS: Final = 0.002

# The header section ends at the first empty line.
_HEADER_END: Final = re.compile(rb"\r?\n\r?\n")
# A Message-ID field with its folded continuation lines.
_MESSAGE_ID: Final = re.compile(
    rb"^message-id[ \t]*:(?P<value>[^\r\n]*(?:\r?\n[ \t][^\r\n]*)*)", re.IGNORECASE | re.MULTILINE
)
# One multi-row INSERT … RETURNING; the ids come back in the order of the rows.
_INSERT: Final = insert(Inbound).returning(Inbound.id, sort_by_parameter_order=True)
# What may not go into a text column: control characters (PostgreSQL refuses NUL outright).
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]+")


class StoreFailed(Exception):
    """The message could not be stored; it was not accepted and nothing of it is kept."""


class StoreHandles(Protocol):
    """What the writer needs of the process context (``daemon.context.Context`` has it)."""

    @property
    def engine(self) -> Engine: ...

    @property
    def raw(self) -> RawStore: ...

    @property
    def clock(self) -> Callable[[], dt.datetime]: ...


def message_id_of(data: bytes) -> str | None:
    """The Message-ID field of a raw message, found cheaply (no MIME parsing), or None.

    The value is unfolded, stripped of control characters and cut to 998 characters; bytes
    that are not UTF-8 are replaced, so the result always fits a text column.
    """
    end = _HEADER_END.search(data)
    match = _MESSAGE_ID.search(data, 0, end.start() if end else len(data))
    if match is None:
        return None
    value = _CONTROL.sub(" ", match["value"].decode("utf-8", errors="replace")).strip()
    return " ".join(value.split())[:998] or None


@dataclass(kw_only=True, eq=False)
class _Pending:
    """One written message waiting for its row to be committed."""

    stored: StoredFile
    row: dict[str, Any]
    #: The row id once committed (the spool key once spooled), or why it failed; set by the
    #: thread that commits.
    outcome: int | str | _Failed | None = None
    #: Set when ``outcome`` is, or when this message's thread is to lead the next commit.
    wake: threading.Event = field(default_factory=threading.Event)


class Envelope(TypedDict):
    """What the door a message came in by knows of it, besides its bytes."""

    mail_from: str
    rcpt_tos: Sequence[str]
    sender_account: str | None
    auth_method: str
    peer: str
    #: The content rules the message was judged by (absent or None: not judged).
    content_rules: NotRequired[str | None]


def _row(now: dt.datetime, **envelope: Unpack[Envelope]) -> dict[str, Any]:
    """The inbound row of a message being taken, but for what its bytes tell (path, digest)."""
    return {
        **envelope,
        "received_at": now,
        "rcpt_tos": list(envelope["rcpt_tos"]),
        "state": "accepted",
        "content_rules": envelope.get("content_rules"),
    }


def _unstorable(row: dict[str, Any]) -> str | None:
    """Why a database would refuse the envelope's text, or None: a NUL (PostgreSQL refuses
    it in text) or what is not UTF-8 (a lone surrogate from bytes decoded leniently)."""
    for name, value in row.items():
        for text in value if isinstance(value, list) else [value]:
            if not isinstance(text, str):
                continue
            if "\x00" in text:
                return f"the envelope's {name} holds a NUL character"
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                return f"the envelope's {name} is not UTF-8"
    return None


@dataclass(frozen=True)
class _Failed:
    """Why a message was not taken."""

    reason: str


class InboundWriter:
    """Stores accepted messages; see the module docstring.

    ``threads`` worker threads (its own pool, not the loop's default one) bound how many
    messages can be on their way to the disk at once, and so how large a group can grow.
    ``on_committed`` is called on the event loop with the ids of each committed group, so that
    the processor wakes without polling; it must not block.

    With ``spool``, messages are taken with :meth:`accept` instead of :meth:`store`: each
    group's envelopes go into the spool, and ``on_spooled`` is called (in the leader's thread,
    so it must not block) with the spool file once it is durable.
    """

    def __init__(
        self,
        ctx: StoreHandles,
        *,
        on_committed: Callable[[list[int]], object] | None = None,
        area: str = AREA,
        threads: int = DEFAULT_THREADS,
        spool: IncomingSpool | None = None,
        on_spooled: Callable[[Path], object] = lambda _path: None,
    ) -> None:
        self._spool = spool
        self._on_spooled = on_spooled
        self._engine = ctx.engine
        self._raw = ctx.raw
        self._clock = ctx.clock
        self._on_committed = on_committed
        self._area = area
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=threads, thread_name_prefix="inbound"
        )
        # Guards the group being formed, whether a commit is running, and how many messages
        # are being written.
        self._lock = threading.Lock()
        # Signalled when a message joins the group, for a leader gathering its group.
        self._joined = threading.Condition(self._lock)
        self._writing = 0
        self._group: list[_Pending] = []
        # True while a leader is forming its group or fsyncing its directories.
        self._committing = False
        # Held by the group whose rows are being inserted and committed.
        self._db_turn = threading.Lock()
        self._in_flight: set[asyncio.Future[int | str | _Failed]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    async def store(self, *, data: bytes, **envelope: Unpack[Envelope]) -> int:
        """Store one message durably and return its inbound row id; raise StoreFailed.

        Returns only after the bytes (file and directory entry) are fsynced and the row is
        committed. If the caller is cancelled (the client went away), the store still
        finishes: a message is either fully kept or not at all.
        """
        assert self._spool is None, "a spooling writer takes messages with accept()"
        outcome = await self._take(data, _row(self._clock(), **envelope))
        assert isinstance(outcome, int)
        return outcome

    async def accept(self, *, data: bytes, **envelope: Unpack[Envelope]) -> str:
        """Store one message's bytes and envelope durably; return its key; raise StoreFailed.

        As :meth:`store`, but the row is made afterwards by the pickup from the spool; the key
        names the message until then (its raw file is ``<key>.eml``).
        """
        assert self._spool is not None, "accept() needs a writer with a spool"
        outcome = await self._take(data, _row(self._clock(), **envelope))
        assert isinstance(outcome, str)
        return outcome

    async def _take(self, data: bytes, row: dict[str, Any]) -> int | str:
        self._loop = asyncio.get_running_loop()
        job = asyncio.wrap_future(self._executor.submit(self._store, data, row))
        self._in_flight.add(job)
        job.add_done_callback(self._in_flight.discard)
        outcome = await asyncio.shield(job)
        if isinstance(outcome, _Failed):
            raise StoreFailed(outcome.reason)
        return outcome

    async def drain(self) -> None:
        """Wait until every message handed to :meth:`store` is committed or failed."""
        while self._in_flight:
            await asyncio.wait(set(self._in_flight))

    async def aclose(self) -> None:
        """Drain, then release the worker threads."""
        await self.drain()
        self._executor.shutdown(wait=True)

    def _store(self, data: bytes, row: dict[str, Any]) -> int | str | _Failed:
        """Write one message, then see its row committed or its envelope spooled (in a worker
        thread)."""
        row["message_id"] = message_id_of(data)
        if self._spool is not None and (problem := _unstorable(row)) is not None:
            # Refused now, with its own 4xx: after a 250 no database could take its row, and
            # the message would sit in spool/refused/ unprocessed.
            log.error("%s: not spooled: %s", row["message_id"], problem)
            return _Failed(problem)
        with self._lock:
            self._writing += 1
        try:
            stored = self._raw.write(self._area, data, row["received_at"], sync_dir=False)
        except OSError as exc:
            with self._lock:
                self._writing -= 1
                self._joined.notify()
            log.error("%s: writing the raw message failed: %s", row["message_id"], exc)
            return _Failed(f"the message could not be written: {exc.strerror}")
        row.update(path=stored.relative, sha256=stored.sha256, size=stored.size)
        pending = _Pending(stored=stored, row=row)
        with self._lock:
            self._group.append(pending)
            self._writing -= 1
            self._joined.notify()
            leads = not self._committing
            self._committing = True
        if not leads:
            # Woken either with an outcome (a leader committed it) or, without one, to lead
            # the next group.
            pending.wake.wait()
            if pending.outcome is not None:
                return pending.outcome
        return self._lead(pending)

    def _lead(self, pending: _Pending) -> int | str | _Failed:
        """Commit the group that ``pending`` is in (in the leader's thread).

        Two stages: fsync the group's directories, then insert and commit its rows. The
        lead passes on between them, so the next group's directory fsync runs while this
        group's database commit does; the file system then often serves both with one
        journal commit. Each group's own order stays: its renames are durable before its
        rows are committed, so no row ever points at a file a crash could lose.

        A spooling writer has one stage: the group's envelopes are written into the spool,
        and its directory is fsynced with the raw store's.
        """
        with self._lock:
            # Messages whose bytes are being written at this moment will be ready within one
            # write; waiting that long for them makes one commit serve them too.
            deadline = time.monotonic() + GATHER_SECONDS
            while self._writing and (left := deadline - time.monotonic()) > 0:
                self._joined.wait(left)
            group, self._group = self._group, []
        outcomes: list[int | str | _Failed] = []
        spooled: Path | None = None
        try:
            try:
                if self._spool is None:
                    problem = self._sync(group)
                else:
                    spooled, problem = self._spool_group(group)
            finally:
                # Whatever happened, the next group may start: hand the lead on.
                with self._lock:
                    successor = self._group[0] if self._group else None
                    self._committing = successor is not None
                if successor is not None:
                    successor.wake.set()
            if problem is not None:
                outcomes = [problem] * len(group)
            elif spooled is not None:
                outcomes = [p.stored.path.stem for p in group]
            else:
                # Groups commit one at a time, so SQLite never waits for its own write lock.
                with self._db_turn:
                    outcomes = [*self._record(group)]
        finally:
            # Even if something unforeseen was raised, every member must wake with an outcome.
            outcomes += [_Failed("the message could not be recorded")] * (
                len(group) - len(outcomes)
            )
            for member, outcome in zip(group, outcomes, strict=True):
                member.outcome = outcome
                member.wake.set()
        if spooled is not None:
            self._on_spooled(spooled)
        committed = [o for o in outcomes if isinstance(o, int)]
        if committed and self._on_committed is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self._notify, committed)
        assert pending.outcome is not None
        return pending.outcome

    def _notify(self, ids: list[int]) -> None:
        assert self._on_committed is not None
        try:
            self._on_committed(ids)
        except Exception:
            log.exception("on_committed callback failed for %s", ids)

    def _sync(self, batch: list[_Pending], *also: Path) -> _Failed | None:
        """Make the group's renames durable; on failure remove its files and say why."""
        try:
            sync_directories([*(p.stored.path.parent for p in batch), *also])
        except OSError as exc:
            log.error("fsync of the raw-store directories failed: %s", exc)
            self._discard(batch)
            return _Failed(f"the message could not be written: {exc.strerror}")
        return None

    def _spool_group(self, batch: list[_Pending]) -> tuple[Path | None, _Failed | None]:
        """Write the group's envelopes into the spool and make both durable; or say why not."""
        assert self._spool is not None
        try:
            spooled = self._spool.write([p.row for p in batch])
        except OSError as exc:
            log.error("writing to the incoming spool failed: %s", exc)
            self._discard(batch)
            return None, _Failed(f"the message could not be written: {exc.strerror}")
        problem = self._sync(batch, spooled.parent)
        if problem is not None:
            self._spool.remove(spooled)
            return None, problem
        return spooled, None

    def _record(self, batch: list[_Pending]) -> list[int | _Failed]:
        """Insert and commit the group's rows; an id or a reason for each message."""
        try:
            return list(self._insert(batch))
        except _CommitUncertain as exc:
            return self._uncertain(batch, exc)
        except Exception as exc:
            if len(batch) == 1:
                self._fail(batch, exc)
                return [_Failed(f"the message could not be recorded: {exc.__class__.__name__}")]
        # The group failed before its commit; try its messages one by one, so that one row
        # the database refuses does not fail the others.
        outcomes: list[int | _Failed] = []
        for pending in batch:
            try:
                outcomes.extend(self._insert([pending]))
            except _CommitUncertain as exc:
                outcomes.extend(self._uncertain([pending], exc))
            except Exception as exc:
                self._fail([pending], exc)
                outcomes.append(
                    _Failed(f"the message could not be recorded: {exc.__class__.__name__}")
                )
        return outcomes

    def _insert(self, batch: list[_Pending]) -> list[int]:
        # Executed at the Core level, not through a Session: half the CPU of the ORM's bulk
        # insert, and the leader holds the GIL while it works, so this is time the event
        # loop gets back.
        with self._engine.connect() as connection:
            transaction = connection.begin()
            ids = list(connection.execute(_INSERT, [p.row for p in batch]).scalars())
            try:
                transaction.commit()
            except Exception as exc:
                raise _CommitUncertain() from exc
        return ids

    def _fail(self, batch: list[_Pending], exc: Exception) -> None:
        for pending in batch:
            log.error("%s: recording the inbound row failed: %r", pending.row["message_id"], exc)
        self._discard(batch)

    def _uncertain(self, batch: list[_Pending], exc: _CommitUncertain) -> list[int | _Failed]:
        # The COMMIT itself failed, e.g. the connection dropped: the rows may be in the
        # database after all. The files stay, so that no row can point at a missing file;
        # a leftover file without a row is harmless.
        for pending in batch:
            log.error(
                "%s: commit of the inbound row failed, file %s kept: %r",
                pending.row["message_id"],
                pending.stored.relative,
                exc.__cause__,
            )
        return [_Failed("the database did not confirm the commit")] * len(batch)

    def _discard(self, batch: list[_Pending]) -> None:
        for pending in batch:
            try:
                pending.stored.path.unlink(missing_ok=True)
            except OSError as exc:
                log.error("could not remove %s: %s", pending.stored.relative, exc)


class _CommitUncertain(Exception):
    """COMMIT raised: whether the rows were written is unknown."""


def record_spooled(
    engine: Engine, envelopes: Sequence[dict[str, Any]], *, maybe_known: bool = True
) -> list[int]:
    """Insert the inbound rows of spooled envelopes in one transaction; return their new ids.

    A row whose raw file already has one (its spool file was picked up before a crash, or by
    another daemon sharing the data directory) is not made again. ``maybe_known=False`` skips
    looking: for files just spooled, whose rows the unique path refuses should another daemon
    have made them after all.
    """
    with engine.connect() as connection, connection.begin():
        known: set[str] = set()
        if maybe_known:
            paths = [e["path"] for e in envelopes]
            known = set(
                connection.execute(select(Inbound.path).where(Inbound.path.in_(paths))).scalars()
            )
        fresh = [e for e in envelopes if e["path"] not in known]
        if not fresh:
            return []
        return list(connection.execute(_INSERT, fresh).scalars())
