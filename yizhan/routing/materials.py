"""The rules of the internal-materials library (內部資料, ziliao@, 第十七條).

Staff file a material by mailing ziliao@: the subject is its title, a 範圍/Scope line names who
may use it (units, roles or people, read as a bulletin's scope, 第二十三條), the body and the
attachments are the material. It is filed at once: the library keeps work materials for the
people its filer names, and nothing in 第十七條 asks for an approval. People in the scope (and
the filer) find materials with SEARCH and fetch them with GET; nobody else sees them.

第十七條: 嚴禁向外單位提供我局OA系統辦公軟件、技術文檔、操作手冊等相關資料. A material goes
only to the asking person's own address, and never when that address is outside the
organisation's domains, whoever asks. This module decides; ``daemon.library`` sends.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from yizhan.routing.bulletins import BulletinScope, audience
from yizhan.routing.commands import Command, Verb
from yizhan.routing.content.outside import outside_addresses
from yizhan.routing.directory import Directory, PersonInfo
from yizhan.routing.documents import Decision, TrailEntry

__all__ = [
    "KIND",
    "LIST_WORDS",
    "ROLE_NAMES",
    "STATE",
    "Request",
    "RequestKind",
    "file_material",
    "in_scope",
    "outside_refusal",
    "parse_request",
    "scope_text",
]

#: The document kind of a filed material, and the state it rests in.
KIND: Final = "ziliao"
STATE: Final = "filed"
#: How a role in a scope is named to people.
ROLE_NAMES: Final = {
    "clerk": "綜合人員",
    "unit_head": "主要領導",
    "unit_leader": "分管領導",
    "bureau_leader": "局領導",
    "seal_custodian": "印章管理員",
}
#: Words that ask ziliao@ for the list of materials (besides a SEARCH without words).
LIST_WORDS: Final = frozenset({"list", "目錄", "目录", "列表"})


class RequestKind(enum.Enum):
    """What a mail to ziliao@ asks."""

    FILE = "file"
    SEARCH = "search"
    GET = "get"
    LIST = "list"
    HELP = "help"


@dataclass(frozen=True, kw_only=True)
class Request:
    """A mail to ziliao@ as read: what it asks, the search words, the material's id.

    ``problem`` says what is wrong with a GET that names no material.
    """

    kind: RequestKind
    words: str = ""
    material_id: int | None = None
    problem: str = ""


def parse_request(command: Command, *, has_attachments: bool) -> Request:
    """Read a mail to ziliao@: a mail with attachments is always a material to file; else a
    SEARCH, GET, HELP or list word is a command, and anything else is filed."""
    if has_attachments:
        return Request(kind=RequestKind.FILE)
    if command.verb is Verb.SEARCH:
        words = command.argument.strip()
        return Request(kind=RequestKind.SEARCH if words else RequestKind.LIST, words=words)
    if command.verb is Verb.GET:
        ref = command.argument.strip().lstrip("#").strip()
        if ref.isascii() and ref.isdigit():
            return Request(kind=RequestKind.GET, material_id=int(ref))
        return Request(
            kind=RequestKind.GET,
            problem=(
                f"請寫資料編號，例如：下載 12（您寫的是「{command.argument[:40]}」）。\n"
                "Say which material by its number, e.g. GET 12."
            ),
        )
    if command.verb is Verb.HELP:
        return Request(kind=RequestKind.HELP)
    if command.verb is Verb.UNKNOWN and command.argument.strip().casefold() in LIST_WORDS:
        return Request(kind=RequestKind.LIST)
    return Request(kind=RequestKind.FILE)


def file_material(
    *,
    title: str,
    author: str,
    scope: BulletinScope,
    body: str,
    attachments: Sequence[str],
    now: dt.datetime,
) -> Decision:
    """File a material at once in ``scope`` (第十七條), or say what is missing."""
    problems = []
    if not title.strip():
        problems.append("請在郵件主題寫資料名稱。\nWrite the material's title as the subject.")
    if scope.unknown:
        problems.append(
            f"使用範圍中不認識：{'、'.join(scope.unknown)}。請寫單位、角色（如 綜合人員）或人員。\n"
            f"Not understood in the scope: {', '.join(scope.unknown)}. Write units, roles "
            "(e.g. clerk) or people."
        )
    elif scope.empty:
        problems.append(
            "請在正文第一行寫明使用範圍，例如：範圍：信息化處、綜合人員\n"
            "Say who may use it on the first line of the body, e.g. Scope: it, clerk"
        )
    if not body.strip() and not attachments:
        problems.append(
            "資料是空的：請附上文件，或在正文寫內容。\n"
            "The material is empty: attach the files, or write it in the body."
        )
    if problems:
        return Decision(accepted=False, reply="\n".join(problems), reasons=tuple(problems))
    return Decision(
        accepted=True,
        reply="",
        state=STATE,
        fields={
            "body": body,
            "attachments": list(attachments),
            "scope_units": list(scope.units),
            "scope_roles": list(scope.roles),
            "scope_people": list(scope.people),
            "all_bureau": scope.all_bureau,
        },
        trail=(TrailEntry(at=now, actor=author, action="file"),),
        reasons=(f"第十七條: {author} files internal material for its scope",),
    )


def _scope_of(fields: Mapping[str, Any]) -> tuple[list[str], list[str], list[str]]:
    return (
        [str(u) for u in fields.get("scope_units", ())],
        [str(r) for r in fields.get("scope_roles", ())],
        [str(p) for p in fields.get("scope_people", ())],
    )


def in_scope(fields: Mapping[str, Any], author: str, account: str, directory: Directory) -> bool:
    """Whether ``account`` may see a material: its filer, or someone in its scope."""
    if account == author:
        return True
    units, roles, people = _scope_of(fields)
    return any(p.account == account for p in audience(directory, units, roles, people))


def scope_text(fields: Mapping[str, Any], directory: Directory) -> str:
    """A material's scope for people: unit names, roles and names, separated by 、."""
    units, roles, people = _scope_of(fields)
    names = [directory.units[u].name if u in directory.units else u for u in units]
    names += [ROLE_NAMES.get(r, r) for r in roles]
    names += [directory.people[p].name if p in directory.people else p for p in people]
    return "、".join(names) or "-"


def outside_refusal(
    person: PersonInfo, domain: str, domains: Iterable[str]
) -> tuple[str, str] | None:
    """Why nothing of the library may go to ``person`` (Chinese, English), or None.

    第十七條: their mail is delivered outside the organisation's ``domains``.
    """
    address = person.mailbox(domain)
    if not outside_addresses([address], domains):
        return None
    return (
        f"未發送：您的郵件投遞到本單位以外的郵箱（{address}）。"
        "嚴禁向外單位提供OA系統辦公軟件、技術文檔、操作手冊等資料（第十七條），"
        "內部資料不會發到這個地址。此事已報告信息化處；請信息化處把您的投遞郵箱改為單位郵箱。",
        f"Not sent: your mail is delivered to a mailbox outside the organisation ({address}). "
        "OA software, technical documents and manuals may never be given to outside units "
        "(art. 17), so internal materials are not sent there. The IT department has been "
        "told; ask it to set your delivery mailbox to one of the organisation's.",
    )
