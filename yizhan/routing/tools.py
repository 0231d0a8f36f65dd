"""Reads the tools commands written to cmd@ and words their answers (常用工具下載).

The IT department publishes the files staff need for work — installers, templates, manuals —
and staff fetch them by mail (第十一條: the mail function exists for work; mine rules 一(八):
programs reach staff only this way, never as ordinary attachments):

- ``TOOLS`` / ``工具`` lists what is published; ``工具 vpn`` lists what matches "vpn";
- ``GET name`` / ``下載 name`` / ``下载 name`` returns the file as an attachment;
- ``TOOLS ADD name`` / ``工具 發布 name`` / ``工具 发布 name`` / ``發布工具 name`` publishes the
  attached file, the body being its description (IT department only); a second ADD of the same
  name replaces it as a new version;
- ``TOOLS REMOVE name`` / ``工具 下架 name`` / ``下架工具 name`` takes it down (IT only).

``GET`` followed by a document reference (``GET #12``, ``GET 12``, ``GET 遼檢辦〔2026〕5號``) is
not a tool: :func:`tool_request` leaves it to the documents' own handler. Pure: the desk gives
the text of the message, ``daemon.desk.tools`` does the storing and sending.
"""

from __future__ import annotations

import datetime as dt
import difflib
import enum
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote as url_quote

from yizhan.routing.commands import Verb, parse_command, subject_text
from yizhan.routing.content.text import size_text
from yizhan.routing.replies import normalise, reply_part

__all__ = [
    "MAX_DESCRIPTION",
    "ToolAction",
    "ToolInfo",
    "ToolRequest",
    "close_names",
    "is_document_reference",
    "listing",
    "mailto_get",
    "name_key",
    "name_problem",
    "tool_request",
]

#: The longest description kept; a manual belongs in the file, not in the listing.
MAX_DESCRIPTION: Final = 2000


class ToolAction(enum.StrEnum):
    """What a tools command asks for."""

    LIST = "list"
    GET = "get"
    ADD = "add"
    REMOVE = "remove"


@dataclass(frozen=True, kw_only=True)
class ToolRequest:
    """A tools command as written: the action, the tool's name, the description (for ADD).

    For LIST, ``name`` is an optional filter ("工具 vpn").
    """

    action: ToolAction
    name: str = ""
    description: str = ""


@dataclass(frozen=True, kw_only=True)
class ToolInfo:
    """A published tool as the listing shows it (the bytes stay in the store)."""

    name: str
    description: str
    filename: str
    content_type: str
    size: int
    sha256: str
    version: int
    published_by: str
    published_at: dt.datetime


# The sub-commands after TOOLS/工具. An English word ends where the word ends; Chinese runs on.
_SUBCOMMAND: Final = re.compile(
    r"^(?:(?P<add>add|publish)(?![A-Za-z0-9_])|(?P<remove>remove|delete)(?![A-Za-z0-9_])"
    r"|(?P<add_zh>發布|发布|新增)|(?P<remove_zh>下架|刪除|删除))",
    re.IGNORECASE,
)
# "發布工具 name" and "下架工具 name", as people also write them, read as "工具 發布 name".
_PHRASE: Final = re.compile(r"^\s*(?P<verb>發布|发布|下架)工具")
_TRIM: Final = " \t,.:;!?、~-–—…·\"'“”‘’「」『』《》<>()[]"
# A document: its id (#12, 12) or its number (遼檢辦〔2026〕5號), at cmd@ since GET #id.
_DOCUMENT_REF: Final = re.compile(r"^#?\s*\d+$|[〔\[]\s*(?:19|20)\d{2}\s*[〕\]]")
# Letters of any script, digits, and . _ + - : a name fits in a subject and a mailto: link.
_NAME: Final = re.compile(r"^[\w.+\-]{1,64}$")
# Where a mail client's signature starts (RFC 3676 4.3).
_SIGNATURE: Final = re.compile(r"^-- ?$", re.MULTILINE)


def tool_request(subject: str, body: str) -> ToolRequest | None:
    """The tools command in a mail to cmd@ with this subject and body text, or None.

    ADD and REMOVE may be written in the subject with the description as the body (the way a
    publishing mail reads naturally), or on the body's first line with the description below.
    Anything else is read as every command is (``commands.command_from_message``). None when
    the mail is no tools command, or is ``GET`` of a document.
    """
    in_subject = parse_command(_rephrase(subject_text(subject)))
    if in_subject.verb is Verb.TOOLS:
        request = _tools(in_subject.argument)
        if request.action is ToolAction.ADD:
            return _with_description(request, body)
        if request.action is ToolAction.REMOVE:
            return request
    reply = reply_part(normalise(body))
    command = parse_command(_rephrase(reply)) if reply else in_subject
    if command.verb is Verb.TOOLS:
        request = _tools(command.argument)
        return _with_description(request, body) if request.action is ToolAction.ADD else request
    if command.verb is Verb.GET and not is_document_reference(command.argument):
        return ToolRequest(action=ToolAction.GET, name=command.argument.strip(_TRIM))
    return None


def is_document_reference(argument: str) -> bool:
    """Whether a GET argument names a document (its id or number), not a tool."""
    return bool(_DOCUMENT_REF.search(argument.strip()))


def name_key(name: str) -> str:
    """The form names are compared in: NFKC, case-folded (``VPN`` and ``vpn`` are one tool)."""
    return unicodedata.normalize("NFKC", name).casefold()


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a tool, in Chinese and English; None when it can."""
    if not name:
        return "請寫工具名稱，例如：工具 發布 vpn-client\nName the tool, e.g.: TOOLS ADD vpn-client"
    if not _NAME.match(name) or name.isdigit():
        return (
            f"工具名稱「{name[:64]}」不可用：請用 1 到 64 個字母、漢字、數字或 . _ + -，"
            "不含空格，且不能全是數字（全數字的是文件編號）。\n"
            f"The tool name {name[:64]!r} cannot be used: use 1 to 64 letters, digits or "
            ". _ + - without spaces, not only digits (those are document ids)."
        )
    return None


def close_names(wanted: str, names: Sequence[str], limit: int = 5) -> list[str]:
    """Published names that look like ``wanted``: containing it, or spelled nearly alike."""
    key = name_key(wanted)
    by_key = {name_key(n): n for n in names}
    containing = [n for k, n in by_key.items() if key and (key in k or k in key)]
    similar = [by_key[k] for k in difflib.get_close_matches(key, list(by_key), n=limit, cutoff=0.5)]
    return list(dict.fromkeys(containing + similar))[:limit]


def mailto_get(domain: str, name: str) -> str:
    """A link that opens a mail to cmd@ with ``GET name`` as its subject."""
    return f"mailto:cmd@{domain}?subject={url_quote('GET ' + name)}"


def listing(tools: Sequence[ToolInfo], *, domain: str, tz: dt.tzinfo, wanted: str = "") -> str:
    """The TOOLS answer: each tool's name, description, size, date and a GET link."""
    shown = list(tools)
    note = ""
    if wanted:
        key = name_key(wanted)
        matching = [t for t in tools if key in name_key(t.name) or key in t.description.casefold()]
        if matching:
            shown = matching
        else:
            note = (
                f"沒有與「{wanted[:40]}」相符的工具，以下是全部。\n"
                "No tool matches that; here are all.\n\n"
            )
    if not shown:
        return "信息化處目前沒有發布工具。\nThe IT department has published no tools yet."
    lines = [
        note + f"信息化處發布的工具 {len(shown)} 個 / {len(shown)} tool(s) published by the "
        "IT department:",
        "",
    ]
    for tool in sorted(shown, key=lambda t: name_key(t.name)):
        day = tool.published_at.astimezone(tz).date().isoformat()
        description = " ".join(tool.description.split())
        if len(description) > 200:
            description = description[:199] + "…"
        lines += [
            f"■ {tool.name}  {description}",
            f"  文件 File: {tool.filename}  大小 Size: {size_text(tool.size)}  "
            f"日期 Date: {day}  版本 Version: {tool.version}",
            f"  下載 Download: {mailto_get(domain, tool.name)}",
            "",
        ]
    lines.append(
        f"下載：發送「下載 名稱」到 cmd@{domain}（例如：下載 {shown[0].name}）。\n"
        f"To download, send GET name to cmd@{domain} (e.g. GET {shown[0].name})."
    )
    return "\n".join(lines)


# --- Reading -------------------------------------------------------------------------------------


def _rephrase(line: str) -> str:
    """ "發布工具 x" as "工具 發布 x" (the verb word leads in every other command)."""
    return _PHRASE.sub(lambda m: f"工具 {m['verb']} ", line, count=1)


def _tools(argument: str) -> ToolRequest:
    """TOOLS with its argument: ADD name, REMOVE name, or a filter for the list."""
    text = argument.strip()
    found = _SUBCOMMAND.match(text)
    if found is None:
        return ToolRequest(action=ToolAction.LIST, name=text.strip(_TRIM))
    action = ToolAction.ADD if found["add"] or found["add_zh"] else ToolAction.REMOVE
    rest = text[found.end() :].strip(_TRIM)
    name = rest.split(maxsplit=1)[0].strip(_TRIM) if rest else ""
    return ToolRequest(action=action, name=name)


def _with_description(request: ToolRequest, body: str) -> ToolRequest:
    """The request with the body as the tool's description, the command line taken out.

    The description keeps the writer's punctuation (the body as written, not normalised); a
    mail client's signature below ``-- `` is not part of it.
    """
    text = _SIGNATURE.split(body.replace("\r\n", "\n"), maxsplit=1)[0].strip()
    lines = text.split("\n")
    first = normalise(lines[0]) if lines else ""
    if first and parse_command(_rephrase(first)).verb is Verb.TOOLS:
        text = "\n".join(lines[1:]).strip()
    return ToolRequest(action=request.action, name=request.name, description=text[:MAX_DESCRIPTION])
