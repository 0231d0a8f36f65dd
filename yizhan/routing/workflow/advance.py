"""Moving a document through its flow: the next steps, whom they ask, and the checks of
content and scope on the way."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from yizhan.routing.directory import Directory
from yizhan.routing.documents import DocumentState, Notice, StepState
from yizhan.routing.rules import (
    CLOSED,
    CONTENT_RULES,
    Actor,
    Flow,
    StepRule,
)
from yizhan.routing.workflow.base import _Ctx, _Refused, _selector_text, _Stage, _variables
from yizhan.routing.workflow.units import signoff_leader, units_in_scope

# --- Moving through the flow -----------------------------------------------------------------


def _advance(
    ctx: _Ctx,
    doc: DocumentState,
    start: StepRule | None,
    *,
    opinion: str,
    by: str,
    reasons: list[str],
) -> _Stage:
    """Walk from ``start`` to the first step someone must act on, and open it.

    A ``number`` step on the way asks the store for a number (unless the document has one);
    an optional step with nobody to ask is skipped. Past the last step the document closes.
    """
    needs_number: str | None = None
    step = start
    visited: set[str] = set()
    while step is not None:
        if step.name in visited:
            raise _Refused(
                "流程設定有誤（循環），請聯繫辦公室。\nThe rules loop; contact the office.",
                f"the flow loops at {step.name}",
            )
        visited.add(step.name)
        if not step.applies(doc.fields):
            reasons.append(f"{step.name}: only when {step.when}; skipped")
            step = ctx.flow.following(step)
            continue
        if step.action == "number":
            if doc.number is None:
                needs_number = _prefix(ctx.directory, doc, step)
                reasons.append(f"{step.article}: {step.name} allocates a {needs_number} number")
            else:
                reasons.append(f"{step.name}: keeps {doc.number}; numbers are never reissued")
            step = ctx.flow.following(step)
            continue
        targets = _resolve(ctx, doc, step)
        if not targets and step.optional:
            reasons.append(f"{step.name}: optional, and no unit to ask; skipped")
            step = ctx.flow.following(step)
            continue
        if not targets:
            raise _Refused(
                f"{step.label}無人可送：請指明單位。\n"
                f"No one to ask for {step.name}: name the units.",
                f"{step.name} resolves to nobody",
            )
        opened = tuple(
            StepState(
                id=None,
                name=step.name,
                assignee=account,
                action=step.action,
                due_at=ctx.due(ctx.now, step.deadline_for(doc.urgency), doc.urgency),
                unit=unit,
            )
            for unit, account in targets
        )
        notices = tuple(
            Notice(
                to=s.assignee,
                template=step.template,
                action=step.action,
                step_index=i,
                variables={
                    **_variables(doc, step, opinion=opinion, by=by),
                    "due_at": s.due_at,
                    "unit": s.unit,
                },
            )
            for i, s in enumerate(opened)
        )
        reasons.append(
            f"{step.article}: {step.name} ({step.label}) asks "
            f"{', '.join(a for _, a in targets)} by {_selector_text(step.actor)}, "
            f"{step.deadline_for(doc.urgency)} working day(s)"
        )
        return _Stage(step.state, step, opened, notices, needs_number)
    return _Stage(CLOSED, None, (), (), needs_number)


def _resolve(ctx: _Ctx, doc: DocumentState, step: StepRule) -> list[tuple[str | None, str]]:
    """Who acts at ``step`` for ``doc``: (unit, account) pairs, one per unit for parallel steps."""
    actor = step.actor
    if actor is None:
        return []
    if actor.kind == "author":
        return [(doc.unit, doc.author)]
    if actor.kind == "person":
        person = ctx.directory.people.get(actor.account or "")
        if person is None or person.state != "active":
            raise _Refused(
                f"{step.label}指定的人員（{actor.account}）不在職，請聯繫辦公室。\n"
                f"The person set for {step.name} ({actor.account}) is not active.",
                f"{actor.account} is not active",
            )
        return [(person.unit, person.account)]
    if actor.kind == "signoff_leader":
        found = signoff_leader(ctx.directory, doc.unit)
        if found is None:
            raise _Refused(
                "沒有局領導可以簽發，請聯繫辦公室。\nNo bureau leader can sign off.",
                "no bureau_leader",
            )
        return [(None, found[0])]
    pairs: list[tuple[str | None, str]] = []
    for unit in _actor_units(ctx, doc, actor):
        holder = next(
            (m for r in actor.roles for m in ctx.directory.members(unit, r)),
            None,
        )
        if holder is None:
            name = ctx.directory.units[unit].name if unit in ctx.directory.units else unit
            raise _Refused(
                f"單位「{name}」沒有{'或'.join(actor.roles)}可送{step.label}，"
                "請改選單位或聯繫管理員。\n"
                f"Unit {unit} has no {' or '.join(actor.roles)} for {step.name}; choose other "
                "units or ask the administrator.",
                f"no {'/'.join(actor.roles)} in {unit}",
            )
        pairs.append((unit, holder.account))
    return pairs


def _actor_units(ctx: _Ctx, doc: DocumentState, actor: Actor) -> list[str]:
    """The units a ``role`` actor is looked up in."""
    if actor.units == "own":
        return [doc.unit]
    if actor.units == "scope":
        return units_in_scope(doc.fields)
    if actor.units == "scope_others":
        return [u for u in units_in_scope(doc.fields) if u != doc.unit]
    if actor.units == "instructed":
        return list(doc.fields.get("handling_units", ()))
    kind = "bureau" if actor.units == "bureau" else actor.units.removeprefix("kind:")
    units = ctx.directory.units_of_kind(kind)
    if not units:
        raise _Refused(
            f"組織中沒有{kind}類單位，請聯繫管理員。\nThe organisation has no {kind} unit.",
            f"no unit of kind {kind}",
        )
    return [units[0].id]


def _prefix(directory: Directory, doc: DocumentState, step: StepRule) -> str:
    """The number prefix at a number step: its own, else the unit's, else the bureau's."""
    if step.prefix:
        return step.prefix
    unit = directory.units.get(doc.unit)
    if unit is not None and unit.prefix:
        return unit.prefix
    for bureau in directory.units_of_kind("bureau"):
        if bureau.prefix:
            return bureau.prefix
    raise _Refused(
        "本單位和本局都沒有設定文號前綴，請聯繫管理員。\n"
        "Neither the unit nor the bureau has a number prefix; ask the administrator.",
        f"no prefix for {doc.unit}",
    )


def _check_content(
    flow: Flow,
    *,
    classified: bool,
    forwards_document: bool,
    facts: Mapping[str, bool] | None = None,
) -> list[str]:
    """Refuse content the flow's rules forbid; the reasons of the rules that passed."""
    facts = {**(facts or {}), "classified": classified, "forwards_document": forwards_document}
    reasons = []
    for name in flow.content_rules:
        rule = CONTENT_RULES[name]
        if facts.get(rule.fact, False):
            raise _Refused(rule.reply, f"{rule.article}: {name} ({rule.fact})")
        reasons.append(f"{rule.article}: {name} passed")
    return reasons


def _unit_fields(
    directory: Directory,
    to_units: Sequence[str],
    cc_units: Sequence[str],
    scope_units: Sequence[str],
) -> dict[str, list[str]]:
    """The unit lists as ids; refuses naming every reference that is no unit."""
    unknown: list[str] = []
    result: dict[str, list[str]] = {}
    for key, refs in (("to_units", to_units), ("cc_units", cc_units), ("scope_units", scope_units)):
        ids: list[str] = []
        for ref in refs:
            unit = directory.unit_by_ref(ref)
            if unit is None:
                unknown.append(ref)
            elif unit.id not in ids:
                ids.append(unit.id)
        result[key] = ids
    if unknown:
        raise _Refused(
            f"不認識的單位：{'、'.join(unknown)}。請寫單位名稱或代號（如 辦公室 或 office）。\n"
            f"Unknown units: {', '.join(unknown)}. Write unit names or ids (辦公室 or office).",
            f"unknown units {unknown}",
        )
    return result


def _check_scope(ctx: _Ctx, doc: DocumentState) -> None:
    """A flow that distributes needs at least one unit to send to."""
    if ctx.flow.needs_scope and not units_in_scope(doc.fields):
        raise _Refused(
            "請在正文開頭寫明主送單位，例如「主送：檢驗監管處、大連分局」。\n"
            "Name the units it goes to at the top of the body, e.g. “To-Units: inspection”.",
            "no unit in scope",
        )


def _check_resolvable(ctx: _Ctx, doc: DocumentState) -> None:
    """Refuse now, rather than halfway, a document some later step could not be sent on from."""
    for step in ctx.flow.steps:
        if step.actor is None or step.actor.units == "instructed" or not step.applies(doc.fields):
            continue
        if not _resolve(ctx, doc, step) and not step.optional:
            raise _Refused(
                f"{step.label}無單位可送：請在主送/抄送中寫明其他單位。\n"
                f"No unit to send to for {step.name}: name other units in To-Units/Cc-Units.",
                f"{step.name} would resolve to nobody",
            )
