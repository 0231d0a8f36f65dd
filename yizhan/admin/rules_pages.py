"""The office's and IT's /rules: edit ``<data_dir>/rules.toml`` with ``yizhan check``'s validation,
a preview of a sample document through the changed flow, every saved version kept, and a diff.

A save writes the file the daemons read (``daemon.rules_file`` follows it), so the next
document opened follows the new rules without a restart.
"""

from __future__ import annotations

import difflib
import functools
import tomllib
from importlib import resources
from typing import Any

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from yizhan.admin.web import Site, Viewer, guard
from yizhan.daemon.config import ConfigError, rules_from_text
from yizhan.mailstore.rules_versions import digest, save_rules, version_text, versions
from yizhan.routing.content import ContentRulesError, content_from_dict
from yizhan.routing.directory import Directory, parse_org
from yizhan.routing.duties import Duty
from yizhan.routing.preview import PreviewWalk, walk
from yizhan.routing.rules import DEFAULT_RULES, Rules, check_rules
from yizhan.routing.rules_toml import flows_toml

__all__ = ["check_text", "routes"]

#: A sample author and addressees per kind, from the demo bureau.
_SAMPLE_AUTHOR = {"shouwen": "wangfang", "duban": "wangfang", "biangeng": "songjia"}
_SAMPLE_UNITS = ("dalian", "dandong")
_MAX_TEXT = 500_000


@functools.cache
def demo_directory() -> Directory:
    """The demo bureau that previews run in."""
    text = (resources.files("yizhan.demo") / "bureau.toml").read_text(encoding="utf-8")
    return parse_org(tomllib.loads(text))


def check_text(site: Site, text: str, directory: Directory) -> tuple[Rules | None, list[str]]:
    """The rules a proposed rules file gives, and what ``yizhan check`` would say is wrong."""
    path = site.ctx.config.rules_file
    try:
        rules = rules_from_text(text, path)
    except ConfigError as exc:
        return None, [str(exc)]
    problems: list[str] = []
    content = tomllib.loads(text).get("content", {})
    try:
        if not isinstance(content, dict):
            raise ContentRulesError(["[content] must be a table"])
        content_from_dict(content)
    except ContentRulesError as exc:
        problems.append(str(ConfigError("rules [content]", "; ".join(exc.problems))))
    found = check_rules(rules, directory) if directory.units else []
    if found:
        problems.append(f"{len(found)} problem(s) in the rules: " + "; ".join(found))
    return (rules if not problems else None), problems


def routes(site: Site) -> list[Route]:
    """/rules, its check/preview/save form, a saved version, and a diff of two."""
    editors = [Duty.OFFICE, Duty.IT]

    def current_text() -> str:
        path = site.ctx.config.rules_file
        return path.read_text(encoding="utf-8") if path.exists() else ""

    async def page(request: Request, viewer: Viewer, **extra: Any) -> Response:
        text = extra.pop("text", None)
        if text is None:
            text = await run_in_threadpool(current_text)
            start = request.query_params.get("flow", "")
            if start in DEFAULT_RULES.flows and f"[flows.{start}]" not in text:
                text = (text.rstrip() + "\n\n" if text.strip() else "") + flows_toml(
                    site.ctx.rules, [start]
                )
        listed = await site.db(lambda s: versions(s))
        demo = demo_directory()
        return site.render(
            request,
            viewer,
            "rules.html",
            text=text,
            versions=listed,
            flows=site.ctx.rules.flows,
            kinds=sorted(DEFAULT_RULES.flows),
            people=sorted(demo.people.values(), key=lambda p: (p.unit, p.account)),
            units=sorted(demo.units.values(), key=lambda u: u.id),
            sample_units=extra.pop("sample_units", _SAMPLE_UNITS),
            kind=extra.pop("kind", "fawen"),
            author=extra.pop("author", ""),
            source=str(site.ctx.config.rules_file),
            **extra,
        )

    async def show(request: Request, viewer: Viewer) -> Response:
        saved = request.query_params.get("saved")
        notice = (
            site.text(viewer, "Saved; the next document follows these rules.") if saved else None
        )
        return await page(request, viewer, notice=(f"{notice} (#{saved})" if notice else None))

    async def submit(request: Request, viewer: Viewer) -> Response:
        form = await request.form()
        text = str(form.get("text", ""))[:_MAX_TEXT].replace("\r\n", "\n")
        action = str(form.get("do", "check"))
        kind = str(form.get("kind", "fawen"))
        author = str(form.get("author", "")) or _SAMPLE_AUTHOR.get(kind, "xiewenbin")
        units = [str(u) for u in form.getlist("units")] or list(_SAMPLE_UNITS)
        note = str(form.get("note", ""))[:500]
        directory = await run_in_threadpool(site.directory)
        rules, problems = await run_in_threadpool(check_text, site, text, directory)
        keep = {"text": text, "kind": kind, "author": author, "sample_units": units}
        if rules is None:
            return await page(request, viewer, problems=problems, status_code=400, **keep)
        if action == "preview":
            preview = await run_in_threadpool(_preview, site, rules, kind, author, units)
            return await page(request, viewer, preview=preview, checked=True, **keep)
        if action == "save":
            if digest(text) == digest(await run_in_threadpool(current_text)):
                return await page(
                    request, viewer, notice=site.text(viewer, "Nothing changed."), **keep
                )
            path = site.ctx.config.rules_file
            version = await site.write(
                lambda s: save_rules(s, path, text, actor=viewer.account, now=site.now(), note=note)
            )
            return RedirectResponse(f"/rules?saved={version}", status_code=303)
        return await page(request, viewer, checked=True, **keep)

    async def version(request: Request, viewer: Viewer) -> Response:
        version_id = _int(request.path_params.get("version"))
        text = await site.db(lambda s: version_text(s, version_id)) if version_id else None
        if text is None:
            return await page(request, viewer, error=site.text(viewer, "No such version."))
        return site.render(request, viewer, "rules_version.html", version_id=version_id, body=text)

    async def diff(request: Request, viewer: Viewer) -> Response:
        a = _int(request.query_params.get("a"))
        b = _int(request.query_params.get("b"))

        def read(session: Session) -> tuple[str | None, str | None]:
            return (
                version_text(session, a) if a else "",
                version_text(session, b) if b else None,
            )

        old, new = await site.db(read)
        if old is None or new is None:
            return await page(request, viewer, error=site.text(viewer, "No such version."))
        lines = list(
            difflib.unified_diff(
                old.splitlines(), new.splitlines(), f"#{a or 0}", f"#{b}", lineterm=""
            )
        )
        return site.render(request, viewer, "rules_diff.html", a=a, b=b, lines=lines)

    return [
        Route("/rules", guard(site, show, needs=editors), methods=["GET"]),
        Route("/rules", guard(site, submit, needs=editors), methods=["POST"]),
        Route("/rules/diff", guard(site, diff, needs=editors), methods=["GET"]),
        Route("/rules/{version}", guard(site, version, needs=editors), methods=["GET"]),
    ]


def _preview(site: Site, rules: Rules, kind: str, author: str, units: list[str]) -> PreviewWalk:
    calendar = site.ctx.config.work_calendar()
    directory = demo_directory()
    if author not in directory.people:
        author = _SAMPLE_AUTHOR.get(kind, "xiewenbin")
    return walk(
        kind=kind,
        rules=rules,
        directory=directory,
        author=author,
        to_units=[u for u in units if u in directory.units],
        now=site.now(),
        due=calendar.due,
    )


def _int(value: Any) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None
