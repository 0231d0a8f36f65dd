"""Tests for the audit hash chain (mailstore/auditchain.py, auditverify.py): the trail proves
itself, and names the first row edited, deleted or inserted behind Yizhan's back (issue 17)."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import JSON, column, func, select, table, text, update
from sqlalchemy.exc import DatabaseError

from tests.conftest import backend, fresh_database, make_config
from yizhan.daemon.context import Context
from yizhan.mailstore import audit, auditchain
from yizhan.mailstore.auditchain import AuditChainError, ChainRow, canonical
from yizhan.mailstore.auditverify import Anchor, Verdict, verify_database
from yizhan.mailstore.backup import BackupError, backup, read_anchor, restore
from yizhan.mailstore.db import alembic_config, make_engine, make_sessionmaker, upgrade
from yizhan.mailstore.models import AuditEntry, AuditHead, UtcDateTime

NOW = dt.datetime(2026, 11, 27, 2, 0, tzinfo=dt.UTC)

# The audit table as someone with only database access writes to it: no session, no hook.
RAW_AUDIT = table(
    "audit",
    column("id"),
    column("at", UtcDateTime()),
    column("actor"),
    column("action"),
    column("target"),
    column("detail", JSON()),
    column("seq"),
    column("prev_hash"),
    column("hash"),
)


def record(ctx: Context, n: int, *, per_transaction: int = 1, actor: str = "wangfang") -> None:
    """``n`` transactions through the daemon's sessions, each writing some audit rows."""
    for i in range(n):
        with ctx.sessions.begin() as session:
            for j in range(per_transaction):
                audit.record(
                    session,
                    at=NOW + dt.timedelta(seconds=i),
                    actor=actor,
                    action="doc.approve",
                    target=f"doc:{i}",
                    detail={"opinion": "同意", "step": j, "weight": 1.5, "tags": ["a", "b"]},
                )


def verdict(ctx: Context, anchor: Anchor | None = None) -> Verdict:
    assert ctx.audit_key is not None
    return verify_database(ctx.engine, ctx.audit_key, anchor=anchor)


def ids(ctx: Context) -> list[int]:
    with ctx.engine.connect() as conn:
        return list(conn.scalars(select(AuditEntry.id).order_by(AuditEntry.id)))


def drop_protections(ctx: Context) -> None:
    """What an intruder with database access does first: the append-only triggers and the
    unique index on seq go."""
    with ctx.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("DROP TRIGGER audit_append_only ON audit"))
            conn.execute(text("DROP TRIGGER audit_no_truncate ON audit"))
        else:
            conn.execute(text("DROP TRIGGER audit_no_update"))
            conn.execute(text("DROP TRIGGER audit_no_delete"))
        conn.execute(text("DROP INDEX ix_audit_seq"))


def head(ctx: Context) -> auditchain.Head:
    with ctx.engine.connect() as conn:
        return auditchain.read_head(conn)


def test_an_untouched_trail_verifies(ctx: Context) -> None:
    # The daemon writes its rows in many transactions, several in one; a row written inside a
    # savepoint that was rolled back and a transaction rolled back leave no trace and no gap.
    record(ctx, 5, per_transaction=3)
    with ctx.sessions.begin() as session:
        kept = audit.record(session, at=NOW, actor="lijun", action="doc.approve")
        with contextlib.suppress(RuntimeError), session.begin_nested():
            audit.record(session, at=NOW, actor="lijun", action="doc.lost")
            session.flush()
            raise RuntimeError("the savepoint fails")
    with contextlib.suppress(RuntimeError), ctx.sessions.begin() as session:
        audit.record(session, at=NOW, actor="lijun", action="doc.lost")
        session.flush()
        raise RuntimeError("the transaction fails")
    result = verdict(ctx)
    assert result.ok, result.problems
    assert result.rows == 16 and result.head.seq == 16
    assert kept.seq == 16 and kept.hash == result.head.hash
    assert "audit trail verified: 16 rows, head seq 16" in result.summary()


def test_a_row_is_visible_unsealed_in_its_own_transaction(ctx: Context) -> None:
    # The document trail is read back before commit: the row is there at once, sealed at commit.
    with ctx.sessions.begin() as session:
        entry = audit.record(session, at=NOW, actor="wangfang", action="doc.create")
        session.flush()
        seen = session.execute(
            select(AuditEntry.action, AuditEntry.seq).where(AuditEntry.id == entry.id)
        ).one()
        assert tuple(seen) == ("doc.create", None)
    with ctx.engine.connect() as conn:
        stored = conn.execute(select(AuditEntry.seq, AuditEntry.hash)).one()
    assert stored.seq == 1 and stored.hash == entry.hash


def test_an_edited_row_is_named(ctx: Context) -> None:
    # Someone drops the triggers and rewrites an approver's opinion.
    record(ctx, 6)
    drop_protections(ctx)
    victim = ids(ctx)[3]
    with ctx.engine.begin() as conn:
        conn.execute(
            update(RAW_AUDIT).where(RAW_AUDIT.c.id == victim).values(detail={"opinion": "不同意"})
        )
    result = verdict(ctx)
    assert not result.ok and result.problem_count == 1
    first = result.problems[0]
    assert (first.kind, first.row_id) == ("edited", victim)
    assert first.line() == f"edited: audit row {victim} (seq 4): its contents do not match its seal"


def test_an_edited_row_whose_hash_was_recomputed_without_the_key_is_named(ctx: Context) -> None:
    # The intruder recomputes the edited row's hash the way they guess it is made (no key).
    record(ctx, 4)
    drop_protections(ctx)
    victim = ids(ctx)[1]
    with ctx.engine.begin() as conn:
        row = conn.execute(
            select(*auditchain.CONTENT, *auditchain.CHAIN).where(auditchain.AUDIT.c.id == victim)
        ).one()
        forged = ChainRow._make(row)._replace(actor="mallory")
        digest = hashlib.sha256(canonical(forged, 2, row.prev_hash)).hexdigest()
        conn.execute(
            update(RAW_AUDIT).where(RAW_AUDIT.c.id == victim).values(actor="mallory", hash=digest)
        )
    result = verdict(ctx)
    assert [(p.kind, p.row_id) for p in result.problems] == [("edited", victim)]


def test_a_deleted_row_is_named_by_its_place(ctx: Context) -> None:
    record(ctx, 6)
    drop_protections(ctx)
    rows = ids(ctx)
    with ctx.engine.begin() as conn:
        conn.execute(RAW_AUDIT.delete().where(RAW_AUDIT.c.id == rows[2]))
    result = verdict(ctx)
    assert result.problem_count == 1
    assert result.problems[0].kind == "deleted"
    assert result.problems[0].line() == (
        f"deleted: seq 3 missing, between audit row {rows[1]} and audit row {rows[3]}"
    )


def test_deleting_rows_and_renumbering_the_rest_is_found(ctx: Context) -> None:
    # Closing the gap by renumbering does not help: the next row no longer links back.
    record(ctx, 5)
    drop_protections(ctx)
    rows = ids(ctx)
    with ctx.engine.begin() as conn:
        conn.execute(RAW_AUDIT.delete().where(RAW_AUDIT.c.id == rows[1]))
        for seq, row_id in enumerate(rows[2:], start=2):
            conn.execute(update(RAW_AUDIT).where(RAW_AUDIT.c.id == row_id).values(seq=seq))
    first = verdict(ctx).problems[0]
    assert (first.kind, first.row_id) == ("deleted", rows[2])
    assert f"audit row {rows[2]} (seq 2) does not link to audit row {rows[0]}" in first.line()


def test_the_last_rows_deleted_are_found_by_the_head(ctx: Context) -> None:
    record(ctx, 5)
    drop_protections(ctx)
    rows = ids(ctx)
    with ctx.engine.begin() as conn:
        conn.execute(RAW_AUDIT.delete().where(RAW_AUDIT.c.id >= rows[3]))
    result = verdict(ctx)
    assert [p.line() for p in result.problems] == [
        f"deleted: seq 4…5 missing after audit row {rows[2]}: the head says the trail ends at seq 5"
    ]
    # Moving the head back as well needs the head's seal, which needs the key.
    with ctx.engine.begin() as conn:
        row = conn.execute(select(AuditEntry.seq, AuditEntry.hash).where(AuditEntry.id == rows[2]))
        seq, digest = row.one()
        conn.execute(update(AuditHead).values(seq=seq, hash=digest))
    first = verdict(ctx).problems[0]
    assert first.kind == "deleted" and "seal that does not match" in first.line()


def test_a_row_inserted_without_a_seal_is_named(ctx: Context) -> None:
    # Plain INSERT: the triggers never stopped that; the missing seal does.
    record(ctx, 3)
    with ctx.engine.begin() as conn:
        conn.execute(
            RAW_AUDIT.insert().values(at=NOW, actor="mallory", action="user.add", detail={})
        )
    result = verdict(ctx)
    inserted = max(ids(ctx))
    assert [p.line() for p in result.problems] == [
        f"inserted: audit row {inserted}: it has no seal: written behind Yizhan's back"
    ]


def test_a_row_inserted_with_a_forged_seal_is_named(ctx: Context) -> None:
    # The intruder appends a row after the head with a seal computed the way they guess it is
    # (SHA-256 of the canonical form, no key); then tries again moving the head as well.
    record(ctx, 3)
    end = head(ctx)
    forged_id = max(ids(ctx)) + 1
    row = ChainRow(
        id=forged_id,
        at=NOW,
        actor="mallory",
        action="user.add",
        target=None,
        on_behalf_of=None,
        detail={},
        seq=None,
        prev_hash=None,
        hash=None,
    )
    digest = hashlib.sha256(canonical(row, end.seq + 1, end.hash)).hexdigest()
    with ctx.engine.begin() as conn:
        conn.execute(
            RAW_AUDIT.insert().values(
                id=forged_id,
                at=NOW,
                actor="mallory",
                action="user.add",
                detail={},
                seq=end.seq + 1,
                prev_hash=end.hash,
                hash=digest,
            )
        )
    assert [(p.kind, p.row_id) for p in verdict(ctx).problems] == [("inserted", forged_id)]
    with ctx.engine.begin() as conn:
        conn.execute(update(AuditHead).values(seq=end.seq + 1, hash=digest))
    result = verdict(ctx)
    assert [(p.kind, p.row_id) for p in result.problems] == [("inserted", forged_id)]
    assert "made without the key" in result.problems[0].line()


def test_a_row_slipped_in_at_a_taken_seq_is_named(ctx: Context) -> None:
    record(ctx, 4)
    drop_protections(ctx)
    rows = ids(ctx)
    with ctx.engine.begin() as conn:
        second = conn.execute(select(AuditEntry.prev_hash).where(AuditEntry.id == rows[1]))
        conn.execute(
            RAW_AUDIT.insert().values(
                at=NOW,
                actor="mallory",
                action="user.add",
                detail={},
                seq=2,
                prev_hash=second.scalar_one(),
                hash="f" * 64,
            )
        )
    result = verdict(ctx)
    assert [(p.kind, p.row_id) for p in result.problems] == [("inserted", max(ids(ctx)))]


def test_the_triggers_allow_only_the_seal(ctx: Context) -> None:
    # Mine rules 一(五): the one update let through is filling the empty chain columns.
    record(ctx, 1)
    with pytest.raises(DatabaseError, match="append-only"), ctx.engine.begin() as conn:
        conn.execute(update(RAW_AUDIT).values(hash="0" * 64))
    with ctx.engine.begin() as conn:
        conn.execute(RAW_AUDIT.insert().values(at=NOW, actor="x", action="y", detail={}))
    with pytest.raises(DatabaseError, match="append-only"), ctx.engine.begin() as conn:
        conn.execute(
            update(RAW_AUDIT)
            .where(RAW_AUDIT.c.seq.is_(None))
            .values(seq=99, prev_hash="0" * 64, hash="0" * 64, actor="someone-else")
        )
    if backend() == "postgresql":
        with pytest.raises(DatabaseError, match="append-only"), ctx.engine.begin() as conn:
            conn.execute(text("TRUNCATE audit"))


def test_a_session_without_the_key_cannot_commit_audit_rows(ctx: Context) -> None:
    # A factory made without yizhan.secret's key may read the trail but not extend it.
    sessions = make_sessionmaker(ctx.engine)
    with pytest.raises(AuditChainError, match="no audit key"), sessions.begin() as session:
        audit.record(session, at=NOW, actor="x", action="y")
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(AuditEntry)) == 0


def test_concurrent_writers_keep_one_chain(ctx: Context) -> None:
    # Several workers (daemons on one PostgreSQL) commit audit rows at once.
    threads, rounds = 4, 15
    start = threading.Barrier(threads)
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            start.wait()
            record(ctx, rounds, per_transaction=2, actor=f"worker{n}")
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert errors == []
    result = verdict(ctx)
    assert result.ok, result.problems
    assert result.rows == result.head.seq == threads * rounds * 2


@pytest.mark.skipif(backend() != "postgresql", reason="SQLite writers never overlap")
def test_a_later_row_may_be_chained_first(ctx: Context) -> None:
    # Two transactions overlap: the one that inserted second commits first; chain order is
    # commit order, and both verify.
    first, second = ctx.sessions(), ctx.sessions()
    with first, second:
        a = audit.record(first, at=NOW, actor="a", action="x")
        first.flush()
        b = audit.record(second, at=NOW, actor="b", action="x")
        second.flush()
        assert a.id < b.id
        second.commit()
        first.commit()
    assert (b.seq, a.seq) == (1, 2)
    assert verdict(ctx).ok


def test_legacy_rows_are_chained_once_in_id_order(config_file_legacy: Context) -> None:
    # An instance upgraded from before the chain: its rows are chained by the first commit,
    # ahead of the new row; later tampering with one of them is found.
    ctx = config_file_legacy
    assert head(ctx).legacy_until == max(ids(ctx))
    record(ctx, 1, actor="new")
    result = verdict(ctx)
    assert result.ok and result.rows == 4
    with ctx.engine.connect() as conn:
        chained = conn.execute(select(AuditEntry.actor).order_by(AuditEntry.seq)).scalars().all()
    assert chained == ["old0", "old1", "old2", "new"]
    drop_protections(ctx)
    with ctx.engine.begin() as conn:
        conn.execute(update(RAW_AUDIT).where(RAW_AUDIT.c.actor == "old1").values(actor="x"))
    assert [p.kind for p in verdict(ctx).problems] == ["edited"]


def test_legacy_rows_are_chained_by_verify_before_any_commit(config_file_legacy: Context) -> None:
    ctx = config_file_legacy
    assert ctx.audit_key is not None
    with ctx.engine.begin() as conn:
        assert auditchain.seal_legacy(conn, ctx.audit_key) == 3
        assert auditchain.seal_legacy(conn, ctx.audit_key) == 0
    result = verdict(ctx)
    assert result.ok and result.head.seq == 3


@pytest.fixture
def config_file_legacy(tmp_path: Path, database_url: str) -> Iterator[Context]:
    """An instance whose trail was written before migration 0016, then upgraded."""
    ctx = Context.open(make_config(tmp_path, database_url))
    command.upgrade(alembic_config(ctx.engine), "0013")
    legacy = table(
        "audit",
        column("at", UtcDateTime()),
        column("actor"),
        column("action"),
        column("detail", JSON()),
    )
    with ctx.engine.begin() as conn:
        for n in range(3):
            conn.execute(legacy.insert().values(at=NOW, actor=f"old{n}", action="x", detail={}))
    upgrade(ctx.engine)
    yield ctx
    ctx.close()


@contextlib.contextmanager
def other_kind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Context]:
    """A new, initialised instance on the other database kind than the one under test."""
    with monkeypatch.context() as patch:
        patch.setenv("YIZHAN_TEST_DB", "sqlite" if backend() == "postgresql" else "postgresql")
        with fresh_database(tmp_path, "restored") as url:
            ctx = Context.open(make_config(tmp_path, url))
            try:
                upgrade(ctx.engine)
                yield ctx
            finally:
                ctx.close()


def test_a_backup_restores_verifiable_on_the_other_database(
    ctx: Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # IT moves the instance between SQLite and PostgreSQL: the trail and its head come along,
    # verify there, and the chain goes on.
    record(ctx, 4, per_transaction=2)
    target = tmp_path / "backup"
    backup(ctx.engine, ctx.config.data_dir, ctx.config.signing.gnupg_home, target)
    recorded = json.loads((target / "audit-head.json").read_text(encoding="utf-8"))
    assert recorded["seq"] == 8 and recorded["hash"] == head(ctx).hash
    assert json.loads((target / "manifest.json").read_text())["audit_head"] == recorded
    with other_kind(tmp_path / "other", monkeypatch) as other:
        assert other.audit_key == ctx.audit_key
        restore(
            other.engine,
            other.config.data_dir,
            other.config.signing.gnupg_home,
            target,
            audit_key=other.audit_key,
        )
        assert head(other).hash == recorded["hash"]
        record(other, 1)
        result = verdict(other, read_anchor(target))
        assert result.ok and result.rows == 9


def test_a_restore_under_another_secret_reseals_the_trail(
    ctx: Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The new instance was initialised with a secret of its own: the old seals cannot be
    # checked there, so the trail is resealed under the new key, and that is recorded.
    record(ctx, 3)
    target = tmp_path / "backup"
    backup(ctx.engine, ctx.config.data_dir, ctx.config.signing.gnupg_home, target)
    with fresh_database(tmp_path / "other", "restored") as url:
        config = make_config(tmp_path / "other", url, yizhan={"secret": "another-secret-4567"})
        other = Context.open(config)
        try:
            upgrade(other.engine)
            assert other.audit_key is not None and other.audit_key != ctx.audit_key
            restore(
                other.engine,
                other.config.data_dir,
                other.config.signing.gnupg_home,
                target,
                audit_key=other.audit_key,
            )
            result = verdict(other)
            assert result.ok and result.rows == 4
            with other.engine.connect() as conn:
                last = conn.execute(select(AuditEntry).order_by(AuditEntry.seq.desc())).first()
            assert last is not None and last.action == "audit.resealed"
        finally:
            other.close()


def test_a_tampered_backup_is_not_restored(
    ctx: Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Someone edits an audit row in the backup's files: the restore refuses it, naming the row.
    record(ctx, 3)
    target = tmp_path / "backup"
    backup(ctx.engine, ctx.config.data_dir, ctx.config.signing.gnupg_home, target)
    path = target / "tables" / "audit.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    rows[1]["actor"] = "mallory"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with other_kind(tmp_path / "other", monkeypatch) as other:
        assert other.audit_key is not None
        # The manifest's digest no longer matches the file.
        with pytest.raises(BackupError, match=r"tables/audit\.jsonl: .* the manifest says"):
            restore(
                other.engine,
                other.config.data_dir,
                other.config.signing.gnupg_home,
                target,
                audit_key=other.audit_key,
            )
        # One who rewrites the manifest's digests too is still caught by the chain's seals.
        manifest = json.loads((target / "manifest.json").read_text(encoding="utf-8"))
        manifest["files"]["tables/audit.jsonl"] = {
            "size": path.stat().st_size,
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        }
        (target / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
        with pytest.raises(BackupError, match=f"edited: audit row {rows[1]['id']} "):
            restore(
                other.engine,
                other.config.data_dir,
                other.config.signing.gnupg_home,
                target,
                audit_key=other.audit_key,
            )
        with other.engine.connect() as conn:
            assert conn.scalar(select(func.count()).select_from(AuditEntry)) == 0


def test_a_backup_anchor_catches_a_head_moved_back_to_an_old_state(
    ctx: Context, tmp_path: Path
) -> None:
    # An intruder who kept an old copy of the head row can cut the trail back to it unseen
    # by the database alone; the head recorded in a later backup still catches it.
    record(ctx, 3)
    old = head(ctx)
    record(ctx, 3)
    target = tmp_path / "backup"
    backup(ctx.engine, ctx.config.data_dir, ctx.config.signing.gnupg_home, target)
    drop_protections(ctx)
    with ctx.engine.begin() as conn:
        conn.execute(RAW_AUDIT.delete().where(RAW_AUDIT.c.seq > old.seq))
        conn.execute(update(AuditHead).values(seq=old.seq, hash=old.hash, seal=old.seal))
    assert verdict(ctx).ok
    result = verdict(ctx, read_anchor(target))
    assert [p.kind for p in result.problems] == ["deleted"]
    assert "the trail ends at seq 3" in result.problems[0].line()


def test_a_fresh_engine_sees_sealed_rows(ctx: Context) -> None:
    # What another daemon sees: every committed row is sealed, none waits.
    record(ctx, 2)
    engine = make_engine(ctx.config.database_url)
    try:
        with engine.connect() as conn:
            assert conn.scalar(select(func.count()).where(AuditEntry.seq.is_(None))) == 0
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("target", "on_behalf_of", "detail"),
    [
        (None, None, {}),
        ("doc:7", "lijun", {"opinion": '同意\n"引號"', "z": [1, 2.5, None, True], "a": {"b": 1}}),
        ("名/\\x", None, {"emoji": "🙂", "ctl": "\x00\x1f", "big": 2**70, "neg": -0.0}),
    ],
)
def test_the_canonical_form_is_sorted_compact_ascii_json(
    target: str | None, on_behalf_of: str | None, detail: dict[str, object]
) -> None:
    # The seal covers exactly the JSON a reader would write down from the documentation.
    at = dt.datetime(2026, 11, 27, 10, 0, 0, 5, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    row = ChainRow(
        id=12,
        at=at,
        actor="wangfang",
        action="doc.approve",
        target=target,
        on_behalf_of=on_behalf_of,
        detail=detail,
        seq=None,
        prev_hash=None,
        hash=None,
    )
    fields = {
        "seq": 3,
        "id": 12,
        "at": "2026-11-27T02:00:00.000005+00:00",
        "actor": "wangfang",
        "action": "doc.approve",
        "target": target,
        "on_behalf_of": on_behalf_of,
        "detail": detail,
        "prev_hash": "ab" * 32,
    }
    expected = json.dumps(fields, sort_keys=True, ensure_ascii=True, separators=(",", ":"))
    assert canonical(row, 3, "ab" * 32) == expected.encode("ascii")
