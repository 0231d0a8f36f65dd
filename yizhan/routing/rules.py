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

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

from yizhan.routing.commands import Verb
from yizhan.routing.directory import ROLES, UNIT_KINDS, Directory

__all__ = [
    "ACTOR_KINDS",
    "AUTHOR",
    "CLOSED",
    "COMPLETING_VERB",
    "CONTENT_RULES",
    "DEADLINES",
    "DEFAULT_RULES",
    "FLOW_UNIT_SELECTORS",
    "KINDS_REQUIRING_APPROVAL",
    "RETURNED",
    "STEP_ACTIONS",
    "URGENCIES",
    "Actor",
    "ContentRule",
    "Flow",
    "Rules",
    "RulesError",
    "StepRule",
    "check_rules",
    "rules_from_dict",
    "rules_to_dict",
]

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


def _step(
    name: str,
    label: str,
    state: str,
    action: str,
    actor: Actor | None,
    commands: tuple[Verb, ...],
    *,
    article: str,
    **options: Any,
) -> StepRule:
    """A step whose deadlines come from :data:`DEADLINES` (a ``number`` step has none)."""
    normal, hurried, very_urgent = DEADLINES.get(name, (0, 0, 0))
    return StepRule(
        name=name,
        label=label,
        state=state,
        action=action,
        actor=actor,
        commands=commands,
        deadline=normal,
        urgent_deadlines={"加急": hurried, "特急": very_urgent},
        article=article,
        **options,
    )


# 局發文 at fawen@ (第二條, 第二十條; 《黨政機關公文處理工作條例》 擬稿 → 審核 → 核稿 → 簽發 →
# 編號 → 用印 → 分發): the drafter's own unit head reviews, the office checks (核稿), the
# bureau leader in charge signs off (簽發), Yizhan numbers it, the office's seal custodian seals
# it (第十八條), and every unit in scope receives it through its clerk (第二十一條).
FAWEN: Final = Flow(
    kind="fawen",
    label="局發文",
    article="第二條、第二十條",
    content_rules=("no_classified",),
    needs_scope=True,
    steps=(
        _step(
            "review",
            "審核",
            "reviewing",
            "approve",
            role("unit_head"),
            APPROVAL,
            article="第二十條",
        ),
        _step(
            "check",
            "核稿",
            "checking",
            "approve",
            role("unit_leader", "unit_head", units="kind:office"),
            APPROVAL,
            article="第二十條",
        ),
        _step(
            "signoff",
            "簽發",
            "signing",
            "approve",
            SIGNOFF_LEADER,
            APPROVAL,
            forward_to=("bureau_leader",),
            done_template="approved",
            article="第二十條",
        ),
        _step("number", "編號", "numbering", "number", None, NUMBERING, article="第二十條"),
        _step(
            "seal",
            "用印",
            "sealing",
            "seal",
            role("seal_custodian", units="kind:office"),
            SEALING,
            forward_to=("seal_custodian",),
            article="第十八條",
        ),
        _step(
            "receive",
            "簽收",
            "distributing",
            "receive",
            role("clerk", units="scope"),
            RECEIPT,
            parallel=True,
            template="distributed",
            article="第二十一條",
        ),
    ),
)

# 收文 at shouwen@ (第二條, 第二十條, 第二十一條): a clerk forwards a document from outside;
# Yizhan registers it (收文號), the office proposes how to handle it (擬辦), the leader in
# charge instructs (批示) naming the handling units, and each of them reports DONE (辦結).
# A leader who disagrees with the proposal sends it back to the office, not to the clerk.
SHOUWEN: Final = Flow(
    kind="shouwen",
    label="收文",
    article="第二條、第二十一條",
    content_rules=("no_classified",),
    steps=(
        _step(
            "register",
            "登記",
            "registered",
            "number",
            None,
            NUMBERING,
            prefix="收",
            article="第二十一條",
        ),
        _step(
            "propose",
            "擬辦",
            "proposing",
            "approve",
            role("unit_head", "unit_leader", units="kind:office"),
            APPROVAL,
            article="第二十條",
        ),
        _step(
            "instruct",
            "批示",
            "instructing",
            "approve",
            SIGNOFF_LEADER,
            APPROVAL,
            reject_to="propose",
            forward_to=("bureau_leader",),
            names_units=True,
            article="第二十條",
        ),
        _step(
            "handle",
            "辦理",
            "handling",
            "handle",
            role("clerk", units="instructed"),
            HANDLING,
            parallel=True,
            template="instruction",
            article="第二十條、第二十一條",
        ),
    ),
)

# 內部簽報 at qianbao@ (第二條): staff → own unit head → countersign (會簽) by the other units
# in scope, in parallel, all of them, skipped when there are none → the bureau leader in
# charge → the result back to the author.
QIANBAO: Final = Flow(
    kind="qianbao",
    label="內部簽報",
    article="第二條",
    content_rules=("no_classified",),
    close_template="result",
    steps=(
        _step(
            "review", "審核", "reviewing", "approve", role("unit_head"), APPROVAL, article="第二條"
        ),
        _step(
            "countersign",
            "會簽",
            "countersigning",
            "approve",
            role("unit_head", units="scope_others"),
            APPROVAL,
            optional=True,
            parallel=True,
            article="第二條",
        ),
        _step(
            "signoff",
            "審批",
            "signing",
            "approve",
            SIGNOFF_LEADER,
            APPROVAL,
            forward_to=("bureau_leader",),
            article="第二條",
        ),
    ),
)

# 處室函 at hanjian@ (第二十二條): a unit's letter to other units or branches on business within
# its remit, approved by its own head, then received by each addressed unit's clerk. Classified
# material and forwarded documents may not travel as a letter.
HANJIAN: Final = Flow(
    kind="hanjian",
    label="處室函",
    article="第二十二條",
    content_rules=("no_classified", "no_classified_letters", "no_forwarded_documents"),
    needs_scope=True,
    steps=(
        _step(
            "approve",
            "審批",
            "reviewing",
            "approve",
            role("unit_head"),
            APPROVAL,
            done_template="approved",
            article="第二十二條",
        ),
        _step(
            "receive",
            "簽收",
            "sent",
            "receive",
            role("clerk", units="scope_others"),
            RECEIPT,
            parallel=True,
            template="distributed",
            article="第二十一條",
        ),
    ),
)

# 公告板 at gonggao@ (第二十三條): an ordinary bulletin is approved by the author's unit head
# (本部門主要領導), an important one (重要) or a special all-bureau one (特殊) by the bureau leader
# in charge of the unit (局領導); then it is published to everyone in its scope. Meeting notices,
# forwarded documents and requests for materials belong to other channels.
GONGGAO: Final = Flow(
    kind="gonggao",
    label="公告",
    article="第二十三條",
    content_rules=(
        "no_classified",
        "bulletin_needs_scope",
        "bulletin_all_bureau",
        "bulletin_no_meeting_notice",
        "bulletin_no_forwarded_documents",
        "bulletin_no_material_request",
    ),
    on_close="publish_bulletin",
    steps=(
        _step(
            "approve",
            "審批",
            "reviewing",
            "approve",
            role("unit_head"),
            APPROVAL,
            when="!needs_bureau_leader",
            article="第二十三條",
        ),
        _step(
            "signoff",
            "局領導審批",
            "signing",
            "approve",
            SIGNOFF_LEADER,
            APPROVAL,
            forward_to=("bureau_leader",),
            when="needs_bureau_leader",
            article="第二十三條",
        ),
    ),
)

# 休假管理 at xiujia@ (第六條, run by HR): the unit's leader in charge (分管領導, else its head)
# approves; a long leave (``routing.leave.LONG_LEAVE_DAYS``) also goes to the bureau leader in
# charge; then HR's record is written and HR is told.
XIUJIA: Final = Flow(
    kind="xiujia",
    label="休假",
    article="第六條",
    on_close="record_leave",
    close_template="approved",
    steps=(
        _step(
            "approve",
            "部門審批",
            "reviewing",
            "approve",
            role("unit_leader", "unit_head"),
            APPROVAL,
            article="第六條",
        ),
        _step(
            "signoff",
            "局領導審批",
            "signing",
            "approve",
            SIGNOFF_LEADER,
            APPROVAL,
            forward_to=("bureau_leader",),
            when="long_leave",
            article="第六條",
        ),
    ),
)

# 事項變更申請 at biangeng@ (第十條; mine rules 一(二)–(三), 一(七)): a unit's clerk submits the
# form, the unit's leader in charge approves it (分管領導簽字批準), the IT department approves,
# and the change is applied to the directory and the accounts.
BIANGENG: Final = Flow(
    kind="biangeng",
    label="事項變更申請",
    article="第十條",
    on_close="apply_change",
    close_template="approved",
    steps=(
        _step(
            "approve",
            "單位審批",
            "reviewing",
            "approve",
            role("unit_leader", "unit_head"),
            APPROVAL,
            article="第十條",
        ),
        _step(
            "it_approve",
            "信息化處審批",
            "it_review",
            "approve",
            role("unit_head", "unit_leader", units="kind:it"),
            APPROVAL,
            article="第十條",
        ),
    ),
)

# 信息宣傳 at xinxi@ (第二條; mine rules 一(六)): a unit submits a news item; its head reviews it,
# since 在辦公系統上發布文件及其他信息必須要經過發送單位負責人審核後方可發布; then the office,
# which runs every module but leave (第六條), reviews and may edit it (its 信息 editor is normally
# the clerk, who may FORWARD it to the head); then it is published to the subscribers.
XINXI: Final = Flow(
    kind="xinxi",
    label="信息",
    article="第二條",
    content_rules=("no_classified",),
    on_close="publish_news",
    close_template="published",
    steps=(
        _step(
            "review",
            "單位審核",
            "reviewing",
            "approve",
            role("unit_head"),
            APPROVAL,
            article="mine rules 一(六)",
        ),
        _step(
            "edit",
            "辦公室編審",
            "editing",
            "approve",
            role("clerk", "unit_leader", "unit_head", units="kind:office"),
            APPROVAL,
            edits_body=True,
            article="第二條、第六條",
        ),
    ),
)

# 督查督辦 at duban@ (第二條; run by the office, 第六條): the office assigns a task with a
# deadline (期限) to the units it names (主送); each unit's clerk (綜合人員, who chases the unit's
# work, 第二十一條) reports PROGRESS as often as needed and DONE with a summary; the office
# member who assigned it confirms each unit's part or sends it back. The parts run side by side
# and each is confirmed on its own, so ``routing.supervision`` decides the commands of this
# flow; the table says who is asked, what they may send and how long the office has.
DUBAN: Final = Flow(
    kind="duban",
    label="督查督辦",
    article="第二條、第六條",
    content_rules=("no_classified",),
    needs_scope=True,
    steps=(
        _step(
            "progress",
            "承辦",
            "supervising",
            "progress",
            role("clerk", "unit_head", units="scope"),
            SUPERVISED,
            parallel=True,
            template="supervision",
            article="第二條、第二十一條",
        ),
        _step(
            "confirm",
            "確認辦結",
            "supervising",
            "approve",
            Actor(kind="author"),
            APPROVAL,
            article="第六條",
        ),
    ),
)

# 報修 at baoxiu@ (第十二條; mine rules 二(一)): a problem report goes to the IT department
# (信息化處) as a step to handle within one working day (a rules file may change the days);
# the summary of its DONE goes back to the reporter, and reminders and escalation apply as to
# any step. Its head answers for it first, else whoever works there (as ``duties.it_people``).
BAOXIU: Final = Flow(
    kind="baoxiu",
    label="報修",
    article="第十二條",
    content_rules=("no_classified",),
    close_template="result",
    steps=(
        StepRule(
            name="handle",
            label="處理",
            state="handling",
            action="handle",
            actor=role("unit_head", "unit_leader", "clerk", "staff", units="kind:it"),
            commands=HANDLING,
            deadline=1,
            urgent_deadlines={"加急": 0, "特急": 0},
            article="第十二條",
        ),
    ),
)

#: The flows of the regulations, used unless ``<data_dir>/rules.toml`` overrides a kind.
DEFAULT_RULES: Final = Rules(
    flows=MappingProxyType(
        {
            f.kind: f
            for f in (
                *(FAWEN, SHOUWEN, QIANBAO, HANJIAN, GONGGAO, XIUJIA, BIANGENG, XINXI, DUBAN),
                BAOXIU,
            )
        }
    )
)


# --- The TOML-friendly form --------------------------------------------------------------------

_STEP_KEYS: Final = frozenset(
    {
        "name",
        "label",
        "state",
        "action",
        "who",
        "roles",
        "units",
        "account",
        "commands",
        "deadline",
        "urgent_deadlines",
        "reject_to",
        "next",
        "optional",
        "parallel",
        "forward_to",
        "names_units",
        "edits_body",
        "template",
        "done_template",
        "prefix",
        "article",
        "when",
    }
)
_FLOW_KEYS: Final = frozenset(
    {
        "label",
        "article",
        "steps",
        "content_rules",
        "needs_scope",
        "close_template",
        "revise_deadline",
        "on_close",
    }
)


def rules_to_dict(rules: Rules) -> dict[str, Any]:
    """The rules as plain data that TOML can hold: ``{"flows": {kind: {..., "steps": [...]}}}``.

    Values that are None are left out, since TOML has no null.
    """
    flows: dict[str, Any] = {}
    for kind, flow in rules.flows.items():
        steps = []
        for s in flow.steps:
            raw: dict[str, Any] = {
                "name": s.name,
                "label": s.label,
                "state": s.state,
                "action": s.action,
                "commands": [v.value for v in s.commands],
                "deadline": s.deadline,
                "urgent_deadlines": dict(s.urgent_deadlines),
                "reject_to": s.reject_to,
                "optional": s.optional,
                "parallel": s.parallel,
                "forward_to": list(s.forward_to),
                "names_units": s.names_units,
                "edits_body": s.edits_body,
                "template": s.template,
                "article": s.article,
            }
            if s.actor is not None:
                raw["who"] = s.actor.kind
                raw["roles"] = list(s.actor.roles)
                raw["units"] = s.actor.units
                if s.actor.account is not None:
                    raw["account"] = s.actor.account
            for key in ("next", "done_template", "prefix", "when"):
                if getattr(s, key) is not None:
                    raw[key] = getattr(s, key)
            steps.append(raw)
        flows[kind] = {
            "label": flow.label,
            "article": flow.article,
            "content_rules": list(flow.content_rules),
            "needs_scope": flow.needs_scope,
            "close_template": flow.close_template,
            "revise_deadline": flow.revise_deadline,
            "steps": steps,
        }
        if flow.on_close is not None:
            flows[kind]["on_close"] = flow.on_close
    return {"flows": flows}


def rules_from_dict(data: Mapping[str, Any], *, base: Rules = DEFAULT_RULES) -> Rules:
    """Rules from their plain-data form (a parsed rules.toml); each flow given replaces ``base``'s.

    Raises :class:`RulesError` listing every problem of form (wrong types, unknown keys or
    commands); problems of meaning are :func:`check_rules`'s.
    """
    problems: list[str] = []
    for key in data:
        if key != "flows":
            problems.append(f"unknown table [{key}]; allowed: [flows.<kind>]")
    raw_flows = data.get("flows", {})
    if not isinstance(raw_flows, Mapping):
        raise RulesError([*problems, "[flows] must be a table of flows by kind"])
    flows = dict(base.flows)
    for kind, raw in raw_flows.items():
        flow = _flow_from_dict(str(kind), raw, problems)
        if flow is not None:
            flows[str(kind)] = flow
    if problems:
        raise RulesError(problems)
    return Rules(flows=MappingProxyType(flows))


def _flow_from_dict(kind: str, raw: Any, problems: list[str]) -> Flow | None:
    where = f"flows.{kind}"
    if not isinstance(raw, Mapping):
        problems.append(f"{where} must be a table")
        return None
    before = len(problems)
    for key in raw:
        if key not in _FLOW_KEYS:
            problems.append(
                f"{where}: unknown key {key!r}; allowed: {', '.join(sorted(_FLOW_KEYS))}"
            )
    raw_steps = raw.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        problems.append(f"{where}: steps must be a non-empty array of tables")
        raw_steps = []
    steps = [_step_from_dict(f"{where}.steps[{i}]", s, problems) for i, s in enumerate(raw_steps)]
    flow = Flow(
        kind=kind,
        label=_get(raw, "label", str, kind, where, problems),
        article=_get(raw, "article", str, "", where, problems),
        content_rules=tuple(_get_list(raw, "content_rules", where, problems)),
        needs_scope=_get(raw, "needs_scope", bool, False, where, problems),
        close_template=_get(raw, "close_template", str, "closed", where, problems),
        revise_deadline=_get(raw, "revise_deadline", int, 5, where, problems),
        on_close=_get(raw, "on_close", str, None, where, problems),
        steps=tuple(s for s in steps if s is not None),
    )
    return flow if len(problems) == before else None


def _step_from_dict(where: str, raw: Any, problems: list[str]) -> StepRule | None:
    if not isinstance(raw, Mapping):
        problems.append(f"{where} must be a table")
        return None
    before = len(problems)
    for key in raw:
        if key not in _STEP_KEYS:
            problems.append(
                f"{where}: unknown key {key!r}; allowed: {', '.join(sorted(_STEP_KEYS))}"
            )
    name = _get(raw, "name", str, "", where, problems)
    if not name:
        problems.append(f"{where}: name is missing")
    commands: list[Verb] = []
    for word in _get_list(raw, "commands", where, problems):
        try:
            commands.append(Verb(word.lower()))
        except ValueError:
            problems.append(f"{where}: unknown command {word!r}")
    urgent = raw.get("urgent_deadlines", {})
    if not isinstance(urgent, Mapping) or not all(
        isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool)
        for k, v in urgent.items()
    ):
        problems.append(f'{where}: urgent_deadlines must be a table such as {{ "加急" = 1 }}')
        urgent = {}
    actor: Actor | None = None
    if "who" in raw:
        actor = Actor(
            kind=_get(raw, "who", str, "", where, problems),
            roles=tuple(_get_list(raw, "roles", where, problems)),
            units=_get(raw, "units", str, "own", where, problems),
            account=_get(raw, "account", str, None, where, problems),
        )
    step = StepRule(
        name=name,
        label=_get(raw, "label", str, name, where, problems),
        state=_get(raw, "state", str, "", where, problems),
        action=_get(raw, "action", str, "", where, problems),
        actor=actor,
        commands=tuple(commands),
        deadline=_get(raw, "deadline", int, 0, where, problems),
        urgent_deadlines=dict(urgent),
        reject_to=_get(raw, "reject_to", str, AUTHOR, where, problems),
        next=_get(raw, "next", str, None, where, problems),
        optional=_get(raw, "optional", bool, False, where, problems),
        parallel=_get(raw, "parallel", bool, False, where, problems),
        forward_to=tuple(_get_list(raw, "forward_to", where, problems)),
        names_units=_get(raw, "names_units", bool, False, where, problems),
        edits_body=_get(raw, "edits_body", bool, False, where, problems),
        template=_get(raw, "template", str, "step_request", where, problems),
        done_template=_get(raw, "done_template", str, None, where, problems),
        prefix=_get(raw, "prefix", str, None, where, problems),
        article=_get(raw, "article", str, "", where, problems),
        when=_get(raw, "when", str, None, where, problems),
    )
    return step if len(problems) == before else None


def _get(
    raw: Mapping[str, Any], key: str, kind: type[Any], default: Any, where: str, problems: list[str]
) -> Any:
    value = raw.get(key, default)
    if value is default:
        return value
    # A bool is an int to Python, but "deadline = true" is a mistake in a rules file.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        problems.append(f"{where}: {key} must be a {kind.__name__}")
        return default
    return value


def _get_list(raw: Mapping[str, Any], key: str, where: str, problems: list[str]) -> list[str]:
    value = raw.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.append(f"{where}: {key} must be a list of strings")
        return []
    return value


# --- Checking rules against the organisation -----------------------------------------------------


def check_rules(rules: Rules, directory: Directory) -> list[str]:
    """Everything wrong with ``rules`` for ``directory``, one line each (for ``yizhan check``)."""
    problems: list[str] = []
    for kind, flow in rules.flows.items():
        problems.extend(f"flow {kind}: {p}" for p in _check_flow(flow, directory))
    return problems


def _check_flow(flow: Flow, directory: Directory) -> list[str]:
    problems: list[str] = []
    names = [s.name for s in flow.steps]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"step {dup!r} appears more than once")
    if not flow.steps:
        problems.append("has no steps")
        return problems
    for rule in flow.content_rules:
        if rule not in CONTENT_RULES:
            problems.append(
                f"unknown content rule {rule!r}; known: {', '.join(sorted(CONTENT_RULES))}"
            )
    if flow.close_template not in TEMPLATES:
        problems.append(f"close_template {flow.close_template!r} is not a known template")
    if flow.revise_deadline < 0:
        problems.append("revise_deadline must not be negative")
    if flow.on_close is not None and flow.on_close not in CLOSE_EFFECT_NAMES:
        problems.append(
            f"on_close {flow.on_close!r}; allowed: {', '.join(sorted(CLOSE_EFFECT_NAMES))}"
        )
    for index, step in enumerate(flow.steps):
        problems.extend(f"step {step.name}: {p}" for p in _check_step(flow, index, step, directory))
    problems.extend(_unreachable(flow))
    if flow.kind in KINDS_REQUIRING_APPROVAL and not any(
        s.action == "approve" and not s.optional and s.when is None for s in _path(flow)
    ):
        problems.append("has no approval step that cannot be skipped, but this kind needs one")
    path = [s.action for s in _path(flow)]
    if "seal" in path and ("number" not in path or path.index("number") > path.index("seal")):
        problems.append("a seal step must come after a number step")
    # The 文號 of an outgoing document is issued only after sign-off; a receipt register number
    # (收文號, with no seal after it) is issued on arrival.
    if (
        "seal" in path
        and "number" in path
        and ("approve" not in path or path.index("approve") > path.index("number"))
    ):
        problems.append("the number before a seal must come after an approval")
    return problems


def _check_step(flow: Flow, index: int, step: StepRule, directory: Directory) -> list[str]:
    problems: list[str] = []
    if step.action not in STEP_ACTIONS:
        problems.append(f"action {step.action!r}; allowed: {', '.join(STEP_ACTIONS)}")
    if step.name == REVISE_STEP:
        problems.append(f"the name {REVISE_STEP!r} is reserved for the author's revision")
    if step.action != "number":
        if not step.state or step.state in (RETURNED, CLOSED):
            problems.append(f"state {step.state!r} must be a name other than returned/closed")
        if step.actor is None:
            problems.append("says nobody acts at it (who is missing)")
        verb = COMPLETING_VERB.get(step.action)
        if verb is not None and verb not in step.commands:
            problems.append(f"does not accept {verb.value}, which completes a {step.action} step")
    elif step.actor is not None or step.commands:
        problems.append("a number step is done by Yizhan: it has no who and no commands")
    for verb in step.commands:
        if verb not in (
            *COMPLETING_VERB.values(),
            Verb.PROGRESS,
            Verb.REJECT,
            Verb.FORWARD,
            Verb.COMMENT,
        ):
            problems.append(f"command {verb.value!r} is not a workflow command")
    if Verb.REJECT in step.commands and step.reject_to != AUTHOR:
        target = flow.step(step.reject_to)
        if target is None:
            problems.append(f"REJECT returns to unknown step {step.reject_to!r}")
        elif flow.steps.index(target) >= index or target.action == "number":
            problems.append(f"REJECT must return to an earlier person's step, not {target.name}")
    if step.when is not None and not _FIELD_NAME.match(step.when):
        problems.append(f"when {step.when!r} must be a field name, or ! and a field name")
    if step.deadline < 0 or any(d < 0 for d in step.urgent_deadlines.values()):
        problems.append("deadlines must not be negative")
    for urgency in step.urgent_deadlines:
        if urgency not in URGENCIES:
            problems.append(f"urgency {urgency!r}; allowed: {', '.join(URGENCIES)}")
    if step.next is not None and step.next != CLOSED and flow.step(step.next) is None:
        problems.append(f"next step {step.next!r} is not a step of this flow")
    for name in (step.template, step.done_template):
        if name is not None and name not in TEMPLATES:
            problems.append(f"template {name!r} is not a known template")
    if step.edits_body and step.action != "approve":
        problems.append("edits_body needs an approve step: the edited text comes with APPROVE")
    for r in step.forward_to:
        if r not in ROLES:
            problems.append(f"forward_to role {r!r}; allowed: {', '.join(ROLES)}")
    if step.action == "number":
        problems.extend(_check_prefix(step, directory))
    if step.actor is not None:
        problems.extend(_check_actor(step, directory))
    return problems


def _check_actor(step: StepRule, directory: Directory) -> list[str]:
    actor = step.actor
    assert actor is not None
    problems: list[str] = []
    if actor.kind not in ACTOR_KINDS:
        return [f"who {actor.kind!r}; allowed: {', '.join(ACTOR_KINDS)}"]
    if actor.kind == "person":
        person = directory.people.get(actor.account or "")
        if person is None or person.state != "active":
            problems.append(f"account {actor.account!r} is not an active person")
    if actor.kind == "signoff_leader" and not directory.with_role("bureau_leader"):
        problems.append("no one is a bureau_leader, so no one can sign off")
    if actor.kind == "role":
        if not actor.roles:
            problems.append("who = role needs roles")
        for r in actor.roles:
            if r not in ROLES:
                problems.append(f"unknown role {r!r}; allowed: {', '.join(ROLES)}")
        units = actor.units
        if units.startswith("kind:"):
            kind = units.removeprefix("kind:")
            if kind not in UNIT_KINDS:
                problems.append(f"unit kind {kind!r}; allowed: {', '.join(UNIT_KINDS)}")
            elif not directory.units_of_kind(kind):
                problems.append(f"no unit of kind {kind!r} in the organisation")
            elif not any(
                directory.members(directory.units_of_kind(kind)[0].id, r) for r in actor.roles
            ):
                problems.append(f"no one in the {kind} unit holds {' or '.join(actor.roles)}")
        elif units not in FLOW_UNIT_SELECTORS:
            problems.append(
                f"units {units!r}; allowed: {', '.join(FLOW_UNIT_SELECTORS)}, kind:<unit kind>"
            )
        elif units == "bureau" and not directory.units_of_kind("bureau"):
            problems.append("no unit of kind 'bureau' in the organisation")
    if actor.per_unit != step.parallel:
        problems.append(
            "parallel must be true exactly when one person per unit acts "
            "(units = scope, scope_others or instructed)"
        )
    return problems


def _check_prefix(step: StepRule, directory: Directory) -> list[str]:
    if step.prefix is not None:
        return [] if step.prefix.strip() else ["prefix must not be empty"]
    bureau = directory.units_of_kind("bureau")
    if bureau and bureau[0].prefix:
        return []
    missing = [u.id for u in directory.units.values() if not u.prefix]
    if missing:
        return [
            "numbers use the document unit's prefix, but the bureau has none to fall back on "
            f"and these units have none: {', '.join(sorted(missing))}"
        ]
    return []


def _path(flow: Flow) -> list[StepRule]:
    """The steps in the order a document goes through them (following ``next``)."""
    path: list[StepRule] = []
    step: StepRule | None = flow.steps[0] if flow.steps else None
    while step is not None and step not in path:
        path.append(step)
        step = flow.following(step)
    return path


def _unreachable(flow: Flow) -> list[str]:
    problems: list[str] = []
    path = _path(flow)
    for step in flow.steps:
        if step not in path:
            problems.append(f"step {step.name} can never be reached")
    # Handling units exist only once a leader's instruction (批示) has named them.
    named = False
    for step in path:
        if step.actor is not None and step.actor.units == "instructed" and not named:
            problems.append(f"step {step.name}: no earlier step names the instructed units")
        named = named or step.names_units
    last = path[-1] if path else None
    if last is not None and last.next not in (None, CLOSED):
        problems.append(f"step {last.name}: its next step leads back into the flow (a loop)")
    return problems
