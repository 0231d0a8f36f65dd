"""The admin page's pure parts and stores: duties, visibility, the flow preview, rules as TOML,
the live rules file, the delegation store, the page catalogs."""

from __future__ import annotations

import datetime as dt
import tomllib
from importlib import resources
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from tests.conftest import demo_org
from yizhan.daemon.config import Config
from yizhan.daemon.context import Context
from yizhan.daemon.rules_file import live_rules
from yizhan.mailstore import delegations
from yizhan.mailstore.models import Step
from yizhan.routing.delegation import Delegation
from yizhan.routing.directory import parse_org
from yizhan.routing.documents import DocumentState, StepState
from yizhan.routing.duties import Duty, duties_in
from yizhan.routing.preview import walk
from yizhan.routing.rules import DEFAULT_RULES, rules_from_dict
from yizhan.routing.rules_toml import flows_toml
from yizhan.routing.visibility import may_see, may_view

DIRECTORY = parse_org(demo_org())
NOW = dt.datetime(2026, 3, 2, 1, 0, tzinfo=dt.UTC)


def test_duties_follow_the_unit_kinds_and_the_unit_head_role() -> None:
    # 第四條, 第六條: IT, the office and HR are units of those kinds; a head answers for a unit.
    assert duties_in(DIRECTORY, "mali") == {Duty.IT}
    assert duties_in(DIRECTORY, "wangfang") == {Duty.OFFICE}
    assert duties_in(DIRECTORY, "chenzhigang") == {Duty.OFFICE, Duty.UNIT_HEAD}
    assert duties_in(DIRECTORY, "luomin") == {Duty.HR}
    assert duties_in(DIRECTORY, "liangguoqiang") == {Duty.UNIT_HEAD}
    assert duties_in(DIRECTORY, "xuna") == frozenset()
    assert duties_in(DIRECTORY, "nobody") == frozenset()


def _doc(kind: str = "qianbao", unit: str = "finance", author: str = "pengliang") -> DocumentState:
    return DocumentState(
        id=1,
        kind=kind,
        title="t",
        state="reviewing",
        author=author,
        unit=unit,
        steps=(StepState(id=1, name="review", assignee="dengxiuying", action="approve"),),
    )


def test_who_may_see_a_document() -> None:
    doc = _doc()
    assert may_see(doc, "pengliang", DIRECTORY) and may_see(doc, "dengxiuying", DIRECTORY)
    assert not may_see(doc, "xuna", DIRECTORY)
    # The admin page widens it by duty: the office, a head of the unit; not another clerk.
    assert may_view(doc, "wangfang", DIRECTORY, {Duty.OFFICE})
    assert not may_view(doc, "xuna", DIRECTORY, frozenset())
    assert not may_view(doc, "liangguoqiang", DIRECTORY, {Duty.UNIT_HEAD})
    leave = _doc(kind="xiujia")
    assert not may_view(leave, "wangfang", DIRECTORY, {Duty.OFFICE})
    assert may_view(leave, "luomin", DIRECTORY, {Duty.HR})


def test_the_preview_walks_a_sample_through_every_step() -> None:
    def due(now: dt.datetime, days: int, urgency: str | None) -> dt.datetime:
        return now + dt.timedelta(days=days or 1)

    found = walk(
        kind="fawen",
        rules=DEFAULT_RULES,
        directory=DIRECTORY,
        author="xiewenbin",
        to_units=["dalian", "dandong"],
        now=NOW,
        due=due,
    )
    assert found.closed, found.refusal
    assert [s.step for s in found.stages][:3] == ["review", "check", "signoff"]
    assert found.number is not None
    assert "梁國強" in found.stages[0].asked


def test_flows_written_as_toml_read_back_the_same() -> None:
    text = flows_toml(DEFAULT_RULES, list(DEFAULT_RULES.flows))
    again = rules_from_dict(tomllib.loads(text))
    assert dict(again.flows) == dict(DEFAULT_RULES.flows)


def test_the_daemon_follows_a_changed_rules_file(config: Config) -> None:
    # A saved rules file applies to the next lookup, without a restart.
    rules = live_rules(config)
    assert rules.flow("qianbao") == DEFAULT_RULES.flow("qianbao")
    text = flows_toml(DEFAULT_RULES, ["qianbao"]).replace("deadline = 2", "deadline = 9", 1)
    config.rules_file.parent.mkdir(parents=True, exist_ok=True)
    config.rules_file.write_text(text, encoding="utf-8")
    flow = rules.flow("qianbao")
    assert flow is not None and flow.steps[0].deadline == 9
    # A file broken by hand keeps the last good rules in force.
    config.rules_file.write_text("[flows.qianbao\n", encoding="utf-8")
    flow = rules.flow("qianbao")
    assert flow is not None and flow.steps[0].deadline == 9


def test_delegation_store_moves_waiting_steps_and_back(bureau: Context) -> None:
    with bureau.sessions.begin() as session:
        session.add(
            Step(
                document_id=_one_document(bureau, session),
                name="review",
                assignee="liangguoqiang",
                action="approve",
                created_at=NOW,
            )
        )
        session.flush()
        moved = delegations.start_delegation(
            session,
            Delegation(
                delegator="liangguoqiang",
                delegate="songjia",
                starts_at=NOW,
                until=NOW + dt.timedelta(days=3),
            ),
            now=NOW,
        )
        assert moved == 1
        assert delegations.delegation_of(session, "liangguoqiang") is not None
        revoked = delegations.revoke_delegation(session, "liangguoqiang", now=NOW)
        assert revoked is not None and revoked.moved == 1
        assert delegations.revoke_delegation(session, "liangguoqiang", now=NOW) is None


def _one_document(ctx: Context, session: object) -> int:
    from yizhan.mailstore.documents import create_document

    doc = create_document(
        session,  # type: ignore[arg-type]
        kind="qianbao",
        title="t",
        author="xiewenbin",
        unit="inspection",
        urgency=None,
        fields={},
        source_inbound=None,
        now=NOW,
    )
    return doc.id


@pytest.mark.parametrize("language", ["zh_CN", "zh_TW"])
def test_every_page_string_is_translated(language: str) -> None:
    # A page string without a translation would show a clerk English.
    root = str(resources.files("yizhan.templates") / "pages")
    ids = {
        (m if isinstance(m, str) else m[0])
        for _f, _l, m, _c, _x in extract_from_dir(
            root,
            method_map=[("**.html", "jinja2")],
            options_map={"**.html": {"extensions": "jinja2.ext.i18n"}},
        )
    }
    po = resources.files("yizhan.templates") / "locale" / language / "LC_MESSAGES" / "yizhan.po"
    with po.open("rb") as fp:
        translated = {m.id for m in read_po(fp, locale=language) if m.id and m.string}
    assert not ids - translated


def test_the_help_page_has_the_module_guide() -> None:
    from yizhan.admin.help_page import guide_html

    html = guide_html()
    assert "<table>" in html and "fawen@" in html
    assert Path(__file__).resolve().parents[2].joinpath("docs", "modules.md").exists()
