"""Refuses internal material addressed to a mailbox outside the organisation's domains.

第十七條: 嚴禁向外單位提供我局OA系統辦公軟件、技術文檔、操作手冊等相關資料. Material is mail to
or from the materials module (ziliao@), mail whose subject, file names or document titles name
manuals or technical documents, and the tools the IT department publishes. A person's
address at the OA domain forwards to their own mailbox; when that mailbox is outside the
organisation, material addressed to the person would leave it, and is refused.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from yizhan.routing.content.config import ContentRules
from yizhan.routing.content.model import Inspection, Verdict
from yizhan.routing.content.text import normalise, quote

__all__ = [
    "PUBLIC_MAIL_DOMAINS",
    "OutsideDomains",
    "is_inside",
    "material_evidence",
    "organisation_domains",
    "outside_addresses",
]

#: Public mail services: a mailbox there is never the organisation's, whoever holds it.
PUBLIC_MAIL_DOMAINS: Final = frozenset(
    {
        "qq.com", "vip.qq.com", "foxmail.com", "163.com", "126.com", "yeah.net", "vip.163.com",
        "188.com", "sina.com", "sina.cn", "vip.sina.com", "sohu.com", "139.com", "189.cn",
        "wo.cn", "aliyun.com", "tom.com", "21cn.com", "gmail.com", "googlemail.com",
        "outlook.com", "hotmail.com", "live.com", "msn.com", "yahoo.com", "icloud.com",
        "me.com", "proton.me", "protonmail.com", "mail.ru", "yandex.ru", "gmx.com",
    }
)  # fmt: skip


def organisation_domains(
    configured: Iterable[str], oa_domain: str, mailboxes: Iterable[str]
) -> frozenset[str]:
    """The organisation's mail domains: the OA domain and ``configured``; when none are
    configured, the domains of the directory's mailboxes that are not public mail services."""
    domains = {oa_domain.lower().rstrip(".")}
    listed = {d.lower().rstrip(".") for d in configured}
    if listed:
        return frozenset(domains | listed)
    for mailbox in mailboxes:
        host = mailbox.rpartition("@")[2].lower().rstrip(".")
        if host and host not in PUBLIC_MAIL_DOMAINS:
            domains.add(host)
    return frozenset(domains)


def is_inside(address: str, domains: Iterable[str]) -> bool:
    """Whether an address is at one of ``domains`` or a subdomain of one."""
    host = address.rpartition("@")[2].strip().lower().rstrip(".>")
    return any(host == d or host.endswith("." + d) for d in domains)


def outside_addresses(addresses: Iterable[str], domains: Iterable[str]) -> list[str]:
    """The addresses outside ``domains``, in order (for the outbound side, too)."""
    listed = tuple(domains)
    return [a for a in addresses if not is_inside(a, listed)]


def material_evidence(inspection: Inspection, rules: ContentRules) -> tuple[str, str] | None:
    """Why the message is internal material, in Chinese and English, or None."""
    materials = rules.materials
    modules = set(materials.modules)
    if inspection.modules & modules or inspection.sender_module in modules:
        return "屬於內部資料（ziliao@）", "it is internal material (ziliao@)"
    names = [inspection.subject]
    for attachment in inspection.attachments:
        names.append(attachment.name)
        names.extend(v for k, v in attachment.properties.items() if k in ("title", "subject"))
    for text in names:
        flat = normalise(text).casefold()
        for word in materials.words:
            if normalise(word).casefold() in flat:
                return f"是「{quote(word, 20)}」類資料", f"it is material of the kind '{word}'"
    tools = rules.tools | inspection.published_tools
    if any(a.sha256 in tools for a in inspection.attachments if a.sha256):
        return "含有本局發布的辦公軟件", "it carries software the bureau publishes"
    return None


class OutsideDomains:
    """Internal material bound for an outside mailbox (第十七條). See ``ContentRule``."""

    name = "outside_domains"
    description = "internal material, manuals and technical documents never leave the domains"
    article = "第十七條"

    def check(self, inspection: Inspection, rules: ContentRules) -> Verdict | None:
        """See ``ContentRule.check``."""
        outside = [
            r.mailbox
            for r in inspection.recipients
            if r.mailbox and not is_inside(r.mailbox, inspection.domains)
        ]
        if not outside:
            return None
        evidence = material_evidence(inspection, rules)
        if evidence is None:
            return None
        shown = quote(", ".join(outside), 120)
        return Verdict(
            rule=self.name,
            code=550,
            status="5.7.1",
            article=self.article,
            reason_zh=(
                f"未受理：這封郵件{evidence[0]}，會轉到本單位以外的郵箱（{shown}）。"
                "嚴禁向外單位提供OA系統辦公軟件、技術文檔、操作手冊等資料（第十七條），"
                "此事已報告信息化處。"
            ),
            reason_en=(
                f"Refused: {evidence[1]}, and it would be forwarded to mailboxes outside the "
                f"organisation ({shown}). OA software, technical documents and manuals may "
                "never be given to outside units (art. 17); the IT department has been told."
            ),
        )
