"""The TOML-friendly form of the rules: :func:`rules_to_dict` writes it and
:func:`rules_from_dict` reads it back, naming every mistake it finds."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from yizhan.routing.commands import Verb
from yizhan.routing.rules.defaults import DEFAULT_RULES
from yizhan.routing.rules.model import AUTHOR, Actor, Flow, Rules, RulesError, StepRule

# --- The TOML-friendly form --------------------------------------------------------------------

_STEP_KEYS: Final = frozenset(
    {
        "name",
        "label",
        "state",
        "action",
        "who",
        "roles",
        "units",
        "account",
        "commands",
        "deadline",
        "urgent_deadlines",
        "reject_to",
        "next",
        "optional",
        "parallel",
        "forward_to",
        "names_units",
        "edits_body",
        "template",
        "done_template",
        "prefix",
        "article",
        "when",
    }
)
_FLOW_KEYS: Final = frozenset(
    {
        "label",
        "article",
        "steps",
        "content_rules",
        "needs_scope",
        "close_template",
        "revise_deadline",
        "on_close",
    }
)


def rules_to_dict(rules: Rules) -> dict[str, Any]:
    """The rules as plain data that TOML can hold: ``{"flows": {kind: {..., "steps": [...]}}}``.

    Values that are None are left out, since TOML has no null.
    """
    flows: dict[str, Any] = {}
    for kind, flow in rules.flows.items():
        steps = []
        for s in flow.steps:
            raw: dict[str, Any] = {
                "name": s.name,
                "label": s.label,
                "state": s.state,
                "action": s.action,
                "commands": [v.value for v in s.commands],
                "deadline": s.deadline,
                "urgent_deadlines": dict(s.urgent_deadlines),
                "reject_to": s.reject_to,
                "optional": s.optional,
                "parallel": s.parallel,
                "forward_to": list(s.forward_to),
                "names_units": s.names_units,
                "edits_body": s.edits_body,
                "template": s.template,
                "article": s.article,
            }
            if s.actor is not None:
                raw["who"] = s.actor.kind
                raw["roles"] = list(s.actor.roles)
                raw["units"] = s.actor.units
                if s.actor.account is not None:
                    raw["account"] = s.actor.account
            for key in ("next", "done_template", "prefix", "when"):
                if getattr(s, key) is not None:
                    raw[key] = getattr(s, key)
            steps.append(raw)
        flows[kind] = {
            "label": flow.label,
            "article": flow.article,
            "content_rules": list(flow.content_rules),
            "needs_scope": flow.needs_scope,
            "close_template": flow.close_template,
            "revise_deadline": flow.revise_deadline,
            "steps": steps,
        }
        if flow.on_close is not None:
            flows[kind]["on_close"] = flow.on_close
    return {"flows": flows}


def rules_from_dict(data: Mapping[str, Any], *, base: Rules = DEFAULT_RULES) -> Rules:
    """Rules from their plain-data form (a parsed rules.toml); each flow given replaces ``base``'s.

    Raises :class:`RulesError` listing every problem of form (wrong types, unknown keys or
    commands); problems of meaning are :func:`check_rules`'s.
    """
    problems: list[str] = []
    for key in data:
        if key != "flows":
            problems.append(f"unknown table [{key}]; allowed: [flows.<kind>]")
    raw_flows = data.get("flows", {})
    if not isinstance(raw_flows, Mapping):
        raise RulesError([*problems, "[flows] must be a table of flows by kind"])
    flows = dict(base.flows)
    for kind, raw in raw_flows.items():
        flow = _flow_from_dict(str(kind), raw, problems)
        if flow is not None:
            flows[str(kind)] = flow
    if problems:
        raise RulesError(problems)
    return Rules(flows=MappingProxyType(flows))


def _flow_from_dict(kind: str, raw: Any, problems: list[str]) -> Flow | None:
    where = f"flows.{kind}"
    if not isinstance(raw, Mapping):
        problems.append(f"{where} must be a table")
        return None
    before = len(problems)
    for key in raw:
        if key not in _FLOW_KEYS:
            problems.append(
                f"{where}: unknown key {key!r}; allowed: {', '.join(sorted(_FLOW_KEYS))}"
            )
    raw_steps = raw.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        problems.append(f"{where}: steps must be a non-empty array of tables")
        raw_steps = []
    steps = [_step_from_dict(f"{where}.steps[{i}]", s, problems) for i, s in enumerate(raw_steps)]
    flow = Flow(
        kind=kind,
        label=_get(raw, "label", str, kind, where, problems),
        article=_get(raw, "article", str, "", where, problems),
        content_rules=tuple(_get_list(raw, "content_rules", where, problems)),
        needs_scope=_get(raw, "needs_scope", bool, False, where, problems),
        close_template=_get(raw, "close_template", str, "closed", where, problems),
        revise_deadline=_get(raw, "revise_deadline", int, 5, where, problems),
        on_close=_get(raw, "on_close", str, None, where, problems),
        steps=tuple(s for s in steps if s is not None),
    )
    return flow if len(problems) == before else None


def _step_from_dict(where: str, raw: Any, problems: list[str]) -> StepRule | None:
    if not isinstance(raw, Mapping):
        problems.append(f"{where} must be a table")
        return None
    before = len(problems)
    for key in raw:
        if key not in _STEP_KEYS:
            problems.append(
                f"{where}: unknown key {key!r}; allowed: {', '.join(sorted(_STEP_KEYS))}"
            )
    name = _get(raw, "name", str, "", where, problems)
    if not name:
        problems.append(f"{where}: name is missing")
    commands: list[Verb] = []
    for word in _get_list(raw, "commands", where, problems):
        try:
            commands.append(Verb(word.lower()))
        except ValueError:
            problems.append(f"{where}: unknown command {word!r}")
    urgent = raw.get("urgent_deadlines", {})
    if not isinstance(urgent, Mapping) or not all(
        isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool)
        for k, v in urgent.items()
    ):
        problems.append(f'{where}: urgent_deadlines must be a table such as {{ "加急" = 1 }}')
        urgent = {}
    actor: Actor | None = None
    if "who" in raw:
        actor = Actor(
            kind=_get(raw, "who", str, "", where, problems),
            roles=tuple(_get_list(raw, "roles", where, problems)),
            units=_get(raw, "units", str, "own", where, problems),
            account=_get(raw, "account", str, None, where, problems),
        )
    step = StepRule(
        name=name,
        label=_get(raw, "label", str, name, where, problems),
        state=_get(raw, "state", str, "", where, problems),
        action=_get(raw, "action", str, "", where, problems),
        actor=actor,
        commands=tuple(commands),
        deadline=_get(raw, "deadline", int, 0, where, problems),
        urgent_deadlines=dict(urgent),
        reject_to=_get(raw, "reject_to", str, AUTHOR, where, problems),
        next=_get(raw, "next", str, None, where, problems),
        optional=_get(raw, "optional", bool, False, where, problems),
        parallel=_get(raw, "parallel", bool, False, where, problems),
        forward_to=tuple(_get_list(raw, "forward_to", where, problems)),
        names_units=_get(raw, "names_units", bool, False, where, problems),
        edits_body=_get(raw, "edits_body", bool, False, where, problems),
        template=_get(raw, "template", str, "step_request", where, problems),
        done_template=_get(raw, "done_template", str, None, where, problems),
        prefix=_get(raw, "prefix", str, None, where, problems),
        article=_get(raw, "article", str, "", where, problems),
        when=_get(raw, "when", str, None, where, problems),
    )
    return step if len(problems) == before else None


def _get(
    raw: Mapping[str, Any], key: str, kind: type[Any], default: Any, where: str, problems: list[str]
) -> Any:
    value = raw.get(key, default)
    if value is default:
        return value
    # A bool is an int to Python, but "deadline = true" is a mistake in a rules file.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        problems.append(f"{where}: {key} must be a {kind.__name__}")
        return default
    return value


def _get_list(raw: Mapping[str, Any], key: str, where: str, problems: list[str]) -> list[str]:
    value = raw.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.append(f"{where}: {key} must be a list of strings")
        return []
    return value
