"""Reads a change request (事項變更申請表, 第十條) and account application from its mail.

第十條: a unit's clerk (綜合人員) asks for every staff change: a person added, moved to another
unit, removed, or given other roles; IT (信息化處) applies it. Mine rules 一(二): an account is
applied for in writing, approved by the unit's leader, created under the person's real name,
and only for someone who signed the confidentiality agreement (保密協議); 一(三): when a
person's post changes, the account is changed or revoked at once; 一(七): a special-purpose
account (專用帳號) has a named responsible person. The form is the mail's ``key: value`` block
(``drafts.HEADER_KEYS``: 操作, 人員, 帳號, 單位, 角色, 郵箱, 保密協議, 負責人).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from types import MappingProxyType
from typing import Any, Final

from yizhan.routing.directory import ROLES, Directory
from yizhan.routing.drafts import simplified

__all__ = ["ACTIONS", "Change", "is_clerk_change", "parse_change"]

#: What a form may ask, by the words of its 操作 line (folded to Simplified, lower case).
ACTIONS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "新增": "add",
        "增加": "add",
        "开户": "add",
        "开戶": "add",
        "申请帐号": "add",
        "申請帳号": "add",
        "add": "add",
        "调动": "move",
        "调整单位": "move",
        "move": "move",
        "transfer": "move",
        "撤销": "remove",
        "撤銷": "remove",
        "注销": "remove",
        "删除": "remove",
        "刪除": "remove",
        "註銷": "remove",
        "注銷": "remove",
        "离岗": "remove",
        "离崗": "remove",
        "remove": "remove",
        "revoke": "remove",
        # Characters the fold does not know stay Traditional, so both spellings are listed.
        "角色变更": "role",
        "角色變更": "role",
        "變更角色": "role",
        "变更角色": "role",
        "role": "role",
        "专用帐号": "special",
        "专用帳号": "special",
        "專用帳号": "special",
        "专用账号": "special",
        "special": "special",
    }
)

# Role words on the 角色 line, besides the role names themselves.
_ROLE_WORDS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "一般人员": "staff",
        "工作人员": "staff",
        "综合人员": "clerk",
        "文书": "clerk",
        "分管领导": "unit_leader",
        "主要领导": "unit_head",
        "局领导": "bureau_leader",
        "印章管理员": "seal_custodian",
    }
)
_YES: Final = frozenset({"已签", "已簽", "是", "yes", "signed", "y", "true"})
_ACCOUNT: Final = re.compile(r"^[a-z][a-z0-9._-]{1,63}$")
_EMAIL: Final = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True, kw_only=True)
class Change:
    """One change of the directory, as approved: what, to whom, and the facts of the form."""

    action: str  # add | move | remove | role | special
    account: str
    name: str = ""
    unit: str = ""
    roles: tuple[str, ...] = ()
    email: str | None = None
    nda: bool = False
    responsible: str | None = None
    #: Who takes over the person's waiting steps on a move or removal; else their unit head.
    successor: str | None = None

    def as_fields(self) -> dict[str, Any]:
        """Plain data for the document's fields (and the effect record)."""
        data = asdict(self)
        data["roles"] = list(self.roles)
        return data

    @classmethod
    def from_fields(cls, data: Mapping[str, Any]) -> Change:
        """The change back from :meth:`as_fields`."""
        return cls(**{**data, "roles": tuple(data.get("roles", ()))})


def _fold(text: str) -> str:
    return "".join(simplified(text).casefold().split())


def _roles(text: str) -> tuple[tuple[str, ...], list[str]]:
    roles: list[str] = []
    unknown: list[str] = []
    for word in re.split(r"[,，、;；\s]+", text.strip()):
        if not word:
            continue
        folded = _fold(word)
        role = folded if folded in ROLES else _ROLE_WORDS.get(folded)
        if role is None:
            unknown.append(word)
        elif role not in roles:
            roles.append(role)
    return tuple(roles), unknown


def parse_change(
    extra: Mapping[str, str], *, requester: str, directory: Directory
) -> Change | list[str]:
    """The change the form asks for, or every problem with it (each in both languages).

    The requester must be a clerk (第十條), and may only ask for people of their own unit; a
    move names the new unit. A new or special-purpose account needs the real name and the
    confidentiality agreement signed; a special-purpose one also its responsible person.
    """
    problems: list[str] = []
    clerk = directory.people.get(requester)
    if clerk is None or "clerk" not in clerk.roles:
        return [
            "事項變更由本單位綜合人員提出（第十條），請由綜合人員發送。\n"
            "Change requests are made by the unit's clerk (art. 10); ask your clerk."
        ]
    action = ACTIONS.get(_fold(extra.get("action", "")))
    if action is None:
        return [
            "請寫明操作：新增、調動、撤銷、角色變更 或 專用帳號，例如「操作：新增」。\n"
            "Say what to do on the Action line: add, move, remove, role or special."
        ]
    account = extra.get("account", "").strip().lower()
    existing = directory.people.get(account)
    unit_ref = extra.get("unit", "").strip()
    unit = directory.unit_by_ref(unit_ref) if unit_ref else None
    roles, unknown_roles = _roles(extra.get("role", ""))
    if unknown_roles:
        problems.append(
            f"不認識的角色：{'、'.join(unknown_roles)}。\n"
            f"Unknown roles: {', '.join(unknown_roles)}; allowed: {', '.join(ROLES)}."
        )
    if unit_ref and unit is None:
        problems.append(f"不認識的單位：{unit_ref}。\nUnknown unit: {unit_ref}.")
    email = extra.get("email", "").strip() or None
    if email is not None and not _EMAIL.match(email):
        problems.append(f"郵箱「{email}」格式不對。\nThe email {email!r} is not an address.")
    nda = _fold(extra.get("nda", "")) in _YES
    responsible: str | None = None
    if action in ("add", "special"):
        if not _ACCOUNT.match(account):
            problems.append(
                "請寫明新帳號（小寫字母開頭，如 zhangsan）。\n"
                "Give the new account (lower-case, e.g. zhangsan) on the Account line."
            )
        elif existing is not None:
            problems.append(f"帳號 {account} 已存在。\nThe account {account} already exists.")
        if not extra.get("person", "").strip():
            problems.append(
                "帳號須實名登記，請寫明姓名（人員：張三）。\n"
                "Accounts are registered under a real name: give it on the Person line."
            )
        if not nda:
            problems.append(
                "開立帳號須先簽訂保密協議，請寫明「保密協議：已簽」。\n"
                "An account needs the confidentiality agreement signed first: write NDA: signed."
            )
        if unit is not None and unit.id != clerk.unit:
            problems.append(
                "只能為本單位申請帳號。\nYou may only apply for accounts in your own unit."
            )
    else:
        if existing is None:
            problems.append(f"沒有帳號 {account or '（空）'}。\nNo account {account!r}.")
        elif existing.unit != clerk.unit:
            problems.append(
                f"{existing.name}不是本單位人員，應由其所在單位的綜合人員申請。\n"
                f"{existing.name} is not in your unit; their own clerk applies."
            )
    if action == "move" and unit is None and not unit_ref:
        problems.append("調動請寫明調入單位（單位：…）。\nA move names the new unit (Unit: …).")
    if action == "role" and not roles:
        problems.append("請寫明新角色（角色：…）。\nGive the new roles on the Role line.")
    if action == "special":
        ref = extra.get("responsible", "").strip()
        person = directory.people.get(ref.lower()) or next(
            (p for p in directory.people.values() if p.name == ref), None
        )
        if person is None or person.state != "active":
            problems.append(
                "專用帳號須明確負責人（負責人：姓名或帳號）。\n"
                "A special-purpose account needs a named responsible person (Responsible: …)."
            )
        else:
            responsible = person.account
    successor: str | None = None
    successor_ref = extra.get("successor", "").strip()
    if successor_ref:
        named = directory.people.get(successor_ref.lower()) or next(
            (p for p in directory.people.values() if p.name == successor_ref), None
        )
        if named is None or named.state != "active" or named.account == account:
            problems.append(
                f"接任人「{successor_ref}」不是在職的其他同事。\n"
                f"The successor {successor_ref!r} is not another active colleague."
            )
        else:
            successor = named.account
    if problems:
        return problems
    name = extra.get("person", "").strip() or (existing.name if existing else "")
    if action in ("add", "special"):
        target_unit = clerk.unit
    elif action == "move":
        assert unit is not None
        target_unit = unit.id
    else:
        assert existing is not None
        target_unit = existing.unit
    if not roles:
        roles = ("staff",) if action in ("add", "special", "move") else ()
    return Change(
        action=action,
        account=account,
        name=name,
        unit=target_unit,
        roles=roles,
        email=email,
        nda=nda,
        responsible=responsible,
        successor=successor,
    )


def is_clerk_change(change: Change, directory: Directory) -> bool:
    """Whether a unit's clerk changes, which the office must record (備案, 第十條)."""
    before = directory.people.get(change.account)
    was_clerk = before is not None and "clerk" in before.roles
    is_clerk = "clerk" in change.roles and change.action != "remove"
    return was_clerk or is_clerk
