"""Decides who may see a document: the people on it, a bulletin's readers, a material's scope.

The rule STATUS and SEARCH apply at cmd@ (``Desk._may_see`` and ``Finder.may_see`` today; the
desk is to call :func:`may_see` once its refactor lands), and, widened by a person's duties
(``routing.duties``), the rule of the admin page (:func:`may_view`): the office sees every
document but leave (第六條), HR the leave documents, a unit head their unit's documents.
"""

from __future__ import annotations

from collections.abc import Collection

from yizhan.routing import bulletins, materials
from yizhan.routing.directory import Directory
from yizhan.routing.documents import DocumentState
from yizhan.routing.duties import Duty

__all__ = ["LEAVE_KIND", "may_see", "may_view"]

#: The leave module's documents (休假管理), run by HR (第六條).
LEAVE_KIND = "xiujia"


def may_see(state: DocumentState, account: str, directory: Directory) -> bool:
    """Whether STATUS and SEARCH show ``state`` to ``account``.

    Its author, the people on its steps (asked, acting for someone, done by) or in its trail,
    a published bulletin's readers (the office also the archive, 第二十三條), and for internal
    material (第十七條) the people in its scope.
    """
    if state.kind == materials.KIND:
        return materials.in_scope(state.fields, state.author, account, directory)
    if (
        account == state.author
        or any(account in (s.assignee, s.on_behalf_of, s.done_by) for s in state.steps)
        or account in {e.actor for e in state.trail}
    ):
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
