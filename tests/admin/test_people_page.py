"""/people (第十六條): each person's row offers a move to another unit, their own unit chosen."""

from __future__ import annotations

import re

from starlette.testclient import TestClient

from tests.admin.conftest import csrf_of, login


def _chosen_unit(html: str, account: str) -> list[str]:
    """The units selected in the move form of ``account``'s row."""
    form = re.search(rf'action="/people/{account}/move">(.*?)</form>', html, flags=re.DOTALL)
    assert form, f"no move form for {account}"
    unit_list = re.search(r'<select name="unit">(.*?)</select>', form[1], flags=re.DOTALL)
    assert unit_list
    return re.findall(r'<option value="([^"]+)" selected>', unit_list[1])


def test_the_move_form_shows_each_person_s_unit_and_follows_a_move(admin: TestClient) -> None:
    login(admin, "mali")
    page = admin.get("/people", params={"q": "xiewenbin"})
    assert _chosen_unit(page.text, "xiewenbin") == ["inspection"]
    moved = admin.post(
        "/people/xiewenbin/move",
        data={"csrf_token": csrf_of(page.text), "unit": "quarantine", "roles": "staff"},
    )
    assert moved.status_code == 200
    again = admin.get("/people", params={"q": "xiewenbin"})
    assert _chosen_unit(again.text, "xiewenbin") == ["quarantine"]
    # Everyone's row has their own unit chosen, one each.
    everyone = admin.get("/people")
    rows = re.findall(
        r"<tr>\s*<td>([a-z]+)</td>\s*<td>[^<]*</td>\s*<td>([a-z_]+)</td>", everyone.text
    )
    assert len(rows) > 20
    for account, unit in rows:
        assert _chosen_unit(everyone.text, account) == [unit]
