"""Refuses attachments by what their bytes are: programs, macros, disallowed or unreadable types.

Mine rules 一(八) forbids viruses and hacking tools, 第十一條 keeps mail for work. The type is
the sniffed one (``daemon.extract`` reads magic bytes and zip members), so a program renamed
``報告.pdf`` is still a program; the name and declared type only add suspicion, never trust.
Programs and macros pass only when the IT department publishes them as tools: their SHA-256 is
listed in ``[content] tools`` or belongs to a published tool, or an IT staff member sends them
to cmd@ with TOOLS ADD to publish them (``routing.tools``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from yizhan.routing.content.config import ContentRules
from yizhan.routing.content.kinds import (
    EXECUTABLE_EXTENSIONS,
    EXECUTABLE_MIME_TYPES,
    TYPES,
    extension,
    kind_of,
)
from yizhan.routing.content.model import Attachment, Inspection, Verdict
from yizhan.routing.content.text import quote

__all__ = ["AttachmentTypes", "is_program", "is_published_tool"]

# Direction controls turn "報告\u202efdp.exe" into "報告exe.pdf" on screen.
_BIDI: Final = re.compile("[\u200e\u200f\u202a-\u202e\u2066-\u2069]")


@dataclass(frozen=True, kw_only=True)
class _Problem:
    zh: str
    en: str


def is_program(attachment: Attachment) -> bool:
    """Whether the attachment runs code when opened: by its bytes, its name or its type."""
    return (
        kind_of(attachment.sniffed) == "executable"
        or extension(attachment.name) in EXECUTABLE_EXTENSIONS
        or attachment.declared_type.lower() in EXECUTABLE_MIME_TYPES
    )


def is_published_tool(attachment: Attachment, inspection: Inspection, rules: ContentRules) -> bool:
    """Whether the IT department publishes this file as a tool, or is publishing it now.

    Published: its digest is listed or published. Publishing: an IT staff member's TOOLS ADD,
    sent to cmd@ only; any other mail of theirs is held to the rule like everyone's.
    """
    if attachment.sha256 and attachment.sha256 in (rules.tools | inspection.published_tools):
        return True
    return (
        inspection.publishes_tool
        and inspection.sender_unit_kind == "it"
        and bool(inspection.recipients)
        and all(r.kind == "command" for r in inspection.recipients)
    )


class AttachmentTypes:
    """Programs, macros, encrypted, unreadable and disallowed types (mine rules 一(八), 第十一條,
    第十四條). See ``ContentRule``."""

    name = "attachment_type"
    description = "programs, macros and types not on the allowed list are refused"
    article = "第十一條；礦規定一（八）"

    def check(self, inspection: Inspection, rules: ContentRules) -> Verdict | None:
        """See ``ContentRule.check``."""
        for attachment in inspection.attachments:
            problem = self._problem(attachment, inspection, rules)
            if problem is not None:
                return Verdict(
                    rule=self.name,
                    code=550,
                    status="5.7.1",
                    article=self.article,
                    reason_zh=f"未受理：{problem.zh}",
                    reason_en=f"Refused: {problem.en}",
                )
        return None

    def _problem(
        self, attachment: Attachment, inspection: Inspection, rules: ContentRules
    ) -> _Problem | None:
        name = quote(attachment.path or attachment.name or "(no name)")
        if _BIDI.search(attachment.name):
            return _Problem(
                zh=f"附件「{name}」的文件名用方向控制字符掩蓋了真實的擴展名，疑為偽裝的程序。",
                en=f"the file name of '{name}' hides its real extension with direction controls; "
                "it looks like a disguised program.",
            )
        tool = is_published_tool(attachment, inspection, rules)
        if is_program(attachment) and not tool:
            label = TYPES.get(attachment.sniffed, TYPES["unknown"]).label
            ext = extension(attachment.name)
            if kind_of(attachment.sniffed) == "executable" and ext not in EXECUTABLE_EXTENSIONS:
                return _Problem(
                    zh=f"附件「{name}」實際上是程序（{label}），卻以普通文件的名字發送。"
                    "程序可能帶有病毒或黑客軟件，不得經辦公系統發送（礦規定一（八））。",
                    en=f"attachment '{name}' is really a program ({label}) disguised as an "
                    "ordinary file. Programs may carry viruses or hacking tools and may not be "
                    "sent through the OA system (mine rules 1(8)).",
                )
            return _Problem(
                zh=f"附件「{name}」是程序或腳本，不得經辦公系統發送（礦規定一（八））。"
                "工作需要的軟件由信息化處發布為工具，請向 cmd@ 發送「工具」查看。",
                en=f"attachment '{name}' is a program or script, which may not be sent through "
                "the OA system (mine rules 1(8)). Software needed for work is published by the "
                "IT department as a tool: send TOOLS to cmd@.",
            )
        pdf_script = attachment.sniffed == "pdf" and rules.types.pdf_javascript
        if attachment.macros and not tool and not pdf_script:
            return _Problem(
                zh=f"附件「{name}」含有宏或腳本代碼，可能傳播病毒（礦規定一（八））。"
                "請另存為不含宏的格式（如 .docx、.xlsx、.pdf）後重發。",
                en=f"attachment '{name}' contains macros or script code, which can spread "
                "viruses (mine rules 1(8)). Save it without macros (.docx, .xlsx, .pdf) and "
                "send it again.",
            )
        if attachment.encrypted and rules.types.refuse_encrypted:
            return _Problem(
                zh=f"附件「{name}」已加密或設有密碼，無法檢查病毒和密級標誌"
                "（第十四條；礦規定一（八））。請去掉密碼後重發。",
                en=f"attachment '{name}' is encrypted or password-protected, so it cannot be "
                "checked for viruses and classification markings (art. 14; mine rules 1(8)). "
                "Remove the password and send it again.",
            )
        if attachment.unreadable and rules.types.refuse_unreadable:
            return _Problem(
                zh=f"附件「{name}」無法讀取（{quote(attachment.unreadable, 80)}），"
                "因而無法檢查密級標誌（第十四條）。請檢查文件是否損壞，另存後重發。",
                en=f"attachment '{name}' cannot be read ({quote(attachment.unreadable, 80)}), "
                "so it cannot be checked for classification markings (art. 14). Check that the "
                "file is not damaged, save it again and resend.",
            )
        if attachment.sniffed not in rules.types.allowed and not (tool and is_program(attachment)):
            label = TYPES.get(attachment.sniffed, TYPES["unknown"]).label
            allowed = ", ".join(sorted({t for t in rules.types.allowed if t in TYPES}))
            return _Problem(
                zh=f"附件「{name}」的類型（{label}）不在允許的類型之內（{allowed}）。"
                "辦公郵件僅限工作交流（第十一條）；如確為工作所需，請聯繫信息化處。",
                en=f"the type of attachment '{name}' ({label}) is not among the allowed types "
                f"({allowed}). OA mail is for work only (art. 11); if you need this type for "
                "work, ask the IT department.",
            )
        return None
