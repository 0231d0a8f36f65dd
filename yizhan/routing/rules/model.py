"""What a flow is made of: steps, who acts at each (:class:`Actor`), the commands they take,
deadlines, and the states and names every flow shares."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

from yizhan.routing.commands import Verb

#: The urgency marks a document may carry (緊急程度), most urgent first.
URGENCIES: Final = ("特急", "加急")

#: The document state after a REJECT that sends it back to its author, and the final state.
RETURNED: Final = "returned"
CLOSED: Final = "closed"
#: A document the office ended (CANCEL, 第六條): nothing waits on it, its tokens refuse.
CANCELLED: Final = "cancelled"

#: ``reject_to`` value that sends a rejected document back to its author for revision.
AUTHOR: Final = "author"

#: The step that asks the author to revise a returned document (action ``handle``).
REVISE_STEP: Final = "revise"

#: The step that sends a copy a receiving clerk refused back out (退回, 第二十一條; action
#: ``handle``, with the unit of the refused copy): ``routing.receipt``.
REDISTRIBUTE_STEP: Final = "redistribute"

#: The bureau leader's decision on an objection to a document (異議, 第二十條 ¶2; action
#: ``approve``): ``routing.objection``.
OBJECTION_STEP: Final = "objection"

#: How the steps Yizhan opens outside any flow's table are called.
OWN_STEP_LABELS: Final[Mapping[str, str]] = MappingProxyType(
    {REVISE_STEP: "修改", REDISTRIBUTE_STEP: "重新分發", OBJECTION_STEP: "異議裁決"}
)

#: The command that completes a step of each action; ``number`` steps complete by themselves.
COMPLETING_VERB: Final[Mapping[str, Verb]] = MappingProxyType(
    {
        "approve": Verb.APPROVE,
        "seal": Verb.SEAL,
        "receive": Verb.RECEIVED,
        "handle": Verb.DONE,
        # A supervised unit's part (督查督辦): PROGRESS reports keep it open, DONE ends it.
        "progress": Verb.DONE,
        "read": Verb.READ,
    }
)

#: Actions a step may have: those a person completes, and ``number`` (done by Yizhan).
STEP_ACTIONS: Final = (*COMPLETING_VERB, "number")

#: Who acts at a step (see :class:`Actor`).
ACTOR_KINDS: Final = ("role", "signoff_leader", "person", "author")

#: Which units a ``role`` actor is looked up in, besides ``kind:<unit kind>``. ``scope`` is
#: every unit the document is addressed to (主送, 抄送, 範圍); ``scope_others`` the same without
#: the author's unit (會簽 is by other units); ``instructed`` the units the leader's instruction
#: (批示) named.
FLOW_UNIT_SELECTORS: Final = ("own", "bureau", "scope", "scope_others", "instructed")
_PER_UNIT_SELECTORS: Final = frozenset({"scope", "scope_others", "instructed"})

#: The effects a flow may end with (``Flow.on_close``); ``routing.closing.CLOSE_EFFECTS`` builds
#: them, and a test keeps the two the same.
CLOSE_EFFECT_NAMES: Final = frozenset(
    {"publish_bulletin", "record_leave", "apply_change", "publish_news"}
)

# A ``when`` condition: a document field name, optionally negated with "!".
_FIELD_NAME: Final = re.compile(r"^!?[a-z_][a-z0-9_]*$")

#: Document kinds whose flow must hold at least one approval that cannot be skipped.
KINDS_REQUIRING_APPROVAL: Final = frozenset(
    {"fawen", "shouwen", "qianbao", "hanjian", "xiujia", "biangeng", "xinxi"}
)

#: Templates the engine may name in a notice (rendered by ``templates``).
TEMPLATES: Final = frozenset(
    {
        "step_request",
        "distributed",
        "instruction",
        "rejected",
        "approved",
        "result",
        "closed",
        "comment",
        "withdrawn",
        "published",
        "supervision",
    }
)


@dataclass(frozen=True, kw_only=True)
class ContentRule:
    """A restriction on what a kind of document may carry, checked on the facts the caller gives.

    ``fact`` names the fact (a keyword argument of ``open_document``/``revise_document``, or a
    key of their ``facts``) that, when True, makes the document refused with ``reply``.
    """

    name: str
    fact: str
    article: str
    reply: str


#: Content restrictions by name. The caller establishes the facts (markings, attachments);
#: the engine refuses on them.
CONTENT_RULES: Final[Mapping[str, ContentRule]] = MappingProxyType(
    {
        rule.name: rule
        for rule in (
            # 第十四條: material touching state secrets never enters the OA system.
            ContentRule(
                name="no_classified",
                fact="classified",
                article="第十四條",
                reply=(
                    "涉密文件不得在OA系統中處理、傳遞（第十四條），請改用線下渠道。\n"
                    "Classified material may not enter the OA system (art. 14); "
                    "use the offline channel."
                ),
            ),
            # 第二十二條: 涉密文件及轉發文件不可使用處(室)函.
            ContentRule(
                name="no_classified_letters",
                fact="classified",
                article="第二十二條",
                reply=(
                    "涉密文件不可使用處（室）函（第二十二條）。\n"
                    "A department letter may not carry classified documents (art. 22)."
                ),
            ),
            ContentRule(
                name="no_forwarded_documents",
                fact="forwards_document",
                article="第二十二條",
                reply=(
                    "轉發文件不可使用處（室）函（第二十二條），請以局發文（fawen@）轉發。\n"
                    "A department letter may not forward a document (art. 22); "
                    "send it as a bureau document (fawen@) instead."
                ),
            ),
            # 第二十三條: the author must choose the bulletin's scope with care.
            ContentRule(
                name="bulletin_needs_scope",
                fact="no_scope",
                article="第二十三條",
                reply=(
                    "請在正文開頭寫明發布範圍（單位、角色或人員），例如「範圍：檢驗監管處、"
                    "綜合人員」。\n"
                    "Name the bulletin's scope (units, roles or people) at the top of the body, "
                    "e.g. “Scope: inspection, clerk”."
                ),
            ),
            # 第二十三條: 除特殊情況外，禁止向全局全體人員發布公告.
            ContentRule(
                name="bulletin_all_bureau",
                fact="all_bureau_not_special",
                article="第二十三條",
                reply=(
                    "除特殊情況外，禁止向全局全體人員發布公告（第二十三條）。請縮小範圍；"
                    "確屬特殊情況的，請在主題加「[特殊]」，由局領導審批。\n"
                    "Bulletins to the whole bureau are not allowed except in special cases "
                    "(art. 23). Narrow the scope, or mark the subject [特殊] (special) to have "
                    "a bureau leader approve it."
                ),
            ),
            # 第二十三條: 會議通知、轉發文件、上報材料、聯繫工作 go as office or bureau documents.
            ContentRule(
                name="bulletin_no_meeting_notice",
                fact="meeting_notice",
                article="第二十三條",
                reply=(
                    "會議通知不用公告板發布（第二十三條），請以辦公室文件或局發文"
                    "（fawen@）下發。\n"
                    "Meeting notices are not bulletins (art. 23); send them as a bureau "
                    "document (fawen@)."
                ),
            ),
            ContentRule(
                name="bulletin_no_forwarded_documents",
                fact="forwards_document",
                article="第二十三條",
                reply=(
                    "轉發文件不用公告板發布（第二十三條），請以局發文（fawen@）轉發。\n"
                    "Forwarded documents are not bulletins (art. 23); forward them as a bureau "
                    "document (fawen@)."
                ),
            ),
            ContentRule(
                name="bulletin_no_material_request",
                fact="requests_materials",
                article="第二十三條",
                reply=(
                    "上報材料、聯繫工作不用公告板發布（第二十三條），請用處室函（hanjian@）"
                    "或局發文（fawen@）。\n"
                    "Requests for materials and work contacts are not bulletins (art. 23); "
                    "send a department letter (hanjian@) or a bureau document (fawen@)."
                ),
            ),
        )
    }
)

# Working days each step may take: (normal, 加急, 特急). 0 means within the same working day.
# 第八條: clerks look at the system four times a day, so receiving and registering take one
# working day at most; 第二十條 leaves the other limits to the bureau's 公文處理辦法.
#
#   step            normal  加急  特急
DEADLINES: Final[Mapping[str, tuple[int, int, int]]] = MappingProxyType(
    {
        "review": (2, 1, 0),
        "check": (2, 1, 0),
        "signoff": (2, 1, 0),
        "seal": (1, 0, 0),
        "receive": (1, 0, 0),  # 第二十一條: each unit's clerk checks and receives.
        "propose": (1, 1, 0),
        "instruct": (2, 1, 0),
        "handle": (5, 3, 1),
        "countersign": (3, 2, 1),
        "approve": (2, 1, 0),
        "revise": (5, 3, 1),
        "edit": (2, 1, 0),  # the office's editing of a news item (信息宣傳)
        # 督查督辦: a unit's part is due by the task's 期限; these are the days it has to redo a
        # part sent back after that date has passed, and the office's days to confirm a part.
        "progress": (5, 3, 1),
        "confirm": (2, 1, 0),
    }
)


@dataclass(frozen=True, kw_only=True)
class Actor:
    """Who acts at a step.

    ``kind`` is one of :data:`ACTOR_KINDS`:

    - ``role``: the first active holder of the first of ``roles`` that anyone holds, in the
      units ``units`` selects: ``own`` (the document's unit), ``bureau``, ``kind:<unit kind>``
      (the first unit of that kind, e.g. ``kind:office``), or, one person per unit, ``scope``,
      ``scope_others`` or ``instructed`` (see :data:`FLOW_UNIT_SELECTORS`);
    - ``signoff_leader``: the bureau leader in charge of the document's unit (its ``leader``),
      else the bureau's unit_head, else any bureau_leader (the organisation file's ``leader``);
    - ``person``: the named ``account``;
    - ``author``: the document's author.
    """

    kind: str
    roles: tuple[str, ...] = ()
    units: str = "own"
    account: str | None = None

    @property
    def per_unit(self) -> bool:
        """True when one person per selected unit acts (in parallel)."""
        return self.kind == "role" and self.units in _PER_UNIT_SELECTORS


def role(*roles: str, units: str = "own") -> Actor:
    """A ``role`` actor: the holder of one of ``roles`` (first found wins) in ``units``."""
    return Actor(kind="role", roles=roles, units=units)


#: The bureau leader who signs off the document's unit's documents.
SIGNOFF_LEADER: Final = Actor(kind="signoff_leader")


@dataclass(frozen=True, kw_only=True)
class StepRule:
    """One step of a flow. See the module docstring; every field has a table column below.

    ``forward_to`` lists roles of which the person a step is FORWARDed to must hold one (empty:
    anyone active), so that sign-off stays with bureau leaders and the seal with custodians.
    ``names_units`` marks the leader's instruction (批示), whose APPROVE must name the handling
    units. ``template`` is the mail that asks for the step; ``done_template`` a mail to the
    author when the step completes. ``next`` names the following step (None: the next one in
    the list; ``closed``: the flow ends). ``prefix`` is the number prefix of a ``number`` step
    (None: the document unit's prefix, else the bureau's). ``when`` names a document field
    that must be true for the document to go through the step (``!field``: false); the module
    that reads the mail sets such fields (a 重要 bulletin, a long leave), and a step whose
    condition fails is skipped like an optional one with nobody to ask.

    ``edits_body`` lets the step's APPROVE carry an edited text of the document
    (``routing.edits``: the text below a 修改稿/EDITED line replaces the body), as the office
    edits a news item before publishing it (信息宣傳).
    """

    name: str
    label: str
    state: str
    action: str
    actor: Actor | None
    commands: tuple[Verb, ...]
    deadline: int = 0
    urgent_deadlines: Mapping[str, int] = field(default_factory=dict)
    reject_to: str = AUTHOR
    next: str | None = None
    optional: bool = False
    parallel: bool = False
    forward_to: tuple[str, ...] = ()
    names_units: bool = False
    edits_body: bool = False
    template: str = "step_request"
    done_template: str | None = None
    prefix: str | None = None
    article: str = ""
    when: str | None = None

    def applies(self, fields: Mapping[str, Any]) -> bool:
        """Whether a document with ``fields`` goes through this step (see ``when``)."""
        if self.when is None:
            return True
        name = self.when.removeprefix("!")
        return bool(fields.get(name)) != self.when.startswith("!")

    def deadline_for(self, urgency: str | None) -> int:
        """Working days this step may take for a document of ``urgency``."""
        if urgency is not None and urgency in self.urgent_deadlines:
            return self.urgent_deadlines[urgency]
        return self.deadline


@dataclass(frozen=True, kw_only=True)
class Flow:
    """The workflow of one document or module kind (fawen, qianbao, gonggao, xiujia …).

    ``needs_scope`` refuses a document addressed to no unit; ``close_template`` is the mail the
    author gets when the flow ends; ``revise_deadline`` the working days the author has to
    revise a returned document; ``on_close`` the effect the flow ends with (one of
    ``routing.closing.CLOSE_EFFECTS``: publish a bulletin or a news item, record a leave, change
    the directory).
    """

    kind: str
    label: str
    article: str
    steps: tuple[StepRule, ...]
    content_rules: tuple[str, ...] = ()
    needs_scope: bool = False
    close_template: str = "closed"
    revise_deadline: int = 5
    on_close: str | None = None

    def step(self, name: str) -> StepRule | None:
        """The step called ``name``, or None."""
        return next((s for s in self.steps if s.name == name), None)

    def following(self, step: StepRule) -> StepRule | None:
        """The step after ``step``, or None when the flow ends there."""
        if step.next == CLOSED:
            return None
        if step.next is not None:
            return self.step(step.next)
        index = self.steps.index(step)
        return self.steps[index + 1] if index + 1 < len(self.steps) else None

    @property
    def states(self) -> tuple[str, ...]:
        """Every state a document of this kind can rest in."""
        waiting = tuple(dict.fromkeys(s.state for s in self.steps if s.action != "number"))
        return (*waiting, RETURNED, CLOSED)


@dataclass(frozen=True, kw_only=True)
class Rules:
    """All flows, by document kind."""

    flows: Mapping[str, Flow]

    def flow(self, kind: str) -> Flow | None:
        """The flow of ``kind``, or None."""
        return self.flows.get(kind)


class RulesError(ValueError):
    """A rules file cannot be read; ``problems`` lists each thing wrong with it."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


# The commands of each kind of step. COMMENT is accepted everywhere from anyone on the
# document; FORWARD hands the step to another person.
APPROVAL: Final = (Verb.APPROVE, Verb.REJECT, Verb.FORWARD, Verb.COMMENT)
SEALING: Final = (Verb.SEAL, Verb.REJECT, Verb.FORWARD, Verb.COMMENT)
RECEIPT: Final = (Verb.RECEIVED, Verb.REJECT, Verb.FORWARD, Verb.COMMENT)
HANDLING: Final = (Verb.DONE, Verb.FORWARD, Verb.COMMENT)
SUPERVISED: Final = (Verb.PROGRESS, Verb.DONE, Verb.FORWARD, Verb.COMMENT)
NUMBERING: Final[tuple[Verb, ...]] = ()
