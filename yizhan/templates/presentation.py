"""How a document reads to people: its trail line by line, a STATUS summary, and plain data.

Every mail about a document shows its trail (``trail_lines``); STATUS at cmd@ answers with
``document_summary``; ``yizhan doc show --json`` prints ``document_json``. Nothing here reads
the store or sends anything: the caller passes the engine's ``DocumentState`` and the directory.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from yizhan.routing.directory import Directory
from yizhan.routing.documents import DocumentState

__all__ = ["TRAIL_WORDS", "document_json", "document_summary", "trail_lines"]

#: How each trail action reads, per language (zh_CN, zh_TW, en).
TRAIL_WORDS: dict[str, tuple[str, str, str]] = {
    "open": ("起草", "起草", "drafted"),
    "approve": ("同意", "同意", "approved"),
    "reject": ("退回", "退回", "returned"),
    "revise": ("修改后重新提交", "修改後重新提交", "revised"),
    "number": ("编号", "編號", "numbered"),
    "seal": ("用印", "用印", "sealed"),
    "received": ("签收", "簽收", "received"),
    "done": ("办结", "辦結", "done"),
    "read": ("已阅", "已閱", "read"),
    "forward": ("转交", "轉交", "forwarded"),
    "comment": ("意见", "意見", "commented"),
    "remind": ("催办", "催辦", "reminded"),
    "progress": ("进展", "進展", "reported progress"),
    "file": ("归档", "歸檔", "filed"),
    "withdraw": ("撤回", "撤回", "withdrawn"),
    "expire": ("到期", "到期", "expired"),
    "archive": ("年底归档", "年底歸檔", "archived at year end"),
    "redistribute": ("重新分发", "重新分發", "sent again"),
    "object": ("提出异议", "提出異議", "objected"),
    "uphold": ("支持异议", "支持異議", "upheld the objection"),
    "overrule": ("驳回异议", "駁回異議", "overruled the objection"),
}
_LANGUAGE_INDEX = {"zh_CN": 0, "zh_TW": 1, "en": 2}


def trail_lines(
    state: DocumentState, directory: Directory, tz: dt.tzinfo, language: str | None = None
) -> list[str]:
    """The document's history, a line per action, for the body of every mail about it."""
    index = _LANGUAGE_INDEX.get(language or "zh_CN", 0)
    lines = []
    for entry in state.trail:
        who = directory.people[entry.actor].name if entry.actor in directory.people else entry.actor
        if entry.on_behalf_of:
            delegator = directory.people.get(entry.on_behalf_of)
            name = delegator.name if delegator else entry.on_behalf_of
            who += f"（代 {name}）" if index < 2 else f" (for {name})"
        words = TRAIL_WORDS.get(entry.action)
        what = words[index] if words else entry.action
        opinion = f"：{entry.opinion}" if entry.opinion else ""
        lines.append(f"{entry.at.astimezone(tz):%Y-%m-%d %H:%M} {who} {what}{opinion}")
    return lines


def document_summary(state: DocumentState, directory: Directory, tz: dt.tzinfo) -> str:
    """A STATUS answer: what the document is, where it stands, who has it now."""
    waiting = [s for s in state.steps if s.state == "waiting"]
    who = (
        "、".join(
            (directory.people[s.assignee].name if s.assignee in directory.people else s.assignee)
            + f"（{s.name}）"
            for s in waiting
        )
        or "-"
    )
    return "\n".join(
        [
            f"#{state.id} {state.title}",
            f"文號 Number: {state.number or '-'}",
            f"狀態 State: {state.state}",
            f"待辦 Waiting for: {who}",
            "",
            *trail_lines(state, directory, tz),
        ]
    )


def document_json(state: DocumentState) -> dict[str, Any]:
    """A document as plain data, for ``yizhan doc show --json``."""
    return {
        "id": state.id,
        "kind": state.kind,
        "title": state.title,
        "state": state.state,
        "number": state.number,
        "urgency": state.urgency,
        "author": state.author,
        "unit": state.unit,
        "version": state.version,
        "fields": state.fields,
        "steps": [
            {
                "id": s.id,
                "name": s.name,
                "assignee": s.assignee,
                "action": s.action,
                "state": s.state,
                "due_at": s.due_at.isoformat() if s.due_at else None,
                "on_behalf_of": s.on_behalf_of,
                "done_by": s.done_by,
                "outcome": s.outcome,
            }
            for s in state.steps
        ],
        "trail": [
            {
                "at": e.at.isoformat(),
                "actor": e.actor,
                "action": e.action,
                "on_behalf_of": e.on_behalf_of,
                "opinion": e.opinion,
            }
            for e in state.trail
        ],
    }
