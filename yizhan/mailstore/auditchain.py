"""Seals audit rows into a keyed hash chain when the transaction that wrote them commits.

The trail must prove itself (mine rules 一(五), issue 17): a row edited, deleted or slipped in
behind the daemon's back is found by ``yizhan audit verify`` even when the database's own
append-only triggers were dropped first. How:

* ``audit.record`` inserts a row as it always did, with the chain columns (``seq``,
  ``prev_hash``, ``hash``) empty, so the row is visible at once to the transaction that wrote
  it (the document trail is read back before commit) and no lock is taken while work goes on.
* When that transaction commits, a ``before_commit`` hook (installed on every session factory
  Yizhan makes, :func:`install`) locks the one row of ``audit_head`` (``SELECT … FOR UPDATE``
  on PostgreSQL; SQLite transactions already hold the write lock, every one begins IMMEDIATE),
  numbers the transaction's rows after the head (``seq``), links each to the one before
  (``prev_hash``) and seals it: ``hash`` = HMAC-SHA256 over a canonical encoding (sorted-key JSON
  of seq, id, at in UTC, actor, action, target, on_behalf_of, detail as it reads back, prev_hash),
  then moves the head and seals the head too. The lock is held for those few statements and the
  commit only, so transactions run in parallel and are serialised only while they append:
  commit order is chain order, and a reader's snapshot always holds a whole prefix of the chain.
  (Writers run at PostgreSQL's default READ COMMITTED: the lock then waits for the previous
  appender instead of failing a REPEATABLE READ transaction.)
* The key is derived from ``yizhan.secret``, which is not in the database: someone with only
  database access can change rows but cannot compute seals that verify, nor move the head back
  over rows they deleted (the head's own seal covers its position).
* The triggers let exactly one update through: filling a row's three empty chain columns, every
  other column unchanged (migration 0016).

Rows older than the chain (ids up to ``audit_head.legacy_until``) are chained once, in id order,
before any new row: by :func:`seal_legacy` when a ``yizhan`` verb opens the instance, or by the
first commit that appends. A row that has no seal after that was inserted behind the daemon's
back. Changing ``yizhan.secret`` breaks the proof of every older row; ``restore`` reseals a
backup made under another secret (see ``mailstore/backup.py``).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import Connection, bindparam, event, select, update
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.base import instance_state

from yizhan.mailstore.models import AuditEntry, AuditHead, Base

#: ``prev_hash`` of the first row.
GENESIS = "0" * 64
#: The key of the session factory's ``info`` that holds the chain key.
KEY_INFO = "yizhan.audit_key"
_PENDING = "yizhan.audit_pending"
_HEAD_ID = 1
#: Rows sealed per statement when a whole range is sealed (legacy rows, a resealed backup).
BATCH = 1000

AUDIT = Base.metadata.tables[AuditEntry.__tablename__]
HEAD = Base.metadata.tables[AuditHead.__tablename__]
#: The columns a row's hash covers, besides its place in the chain.
CONTENT = (
    AUDIT.c.id,
    AUDIT.c.at,
    AUDIT.c.actor,
    AUDIT.c.action,
    AUDIT.c.target,
    AUDIT.c.on_behalf_of,
    AUDIT.c.detail,
)
CHAIN = (AUDIT.c.seq, AUDIT.c.prev_hash, AUDIT.c.hash)

# Built once: each commit that appends runs these four, and building costs more than running.
_SEAL_ROW = (
    update(AUDIT)
    .where(AUDIT.c.id == bindparam("row_id"))
    .values(seq=bindparam("new_seq"), prev_hash=bindparam("new_prev"), hash=bindparam("new_hash"))
)
_READ_HEAD = select(HEAD).where(HEAD.c.id == _HEAD_ID)
_LOCK_HEAD = _READ_HEAD.with_for_update()
_MOVE_HEAD = (
    update(HEAD)
    .where(HEAD.c.id == _HEAD_ID)
    .values(
        seq=bindparam("head_seq"),
        hash=bindparam("head_hash"),
        seal=bindparam("head_seal"),
        key_id=bindparam("head_key"),
    )
)
_ROWS_BY_ID = (
    select(*CONTENT, *CHAIN)
    .where(AUDIT.c.id.in_(bindparam("ids", expanding=True)))
    .order_by(AUDIT.c.id)
)


class AuditChainError(Exception):
    """The chain cannot be extended (no key, no head row); the message says why."""


def key_from_secret(secret: str) -> bytes | None:
    """The chain key of an instance, derived from ``yizhan.secret``; None without a secret."""
    if not secret:
        return None
    return hmac.new(secret.encode("utf-8"), b"yizhan audit chain v1", hashlib.sha256).digest()


@functools.lru_cache(maxsize=8)
def key_id(key: bytes) -> str:
    """A short public name of ``key``: tells a changed secret from altered rows."""
    return hmac.new(key, b"key id", hashlib.sha256).hexdigest()[:16]


class ChainRow(NamedTuple):
    """One audit row as it reads back from the database: its contents and its chain columns.

    A named tuple in the order of :data:`CONTENT` then :data:`CHAIN`, so that a result row
    becomes one with ``ChainRow._make(row)``: verify makes a million.
    """

    id: int
    at: dt.datetime
    actor: str
    action: str
    target: str | None
    on_behalf_of: str | None
    detail: Any
    seq: int | None
    prev_hash: str | None
    hash: str | None


# The encoder and string escaper json.dumps(..., sort_keys=True, ensure_ascii=True,
# separators=(",", ":")) uses, built once.
_JSON = json.JSONEncoder(sort_keys=True, ensure_ascii=True, separators=(",", ":"))
_string = json.encoder.encode_basestring_ascii


def canonical(row: ChainRow, seq: int, prev_hash: str) -> bytes:
    """The bytes a row's hash covers: sorted-key JSON, ASCII, no spaces, time in UTC ISO 8601.

    Exactly ``json.dumps`` with ``sort_keys=True, ensure_ascii=True, separators=(",", ":")`` of
    the nine fields action, actor, at, detail, id, on_behalf_of, prev_hash, seq, target (a test
    holds it to that), written out key by key in that order because verify does it per row.
    """
    at = row.at.astimezone(dt.UTC).isoformat(timespec="microseconds")
    target = "null" if row.target is None else _string(row.target)
    on_behalf_of = "null" if row.on_behalf_of is None else _string(row.on_behalf_of)
    return (
        f'{{"action":{_string(row.action)},"actor":{_string(row.actor)},"at":"{at}",'
        f'"detail":{_JSON.encode(row.detail)},"id":{int(row.id)},'
        f'"on_behalf_of":{on_behalf_of},"prev_hash":{_string(prev_hash)},"seq":{int(seq)},'
        f'"target":{target}}}'
    ).encode("ascii")


def row_hash(key: bytes, row: ChainRow, seq: int, prev_hash: str) -> str:
    """The seal of ``row`` at place ``seq`` after a row whose hash is ``prev_hash``."""
    return hmac.digest(key, canonical(row, seq, prev_hash), "sha256").hex()


def head_seal(key: bytes, seq: int, hash_: str) -> str:
    """The seal of the head at ``seq`` (whose row has hash ``hash_``)."""
    return hmac.new(key, f"head:{seq}:{hash_}".encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True, kw_only=True)
class Head:
    """The end of the chain as the database holds it."""

    seq: int
    hash: str
    seal: str | None
    key_id: str | None
    legacy_until: int | None

    @property
    def legacy_pending(self) -> bool:
        """Whether rows older than the chain still wait to be chained (the head was never
        moved, so it has no seal yet)."""
        return self.seq == 0 and self.seal is None and self.legacy_until is not None


def read_head(conn: Connection, *, lock: bool = False) -> Head:
    """The head row; ``lock``: held until the transaction ends (PostgreSQL ``FOR UPDATE``)."""
    row = conn.execute(_LOCK_HEAD if lock else _READ_HEAD).one_or_none()
    if row is None:
        raise AuditChainError("the audit chain has no head row (audit_head is empty)")
    m = row._mapping
    return Head(
        seq=m["seq"],
        hash=m["hash"],
        seal=m["seal"],
        key_id=m["key_id"],
        legacy_until=m["legacy_until"],
    )


def extend(conn: Connection, key: bytes, ids: Sequence[int]) -> dict[int, tuple[int, str, str]]:
    """Chain the unsealed rows ``ids`` after the head, in id order; returns their chain values.

    Locks the head until the caller's transaction ends; chains legacy rows first if the chain
    has not started yet.
    """
    head = read_head(conn, lock=True)
    if head.legacy_pending:
        head = _seal_range(conn, key, head, legacy_until=head.legacy_until, exclude=ids)
    sealed: dict[int, tuple[int, str, str]] = {}
    rows = conn.execute(_ROWS_BY_ID, {"ids": list(ids)})
    head = _append(conn, key, head, (ChainRow._make(r) for r in rows), sealed)
    _move_head(conn, key, head)
    return sealed


def seal_legacy(conn: Connection, key: bytes) -> int:
    """Chain the rows older than the chain, once; returns how many were chained (0 after)."""
    if not read_head(conn).legacy_pending:
        return 0
    head = read_head(conn, lock=True)
    if not head.legacy_pending:
        return 0
    after = _seal_range(conn, key, head, legacy_until=head.legacy_until, exclude=())
    return after.seq - head.seq


def reseal(key: bytes, rows: Iterable[ChainRow]) -> dict[int, tuple[int, str, str]]:
    """New chain values under ``key`` for ``rows`` (a whole chain, in seq order), by id.

    For a backup restored under another secret: the old seals cannot be checked without the
    old key, so the caller checks their links first. The rows keep their places.
    """
    sealed: dict[int, tuple[int, str, str]] = {}
    prev = GENESIS
    for row in rows:
        assert row.seq is not None
        digest = row_hash(key, row, row.seq, prev)
        sealed[row.id] = (row.seq, prev, digest)
        prev = digest
    return sealed


def _seal_range(
    conn: Connection, key: bytes, head: Head, *, legacy_until: int | None, exclude: Sequence[int]
) -> Head:
    """Chain every unsealed row with an id up to ``legacy_until``, a batch at a time."""
    last_id = 0
    while True:
        query = (
            select(*CONTENT, *CHAIN)
            .where(AUDIT.c.seq.is_(None), AUDIT.c.id > last_id, AUDIT.c.id <= legacy_until)
            .order_by(AUDIT.c.id)
            .limit(BATCH)
        )
        if exclude:
            query = query.where(AUDIT.c.id.not_in(exclude))
        batch = [ChainRow._make(r) for r in conn.execute(query)]
        if not batch:
            break
        head = _append(conn, key, head, batch, {})
        last_id = batch[-1].id
    _move_head(conn, key, head)
    return head


def _append(
    conn: Connection,
    key: bytes,
    head: Head,
    rows: Iterable[ChainRow],
    sealed: dict[int, tuple[int, str, str]],
) -> Head:
    seq, prev = head.seq, head.hash
    params: list[dict[str, Any]] = []
    for row in rows:
        seq += 1
        digest = row_hash(key, row, seq, prev)
        params.append({"row_id": row.id, "new_seq": seq, "new_prev": prev, "new_hash": digest})
        sealed[row.id] = (seq, prev, digest)
        prev = digest
    if params:
        conn.execute(_SEAL_ROW, params)
    return Head(seq=seq, hash=prev, seal=None, key_id=key_id(key), legacy_until=head.legacy_until)


def _move_head(conn: Connection, key: bytes, head: Head) -> None:
    conn.execute(
        _MOVE_HEAD,
        {
            "head_seq": head.seq,
            "head_hash": head.hash,
            "head_seal": head_seal(key, head.seq, head.hash),
            "head_key": key_id(key),
        },
    )


def install(factory: sessionmaker[Session]) -> None:
    """Seal, at each commit of a session ``factory`` makes, the audit rows it inserted.

    The key is ``factory``'s ``info[KEY_INFO]``; a session without one that inserts audit
    rows cannot commit (:class:`AuditChainError`).
    """
    event.listen(factory, "after_flush", _collect)
    event.listen(factory, "before_commit", _seal_pending)
    event.listen(factory, "after_transaction_end", _forget)


def _collect(session: Session, _context: Any) -> None:
    # session.new still lists what this flush inserted.
    new = [obj for obj in session.new if isinstance(obj, AuditEntry)]
    if new:
        session.info.setdefault(_PENDING, []).extend(new)


def _seal_pending(session: Session) -> None:
    # A savepoint's release is not the commit: the rows are sealed once, by the outermost.
    if session.in_nested_transaction():
        return
    session.flush()
    # Rows inserted in a savepoint that was rolled back are no longer persistent.
    entries: list[AuditEntry] = [
        e for e in session.info.pop(_PENDING, []) if instance_state(e).persistent
    ]
    if not entries:
        return
    key = session.info.get(KEY_INFO)
    if not isinstance(key, bytes):
        raise AuditChainError(
            "this session has no audit key (yizhan.secret is empty?): its audit rows cannot be "
            "sealed; run `yizhan init`"
        )
    sealed = extend(session.connection(), key, sorted(e.id for e in entries))
    for entry in entries:
        seq, prev, digest = sealed[entry.id]
        set_committed_value(entry, "seq", seq)
        set_committed_value(entry, "prev_hash", prev)
        set_committed_value(entry, "hash", digest)


def _forget(session: Session, transaction: Any) -> None:
    if transaction.parent is None:
        session.info.pop(_PENDING, None)
