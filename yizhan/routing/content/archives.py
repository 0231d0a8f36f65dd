"""Refuses zip archives that nest too deep, hold too much, expand too far or hide their content.

A zip bomb (a small archive that expands to gigabytes, or archives nested inside archives)
would stop the scanner and the system (mine rules 一(八): 嚴禁利用各種黑客軟件攻擊辦公自動化
服務器). ``daemon.extract`` walks archives without expanding past the limits and reports what it
found; this rule compares it with ``[content.archives]``. Encrypted members cannot be scanned.
"""

from __future__ import annotations

from dataclasses import dataclass

from yizhan.routing.content.config import ContentRules
from yizhan.routing.content.model import ArchiveFacts, Inspection, Verdict
from yizhan.routing.content.text import quote, size_text

__all__ = ["ArchiveLimits"]


@dataclass(frozen=True, kw_only=True)
class _Problem:
    zh: str
    en: str


class ArchiveLimits:
    """Zip bombs, deep nesting, encrypted or damaged archives (mine rules 一(八)).
    See ``ContentRule``."""

    name = "archive_limits"
    description = "archives that nest too deep, expand too far or cannot be opened are refused"
    article = "礦規定一（八）"

    def check(self, inspection: Inspection, rules: ContentRules) -> Verdict | None:
        """See ``ContentRule.check``."""
        for attachment in inspection.attachments:
            if attachment.archive is None:
                continue
            problem = _problem(attachment.archive, rules)
            if problem is None:
                continue
            name = quote(attachment.path or attachment.name or "(no name)")
            return Verdict(
                rule=self.name,
                code=550,
                status="5.7.1",
                article=self.article,
                reason_zh=f"未受理：壓縮包「{name}」{problem.zh}",
                reason_en=f"Refused: archive '{name}' {problem.en}",
            )
        return None


def _problem(facts: ArchiveFacts, rules: ContentRules) -> _Problem | None:
    limits = rules.archives
    if facts.damaged is not None and rules.types.refuse_unreadable:
        return _Problem(
            zh=f"無法打開（{quote(facts.damaged, 80)}），因而無法檢查。請重新壓縮後再發。",
            en=f"cannot be opened ({quote(facts.damaged, 80)}), so it cannot be checked. "
            "Pack it again and resend.",
        )
    if facts.encrypted and rules.types.refuse_encrypted:
        return _Problem(
            zh="含有加密的文件，無法查殺病毒和檢查密級標誌（第十四條；礦規定一（八））。"
            "請去掉密碼後重發。",
            en="holds encrypted files, which cannot be scanned for viruses or checked for "
            "classification markings (art. 14; mine rules 1(8)). Remove the password and "
            "resend.",
        )
    if facts.depth > limits.max_depth:
        return _Problem(
            zh=f"嵌套了 {facts.depth} 層壓縮包，上限為 {limits.max_depth} 層。"
            "多層嵌套常用於躲避病毒查殺（礦規定一（八））；請解開後重新打包。",
            en=f"nests archives {facts.depth} deep; the limit is {limits.max_depth}. Deep "
            "nesting is a way to slip past virus scanners (mine rules 1(8)); unpack it and "
            "pack the files once.",
        )
    if facts.members > limits.max_members:
        return _Problem(
            zh=f"含有 {facts.members} 個文件，上限為 {limits.max_members} 個。請拆分後重發。",
            en=f"holds {facts.members} files; the limit is {limits.max_members}. Split it "
            "and resend.",
        )
    if facts.expanded > limits.max_expanded or facts.max_ratio > limits.max_ratio:
        return _Problem(
            zh=f"解壓後達 {size_text(facts.expanded)}（壓縮比最高 {facts.max_ratio:.0f}:1），"
            f"超過上限 {size_text(limits.max_expanded)}、{limits.max_ratio:.0f}:1，"
            "疑為壓縮炸彈，會使系統癱瘓（礦規定一（八））。信息化處已收到通知。",
            en=f"expands to {size_text(facts.expanded)} (compression up to "
            f"{facts.max_ratio:.0f}:1), over the limits of {size_text(limits.max_expanded)} "
            f"and {limits.max_ratio:.0f}:1. It looks like a zip bomb, which would bring the "
            "system down (mine rules 1(8)); the IT department has been told.",
        )
    return None
