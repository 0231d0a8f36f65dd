"""Writes flows as the TOML text a rules file holds, so that an edit can start from a built-in flow.

``rules_from_dict(tomllib.loads(flows_toml(rules, kinds)))`` gives the same flows back; only
what :func:`yizhan.routing.rules.rules_to_dict` holds is written (strings, numbers, booleans,
lists of strings, small tables).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from yizhan.routing.rules import Rules, rules_to_dict

__all__ = ["flows_toml"]


def flows_toml(rules: Rules, kinds: Iterable[str]) -> str:
    """The ``[flows.<kind>]`` tables of ``kinds`` as TOML."""
    flows = rules_to_dict(rules)["flows"]
    out: list[str] = []
    for kind in kinds:
        flow = flows.get(kind)
        if flow is None:
            continue
        out.append(f"[flows.{_key(kind)}]")
        out.extend(f"{_key(k)} = {_value(v)}" for k, v in flow.items() if k != "steps")
        for step in flow["steps"]:
            out.append("")
            out.append(f"[[flows.{_key(kind)}.steps]]")
            out.extend(f"{_key(k)} = {_value(v)}" for k, v in step.items())
        out.append("")
    return "\n".join(out)


def _key(name: str) -> str:
    return (
        name
        if name.replace("_", "").replace("-", "").isalnum() and name.isascii()
        else _string(name)
    )


def _string(text: str) -> str:
    # A JSON string is a valid TOML basic string for the characters rules use.
    return json.dumps(text, ensure_ascii=False)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, Mapping):
        return (
            "{ " + ", ".join(f"{_key(str(k))} = {_value(v)}" for k, v in value.items()) + " }"
            if value
            else "{}"
        )
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")
