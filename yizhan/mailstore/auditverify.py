"""Walks the audit hash chain and names each row that was edited, deleted or inserted.

The walk (:func:`walk`) is pure: it takes the chained rows in ``seq`` order, the ids of rows that
have no seal, the head and the key, so that it checks a database (:func:`verify`, streamed) and
a backup's files alike. What it finds, row by row (see ``mailstore/auditchain.py`` for the
chain itself):

* **edited**: a row's seal does not match its contents (or its seq was changed), while the rows
  around it still link to it;
* **deleted**: a gap in ``seq``, a ``prev_hash`` that does not match the row before, or a head
  past the last row (or a head whose own seal fails: moved back over deleted rows);
* **inserted**: a row without a seal, a second row at one seq, a row after the head, or a row
  whose seal fails and that the next row skips (it links to the row before).

Problems are listed in trail order, one line each; the first is the first bad row.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import groupby

from sqlalchemy import Connection, Engine, select, text

from yizhan.mailstore.auditchain import (
    AUDIT,
    CHAIN,
    CONTENT,
    GENESIS,
    ChainRow,
    Head,
    head_seal,
    key_id,
    read_head,
    row_hash,
)
from yizhan.mailstore.db import SNAPSHOT

#: Problems kept for the report; the rest are counted.
KEPT = 1000
#: Rows fetched from the database at a time.
YIELD = 5000


@dataclass(frozen=True, kw_only=True)
class Problem:
    """One break in the chain: its kind, the row it is found at and why."""

    kind: str
    row_id: int | None
    seq: int | None
    why: str

    def line(self) -> str:
        """The one line that names it (a deleted row is named by its place and neighbours)."""
        if self.kind == "deleted" or self.row_id is None:
            return f"{self.kind}: {self.why}"
        seq = f" (seq {self.seq})" if self.seq is not None else ""
        return f"{self.kind}: audit row {self.row_id}{seq}: {self.why}"


@dataclass(frozen=True, kw_only=True)
class Anchor:
    """A head recorded outside the database (a backup's): the trail must still hold it."""

    seq: int
    hash: str
    source: str


@dataclass(kw_only=True)
class Verdict:
    """What a walk found: rows seen, the head, the problems (the first :data:`KEPT`)."""

    rows: int = 0
    head: Head
    problems: list[Problem] = field(default_factory=list)
    problem_count: int = 0
    hint: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the trail is whole."""
        return self.problem_count == 0

    def summary(self) -> str:
        """One line: the count and the head, or the number of problems."""
        if self.ok:
            return (
                f"audit trail verified: {self.rows} rows, head seq {self.head.seq} "
                f"hash {self.head.hash[:16]}"
            )
        return (
            f"audit trail broken: {self.problem_count} problem(s) in {self.rows} rows, "
            f"head seq {self.head.seq}"
        )


def verify_database(engine: Engine, key: bytes, *, anchor: Anchor | None = None) -> Verdict:
    """Walk the whole trail in one snapshot of the database, holding up no writer."""
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
        else:
            conn.execution_options(**{SNAPSHOT: True})
        verdict = verify(conn, key, anchor=anchor)
        conn.rollback()
    return verdict


def verify(conn: Connection, key: bytes, *, anchor: Anchor | None = None) -> Verdict:
    """Walk the whole trail as ``conn`` sees it, streamed."""
    head = read_head(conn)
    chained = conn.execute(
        select(*CONTENT, *CHAIN)
        .where(AUDIT.c.seq.is_not(None))
        .order_by(AUDIT.c.seq, AUDIT.c.id)
        .execution_options(yield_per=YIELD)
    )

    def unchained() -> Iterator[int]:
        # Asked only once the chained rows are read: one open cursor at a time.
        yield from conn.scalars(
            select(AUDIT.c.id)
            .where(AUDIT.c.seq.is_(None))
            .order_by(AUDIT.c.id)
            .execution_options(yield_per=YIELD)
        )

    rows = (ChainRow._make(r) for r in chained)
    return walk(rows, head, key, unchained=unchained(), anchor=anchor)


def walk(
    rows: Iterable[ChainRow],
    head: Head,
    key: bytes,
    *,
    unchained: Iterable[int] = (),
    anchor: Anchor | None = None,
) -> Verdict:
    """Check ``rows`` (chained, in seq then id order) against ``head`` under ``key``.

    ``unchained`` are the ids of rows without a seal; while legacy rows wait to be chained,
    those up to the head's ``legacy_until`` are not counted as inserted. ``anchor``: a head
    kept elsewhere, which catches a head moved back to an older, validly sealed state.
    """
    walker = _Walker(key, head, anchor)
    groups = (list(g) for _, g in groupby(rows, key=lambda r: r.seq))
    current = next(groups, None)
    while current is not None:
        following = next(groups, None)
        walker.step(current, following[0] if following else None)
        current = following
    walker.finish()
    for row_id in unchained:
        walker.rows += 1
        if head.legacy_pending and head.legacy_until is not None and row_id <= head.legacy_until:
            continue
        walker.report("inserted", row_id, None, "it has no seal: written behind Yizhan's back")
    verdict = Verdict(rows=walker.rows, head=head, problem_count=walker.count)
    verdict.problems = sorted(walker.kept, key=_trail_order)
    if head.key_id is not None and head.key_id != key_id(key) and not verdict.ok:
        verdict.hint = (
            f"the trail was sealed under another yizhan.secret (key id {head.key_id}; this "
            f"configuration's is {key_id(key)}): no seal can verify"
        )
    return verdict


def _trail_order(problem: Problem) -> tuple[int, int]:
    return (problem.row_id if problem.row_id is not None else 2**63, problem.seq or 0)


class _Walker:
    """The state of one walk: where the chain should continue, and what was found."""

    def __init__(self, key: bytes, head: Head, anchor: Anchor | None) -> None:
        self.key = key
        self.head = head
        self.anchor = anchor
        self.head_ok = head.seal is not None and hmac.compare_digest(
            head.seal, head_seal(key, head.seq, head.hash)
        )
        self.expect_seq = 1
        # None: the previous row's true hash is unknown (it was edited), so no link is checked.
        self.expect_prev: str | None = GENESIS
        self.last: ChainRow | None = None
        self.last_reported = False
        self.rows = 0
        self.count = 0
        self.kept: list[Problem] = []

    def report(self, kind: str, row_id: int | None, seq: int | None, why: str) -> None:
        self.count += 1
        if len(self.kept) < KEPT:
            self.kept.append(Problem(kind=kind, row_id=row_id, seq=seq, why=why))

    def sealed(self, row: ChainRow, seq: int) -> bool:
        assert row.prev_hash is not None and row.hash is not None
        return hmac.compare_digest(row.hash, row_hash(self.key, row, seq, row.prev_hash))

    def step(self, group: list[ChainRow], following: ChainRow | None) -> None:
        self.rows += len(group)
        seq = group[0].seq
        assert seq is not None
        if seq > self.head.seq:
            for row in group:
                self.report("inserted", row.id, seq, f"it is after the head (seq {self.head.seq})")
            return
        row = self._choose(group)
        if self.anchor is not None and seq == self.anchor.seq and row.hash != self.anchor.hash:
            self.report("edited", row.id, seq, f"its hash is not the one in {self.anchor.source}")
        for other in group:
            if other is not row:
                why = f"a second row at seq {seq} (audit row {row.id} holds it)"
                self.report("inserted", other.id, seq, why)
        sealed = self.sealed(row, seq)
        self.last_reported = False
        if seq > self.expect_seq:
            missing = _span(self.expect_seq, seq - 1)
            self.report("deleted", row.id, seq, f"seq {missing} missing, {self._before(row)}")
            if not sealed:
                self._edited(row, seq)
            self._advance(row)
        elif not sealed and following is not None and following.prev_hash == self.expect_prev:
            # The next row was sealed right after the row before this one: slipped in between.
            self.report(
                "inserted",
                row.id,
                seq,
                f"its seal does not verify, and audit row {following.id} after it links to "
                "the row before it",
            )
            self.expect_seq = seq + 1
            self.last_reported = True
        elif self.expect_prev is not None and row.prev_hash != self.expect_prev:
            why = (
                f"audit row {row.id} (seq {seq}) does not link to {self._previous()} before it: "
                "the rows between were deleted"
            )
            self.report("deleted", row.id, seq, why)
            self._advance(row)
        elif not sealed and following is None and not self.head_ok and self.head.hash == row.hash:
            why = "its seal was made without the key, and the head moved to it"
            self.report("inserted", row.id, seq, why)
            self.expect_seq = seq + 1
            self.last_reported = True
        elif not sealed:
            self._edited(row, seq)
            self._advance(row)
            if following is None or following.prev_hash != row.hash:
                self.expect_prev = None
        else:
            self._advance(row)

    def finish(self) -> None:
        """Check the head against the last row."""
        last_id = self.last.id if self.last else None
        if self.anchor is not None and self.anchor.seq >= self.expect_seq:
            self.report(
                "deleted",
                last_id,
                self.anchor.seq,
                f"the trail ends at seq {self.expect_seq - 1}{self._after(last_id)}, before "
                f"seq {self.anchor.seq}, which {self.anchor.source} holds",
            )
        if self.last_reported:
            return
        if self.head.seq == 0 and self.head.seal is None:
            if self.last is not None:
                why = f"the head was reset to seq 0{self._after(last_id)}"
                self.report("deleted", last_id, None, why)
            return
        if not self.head_ok:
            self.report(
                "deleted",
                last_id,
                self.head.seq,
                f"the head (seq {self.head.seq}) has a seal that does not match: it was moved "
                f"back over rows deleted{self._after(last_id)}",
            )
        elif self.expect_seq <= self.head.seq:
            missing = _span(self.expect_seq, self.head.seq)
            self.report(
                "deleted",
                last_id,
                self.expect_seq - 1 if self.last else None,
                f"seq {missing} missing{self._after(last_id)}: the head says the trail ends "
                f"at seq {self.head.seq}",
            )
        elif self.expect_prev is not None and self.expect_prev != self.head.hash:
            self.report("edited", last_id, self.head.seq, "its hash is not the head's")

    def _choose(self, group: list[ChainRow]) -> ChainRow:
        if len(group) == 1:
            return group[0]
        seq = group[0].seq
        assert seq is not None
        sealed = [r for r in group if self.sealed(r, seq)]
        linked = [r for r in sealed if r.prev_hash == self.expect_prev]
        return (linked or sealed or group)[0]

    def _edited(self, row: ChainRow, seq: int) -> None:
        why = "its contents do not match its seal"
        for moved in (seq - 1, seq + 1):
            if moved > 0 and self.sealed(row, moved):
                why = f"its seq was changed from {moved}"
        self.report("edited", row.id, seq, why)
        self.last_reported = True

    def _advance(self, row: ChainRow) -> None:
        assert row.seq is not None
        self.expect_seq = row.seq + 1
        self.expect_prev = row.hash
        self.last = row

    def _before(self, row: ChainRow) -> str:
        if self.last is None:
            return f"before audit row {row.id}"
        return f"between audit row {self.last.id} and audit row {row.id}"

    def _previous(self) -> str:
        return f"audit row {self.last.id}" if self.last else "the start of the chain"

    @staticmethod
    def _after(row_id: int | None) -> str:
        return f" after audit row {row_id}" if row_id is not None else ""


def _span(first: int, last: int) -> str:
    return str(first) if first == last else f"{first}…{last}"


def lines(verdict: Verdict) -> Iterator[str]:
    """The report, one line a problem (the first :data:`KEPT`), and the summary last."""
    if verdict.hint:
        yield verdict.hint
    for problem in verdict.problems:
        yield problem.line()
    if verdict.problem_count > len(verdict.problems):
        yield f"… and {verdict.problem_count - len(verdict.problems)} more"
    yield verdict.summary()
