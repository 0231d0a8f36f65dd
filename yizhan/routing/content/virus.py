"""Refuses messages in which clamd found a virus.

Mine rules 一(八): 不能將帶有病毒的文件和資料在辦公自動化上發布; 第十一條 keeps mail for work.
The scan itself is done by ``daemon.screening.clamd`` before the rules run; this rule reads its
findings.
"""

from __future__ import annotations

from yizhan.routing.content.config import ContentRules
from yizhan.routing.content.model import Inspection, Verdict
from yizhan.routing.content.text import quote

__all__ = ["VirusFound"]


class VirusFound:
    """An attachment clamd reported infected (mine rules 一(八), 第十一條). See ``ContentRule``."""

    name = "virus"
    description = "attachments in which the virus scanner finds a virus are refused"
    article = "第十一條；礦規定一（八）"

    def check(self, inspection: Inspection, rules: ContentRules) -> Verdict | None:
        """See ``ContentRule.check``."""
        for attachment in inspection.attachments:
            if attachment.virus is None:
                continue
            name = quote(attachment.path or attachment.name or "(no name)")
            signature = quote(attachment.virus, 80)
            return Verdict(
                rule=self.name,
                code=550,
                status="5.7.1",
                article=self.article,
                reason_zh=(
                    f"未受理：附件「{name}」帶有病毒（{signature}）。帶病毒的文件不得在辦公系統上"
                    "發布（礦規定一（八）），信息化處已收到通知。請先查殺病毒，再發送乾淨的文件。"
                ),
                reason_en=(
                    f"Refused: attachment '{name}' carries a virus ({signature}). Infected files "
                    "may not be sent through the OA system (mine rules 1(8)); the IT department "
                    "has been told. Clean your computer and send a clean copy."
                ),
            )
        return None
