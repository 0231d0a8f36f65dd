"""Tests for mailstore.quarantine: held messages kept durably with their reason, then released
or deleted once, the record always kept."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from yizhan.mailstore.quarantine import Quarantine, QuarantineEntry, QuarantineError

NOW = dt.datetime(2026, 11, 25, 10, 0, tzinfo=dt.UTC)


def hold(store: Quarantine, data: bytes = b"Subject: x\r\n\r\nbody\r\n") -> QuarantineEntry:
    return store.hold(
        data,
        rule="classified",
        status="5.7.1",
        reason_zh="未受理：密級標誌",
        reason_en="Refused: a classification marking",
        mail_from="wangfang@oa.example",
        rcpt_tos=["fawen@oa.example"],
        sender_account="wangfang",
        auth_method="smtp-auth",
        message_id="<1@client.test>",
        inbound_id=7,
        now=NOW,
    )


def test_held_messages_are_two_files_and_nothing_half_written(tmp_path: Path) -> None:
    # The bytes and a versioned JSON record; tmp/ is empty once hold() returns.
    store = Quarantine(tmp_path / "quarantine")
    entry = hold(store)
    assert (store.root / f"{entry.id}.eml").read_bytes() == b"Subject: x\r\n\r\nbody\r\n"
    record = json.loads((store.root / f"{entry.id}.json").read_text(encoding="utf-8"))
    assert record["version"] == 1 and record["reason_zh"] == "未受理：密級標誌"
    assert list(store.tmp.iterdir()) == []
    assert store.get(entry.id) == entry and store.entries() == [entry]


def test_release_and_delete_happen_once(tmp_path: Path) -> None:
    # Each held message is decided once; the record says by whom.
    store = Quarantine(tmp_path / "quarantine")
    first, second = hold(store, b"a"), hold(store, b"b")
    released = store.mark_released(first.id, by="helei", now=NOW, released_as=12)
    assert released.state == "released" and store.released(first.sha256)
    with pytest.raises(QuarantineError, match="already released by helei"):
        store.delete(first.id, by="helei", now=NOW)
    deleted = store.delete(second.id, by="wuhaifeng", now=NOW)
    assert deleted.state == "deleted" and not (store.root / f"{second.id}.eml").exists()
    with pytest.raises(QuarantineError, match="deleted by wuhaifeng"):
        store.read(second.id)
    assert store.entries() == []
    assert sorted(e.state for e in store.entries(include_done=True)) == ["deleted", "released"]


def test_unknown_ids_are_refused(tmp_path: Path) -> None:
    # Ids are checked, so none can name a path outside the quarantine.
    store = Quarantine(tmp_path / "quarantine")
    with pytest.raises(QuarantineError, match="not a quarantine id"):
        store.get("../../etc/passwd")
    with pytest.raises(QuarantineError, match="no quarantined message"):
        store.get("20260101T000000-abcdef12")
    assert store.entries() == []
