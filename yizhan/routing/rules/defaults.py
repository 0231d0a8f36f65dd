"""The flows of the regulations (shared/seed/regulations.txt), used unless
``<data_dir>/rules.toml`` overrides a kind: :data:`DEFAULT_RULES`."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, Final

from yizhan.routing.commands import Verb
from yizhan.routing.rules.model import (
    APPROVAL,
    DEADLINES,
    HANDLING,
    NUMBERING,
    RECEIPT,
    SEALING,
    SIGNOFF_LEADER,
    SUPERVISED,
    Actor,
    Flow,
    Rules,
    StepRule,
    role,
)


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

# 內部資料 at ziliao@ (第十七條): a material filed by someone other than their unit's head is
# reviewed by that head before anyone else can find it (mine rules 一(六): what a unit publishes
# is reviewed by its head first); the library module files it and answers the rest itself.
ZILIAO: Final = Flow(
    kind="ziliao",
    label="內部資料",
    article="第十七條",
    content_rules=("no_classified",),
    close_template="result",
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
                ZILIAO,
            )
        }
    )
)
