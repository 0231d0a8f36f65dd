"""Keeps messages refused after acceptance, with the reason, until the IT department decides.

Nothing accepted is lost (docs/architecture.md, "Durability"): a message that a rule refuses after
its 250 (a later check, a rule changed since) is set aside here, not dropped. Each one is two files
in ``<data_dir>/quarantine/``: ``<id>.eml`` (the raw bytes) and ``<id>.json`` (versioned JSON:
envelope, rule, reasons, and what became of it). Both are written to ``tmp/`` first, fsynced and
renamed, and the directory fsynced (Mailman ``core/switchboard.py``); the JSON is written last, so
an entry exists once its bytes do. Release and delete rewrite the JSON the same way; delete also
removes the bytes (the IT department deletes classified material for good), and the JSON stays as
the record. Who decided is in the JSON and in the audit trail.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Final

from yizhan.mailstore.rawstore import write_fsynced

__all__ = [
    "DELETED",
    "HELD",
    "RELEASED",
    "Quarantine",
    "QuarantineEntry",
    "QuarantineError",
]

HELD: Final = "held"
RELEASED: Final = "released"
DELETED: Final = "deleted"

#: The JSON sidecar's format version.
VERSION: Final = 1

_ID: Final = re.compile(r"^\d{8}T\d{6}-[0-9a-f]{8}$")


class QuarantineError(Exception):
    """No such entry, or it cannot change as asked; the message says which."""


@dataclass(frozen=True, kw_only=True)
class QuarantineEntry:
    """One quarantined message: its envelope, why it was refused, and what became of it."""

    id: str
    held_at: dt.datetime
    rule: str
    status: str
    reason_zh: str
    reason_en: str
    mail_from: str
    rcpt_tos: tuple[str, ...]
    sender_account: str | None
    auth_method: str
    message_id: str | None
    inbound_id: int | None
    sha256: str
    size: int
    state: str = HELD
    decided_by: str | None = None
    decided_at: dt.datetime | None = None
    #: The inbound row a released message was accepted again as.
    released_as: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The sidecar's content."""
        data = asdict(self)
        data["version"] = VERSION
        data["held_at"] = self.held_at.isoformat()
        data["decided_at"] = self.decided_at.isoformat() if self.decided_at else None
        data["rcpt_tos"] = list(self.rcpt_tos)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> QuarantineEntry:
        """Read a sidecar (format version 1)."""
        if data.get("version") != VERSION:
            raise QuarantineError(f"unknown quarantine record version {data.get('version')!r}")
        fields = {k: v for k, v in data.items() if k != "version"}
        fields["held_at"] = dt.datetime.fromisoformat(fields["held_at"])
        if fields.get("decided_at"):
            fields["decided_at"] = dt.datetime.fromisoformat(fields["decided_at"])
        fields["rcpt_tos"] = tuple(fields["rcpt_tos"])
        return cls(**fields)


class Quarantine:
    """The quarantine directory of one instance."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp = root / "tmp"

    def hold(
        self,
        data: bytes,
        *,
        rule: str,
        status: str,
        reason_zh: str,
        reason_en: str,
        mail_from: str,
        rcpt_tos: Sequence[str],
        sender_account: str | None,
        auth_method: str = "none",
        message_id: str | None = None,
        inbound_id: int | None = None,
        now: dt.datetime,
    ) -> QuarantineEntry:
        """Keep ``data`` durably with its reason; returns the new entry (blocking: use a thread)."""
        self.tmp.mkdir(parents=True, exist_ok=True)
        entry = QuarantineEntry(
            id=f"{now.astimezone(dt.UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}",
            held_at=now,
            rule=rule,
            status=status,
            reason_zh=reason_zh,
            reason_en=reason_en,
            mail_from=mail_from,
            rcpt_tos=tuple(rcpt_tos),
            sender_account=sender_account,
            auth_method=auth_method,
            message_id=message_id,
            inbound_id=inbound_id,
            sha256=hashlib.sha256(data).hexdigest(),
            size=len(data),
        )
        self._write(f"{entry.id}.eml", data)
        self._write(f"{entry.id}.json", _json_bytes(entry))
        return entry

    def entries(self, *, include_done: bool = False) -> list[QuarantineEntry]:
        """Entries oldest first; only those still held unless ``include_done``."""
        if not self.root.is_dir():
            return []
        found = []
        for path in sorted(self.root.glob("*.json")):
            entry = self._load(path)
            if include_done or entry.state == HELD:
                found.append(entry)
        return found

    def get(self, entry_id: str) -> QuarantineEntry:
        """One entry; :class:`QuarantineError` if there is none by that id."""
        if not _ID.match(entry_id):
            raise QuarantineError(f"{entry_id!r} is not a quarantine id (see `quarantine list`)")
        path = self.root / f"{entry_id}.json"
        if not path.exists():
            raise QuarantineError(f"no quarantined message {entry_id}")
        return self._load(path)

    def read(self, entry_id: str) -> bytes:
        """The raw bytes of an entry still held."""
        entry = self.get(entry_id)
        if entry.state == DELETED:
            raise QuarantineError(f"{entry_id} was deleted by {entry.decided_by}")
        return (self.root / f"{entry_id}.eml").read_bytes()

    def released(self, sha256: str) -> bool:
        """Whether a message with these bytes was released (a later check lets it through)."""
        entries = self.entries(include_done=True)
        return any(e.state == RELEASED and e.sha256 == sha256 for e in entries)

    def mark_released(
        self, entry_id: str, *, by: str, now: dt.datetime, released_as: int
    ) -> QuarantineEntry:
        """Record that the message was accepted again as inbound ``released_as``."""
        entry = self.held(entry_id)
        entry = replace(
            entry, state=RELEASED, decided_by=by, decided_at=now, released_as=released_as
        )
        self._write(f"{entry.id}.json", _json_bytes(entry))
        return entry

    def delete(self, entry_id: str, *, by: str, now: dt.datetime) -> QuarantineEntry:
        """Remove the message's bytes for good; the record stays, marked deleted."""
        entry = self.held(entry_id)
        entry = replace(entry, state=DELETED, decided_by=by, decided_at=now)
        # The record first: if the unlink is interrupted, a rerun finds "deleted" bytes to
        # remove rather than bytes no record explains.
        self._write(f"{entry.id}.json", _json_bytes(entry))
        (self.root / f"{entry.id}.eml").unlink(missing_ok=True)
        _sync_dir(self.root)
        return entry

    def held(self, entry_id: str) -> QuarantineEntry:
        """An entry still held; :class:`QuarantineError` says what became of it otherwise."""
        entry = self.get(entry_id)
        if entry.state != HELD:
            raise QuarantineError(
                f"{entry_id} was already {entry.state} by {entry.decided_by} at "
                f"{entry.decided_at:%Y-%m-%d %H:%M}"
                if entry.decided_at
                else f"{entry_id} was already {entry.state}"
            )
        return entry

    def _load(self, path: Path) -> QuarantineEntry:
        try:
            return QuarantineEntry.from_json(json.loads(path.read_text(encoding="utf-8")))
        except (ValueError, KeyError, TypeError) as exc:
            raise QuarantineError(f"{path.name} cannot be read: {exc}") from exc

    def _write(self, name: str, data: bytes) -> None:
        self.tmp.mkdir(parents=True, exist_ok=True)
        tmp_path = self.tmp / f"{name}.{uuid.uuid4().hex[:8]}"
        write_fsynced(tmp_path, data)
        os.replace(tmp_path, self.root / name)
        _sync_dir(self.root)


def _json_bytes(entry: QuarantineEntry) -> bytes:
    return json.dumps(entry.to_json(), ensure_ascii=False, indent=1).encode("utf-8")


def _sync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
