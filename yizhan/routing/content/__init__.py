"""Content rules: what a message may carry (第十一條, 第十三條, 第十四條, 第十七條, 第二十二條;
mine rules 一(六), 一(八)).

One module per rule, each a small class with ``name``, ``description``, ``article`` and
``check(inspection, rules) -> Verdict | None`` (:class:`~.model.ContentRule`); the policy is
the table in :mod:`.table`, configured by the ``[content]`` table of the rules file
(:mod:`.config`). Pure: ``daemon.extract`` and ``daemon.screening.clamd`` gather the facts, and
``daemon.screening`` runs the table at the SMTP gateway.
"""

from __future__ import annotations

from yizhan.routing.content.config import (
    DEFAULT_CONTENT,
    ContentRules,
    ContentRulesError,
    content_from_dict,
    content_warnings,
)
from yizhan.routing.content.model import (
    ArchiveFacts,
    Attachment,
    ContentRule,
    Inspection,
    RecipientFacts,
    Verdict,
)
from yizhan.routing.content.table import TABLE, Row, judge, judge_all

__all__ = [
    "DEFAULT_CONTENT",
    "TABLE",
    "ArchiveFacts",
    "Attachment",
    "ContentRule",
    "ContentRules",
    "ContentRulesError",
    "Inspection",
    "RecipientFacts",
    "Row",
    "Verdict",
    "content_from_dict",
    "content_warnings",
    "judge",
    "judge_all",
]
