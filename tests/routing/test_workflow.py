"""Tests for yizhan.routing.workflow: the four flows walked through with the demo bureau.

A tiny in-test store (``Desk``) applies each accepted decision the way mailstore does: closed
steps become done by the actor, cancelled steps cancelled, opened steps get ids, numbers are
allocated per prefix without gaps. After every decision the document must pass
``check_invariants``.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass, field, replace
from importlib import resources
from typing import Any

import pytest

from yizhan.routing.commands import parse_command
from yizhan.routing.directory import Directory, parse_org
from yizhan.routing.documents import Decision, DocumentState, StepState
from yizhan.routing.numbering import format_number
from yizhan.routing.rules import DEFAULT_RULES
from yizhan.routing.workflow import (
    apply_command,
    assign_number,
    check_invariants,
    named_units,
    open_document,
    revise_document,
    signoff_leader,
    transitions,
)

NOW = dt.datetime(2026, 3, 2, 1, 0, tzinfo=dt.UTC)


def due(now: dt.datetime, days: int, urgency: str | None) -> dt.datetime:
    """A stand-in calendar: every day works; 0 days means eight hours."""
    return now + (dt.timedelta(days=days) if days else dt.timedelta(hours=8))


def load_directory() -> Directory:
    """The demo bureau."""
    text = (resources.files("yizhan.demo") / "bureau.toml").read_text(encoding="utf-8")
    return parse_org(tomllib.loads(text))


DIRECTORY = load_directory()


@dataclass
class Desk:
    """One document and the decisions applied to it, as the store would keep them."""

    doc: DocumentState
    directory: Directory = DIRECTORY
    clock: dt.datetime = NOW
    sequences: dict[tuple[str, int], int] = field(default_factory=dict)
    last: Decision | None = None

    @classmethod
    def open(cls, kind: str, author: str, title: str = "關於加強口岸檢疫的通知", **kw: Any) -> Desk:
        """Open a document; fails the test if it is refused."""
        args: dict[str, Any] = {"urgency": None, "to_units": (), **kw}
        decision = open_document(
            kind=kind,
            title=title,
            author=author,
            directory=DIRECTORY,
            rules=DEFAULT_RULES,
            now=NOW,
            due=due,
            **args,
        )
        assert decision.accepted, decision.reply
        unit = DIRECTORY.people[author].unit
        doc = DocumentState(
            id=1,
            kind=kind,
            title=title,
            state="new",
            author=author,
            unit=unit,
            urgency=args["urgency"],
        )
        desk = cls(doc=doc)
        desk.apply(decision, author)
        return desk

    def apply(self, decision: Decision, actor: str) -> None:
        """Apply an accepted decision as the store does, allocating a number if asked."""
        assert decision.accepted
        if decision.needs_number is not None:
            key = (decision.needs_number, self.clock.year)
            self.sequences[key] = self.sequences.get(key, 0) + 1
            number = format_number(decision.needs_number, key[1], self.sequences[key])
            decision = assign_number(decision, number)
        self.last = decision
        self.doc = apply_decision(self.doc, decision, actor=actor, now=self.clock)
        assert check_invariants(self.doc) == [], check_invariants(self.doc)

    def act(
        self,
        actor: str,
        text: str,
        *,
        step: StepState | None = None,
        on_behalf_of: str | None = None,
        accepted: bool = True,
    ) -> Decision:
        """``actor`` replies ``text`` to ``step`` (their own waiting step when not given)."""
        if step is None:
            step = self.waiting_for(on_behalf_of or actor)
        self.clock += dt.timedelta(minutes=10)
        decision = apply_command(
            doc=self.doc,
            step_id=step.id,
            command=parse_command(text),
            actor=actor,
            on_behalf_of=on_behalf_of,
            directory=self.directory,
            rules=DEFAULT_RULES,
            now=self.clock,
            due=due,
        )
        assert decision.accepted is accepted, decision.reply
        if decision.accepted:
            self.apply(decision, actor)
        return decision

    def revise(self, actor: str, **kw: Any) -> Decision:
        """The author sends a new version."""
        self.clock += dt.timedelta(minutes=10)
        decision = revise_document(
            doc=self.doc,
            actor=actor,
            directory=self.directory,
            rules=DEFAULT_RULES,
            now=self.clock,
            due=due,
            **kw,
        )
        if decision.accepted:
            self.apply(decision, actor)
        return decision

    def waiting(self) -> list[StepState]:
        """The steps now waiting."""
        return [s for s in self.doc.steps if s.state == "waiting"]

    def waiting_for(self, account: str) -> StepState:
        """The one step waiting for ``account``."""
        mine = [s for s in self.waiting() if account in (s.assignee, s.on_behalf_of)]
        assert len(mine) == 1, (account, self.waiting())
        return mine[0]

    def asked(self) -> list[str]:
        """Who is now asked to act, in account order."""
        return sorted(s.assignee for s in self.waiting())


def apply_decision(
    doc: DocumentState, decision: Decision, *, actor: str, now: dt.datetime
) -> DocumentState:
    """The document after ``decision``: what mailstore does in its transaction."""
    steps = []
    for s in doc.steps:
        if s.id in decision.close_steps:
            s = replace(s, state="done", done_by=actor, done_at=now, outcome=decision.outcome)
        elif s.id in decision.cancel_steps:
            s = replace(s, state="cancelled", done_at=now)
        steps.append(s)
    next_id = max((s.id or 0 for s in steps), default=0) + 1
    steps.extend(replace(s, id=next_id + i) for i, s in enumerate(decision.open_steps))
    return replace(
        doc,
        state=decision.state or doc.state,
        fields={**doc.fields, **decision.fields},
        number=decision.number or doc.number,
        title=decision.title or doc.title,
        version=decision.version or doc.version,
        steps=tuple(steps),
        trail=doc.trail + decision.trail,
    )


def templates(decision: Decision | None) -> list[tuple[str, str, str]]:
    """(recipient, template, action) of each notice, sorted."""
    assert decision is not None
    return sorted((n.to, n.template, n.action) for n in decision.notices)


# --- 局發文 -----------------------------------------------------------------------------------


def fawen(**kw: Any) -> Desk:
    """謝文斌 of 檢驗監管處 drafts a bureau document to 大連分局 and 丹東分局, copied to 財務處."""
    args: dict[str, Any] = {"to_units": ["大連分局", "dandong"], "cc_units": ["財務處"], **kw}
    return Desk.open("fawen", "xiewenbin", **args)


def test_fawen_walks_from_draft_to_closed() -> None:
    # The whole 局發文 chain (第二十條): review → 核稿 → 簽發 → number → seal → each clerk
    # receives (第二十一條) → closed, each step asking exactly the right person.
    desk = fawen()
    assert desk.doc.state == "reviewing"
    assert desk.asked() == ["liangguoqiang"]  # 檢驗監管處 unit_head
    assert templates(desk.last) == [("liangguoqiang", "step_request", "approve")]
    assert desk.doc.fields["to_units"] == ["dalian", "dandong"]

    desk.act("liangguoqiang", "同意")
    assert (desk.doc.state, desk.asked()) == ("checking", ["liuyang"])  # office unit_leader
    desk.act("liuyang", "同意，格式已核")
    assert (desk.doc.state, desk.asked()) == ("signing", ["sunlimin"])  # 分管局領導 of inspection

    signed = desk.act("sunlimin", "APPROVE")
    assert signed.needs_number == "遼檢監"  # The store allocates; Desk did.
    assert desk.doc.number == "遼檢監〔2026〕1號"
    assert desk.last is not None and "遼檢監〔2026〕1號" in desk.last.reply
    assert ("xiewenbin", "approved", "none") in templates(desk.last)
    assert desk.last.notices[0].variables["number"] == "遼檢監〔2026〕1號"
    assert (desk.doc.state, desk.asked()) == ("sealing", ["zhoujing"])  # office custodian

    desk.act("zhoujing", "用印")
    assert desk.doc.state == "distributing"
    assert desk.asked() == ["caoyaqin", "panting", "tianlu"]  # the clerks of all units in scope
    assert {n.template for n in desk.last.notices} == {"distributed"}
    assert {s.unit for s in desk.waiting()} == {"dalian", "dandong", "finance"}

    partly = desk.act("tianlu", "簽收")
    assert desk.doc.state == "distributing" and "2" in partly.reply
    desk.act("panting", "RECEIVED")
    desk.act("caoyaqin", "签收")
    assert desk.doc.state == "closed"
    assert templates(desk.last) == [("xiewenbin", "closed", "none")]
    assert [t.action for t in desk.doc.trail] == [
        "open",
        "approve",
        "approve",
        "approve",
        "number",
        "seal",
        "received",
        "received",
        "received",
    ]


def test_fawen_reasons_cite_the_rules_that_matched() -> None:
    # STYLE 5: a decision says which rule sent it where, so admin can see why.
    desk = fawen()
    assert desk.last is not None
    assert any("第二十條" in r and "review" in r for r in desk.last.reasons)
    assert any(r == "transition new --open--> reviewing" for r in desk.last.reasons)


def test_numbers_have_no_gaps_across_documents() -> None:
    # Two documents of the same unit signed one after the other get 1 and 2 of the year.
    first, second = fawen(), fawen()
    second.sequences = first.sequences
    for desk in (first, second):
        desk.act("liangguoqiang", "同意")
        desk.act("liuyang", "同意")
        desk.act("sunlimin", "同意")
    assert (first.doc.number, second.doc.number) == ("遼檢監〔2026〕1號", "遼檢監〔2026〕2號")


def test_reject_needs_a_reason() -> None:
    # 退回 without a reason is refused with the form to use instead; nothing changes.
    desk = fawen()
    refused = desk.act("liangguoqiang", "退回", accepted=False)
    assert "退回需要說明理由：請回覆「退回：理由」" in refused.reply
    assert "REJECT: reason" in refused.reply
    assert desk.doc.state == "reviewing"


def test_reject_in_the_middle_returns_to_the_drafter_who_revises() -> None:
    # REJECT at 核稿 returns the document to its drafter with the reason; the drafter's new
    # version starts the chain again from the unit head, who must approve again.
    desk = fawen()
    desk.act("liangguoqiang", "同意")
    rejected = desk.act("liuyang", "退回：主送單位有誤")
    assert desk.doc.state == "returned"
    revise = desk.waiting_for("xiewenbin")
    assert (revise.name, revise.action) == ("revise", "handle")
    notice = rejected.notices[0]
    assert (notice.to, notice.template, notice.action, notice.step_index) == (
        "xiewenbin",
        "rejected",
        "handle",
        0,
    )
    assert notice.variables["opinion"] == "主送單位有誤"

    # Only the author revises.
    assert not desk.revise("liuyang").accepted
    revised = desk.revise(
        "xiewenbin", new_title="關於加強口岸檢疫的通知（修訂）", to_units=["dalian"]
    )
    assert revised.accepted, revised.reply
    assert (desk.doc.version, desk.doc.state, desk.asked()) == (2, "reviewing", ["liangguoqiang"])
    assert desk.doc.title.endswith("（修訂）")
    assert desk.doc.fields["to_units"] == ["dalian"]
    desk.act("liangguoqiang", "同意")
    desk.act("liuyang", "同意")
    desk.act("sunlimin", "同意")
    desk.act("zhoujing", "SEAL")
    assert desk.asked() == ["caoyaqin", "tianlu"]


def test_revise_only_when_returned() -> None:
    # A new version of a document that is not returned is refused, saying so.
    desk = fawen()
    refused = desk.revise("xiewenbin")
    assert not refused.accepted and "not returned" in refused.reply


def test_reject_at_seal_keeps_the_number() -> None:
    # Numbers are never reissued: a document returned after numbering keeps its number, and
    # its second sign-off asks for none.
    desk = fawen()
    desk.act("liangguoqiang", "同意")
    desk.act("liuyang", "同意")
    desk.act("sunlimin", "同意")
    number = desk.doc.number
    desk.act("zhoujing", "退回：附件缺頁")
    desk.revise("xiewenbin")
    desk.act("liangguoqiang", "同意")
    desk.act("liuyang", "同意")
    again = desk.act("sunlimin", "同意")
    assert again.needs_number is None and desk.doc.number == number
    assert desk.doc.state == "sealing"


def test_forward_hands_a_step_to_another_person() -> None:
    # FORWARD: 李軍 is away in spirit; 孫立民 hands his sign-off to 趙建國, who signs. The new
    # step keeps the deadline.
    desk = fawen()
    desk.act("liangguoqiang", "同意")
    desk.act("liuyang", "同意")
    before = desk.waiting_for("sunlimin")
    forwarded = desk.act("sunlimin", "轉交 趙建國")
    handed = desk.waiting_for("zhaojianguo")
    assert handed.due_at == before.due_at and desk.doc.state == "signing"
    assert templates(forwarded) == [("zhaojianguo", "step_request", "approve")]
    assert forwarded.notices[0].variables["forwarded_by"] == "sunlimin"
    desk.act("zhaojianguo", "同意")
    assert desk.doc.state == "sealing"


def test_forward_of_signoff_stays_with_bureau_leaders() -> None:
    # Sign-off may only be handed to a bureau leader, so FORWARD cannot skip the approval.
    desk = fawen()
    desk.act("liangguoqiang", "同意")
    desk.act("liuyang", "同意")
    refused = desk.act("sunlimin", "FORWARD wangfang", accepted=False)
    assert "bureau_leader" in refused.reply
    unknown = desk.act("sunlimin", "轉交 無名氏", accepted=False)
    assert "FORWARD name" in unknown.reply


def test_forward_review_to_anyone() -> None:
    # Review may be handed to a deputy by account; the deputy approves.
    desk = fawen()
    desk.act("liangguoqiang", "FORWARD hanxue")
    desk.act("hanxue", "同意")
    assert desk.doc.state == "checking"


def test_comment_from_anyone_on_the_document() -> None:
    # COMMENT: the drafter comments while the office checks; it is recorded and sent to the
    # people now asked, and the state does not move.
    desk = fawen()
    desk.act("liangguoqiang", "同意")
    step = desk.waiting_for("liuyang")
    commented = desk.act("xiewenbin", "意見：請注意附件二為最新版", step=step)
    assert desk.doc.state == "checking"
    assert templates(commented) == [("liuyang", "comment", "none")]
    assert desk.doc.trail[-1].action == "comment"
    # Someone with no part in the document may not comment.
    refused = desk.act("gaofeng", "COMMENT hello", step=step, accepted=False)
    assert "Only the author" in refused.reply


def test_wrong_person_is_refused() -> None:
    # 王芳 replies to 梁國強's review step: refused, naming who was asked.
    desk = fawen()
    step = desk.waiting_for("liangguoqiang")
    refused = desk.act("wangfang", "同意", step=step, accepted=False)
    assert "梁國強" in refused.reply and "王芳" in refused.reply
    assert desk.doc.state == "reviewing"


def test_delegate_acts_on_behalf() -> None:
    # The store resolved delegation: 韓雪 acts for 梁國強; the trail says so.
    desk = fawen()
    step = desk.waiting_for("liangguoqiang")
    desk.act("hanxue", "同意", step=step, on_behalf_of="liangguoqiang")
    entry = desk.doc.trail[-1]
    assert (entry.actor, entry.on_behalf_of, entry.step) == ("hanxue", "liangguoqiang", "review")


def test_step_already_done() -> None:
    # A second reply to a step already done says by whom and when.
    desk = fawen()
    step = desk.waiting_for("liangguoqiang")
    desk.act("liangguoqiang", "同意")
    refused = desk.act("liangguoqiang", "同意", step=step, accepted=False)
    assert (
        "梁國強" in refused.reply and "already done by 梁國強 at 2026-03-02 01:10" in refused.reply
    )


def test_unknown_command_lists_what_the_step_accepts() -> None:
    # A word the step does not take gets a help text naming the commands it accepts.
    desk = fawen()
    refused = desk.act("liangguoqiang", "好的沒問題", accepted=False)
    assert "好的沒問題" in refused.reply
    for word in ("同意", "退回：理由", "轉交 姓名", "APPROVE", "REJECT: reason", "FORWARD name"):
        assert word in refused.reply
    wrong = desk.act("liangguoqiang", "簽收", accepted=False)
    assert "RECEIVED" in wrong.reply and "APPROVE" in wrong.reply


def test_no_step_id_means_the_actors_own_step() -> None:
    # When the reply token was lost the store knows only the document; the actor's waiting
    # step is meant, and someone with none is told so.
    desk = fawen()
    ok = apply_command(
        doc=desk.doc,
        step_id=None,
        command=parse_command("同意"),
        actor="liangguoqiang",
        directory=DIRECTORY,
        rules=DEFAULT_RULES,
        now=NOW,
        due=due,
    )
    assert ok.accepted and ok.state == "checking"
    none = apply_command(
        doc=desk.doc,
        step_id=None,
        command=parse_command("同意"),
        actor="wangfang",
        directory=DIRECTORY,
        rules=DEFAULT_RULES,
        now=NOW,
        due=due,
    )
    assert not none.accepted and "nothing waiting" in none.reply


def test_urgency_shortens_deadlines() -> None:
    # 特急 documents get the table's shortest limits: review within the same working day.
    calls: list[tuple[int, str | None]] = []

    def recording_due(now: dt.datetime, days: int, urgency: str | None) -> dt.datetime:
        calls.append((days, urgency))
        return due(now, days, urgency)

    for urgency, days in ((None, 2), ("加急", 1), ("特急", 0)):
        calls.clear()
        decision = open_document(
            kind="fawen",
            title="t",
            author="xiewenbin",
            urgency=urgency,
            to_units=["dalian"],
            directory=DIRECTORY,
            rules=DEFAULT_RULES,
            now=NOW,
            due=recording_due,
        )
        assert decision.accepted and calls == [(days, urgency)]


@pytest.mark.parametrize(
    ("kw", "says"),
    [
        ({"to_units": ["不存在處"]}, "不存在處"),
        ({"to_units": []}, "主送"),
        ({"to_units": ["dalian"], "urgency": "很急"}, "特急"),
        ({"to_units": ["dalian"], "classified": True}, "第十四條"),
        ({"to_units": ["bureau"]}, "clerk"),  # The bureau unit has no clerk to receive it.
    ],
)
def test_fawen_refusals_at_open(kw: dict[str, Any], says: str) -> None:
    # A document that could not go all the way is refused at once, saying what to fix.
    args: dict[str, Any] = {"urgency": None, **kw}
    decision = open_document(
        kind="fawen",
        title="t",
        author="xiewenbin",
        directory=DIRECTORY,
        rules=DEFAULT_RULES,
        now=NOW,
        due=due,
        **args,
    )
    assert not decision.accepted and says in decision.reply
    assert decision.reasons


def test_signoff_leader_fallbacks() -> None:
    # DESIGN.md: the unit's leader signs off; absent, the bureau's unit_head; else any leader.
    assert signoff_leader(DIRECTORY, "inspection") == (
        "sunlimin",
        "the leader in charge of inspection",
    )
    found = signoff_leader(DIRECTORY, "bureau")
    assert found is not None and found[0] == "zhaojianguo"
    units = {
        k: (replace(u, leader=None) if k == "office" else u) for k, u in DIRECTORY.units.items()
    }
    people = {
        k: (replace(p, roles=frozenset({"bureau_leader"})) if k == "zhaojianguo" else p)
        for k, p in DIRECTORY.people.items()
    }
    headless = Directory.build(units.values(), people.values())
    found = signoff_leader(headless, "office")
    assert found is not None and found[0] == "lijun"  # The first bureau_leader by account.


# --- 內部簽報 ---------------------------------------------------------------------------------


def qianbao(**kw: Any) -> Desk:
    """何磊 of 信息化處 reports to his head, with 衛生檢疫處 and 財務處 to countersign."""
    args: dict[str, Any] = {"scope_units": ["quarantine", "財務處"], **kw}
    return Desk.open("qianbao", "helei", title="關於採購服務器的請示", **args)


def test_qianbao_with_parallel_countersign() -> None:
    # 內部簽報: own unit head → 會簽 by the other units in parallel, all must approve →
    # bureau leader → the result back to the author.
    desk = qianbao()
    assert desk.asked() == ["wuhaifeng"]
    desk.act("wuhaifeng", "同意")
    assert desk.doc.state == "countersigning"
    assert desk.asked() == ["dengxiuying", "tangxiaodong"]
    desk.act("tangxiaodong", "同意")
    assert desk.doc.state == "countersigning"  # One still to sign.
    desk.act("dengxiuying", "同意，經費可以保障")
    assert (desk.doc.state, desk.asked()) == ("signing", ["lijun"])
    desk.act("lijun", "同意")
    assert desk.doc.state == "closed"
    assert templates(desk.last) == [("helei", "result", "none")]


def test_qianbao_without_countersign_skips_it() -> None:
    # No other unit named: the optional countersign is skipped, and the reasons say so.
    desk = Desk.open("qianbao", "helei", title="請假報告")
    desk.act("wuhaifeng", "同意")
    assert (desk.doc.state, desk.asked()) == ("signing", ["lijun"])
    assert desk.last is not None
    assert any("optional" in r and "skipped" in r for r in desk.last.reasons)


def test_reject_during_countersign_withdraws_the_others() -> None:
    # One countersigning unit refuses: the document returns to the author and the other
    # countersign step is withdrawn, its holder told so.
    desk = qianbao()
    desk.act("wuhaifeng", "同意")
    rejected = desk.act("tangxiaodong", "不同意：與本處職責無關")
    assert desk.doc.state == "returned" and desk.asked() == ["helei"]
    assert ("dengxiuying", "withdrawn", "none") in templates(rejected)
    assert len(rejected.cancel_steps) == 1
    # The withdrawn step cannot be acted on any more.
    withdrawn = next(s for s in desk.doc.steps if s.state == "cancelled")
    late = desk.act("dengxiuying", "同意", step=withdrawn, accepted=False)
    assert "withdrawn" in late.reply
    # After revision the countersign starts over, both units again.
    desk.revise("helei", scope_units=["quarantine"])
    desk.act("wuhaifeng", "同意")
    assert desk.asked() == ["tangxiaodong"]


# --- 收文 -------------------------------------------------------------------------------------


def shouwen() -> Desk:
    """王芳, the office clerk, registers a document received from the 海關總署."""
    return Desk.open("shouwen", "wangfang", title="海關總署關於口岸疫情防控的通知")


def test_shouwen_walks_from_registration_to_archive() -> None:
    # 收文: registration number on arrival → office proposes (擬辦) → leader instructs (批示)
    # naming the handling units → each handles → closed and archived.
    desk = shouwen()
    assert desk.doc.number == "收〔2026〕1號"
    assert (desk.doc.state, desk.asked()) == ("proposing", ["chenzhigang"])
    desk.act("chenzhigang", "同意，擬請檢驗監管處、衛生檢疫處辦理")
    assert (desk.doc.state, desk.asked()) == ("instructing", ["lijun"])

    refused = desk.act("lijun", "同意", accepted=False)
    assert "承辦單位" in refused.reply
    instructed = desk.act("lijun", "同意，請衛生檢疫處牽頭、檢驗監管處配合辦理")
    assert desk.doc.fields["handling_units"] == ["quarantine", "inspection"]
    assert (desk.doc.state, desk.asked()) == ("handling", ["songjia", "xuna"])
    assert {n.template for n in instructed.notices} == {"instruction"}
    assert all("牽頭" in n.variables["opinion"] for n in instructed.notices)

    desk.act("xuna", "辦結：已部署")
    assert desk.doc.state == "handling"
    desk.act("songjia", "DONE")
    assert desk.doc.state == "closed"
    assert templates(desk.last) == [("wangfang", "closed", "none")]


def test_instruction_names_units_by_id() -> None:
    # The leader may write unit ids on the command line: "APPROVE: inspection, it".
    desk = shouwen()
    desk.act("chenzhigang", "同意")
    desk.act("lijun", "APPROVE: inspection, it")
    assert desk.doc.fields["handling_units"] == ["inspection", "it"]


def test_named_units_reads_names_and_ids_but_not_english_words() -> None:
    # Names count anywhere; ids only as words of the command line; the bureau never.
    assert named_units(DIRECTORY, "請大連分局、丹東分局辦理") == ["dalian", "dandong"]
    assert named_units(DIRECTORY, "hr", "please handle it soon") == ["hr"]
    assert named_units(DIRECTORY, "遼寧出入境檢驗檢疫局閱") == []


def test_instruction_reject_returns_to_the_office() -> None:
    # A leader who disagrees with the proposal sends it back to 擬辦, not to the clerk.
    desk = shouwen()
    desk.act("chenzhigang", "同意")
    rejected = desk.act("lijun", "退回：請重新擬辦")
    assert (desk.doc.state, desk.asked()) == ("proposing", ["chenzhigang"])
    assert templates(rejected) == [("chenzhigang", "rejected", "approve")]
    desk.act("chenzhigang", "同意，擬請財務處辦理")
    desk.act("lijun", "同意：財務處")
    desk.act("caoyaqin", "辦結")
    assert desk.doc.state == "closed"


def test_handling_unit_may_forward_within_the_unit() -> None:
    # The handling clerk hands the work to a colleague, who reports DONE for the unit.
    desk = shouwen()
    desk.act("chenzhigang", "同意")
    desk.act("lijun", "同意：財務處")
    desk.act("caoyaqin", "轉交 彭亮")
    desk.act("pengliang", "辦結")
    assert desk.doc.state == "closed"


# --- 處室函 -----------------------------------------------------------------------------------


def test_hanjian_walks_to_sent_and_closed() -> None:
    # 處室函: approved by the unit's head, then received by each addressed unit's clerk.
    desk = Desk.open(
        "hanjian", "xiewenbin", title="關於提供進口數據的函", to_units=["衛生檢疫處", "大連分局"]
    )
    assert desk.asked() == ["liangguoqiang"]
    approved = desk.act("liangguoqiang", "同意")
    assert (desk.doc.state, desk.asked()) == ("sent", ["tianlu", "xuna"])
    assert ("xiewenbin", "approved", "none") in templates(approved)
    desk.act("xuna", "簽收")
    desk.act("tianlu", "簽收")
    assert desk.doc.state == "closed" and desk.doc.number is None


@pytest.mark.parametrize(
    ("facts", "says"),
    [
        ({"forwards_document": True}, "轉發文件不可使用處（室）函（第二十二條）"),
        ({"classified": True}, "第十四條"),
    ],
)
def test_hanjian_refuses_forwarded_or_classified(facts: dict[str, Any], says: str) -> None:
    # 第二十二條: 涉密文件及轉發文件不可使用處(室)函; the reply says what to use instead.
    decision = open_document(
        kind="hanjian",
        title="轉發海關總署通知",
        author="xiewenbin",
        urgency=None,
        to_units=["dalian"],
        directory=DIRECTORY,
        rules=DEFAULT_RULES,
        now=NOW,
        due=due,
        **facts,
    )
    assert not decision.accepted and says in decision.reply
    assert any("第二十二條" in r or "第十四條" in r for r in decision.reasons)


def test_hanjian_revision_rechecks_content() -> None:
    # A returned letter whose new version forwards a document is refused on revision too.
    desk = Desk.open("hanjian", "xiewenbin", title="函", to_units=["dalian"])
    desk.act("liangguoqiang", "退回：請補充數據口徑")
    refused = desk.revise("xiewenbin", forwards_document=True)
    assert not refused.accepted and "第二十二條" in refused.reply
    assert desk.doc.state == "returned"


def test_hanjian_to_own_unit_only_is_refused() -> None:
    # A letter goes to other units; addressed only to its own unit, no one would receive it.
    decision = open_document(
        kind="hanjian",
        title="函",
        author="xiewenbin",
        urgency=None,
        to_units=["inspection"],
        directory=DIRECTORY,
        rules=DEFAULT_RULES,
        now=NOW,
        due=due,
    )
    assert not decision.accepted and "To-Units" in decision.reply


# --- Transitions and invariants --------------------------------------------------------------


def test_transitions_table_of_fawen() -> None:
    # The table names every move of 局發文, with numbering between signing and sealing.
    table = transitions(DEFAULT_RULES.flows["fawen"])
    assert table[("new", "open")] == {"reviewing"}
    assert table[("signing", "complete")] == {"sealing"}
    assert table[("distributing", "complete")] == {"closed"}
    assert table[("checking", "reject")] == {"returned"}
    assert table[("returned", "revise")] == {"reviewing"}
    assert ("distributing", "reject") not in table


def test_transitions_table_of_qianbao_and_shouwen() -> None:
    # Optional countersign may be skipped; 批示 REJECT goes back to 擬辦.
    qb = transitions(DEFAULT_RULES.flows["qianbao"])
    assert qb[("reviewing", "complete")] == {"countersigning", "signing"}
    sw = transitions(DEFAULT_RULES.flows["shouwen"])
    assert sw[("new", "open")] == {"proposing"}
    assert sw[("instructing", "reject")] == {"proposing"}


def test_invariants_catch_a_skipped_approval() -> None:
    # A document in sealing whose sign-off never happened is reported, as is a closed one
    # with steps still waiting.
    desk = fawen()
    broken = replace(desk.doc, state="sealing", number="遼檢監〔2026〕9號")
    problems = check_invariants(broken)
    assert any("check" in p for p in problems)
    assert any("numbered without signoff" in p for p in problems)
    closed = replace(desk.doc, state="closed")
    assert any("still wait" in p for p in check_invariants(closed))


def test_assign_number_checks_its_prefix() -> None:
    # The store's number must be of the asked prefix; a decision without a request has none.
    desk = fawen()
    desk.act("liangguoqiang", "同意")
    desk.act("liuyang", "同意")
    decision = apply_command(
        doc=desk.doc,
        step_id=desk.waiting_for("sunlimin").id,
        command=parse_command("同意"),
        actor="sunlimin",
        directory=DIRECTORY,
        rules=DEFAULT_RULES,
        now=NOW,
        due=due,
    )
    with pytest.raises(ValueError):
        assign_number(decision, "遼檢辦〔2026〕1號")
    with pytest.raises(ValueError):
        assign_number(replace(decision, needs_number=None), "遼檢監〔2026〕1號")
