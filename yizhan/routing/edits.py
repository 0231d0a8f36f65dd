"""Reads an editor's new text out of an APPROVE reply (a step with ``edits_body``).

The office edits a news item before publishing it (信息宣傳, 第二條): the editor replies to the
request with APPROVE (同意) on the first line and, to change the text, a line reading 修改稿
(or EDITED) followed by the whole edited item. Lines between the command and the marker are an
opinion; without a marker nothing is edited, so an opinion such as "同意\\n寫得很好" never
replaces the item. Pure: the caller passes the reply's text.

Commands are matched on normalised text (``replies.normalise`` turns full-width punctuation
into ASCII), but a published text must keep its ，。：, so :func:`reply_as_written` finds the
same lines in the body as the sender wrote it (also for an author's revised text).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from yizhan.routing.commands import Command
from yizhan.routing.replies import normalise, reply_part

__all__ = ["EDIT_MARKERS", "Edit", "read_edit", "reply_as_written", "text_below_command"]

#: The words of the line that opens the edited text (compared case-insensitively, without
#: spaces, after a trailing colon or 如下 is taken off).
EDIT_MARKERS: Final = frozenset(
    {
        "修改稿",
        "修改後",
        "修改后",
        "修改後正文",
        "修改后正文",
        "編輯稿",
        "编辑稿",
        "定稿",
        "edited",
        "editedtext",
        "edit",
        "newtext",
    }
)

_MARKER_TAIL: Final = re.compile(r"(?:如下)?\s*[:：]?\s*$")


@dataclass(frozen=True, kw_only=True)
class Edit:
    """What an APPROVE at an editing step says: its opinion, and the new text if any."""

    opinion: str
    body: str | None = None


def _is_marker(line: str) -> bool:
    words = "".join(_MARKER_TAIL.sub("", line.strip()).split()).casefold()
    return words in EDIT_MARKERS


def read_edit(command: Command) -> Edit | str:
    """The opinion and edited text of an APPROVE, or what to send instead when it is empty.

    The marker may be the command's own argument ("同意 修改稿：") or a line of its text; the
    edited text is everything below the marker.
    """
    lines = command.text.split("\n") if command.text else []
    if _is_marker(command.argument):
        opinion_lines: list[str] = []
        body_lines: list[str] | None = lines
    else:
        at = next((i for i, line in enumerate(lines) if _is_marker(line)), None)
        opinion_lines = [command.argument, *(lines if at is None else lines[:at])]
        body_lines = None if at is None else lines[at + 1 :]
    opinion = "\n".join(line for line in opinion_lines if line.strip()).strip()
    if body_lines is None:
        return Edit(opinion=opinion)
    body = "\n".join(body_lines).strip()
    if not body:
        return (
            "「修改稿」下面沒有正文：請在「修改稿：」一行下面寫出修改後的全文；"
            "不修改就只回覆「同意」。\n"
            "Nothing follows EDITED: write the whole edited text below that line, or reply "
            "APPROVE alone to publish the text unchanged."
        )
    return Edit(opinion=opinion, body=body)


def reply_as_written(body: str) -> str:
    """The reply's own text above the quoted original, in the characters the sender wrote.

    ``replies.reply_part`` cuts the normalised body at the quoted original; normalising keeps
    every line where it was, so the same lines are taken from ``body`` itself.
    """
    raw = body.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    normalised = normalise("\n".join(raw)).split("\n")
    kept = reply_part("\n".join(normalised))
    if not kept or len(normalised) != len(raw):
        # Never expected (normalising adds no line ends); fall back to the normalised text.
        return kept
    start = next(i for i, line in enumerate(normalised) if line.strip())
    return "\n".join(raw[start : start + len(kept.split("\n"))]).strip()


def text_below_command(body: str) -> str:
    """The reply's text below its command line, as written (see :func:`reply_as_written`)."""
    own = reply_as_written(body).split("\n")
    return "\n".join(own[1:]).strip()
