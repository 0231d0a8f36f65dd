"""The ``org import`` and ``user …`` verbs: the organisation and its accounts."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import tomllib
from pathlib import Path
from typing import Any

from yizhan.cli.base import CONSOLE, CliError, Verbs, opened
from yizhan.daemon.desk.acting import hand_over_moves, hand_over_work, standing_request
from yizhan.daemon.desk.parts import Desk
from yizhan.mailstore import accounts
from yizhan.mailstore.directory import (
    import_directory,
    load_directory,
    record_creation,
    save_person,
)
from yizhan.routing.directory import ROLES, parse_org, person_from_fields


def operator() -> str:
    """Who acts at the console: its login name, for the account file (mine rules 一(二))."""
    try:
        login = getpass.getuser()
    except (KeyError, OSError):
        login = "unknown"
    return f"{CONSOLE}:{login}"[:64]


def cmd_org_import(args: argparse.Namespace) -> None:
    """Import units and people from an organisation file."""
    try:
        data = tomllib.loads(args.file.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise CliError(f"{args.file} does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise CliError(f"{args.file} is not valid TOML: {exc}") from exc
    directory = parse_org(data)
    with opened() as ctx, ctx.sessions.begin() as session:
        before = load_directory(session)
        now = ctx.clock()
        counts = import_directory(
            session,
            directory,
            actor=operator(),
            now=now,
            reason=args.reason or f"org import {args.file.name}",
        )
        # Someone the file moves to another unit leaves no work stuck in the old one (第十條).
        request = standing_request(
            Desk(ctx), session, account=CONSOLE, key=f"cli:import:{now.isoformat()}", now=now
        )
        counts["steps_handed_over"] = hand_over_moves(request, before)
    print(", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in counts.items()))


def cmd_user_add(args: argparse.Namespace) -> None:
    """Add a person with a temporary password, printed once."""
    with opened() as ctx, ctx.sessions.begin() as session:
        directory = load_directory(session)
        if args.account in directory.people:
            raise CliError(f"account {args.account} already exists")
        unit = directory.unit_by_ref(args.unit)
        if unit is None:
            raise CliError(f"no unit {args.unit!r}; see the unit ids in the org file")
        fields = {"account": args.account, "name": args.name, "unit": unit.id}
        person = person_from_fields(
            {**fields, "roles": args.roles, **({"email": args.email} if args.email else {})}
        )
        if person.email and directory.person_by_address(person.email, ctx.config.domain):
            raise CliError(f"{person.email} already belongs to another person")
        now = ctx.clock()
        save_person(session, person, now=now)
        # Who made the account and why, as an approved change request records it (一(二)).
        record_creation(
            session, person.account, created_by=operator(), reason=args.reason or "", now=now
        )
        password = accounts.new_temporary_password()
        accounts.set_password(
            session,
            person.account,
            password,
            temporary=True,
            actor=CONSOLE,
            now=now,
            policy=ctx.login_policy,
        )
    print(password)


def cmd_user_passwd(args: argparse.Namespace) -> None:
    """Set a password, typed twice at a terminal or read from standard input."""
    if sys.stdin.isatty():
        password = getpass.getpass("new password: ")
        if getpass.getpass("again: ") != password:
            raise CliError("the two passwords differ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    with opened() as ctx, ctx.sessions.begin() as session:
        accounts.set_password(
            session,
            args.account,
            password,
            temporary=args.temporary,
            actor=CONSOLE,
            now=ctx.clock(),
            policy=ctx.login_policy,
        )
    kind = "temporary password (to be changed at first use)" if args.temporary else "password"
    print(f"{args.account}: {kind} set")


def cmd_user_state(args: argparse.Namespace) -> None:
    """Suspend, revoke or re-activate an account."""
    with opened() as ctx, ctx.sessions.begin() as session:
        now = ctx.clock()
        person = load_directory(session).people.get(args.account)
        accounts.set_state(session, args.account, args.state, actor=CONSOLE, now=now)
        moved = 0
        if person is not None and args.state != "active":
            # Nothing stays stuck with someone who cannot log in (第十條).
            request = standing_request(
                Desk(ctx),
                session,
                account=CONSOLE,
                key=f"cli:{args.state}:{args.account}:{now.isoformat()}",
                now=now,
            )
            moved = hand_over_work(request, account=args.account, unit=person.unit, why=args.state)
    print(
        f"{args.account}: {args.state}"
        + (f"; {moved} waiting step(s) handed over" if moved else "")
    )


def cmd_user_list(args: argparse.Namespace) -> None:
    """List people and their accounts, as a table or as JSON."""
    with opened() as ctx, ctx.sessions() as session:
        rows: list[dict[str, Any]] = [
            {
                "account": person.account,
                "name": person.name,
                "unit": person.unit_id,
                "roles": [r.role for r in person.roles],
                "email": person.email,
                "state": account.state,
            }
            for person, account in accounts.list_accounts(session)
        ]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=1))
        return
    for row in rows:
        print(
            f"{row['account']:<16} {row['name']:<6} {row['unit']:<12} {row['state']:<10} "
            f"{','.join(row['roles'])}"
        )


def add_parser(verbs: Verbs) -> None:
    """Add ``org import`` and ``user add|passwd|suspend|revoke|activate|list``."""
    org = verbs.add_parser("org", help="the organisation directory").add_subparsers(
        dest="org_verb", metavar="ACTION", required=True
    )
    p = org.add_parser("import", help="add or update units and people from a TOML file")
    p.add_argument("file", type=Path)
    p.add_argument("--reason", help="why (recorded for each new account)")
    p.set_defaults(handler=cmd_org_import)

    user = verbs.add_parser("user", help="accounts").add_subparsers(
        dest="user_verb", metavar="ACTION", required=True
    )
    p = user.add_parser("add", help="add a person; prints a temporary password")
    p.add_argument("account")
    p.add_argument("--name", required=True, help="real name (實名)")
    p.add_argument("--unit", required=True, help="unit id or name")
    p.add_argument("--role", action="append", required=True, choices=ROLES, dest="roles")
    p.add_argument("--email", help="the person's own mailbox")
    p.add_argument("--reason", help="why the account is made (recorded with who made it)")
    p.set_defaults(handler=cmd_user_add)
    p = user.add_parser("passwd", help="set a password (read from stdin when not a terminal)")
    p.add_argument("account")
    p.add_argument("--temporary", action="store_true", help="must be changed at first use")
    p.set_defaults(handler=cmd_user_passwd)
    for verb, state, text in (
        ("suspend", "suspended", "stop an account from logging in"),
        ("revoke", "revoked", "close the account of a person who left their post"),
        ("activate", "active", "let a suspended account log in again"),
    ):
        p = user.add_parser(verb, help=text)
        p.add_argument("account")
        p.set_defaults(handler=cmd_user_state, state=state)
    p = user.add_parser("list", help="list people and accounts")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_user_list)
