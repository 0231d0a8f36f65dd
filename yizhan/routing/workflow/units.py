"""The units a document or an instruction (批示) names, and the leader who signs off a unit's
documents."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from yizhan.routing.directory import Directory
from yizhan.routing.duties import leader_in_charge

# Separators between unit references in an instruction: "檢驗監管處、衛生檢疫處", "it, hr".
_UNIT_SEPARATORS: Final = re.compile(r"[\s,，、;；:：。.]+")


def units_in_scope(fields: Mapping[str, Any]) -> list[str]:
    """Every unit a document is addressed to: 主送, then 抄送, then 範圍, each once."""
    units: list[str] = []
    for key in ("to_units", "cc_units", "scope_units"):
        for unit in fields.get(key, ()):
            if unit not in units:
                units.append(unit)
    return units


def signoff_leader(directory: Directory, unit_id: str) -> tuple[str, str] | None:
    """The bureau leader who signs off ``unit_id``'s documents, and why it is them.

    See ``routing.duties.leader_in_charge``.
    """
    return leader_in_charge(directory, unit_id)


def named_units(directory: Directory, argument: str, text: str = "") -> list[str]:
    """The units an instruction (批示) names, as ids in the order written.

    Unit ids count only as whole words of the command's own line (``argument``), so that an
    English "it" in the text below is not the IT department; unit names count anywhere in
    ``argument`` or ``text``. The bureau itself is never a handling unit.
    """
    found: dict[int, str] = {}
    offset = 0
    for token in _UNIT_SEPARATORS.split(argument):
        position = argument.find(token, offset)
        offset = position + len(token)
        unit = directory.units.get(token)
        if token and unit is not None and unit.kind != "bureau":
            found.setdefault(position, unit.id)
    whole = f"{argument}\n{text}"
    # Longest names first, so that a name inside a longer one is not counted twice.
    for unit in sorted(directory.units.values(), key=lambda u: -len(u.name)):
        if unit.kind == "bureau" or unit.id in found.values():
            continue
        position = whole.find(unit.name)
        if position >= 0:
            found[position] = unit.id
            whole = whole.replace(unit.name, "\0" * len(unit.name))
    return list(dict.fromkeys(found[p] for p in sorted(found)))
