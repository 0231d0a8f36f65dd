"""What makes a backup directory whole: the SHA-256 of every file in its manifest, and the check
of a copy against it (``yizhan backup verify DIR``, ``restore``, the nightly job).

A backup is damaged when a file differs from its digest, partial when a file or the manifest
(written last) is missing; either way it is not to be restored from.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
AUDIT_HEAD = "audit-head.json"
_CHUNK = 1 << 20

#: Told how far the work is: (files done, files in all, the file at hand).
Progress = Callable[[int, int, str], None]


def no_progress(_done: int, _total: int, _label: str) -> None:
    """The progress of a run nobody watches."""


def digest(path: Path) -> str:
    """The SHA-256 of a file, read in chunks (raw mail may be large)."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def walk(root: Path) -> Iterator[Path]:
    """Every file under ``root`` but the manifest, in a stable order."""
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.relative_to(root).as_posix() != MANIFEST:
            yield path


def file_digests(root: Path, progress: Progress = no_progress) -> dict[str, dict[str, Any]]:
    """Size and SHA-256 of every file of a backup, by its path relative to ``root``."""
    paths = list(walk(root))
    out: dict[str, dict[str, Any]] = {}
    for n, path in enumerate(paths, start=1):
        name = path.relative_to(root).as_posix()
        out[name] = {"size": path.stat().st_size, "sha256": digest(path)}
        progress(n, len(paths), name)
    return out


@dataclass
class Verdict:
    """The outcome of checking a backup: what is wrong, and what was checked."""

    problems: list[str] = field(default_factory=list)
    files: int = 0
    bytes: int = 0
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_backup(root: Path, progress: Progress = no_progress) -> Verdict:
    """Check a backup against its manifest: every file there, of its size and SHA-256, nothing
    more; each table file's line count as recorded; the audit head where the trail ends."""
    verdict = Verdict()
    if not root.is_dir():
        verdict.problems.append(f"{root} is not a directory")
        return verdict
    try:
        manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        verdict.problems.append(
            f"no {MANIFEST}: a partial backup (it was cut off before it finished)"
        )
        return verdict
    except (ValueError, UnicodeDecodeError) as exc:
        verdict.problems.append(f"{MANIFEST} is damaged: {exc}")
        return verdict
    verdict.manifest = manifest
    listed: dict[str, dict[str, Any]] = manifest.get("files") or {}
    if not listed:
        verdict.problems.append(f"{MANIFEST} lists no files: not a backup this Yizhan can check")
        return verdict
    present = {p.relative_to(root).as_posix() for p in walk(root)}
    for n, (name, expected) in enumerate(sorted(listed.items()), start=1):
        progress(n, len(listed), name)
        path = root / name
        if name not in present:
            verdict.problems.append(f"{name}: missing (a partial copy)")
            continue
        size = path.stat().st_size
        if size != expected.get("size"):
            verdict.problems.append(f"{name}: {size} bytes, the manifest says {expected['size']}")
            continue
        if digest(path) != expected.get("sha256"):
            verdict.problems.append(f"{name}: damaged (its SHA-256 differs from the manifest's)")
            continue
        verdict.files += 1
        verdict.bytes += size
    for name in sorted(present - set(listed)):
        verdict.problems.append(f"{name}: not in the manifest (added after the backup)")
    if verdict.ok:
        _check_contents(root, manifest, verdict)
    return verdict


def _check_contents(root: Path, manifest: dict[str, Any], verdict: Verdict) -> None:
    # The digests were taken by the writer; these catch a writer that recorded a bad copy.
    for table, count in (manifest.get("tables") or {}).items():
        path = root / "tables" / f"{table}.jsonl"
        with path.open("rb") as f:
            lines = sum(1 for line in f if line.strip())
        if lines != count:
            verdict.problems.append(
                f"tables/{table}.jsonl: {lines} rows, the manifest says {count}"
            )
    head = manifest.get("audit_head") or {}
    recorded = json.loads((root / AUDIT_HEAD).read_text(encoding="utf-8"))
    if recorded != head:
        verdict.problems.append(f"{AUDIT_HEAD} differs from the manifest's audit head")
    last: dict[str, Any] | None = None
    with (root / "tables" / "audit.jsonl").open(encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            if row.get("seq") is not None and (last is None or row["seq"] > last["seq"]):
                last = row
    ends = (last["seq"], last["hash"]) if last else (0, head.get("hash"))
    if (head.get("seq"), head.get("hash")) != ends:
        verdict.problems.append(
            f"the audit trail in the backup ends at seq {ends[0]}, not at the recorded head "
            f"(seq {head.get('seq')})"
        )
