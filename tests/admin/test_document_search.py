"""/documents?q=: a search finds the documents holding every term, as written, among those the
person may see (the office every one, a unit head their unit's, anyone else what they are on)."""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import insert
from starlette.testclient import TestClient

from tests.admin.conftest import login
from yizhan.daemon.context import Context
from yizhan.mailstore.models import Document
from yizhan.mailstore.search import index_document

#: Documents 1..60, written alternately in 檢驗監管處 (inspection) and 衛生檢疫處 (quarantine);
#: every title holds 請示, every third 口岸檢疫 as well.
COUNT = 60
WANTED = "口岸檢疫 請示"
#: Holds every character pair of 口岸檢疫 (口岸, 岸檢, 檢疫) but not the term itself.
PAIRS_ONLY = COUNT + 1


def _title(n: int) -> str:
    if n == PAIRS_ONLY:
        return f"關於檢疫口岸檢查的請示第{n}號"
    topic = "口岸檢疫工作" if n % 3 == 0 else "設備採購"
    return f"關於{topic}的請示第{n}號"


def _author(n: int) -> tuple[str, str]:
    return ("xiewenbin", "inspection") if n % 2 else ("xuna", "quarantine")


def _file_documents(ctx: Context) -> None:
    start = dt.datetime(2026, 11, 2, 1, 0, tzinfo=dt.UTC)
    rows = [
        {
            "id": n,
            "kind": "qianbao",
            "title": _title(n),
            "state": "closed",
            "author": _author(n)[0],
            "unit_id": _author(n)[1],
            "version": 1,
            "fields": {"body": "正文"},
            "created_at": start + dt.timedelta(hours=n),
            "updated_at": start + dt.timedelta(hours=n),
        }
        for n in range(1, PAIRS_ONLY + 1)
    ]
    with ctx.sessions.begin() as session:
        session.execute(insert(Document), rows)
        for row in rows:
            index_document(session, int(row["id"]), {"title": str(row["title"])})


def _found(admin: TestClient, account: str, query: str) -> list[int]:
    admin.cookies.clear()
    login(admin, account)
    page = admin.get("/documents", params={"q": query})
    assert page.status_code == 200
    return [int(n) for n in re.findall(r"的請示第(\d+)號", page.text)]


def test_a_search_lists_what_holds_every_term_among_what_each_may_see(
    admin: TestClient, bureau: Context
) -> None:
    _file_documents(bureau)
    both = [n for n in range(COUNT, 0, -1) if n % 3 == 0]
    # The office sees every one: the twenty holding both terms, newest first, and not the
    # title holding the character pairs of 口岸檢疫 apart.
    assert _found(admin, "wangfang", WANTED) == both
    # A unit head sees their unit's; a clerk on none of them sees none.
    assert _found(admin, "liangguoqiang", WANTED) == [n for n in both if n % 2]
    assert _found(admin, "tangxiaodong", WANTED) == [n for n in both if not n % 2]
    assert _found(admin, "hanxue", WANTED) == []
    # One term that every title holds: the newest fifty (a page's worth), the pairs-only title
    # among them since 請示 stands in it.
    assert _found(admin, "wangfang", "請示") == list(range(PAIRS_ONLY, PAIRS_ONLY - 50, -1))
