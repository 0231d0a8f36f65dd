"""The content policy as a table: which rule applies to which mail, in what order, who is told.

Each row is (rule, the modules it applies to or every message, whether the IT department gets
a notice). :func:`judge` reads the table top to bottom and returns the first refusal, so the
order says which reason a sender hears when several apply: a virus first, then a marking.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Final

from yizhan.routing.content.archives import ArchiveLimits
from yizhan.routing.content.attachment_types import AttachmentTypes
from yizhan.routing.content.config import ContentRules
from yizhan.routing.content.forbidden_words import ForbiddenWords
from yizhan.routing.content.forwarded import ForwardedDocuments
from yizhan.routing.content.markings import ClassifiedMarkings
from yizhan.routing.content.model import ContentRule, Inspection, Verdict
from yizhan.routing.content.outside import OutsideDomains
from yizhan.routing.content.sizes import SizeLimits
from yizhan.routing.content.virus import VirusFound

__all__ = ["TABLE", "Row", "judge", "judge_all"]


@dataclass(frozen=True, kw_only=True)
class Row:
    """One line of the policy."""

    rule: ContentRule
    #: The modules whose mail the rule applies to; None: every message.
    applies_to: frozenset[str] | None = None
    #: Whether the IT department is sent a notice of each refusal.
    notify_it: bool = False


#: The policy (第十一條, 第十三條, 第十四條, 第十七條, 第二十二條; mine rules 一(六), 一(八)).
TABLE: Final[tuple[Row, ...]] = (
    Row(rule=VirusFound(), notify_it=True),
    Row(rule=ArchiveLimits(), notify_it=True),
    Row(rule=ClassifiedMarkings(), notify_it=True),
    Row(rule=AttachmentTypes(), notify_it=True),
    Row(rule=SizeLimits()),
    Row(rule=ForwardedDocuments(), applies_to=frozenset({"hanjian"})),
    Row(rule=OutsideDomains(), notify_it=True),
    Row(rule=ForbiddenWords(), notify_it=True),
)


def judge_all(
    inspection: Inspection, rules: ContentRules, table: Sequence[Row] = TABLE
) -> list[Verdict]:
    """Every refusal the table makes of ``inspection``, in table order."""
    verdicts = []
    modules = inspection.modules
    for row in table:
        if row.applies_to is not None and not modules & row.applies_to:
            continue
        verdict = row.rule.check(inspection, rules)
        if verdict is not None:
            verdicts.append(replace(verdict, notify_it=row.notify_it))
    return verdicts


def judge(
    inspection: Inspection, rules: ContentRules, table: Sequence[Row] = TABLE
) -> Verdict | None:
    """The first refusal the table makes of ``inspection``, or None when the message passes."""
    modules = inspection.modules
    for row in table:
        if row.applies_to is not None and not modules & row.applies_to:
            continue
        verdict = row.rule.check(inspection, rules)
        if verdict is not None:
            return replace(verdict, notify_it=row.notify_it)
    return None
