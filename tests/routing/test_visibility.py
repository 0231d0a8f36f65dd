"""Tests for routing.visibility: who may see a document (STATUS, SEARCH, GET #id)."""

from __future__ import annotations

import datetime as dt

from tests.conftest import demo_org
from yizhan.routing.directory import Directory, parse_org
from yizhan.routing.documents import DocumentState, StepState, TrailEntry
from yizhan.routing.visibility import may_see, took_part

DIRECTORY: Directory = parse_org(demo_org())
AT = dt.datetime(2026, 11, 26, 2, 0, tzinfo=dt.UTC)


def report(**changes: object) -> DocumentState:
    """謝文斌's internal report, reviewed by 梁國強 on behalf of nobody, commented by 韓雪."""
    fields: dict[str, object] = {
        "id": 7,
        "kind": "qianbao",
        "title": "關於購置設備的請示",
        "state": "signing",
        "author": "xiewenbin",
        "unit": "inspection",
        "steps": (
            StepState(id=1, name="review", assignee="liangguoqiang", action="approve"),
            StepState(
                id=2, name="signoff", assignee="liuyang", action="approve", on_behalf_of="lijun"
            ),
        ),
        "trail": (TrailEntry(at=AT, actor="hanxue", action="comment", opinion="同意"),),
    }
    fields.update(changes)
    return DocumentState(**fields)  # type: ignore[arg-type]


def test_the_people_on_a_document_see_it_and_nobody_else() -> None:
    # The author, each person asked, the delegator a delegate acts for (第九條) and anyone in
    # the trail see the report; a colleague of the author's unit who had no part does not.
    state = report()
    for account in ("xiewenbin", "liangguoqiang", "liuyang", "lijun", "hanxue"):
        assert took_part(state, account) and may_see(state, account, DIRECTORY), account
    assert not may_see(state, "songjia", DIRECTORY)


def test_a_bulletin_is_seen_by_its_readers_and_once_archived_by_the_office() -> None:
    # 第二十三條: a published bulletin is seen by those it went to, a withdrawn one by none of
    # them, and after the year-end clean-up only the office keeps the archive.
    published = report(
        kind="gonggao",
        state="closed",
        steps=(),
        trail=(),
        fields={"published_at": AT.isoformat(), "recipients": ["songjia"]},
    )
    assert may_see(published, "songjia", DIRECTORY)
    assert not may_see(published, "xuna", DIRECTORY)
    withdrawn = report(
        kind="gonggao",
        state="closed",
        steps=(),
        trail=(),
        fields={
            "published_at": AT.isoformat(),
            "recipients": ["songjia"],
            "withdrawn_at": AT.isoformat(),
        },
    )
    assert not may_see(withdrawn, "songjia", DIRECTORY)
    archived = report(kind="gonggao", state="archived", steps=(), trail=(), fields={})
    assert may_see(archived, "wangfang", DIRECTORY)  # the office's clerk
    assert not may_see(archived, "songjia", DIRECTORY)


def test_a_material_is_seen_by_its_filer_and_the_people_in_its_scope() -> None:
    # 第十七條: internal material filed for the IT department's clerks and 趙建國 is seen by
    # them and by its filer, by no one else, however they took part.
    material = report(
        kind="ziliao",
        state="filed",
        author="mali",
        steps=(),
        trail=(),
        fields={"scope_units": ["it"], "scope_roles": [], "scope_people": ["zhaojianguo"]},
    )
    for account in ("mali", "helei", "zhaojianguo"):
        assert may_see(material, account, DIRECTORY), account
    assert not may_see(material, "wangfang", DIRECTORY)
