"""The engine's refusal of receipt (第二十一條) and objections (第二十條), as pure decisions.

Walked on the test desk of ``test_workflow``: every decision applied as the store would, and
the document's invariants checked after each one.
"""

from __future__ import annotations

from tests.routing.test_workflow import Desk
from yizhan.routing.receipt import distributor


def sealed_to_two_branches() -> Desk:
    """局發文 to 大連分局 and 丹東分局, approved, signed off and sealed: both clerks asked."""
    desk = Desk.open("fawen", "songjia", to_units=["dalian", "dandong"])
    for person in ("liangguoqiang", "liuyang", "sunlimin"):
        desk.act(person, "同意")
    desk.act("zhoujing", "用印")
    assert desk.asked() == ["panting", "tianlu"]
    return desk


def test_a_sealed_copy_refused_goes_back_to_the_custodian_and_on_to_the_right_unit() -> None:
    # 大連分局's clerk refuses (wrong unit); the office's custodian who sealed it redirects it
    # to 衛生檢疫處; the document closes only when that clerk has signed too.
    desk = sealed_to_two_branches()
    assert distributor(desk.doc) == "zhoujing"
    refused = desk.act("tianlu", "退回", accepted=False)
    assert "理由" in refused.reply
    desk.act("tianlu", "退回：非本單位業務")
    assert desk.doc.state == "distributing"
    assert desk.asked() == ["panting", "zhoujing"]
    desk.act("panting", "簽收")
    assert desk.doc.state == "distributing"  # the refused copy keeps it open
    assert "辦結" in desk.act("zhoujing", "同意", accepted=False).reply
    desk.act("zhoujing", "辦結：衛生檢疫處")
    assert desk.asked() == ["xuna"]
    assert desk.doc.fields["to_units"] == ["quarantine", "dandong"]
    desk.act("xuna", "簽收")
    assert desk.doc.state == "closed"


def test_an_objection_holds_the_document_until_the_leader_decides() -> None:
    # The unit head objects after approving; 孫立民, leader in charge of 檢驗監管處, is asked;
    # the sign-off waits; upheld, the document goes back to its author with the objection.
    desk = Desk.open("qianbao", "xiewenbin")
    review = desk.waiting_for("liangguoqiang")
    desk.act("liangguoqiang", "同意")
    assert desk.asked() == ["sunlimin"]
    desk.act("hanxue", "異議：不應購置", step=review, accepted=False)
    desk.act("liangguoqiang", "異議：預算偏高", step=review)
    assert sorted(s.name for s in desk.waiting()) == ["objection", "signoff"]
    signoff = next(s for s in desk.waiting() if s.name == "signoff")
    objection = next(s for s in desk.waiting() if s.name == "objection")
    assert "異議" in desk.act("sunlimin", "同意", step=signoff, accepted=False).reply
    desk.act("liangguoqiang", "異議：再議", step=review, accepted=False)  # one at a time
    desk.act("sunlimin", "同意", step=objection)
    assert desk.doc.state == "returned"
    assert "預算偏高" in desk.last.notices[0].variables["opinion"]  # type: ignore[union-attr]
    assert desk.asked() == ["xiewenbin"]
