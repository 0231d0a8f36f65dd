"""Checking rules against the organisation (``yizhan check``): every actor, unit and prefix a
flow names must exist, and every step be reachable."""

from __future__ import annotations

from yizhan.routing.commands import Verb
from yizhan.routing.directory import ROLES, UNIT_KINDS, Directory
from yizhan.routing.rules.model import (
    _FIELD_NAME,
    ACTOR_KINDS,
    AUTHOR,
    CLOSE_EFFECT_NAMES,
    CLOSED,
    COMPLETING_VERB,
    CONTENT_RULES,
    FLOW_UNIT_SELECTORS,
    KINDS_REQUIRING_APPROVAL,
    RETURNED,
    REVISE_STEP,
    STEP_ACTIONS,
    TEMPLATES,
    URGENCIES,
    Flow,
    Rules,
    StepRule,
)

# --- Checking rules against the organisation -----------------------------------------------------


def check_rules(rules: Rules, directory: Directory) -> list[str]:
    """Everything wrong with ``rules`` for ``directory``, one line each (for ``yizhan check``)."""
    problems: list[str] = []
    for kind, flow in rules.flows.items():
        problems.extend(f"flow {kind}: {p}" for p in _check_flow(flow, directory))
    return problems


def _check_flow(flow: Flow, directory: Directory) -> list[str]:
    problems: list[str] = []
    names = [s.name for s in flow.steps]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"step {dup!r} appears more than once")
    if not flow.steps:
        problems.append("has no steps")
        return problems
    for rule in flow.content_rules:
        if rule not in CONTENT_RULES:
            problems.append(
                f"unknown content rule {rule!r}; known: {', '.join(sorted(CONTENT_RULES))}"
            )
    if flow.close_template not in TEMPLATES:
        problems.append(f"close_template {flow.close_template!r} is not a known template")
    if flow.revise_deadline < 0:
        problems.append("revise_deadline must not be negative")
    if flow.on_close is not None and flow.on_close not in CLOSE_EFFECT_NAMES:
        problems.append(
            f"on_close {flow.on_close!r}; allowed: {', '.join(sorted(CLOSE_EFFECT_NAMES))}"
        )
    for index, step in enumerate(flow.steps):
        problems.extend(f"step {step.name}: {p}" for p in _check_step(flow, index, step, directory))
    problems.extend(_unreachable(flow))
    if flow.kind in KINDS_REQUIRING_APPROVAL and not any(
        s.action == "approve" and not s.optional and s.when is None for s in _path(flow)
    ):
        problems.append("has no approval step that cannot be skipped, but this kind needs one")
    path = [s.action for s in _path(flow)]
    if "seal" in path and ("number" not in path or path.index("number") > path.index("seal")):
        problems.append("a seal step must come after a number step")
    # The 文號 of an outgoing document is issued only after sign-off; a receipt register number
    # (收文號, with no seal after it) is issued on arrival.
    if (
        "seal" in path
        and "number" in path
        and ("approve" not in path or path.index("approve") > path.index("number"))
    ):
        problems.append("the number before a seal must come after an approval")
    return problems


def _check_step(flow: Flow, index: int, step: StepRule, directory: Directory) -> list[str]:
    problems: list[str] = []
    if step.action not in STEP_ACTIONS:
        problems.append(f"action {step.action!r}; allowed: {', '.join(STEP_ACTIONS)}")
    if step.name == REVISE_STEP:
        problems.append(f"the name {REVISE_STEP!r} is reserved for the author's revision")
    if step.action != "number":
        if not step.state or step.state in (RETURNED, CLOSED):
            problems.append(f"state {step.state!r} must be a name other than returned/closed")
        if step.actor is None:
            problems.append("says nobody acts at it (who is missing)")
        verb = COMPLETING_VERB.get(step.action)
        if verb is not None and verb not in step.commands:
            problems.append(f"does not accept {verb.value}, which completes a {step.action} step")
    elif step.actor is not None or step.commands:
        problems.append("a number step is done by Yizhan: it has no who and no commands")
    for verb in step.commands:
        if verb not in (
            *COMPLETING_VERB.values(),
            Verb.PROGRESS,
            Verb.REJECT,
            Verb.FORWARD,
            Verb.COMMENT,
        ):
            problems.append(f"command {verb.value!r} is not a workflow command")
    if Verb.REJECT in step.commands and step.reject_to != AUTHOR:
        target = flow.step(step.reject_to)
        if target is None:
            problems.append(f"REJECT returns to unknown step {step.reject_to!r}")
        elif flow.steps.index(target) >= index or target.action == "number":
            problems.append(f"REJECT must return to an earlier person's step, not {target.name}")
    if step.when is not None and not _FIELD_NAME.match(step.when):
        problems.append(f"when {step.when!r} must be a field name, or ! and a field name")
    if step.deadline < 0 or any(d < 0 for d in step.urgent_deadlines.values()):
        problems.append("deadlines must not be negative")
    for urgency in step.urgent_deadlines:
        if urgency not in URGENCIES:
            problems.append(f"urgency {urgency!r}; allowed: {', '.join(URGENCIES)}")
    if step.next is not None and step.next != CLOSED and flow.step(step.next) is None:
        problems.append(f"next step {step.next!r} is not a step of this flow")
    for name in (step.template, step.done_template):
        if name is not None and name not in TEMPLATES:
            problems.append(f"template {name!r} is not a known template")
    if step.edits_body and step.action != "approve":
        problems.append("edits_body needs an approve step: the edited text comes with APPROVE")
    for r in step.forward_to:
        if r not in ROLES:
            problems.append(f"forward_to role {r!r}; allowed: {', '.join(ROLES)}")
    if step.action == "number":
        problems.extend(_check_prefix(step, directory))
    if step.actor is not None:
        problems.extend(_check_actor(step, directory))
    return problems


def _check_actor(step: StepRule, directory: Directory) -> list[str]:
    actor = step.actor
    assert actor is not None
    problems: list[str] = []
    if actor.kind not in ACTOR_KINDS:
        return [f"who {actor.kind!r}; allowed: {', '.join(ACTOR_KINDS)}"]
    if actor.kind == "person":
        person = directory.people.get(actor.account or "")
        if person is None or person.state != "active":
            problems.append(f"account {actor.account!r} is not an active person")
    if actor.kind == "signoff_leader" and not directory.with_role("bureau_leader"):
        problems.append("no one is a bureau_leader, so no one can sign off")
    if actor.kind == "role":
        if not actor.roles:
            problems.append("who = role needs roles")
        for r in actor.roles:
            if r not in ROLES:
                problems.append(f"unknown role {r!r}; allowed: {', '.join(ROLES)}")
        units = actor.units
        if units.startswith("kind:"):
            kind = units.removeprefix("kind:")
            if kind not in UNIT_KINDS:
                problems.append(f"unit kind {kind!r}; allowed: {', '.join(UNIT_KINDS)}")
            elif not directory.units_of_kind(kind):
                problems.append(f"no unit of kind {kind!r} in the organisation")
            elif not any(
                directory.members(directory.units_of_kind(kind)[0].id, r) for r in actor.roles
            ):
                problems.append(f"no one in the {kind} unit holds {' or '.join(actor.roles)}")
        elif units not in FLOW_UNIT_SELECTORS:
            problems.append(
                f"units {units!r}; allowed: {', '.join(FLOW_UNIT_SELECTORS)}, kind:<unit kind>"
            )
        elif units == "bureau" and not directory.units_of_kind("bureau"):
            problems.append("no unit of kind 'bureau' in the organisation")
    if actor.per_unit != step.parallel:
        problems.append(
            "parallel must be true exactly when one person per unit acts "
            "(units = scope, scope_others or instructed)"
        )
    return problems


def _check_prefix(step: StepRule, directory: Directory) -> list[str]:
    if step.prefix is not None:
        return [] if step.prefix.strip() else ["prefix must not be empty"]
    bureau = directory.units_of_kind("bureau")
    if bureau and bureau[0].prefix:
        return []
    missing = [u.id for u in directory.units.values() if not u.prefix]
    if missing:
        return [
            "numbers use the document unit's prefix, but the bureau has none to fall back on "
            f"and these units have none: {', '.join(sorted(missing))}"
        ]
    return []


def _path(flow: Flow) -> list[StepRule]:
    """The steps in the order a document goes through them (following ``next``)."""
    path: list[StepRule] = []
    step: StepRule | None = flow.steps[0] if flow.steps else None
    while step is not None and step not in path:
        path.append(step)
        step = flow.following(step)
    return path


def _unreachable(flow: Flow) -> list[str]:
    problems: list[str] = []
    path = _path(flow)
    for step in flow.steps:
        if step not in path:
            problems.append(f"step {step.name} can never be reached")
    # Handling units exist only once a leader's instruction (批示) has named them.
    named = False
    for step in path:
        if step.actor is not None and step.actor.units == "instructed" and not named:
            problems.append(f"step {step.name}: no earlier step names the instructed units")
        named = named or step.names_units
    last = path[-1] if path else None
    if last is not None and last.next not in (None, CLOSED):
        problems.append(f"step {last.name}: its next step leads back into the flow (a loop)")
    return problems
