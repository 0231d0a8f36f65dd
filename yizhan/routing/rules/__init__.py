"""The document flows as data: which steps, who acts, what each step accepts, how long it may take.

The defaults in :data:`DEFAULT_RULES` follow the regulations (shared/seed/regulations.txt) and
《黨政機關公文處理工作條例》; an administrator may override whole flows in
``<data_dir>/rules.toml`` (read with :func:`rules_from_dict`, written with :func:`rules_to_dict`),
and ``yizhan check`` reports what :func:`check_rules` finds wrong with them.

A flow is a sequence of steps. Each step names the document state while it waits, the action
asked of the people at it (the X-Yizhan-Action header), who acts (an :class:`Actor` selector),
the commands it accepts, its deadline in working days (shorter for 加急 and 特急 documents,
from :data:`DEADLINES`) and where REJECT sends the document back to. A step with action
``number`` is done by Yizhan itself: the store allocates the document number there.
"""

from __future__ import annotations

from yizhan.routing.rules.checks import (
    check_rules,
)
from yizhan.routing.rules.defaults import (
    BAOXIU,
    BIANGENG,
    DEFAULT_RULES,
    DUBAN,
    FAWEN,
    GONGGAO,
    HANJIAN,
    QIANBAO,
    SHOUWEN,
    XINXI,
    XIUJIA,
    ZILIAO,
)
from yizhan.routing.rules.form import (
    rules_from_dict,
    rules_to_dict,
)
from yizhan.routing.rules.model import (
    ACTOR_KINDS,
    APPROVAL,
    AUTHOR,
    CANCELLED,
    CLOSE_EFFECT_NAMES,
    CLOSED,
    COMPLETING_VERB,
    CONTENT_RULES,
    DEADLINES,
    FLOW_UNIT_SELECTORS,
    HANDLING,
    KINDS_REQUIRING_APPROVAL,
    NUMBERING,
    OBJECTION_STEP,
    OWN_STEP_LABELS,
    RECEIPT,
    REDISTRIBUTE_STEP,
    RETURNED,
    REVISE_STEP,
    SEALING,
    SIGNOFF_LEADER,
    STEP_ACTIONS,
    SUPERVISED,
    TEMPLATES,
    URGENCIES,
    Actor,
    ContentRule,
    Flow,
    Rules,
    RulesError,
    StepRule,
    role,
)

__all__ = [
    "ACTOR_KINDS",
    "APPROVAL",
    "AUTHOR",
    "BAOXIU",
    "BIANGENG",
    "CANCELLED",
    "CLOSED",
    "CLOSE_EFFECT_NAMES",
    "COMPLETING_VERB",
    "CONTENT_RULES",
    "DEADLINES",
    "DEFAULT_RULES",
    "DUBAN",
    "FAWEN",
    "FLOW_UNIT_SELECTORS",
    "GONGGAO",
    "HANDLING",
    "HANJIAN",
    "KINDS_REQUIRING_APPROVAL",
    "NUMBERING",
    "OBJECTION_STEP",
    "OWN_STEP_LABELS",
    "QIANBAO",
    "RECEIPT",
    "REDISTRIBUTE_STEP",
    "RETURNED",
    "REVISE_STEP",
    "SEALING",
    "SHOUWEN",
    "SIGNOFF_LEADER",
    "STEP_ACTIONS",
    "SUPERVISED",
    "TEMPLATES",
    "URGENCIES",
    "XINXI",
    "XIUJIA",
    "ZILIAO",
    "Actor",
    "ContentRule",
    "Flow",
    "Rules",
    "RulesError",
    "StepRule",
    "check_rules",
    "role",
    "rules_from_dict",
    "rules_to_dict",
]
