"""Who may see a document: the rule STATUS, SEARCH and GET #id answer by, and the admin page's.

A person sees what they took part in: a document they wrote, were asked to act on (or acted
on for someone, 第九條) or are named in the trail of; the office sees every document but leave
and internal material, to oversee them (第六條). Beyond that, a published bulletin is
seen by those it was published to, and the year-end archive by the office (第二十三條); an
internal material by the people in its scope (第十七條). Nobody else sees anything by mail.
The admin page (:func:`may_view`) widens this by a person's duties (``routing.duties``): the
office sees every document but leave (第六條), HR the leave documents, a unit head their unit's.
"""

from __future__ import annotations

from collections.abc import Collection

from yizhan.routing import bulletins, materials
from yizhan.routing.directory import Directory
from yizhan.routing.documents import DocumentState
from yizhan.routing.duties import Duty

__all__ = ["LEAVE_KIND", "may_see", "may_view", "office_oversees", "took_part"]

#: The leave module's documents (休假管理), run by HR (第六條).
LEAVE_KIND = "xiujia"


def took_part(state: DocumentState, account: str) -> bool:
    """Whether ``account`` wrote ``state``, holds or held one of its steps (for themselves or
    for someone as delegate), or is named in its trail."""
    return (
        account == state.author
        or any(account in (s.assignee, s.on_behalf_of, s.done_by) for s in state.steps)
        or account in {e.actor for e in state.trail}
    )


def office_oversees(kind: str, account: str, directory: Directory) -> bool:
    """Whether ``account`` sees every document of ``kind`` as the office (第六條: the office runs
    every module but leave, which is HR's; internal material keeps to its scope, 第十七條)."""
    person = directory.people.get(account)
    return (
        kind not in (LEAVE_KIND, materials.KIND)
        and person is not None
        and person.state == "active"
        and directory.in_unit_of_kind(account, "office")
    )


def may_see(state: DocumentState, account: str, directory: Directory) -> bool:
    """Whether ``account`` may see ``state`` (see the module docstring)."""
    if state.kind == materials.KIND:
        return materials.in_scope(state.fields, state.author, account, directory)
    if took_part(state, account) or office_oversees(state.kind, account, directory):
        return True
    return state.kind == "gonggao" and bulletins.may_read(
        state.state,
        state.fields,
        account,
        in_office=directory.in_unit_of_kind(account, "office"),
    )


def may_view(
    state: DocumentState, account: str, directory: Directory, duties: Collection[Duty]
) -> bool:
    """Whether the admin page shows ``state`` to ``account``, who has ``duties``.

    Beyond :func:`may_see`: the office every document but leave and internal material, HR
    every leave document, a unit head every document of their unit.
    """
    if state.kind != materials.KIND:
        if Duty.OFFICE in duties and state.kind != LEAVE_KIND:
            return True
        if Duty.HR in duties and state.kind == LEAVE_KIND:
            return True
        person = directory.people.get(account)
        if Duty.UNIT_HEAD in duties and person is not None and person.unit == state.unit:
            return True
    return may_see(state, account, directory)
