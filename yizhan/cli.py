"""The ``yizhan`` command line: one verb per administrative task, each a thin call into the stores.

Every verb exits 0 on success and non-zero with a one-line reason on failure (DESIGN.md).
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import tomllib
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy import inspect

from yizhan.daemon.config import Config, ConfigError, config_path, load_config, new_secret
from yizhan.daemon.context import Context
from yizhan.mailstore import accounts
from yizhan.mailstore.db import upgrade
from yizhan.mailstore.directory import import_directory, load_directory, save_person
from yizhan.routing.directory import ROLES, OrgError, parse_org, person_from_fields

#: The actor recorded in the audit trail for commands typed at the console.
CONSOLE = "console"

DEMO_PASSWORD = "yizhan-demo-2026"


class CliError(Exception):
    """A verb failed; the message is the one line printed to standard error."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run one verb; returns the process exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help(sys.stderr)
        return 2
    handler: Callable[[argparse.Namespace], int | None] = args.handler
    try:
        return handler(args) or 0
    except (CliError, ConfigError, OrgError, accounts.AccountError) as exc:
        print(f"yizhan {args.verb}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="yizhan", description="驛站 Yizhan office automation")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")

    p = verbs.add_parser("init", help="create the data dir, database, secret and TLS certificate")
    p.set_defaults(handler=cmd_init)

    p = verbs.add_parser("serve", help="run the daemon in the foreground")
    p.set_defaults(handler=cmd_serve)

    p = verbs.add_parser("demo", help="create and load the demo bureau")
    p.set_defaults(handler=cmd_demo)

    p = verbs.add_parser("check", help="validate the configuration and the rules")
    p.set_defaults(handler=cmd_check)

    p = verbs.add_parser("queue", help="list outbound mail that waits, and why")
    p.set_defaults(handler=cmd_queue)

    org = verbs.add_parser("org", help="the organisation directory").add_subparsers(
        dest="org_verb", metavar="ACTION", required=True
    )
    p = org.add_parser("import", help="add or update units and people from a TOML file")
    p.add_argument("file", type=Path)
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
    return parser


def _config() -> Config:
    return load_config()


def _open(config: Config | None = None) -> Context:
    """Open the database, refusing to run on one that was never initialised."""
    ctx = Context.open(config or _config())
    if not inspect(ctx.engine).has_table("alembic_version"):
        ctx.close()
        raise CliError("the database is not initialised; run `yizhan init` first")
    upgrade(ctx.engine)
    return ctx


def cmd_init(args: argparse.Namespace) -> None:
    """Create the data dir, the config's secret, the database schema and a TLS certificate."""
    from yizhan.daemon.tls import ensure_certificate

    path = config_path()
    config = _config()
    config.data_dir.mkdir(parents=True, exist_ok=True)
    if not config.secret:
        if path is None:
            path = Path("yizhan.toml")
            path.write_text(
                f'[yizhan]\ndata_dir = "{config.data_dir}"\nsecret = "{new_secret()}"\n',
                encoding="utf-8",
            )
            path.chmod(0o600)
            print(f"wrote {path} with a new secret")
        else:
            config.secret_file.write_text(new_secret() + "\n", encoding="ascii")
            config.secret_file.chmod(0o600)
            print(f"wrote a new secret to {config.secret_file}")
        config = _config()
    ctx = Context.open(config)
    try:
        upgrade(ctx.engine)
        ctx.raw.prepare()
        config.maildir_root.mkdir(parents=True, exist_ok=True)
    finally:
        ctx.close()
    cert, key = config.smtp.tls_cert, config.smtp.tls_key
    if cert and key and ensure_certificate(cert, key, config.smtp.hostname):
        print(f"created a self-signed TLS certificate {cert}")
    print(f"initialised {config.data_dir} (database {ctx.engine.url.render_as_string()})")


def cmd_serve(args: argparse.Namespace) -> None:
    """Run the daemon until SIGTERM or Ctrl-C."""
    from yizhan.daemon.serve import serve

    ctx = _open()
    try:
        serve(ctx)
    finally:
        ctx.close()


def cmd_demo(args: argparse.Namespace) -> None:
    """Load the demo bureau, give every account the demo password, and say how to log in."""
    data = tomllib.loads(
        (resources.files("yizhan.demo") / "bureau.toml").read_text(encoding="utf-8")
    )
    directory = parse_org(data)
    ctx = _open()
    try:
        with ctx.sessions.begin() as session:
            now = ctx.clock()
            counts = import_directory(session, directory, actor=CONSOLE, now=now)
            for account in directory.people:
                accounts.set_password(
                    session,
                    account,
                    DEMO_PASSWORD,
                    temporary=False,
                    actor=CONSOLE,
                    now=now,
                    policy=ctx.login_policy,
                )
        smtp, admin, domain = ctx.config.smtp.listen, ctx.config.admin_listen, ctx.config.domain
    finally:
        ctx.close()
    print(
        f"demo bureau loaded: {len(directory.units)} units, {len(directory.people)} people "
        f"({counts['people_added']} new)\n"
        f"log in from a mail client: SMTP {smtp} (AUTH PLAIN/LOGIN on loopback, STARTTLS "
        f"elsewhere)\n"
        f"  user: an account such as wangfang (王芳, 辦公室 clerk) or lijun (李軍, 局領導)\n"
        f"  password: {DEMO_PASSWORD}\n"
        f"send a document to fawen@{domain}, commands to cmd@{domain}; mail for a person "
        f"lands in {ctx.config.maildir_root}/<account>/\n"
        f"admin page: http://{admin}/"
    )


def cmd_check(args: argparse.Namespace) -> None:
    """Validate the configuration (loading it raises on the first bad key)."""
    config = _config()
    where = config.source or "built-in defaults"
    if not config.secret:
        raise CliError("yizhan.secret is not set; run `yizhan init` to generate one")
    print(f"config OK ({where})")


def cmd_queue(args: argparse.Namespace) -> None:
    """Print the outbound queue."""
    from yizhan.mailstore.outbox import format_queue, queue_listing

    ctx = _open()
    try:
        with ctx.sessions() as session:
            print(format_queue(queue_listing(session), ctx.config.tzinfo))
    finally:
        ctx.close()


def cmd_org_import(args: argparse.Namespace) -> None:
    """Import units and people from an organisation file."""
    try:
        data = tomllib.loads(args.file.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise CliError(f"{args.file} does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise CliError(f"{args.file} is not valid TOML: {exc}") from exc
    directory = parse_org(data)
    ctx = _open()
    try:
        with ctx.sessions.begin() as session:
            counts = import_directory(session, directory, actor=CONSOLE, now=ctx.clock())
    finally:
        ctx.close()
    print(", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in counts.items()))


def cmd_user_add(args: argparse.Namespace) -> None:
    """Add a person with a temporary password, printed once."""
    ctx = _open()
    try:
        with ctx.sessions.begin() as session:
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
    finally:
        ctx.close()
    print(password)


def cmd_user_passwd(args: argparse.Namespace) -> None:
    """Set a password, typed twice at a terminal or read from standard input."""
    if sys.stdin.isatty():
        password = getpass.getpass("new password: ")
        if getpass.getpass("again: ") != password:
            raise CliError("the two passwords differ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    ctx = _open()
    try:
        with ctx.sessions.begin() as session:
            accounts.set_password(
                session,
                args.account,
                password,
                temporary=args.temporary,
                actor=CONSOLE,
                now=ctx.clock(),
                policy=ctx.login_policy,
            )
    finally:
        ctx.close()
    kind = "temporary password (to be changed at first use)" if args.temporary else "password"
    print(f"{args.account}: {kind} set")


def cmd_user_state(args: argparse.Namespace) -> None:
    """Suspend, revoke or re-activate an account."""
    ctx = _open()
    try:
        with ctx.sessions.begin() as session:
            accounts.set_state(session, args.account, args.state, actor=CONSOLE, now=ctx.clock())
    finally:
        ctx.close()
    print(f"{args.account}: {args.state}")


def cmd_user_list(args: argparse.Namespace) -> None:
    """List people and their accounts, as a table or as JSON."""
    ctx = _open()
    try:
        with ctx.sessions() as session:
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
    finally:
        ctx.close()
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=1))
        return
    for row in rows:
        print(
            f"{row['account']:<16} {row['name']:<6} {row['unit']:<12} {row['state']:<10} "
            f"{','.join(row['roles'])}"
        )
