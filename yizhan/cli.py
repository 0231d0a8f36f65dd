"""The ``yizhan`` command line: one verb per administrative task, each a thin call into the stores.

Every verb exits 0 on success and non-zero with a one-line reason on failure (DESIGN.md).
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import sys
import tomllib
from collections.abc import Callable, Iterator, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy import inspect

from yizhan.daemon.config import (
    Config,
    ConfigError,
    config_path,
    load_config,
    load_rules,
    new_secret,
)
from yizhan.daemon.content import check_content_rules
from yizhan.daemon.context import Context
from yizhan.daemon.desk import document_json, document_summary
from yizhan.daemon.jobs_cli import add_jobs_parser
from yizhan.daemon.quarantine_cli import add_quarantine_parser
from yizhan.daemon.search_cli import add_search_parser
from yizhan.mailstore import accounts, audit
from yizhan.mailstore.backup import BackupError, backup, restore
from yizhan.mailstore.db import upgrade
from yizhan.mailstore.directory import import_directory, load_directory, save_person
from yizhan.mailstore.documents import find_document, load_state
from yizhan.mailstore.pending import set_aside
from yizhan.routing.directory import ROLES, Directory, OrgError, parse_org, person_from_fields
from yizhan.routing.rules import check_rules
from yizhan.signing.keyring import Keyring, KeyringError, SealInfo

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
    except (
        CliError,
        ConfigError,
        OrgError,
        accounts.AccountError,
        KeyringError,
        BackupError,
    ) as exc:
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

    doc = verbs.add_parser("doc", help="documents").add_subparsers(
        dest="doc_verb", metavar="ACTION", required=True
    )
    p = doc.add_parser("show", help="show a document by id or number")
    p.add_argument("ref", metavar="ID|NUMBER")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_doc_show)

    p = verbs.add_parser("queue", help="list outbound mail that waits, and why")
    p.set_defaults(handler=cmd_queue)

    seal = verbs.add_parser("seal", help="electronic seals (第十八條)").add_subparsers(
        dest="seal_verb", metavar="ACTION", required=True
    )
    p = seal.add_parser("create", help="create a unit's seal key, kept by a custodian")
    p.add_argument("unit")
    p.add_argument("--custodian", required=True, metavar="ACCOUNT")
    p.set_defaults(handler=cmd_seal_create)
    p = seal.add_parser("list", help="seals, fingerprints and custodians")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_seal_list)
    p = seal.add_parser("export", help="a seal's public key, ASCII-armoured, to standard output")
    p.add_argument("unit")
    p.set_defaults(handler=cmd_seal_export)
    for verb, text in (("rotate", "replace a seal's key"), ("revoke", "revoke a seal's key")):
        p = seal.add_parser(verb, help=text)
        p.add_argument("unit")
        p.set_defaults(handler=cmd_seal_change, change=verb)

    key = verbs.add_parser("key", help="people's OpenPGP keys").add_subparsers(
        dest="key_verb", metavar="ACTION", required=True
    )
    p = key.add_parser("import", help="register a person's public key")
    p.add_argument("file", type=Path)
    p.add_argument("--account", help="whose key it is (default: found from the key's addresses)")
    p.set_defaults(handler=cmd_key_import)

    add_jobs_parser(verbs)
    add_quarantine_parser(verbs)
    add_search_parser(verbs)

    tool = verbs.add_parser("tool", help="tools staff fetch with GET at cmd@").add_subparsers(
        dest="tool_verb", metavar="ACTION", required=True
    )
    p = tool.add_parser("add", help="publish a file as a tool (again: a new version)")
    p.add_argument("name")
    p.add_argument("file", type=Path)
    p.add_argument("--description", required=True, help="what it is for, shown in TOOLS")
    p.set_defaults(handler=cmd_tool_add)
    p = tool.add_parser("list", help="published tools")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_tool_list)
    p = tool.add_parser("remove", help="take a tool down")
    p.add_argument("name")
    p.set_defaults(handler=cmd_tool_remove)

    p = verbs.add_parser("backup", help="write a complete backup into a new directory")
    p.add_argument("dir", type=Path)
    p.set_defaults(handler=cmd_backup)
    p = verbs.add_parser("restore", help="load a backup into a new, initialised instance")
    p.add_argument("dir", type=Path)
    p.set_defaults(handler=cmd_restore)

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


@contextlib.contextmanager
def _opened(config: Config | None = None) -> Iterator[Context]:
    """The initialised instance, closed again when the verb is done."""
    ctx = _open(config)
    try:
        yield ctx
    finally:
        ctx.close()


def _audit(ctx: Context, action: str, target: str, detail: Mapping[str, Any]) -> None:
    """Record an administrator's action taken at the console."""
    with ctx.sessions.begin() as session:
        audit.record(
            session, at=ctx.clock(), actor=CONSOLE, action=action, target=target, detail=detail
        )


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
    keyring = Keyring(config.signing.gnupg_home)
    try:
        fingerprint = keyring.ensure_system_key(config.domain)
    finally:
        keyring.close()
    print(f"system signing key {fingerprint}")
    cert, key = config.smtp.tls_cert, config.smtp.tls_key
    if cert and key and ensure_certificate(cert, key, config.smtp.hostname):
        print(f"created a self-signed TLS certificate {cert}")
    print(f"initialised {config.data_dir} (database {ctx.engine.url.render_as_string()})")


def cmd_serve(args: argparse.Namespace) -> None:
    """Run the daemon until SIGTERM or Ctrl-C."""
    from yizhan.daemon.serve import serve

    with _opened() as ctx:
        serve(ctx)


def cmd_demo(args: argparse.Namespace) -> None:
    """Load the demo bureau, give every account the demo password, and say how to log in."""
    data = tomllib.loads(
        (resources.files("yizhan.demo") / "bureau.toml").read_text(encoding="utf-8")
    )
    directory = parse_org(data)
    with _opened() as ctx:
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
        seal = _demo_seal(ctx, directory)
    print(
        f"demo bureau loaded: {len(directory.units)} units, {len(directory.people)} people "
        f"({counts['people_added']} new)\n"
        f"log in from a mail client: SMTP {smtp} (AUTH PLAIN/LOGIN on loopback, STARTTLS "
        f"elsewhere)\n"
        f"  user: an account such as wangfang (王芳, 辦公室 clerk) or lijun (李軍, 局領導)\n"
        f"  password: {DEMO_PASSWORD}\n"
        f"send a document to fawen@{domain}, commands to cmd@{domain}; mail for a person "
        f"lands in {ctx.config.maildir_root}/<account>/\n"
        f"admin page: http://{admin}/\n"
        f"bureau seal {seal.fingerprint}, custodian {seal.custodian}"
    )


def _demo_seal(ctx: Context, directory: Directory) -> SealInfo:
    """The bureau's seal, kept by the office's seal custodian (第十八條); made once."""
    bureau = directory.units_of_kind("bureau")[0]
    existing = ctx.keyring.seal(bureau.id)
    if existing is not None and existing.state == "active":
        return existing
    custodian = next(
        p
        for u in directory.units_of_kind("office")
        for p in directory.members(u.id, "seal_custodian")
    )
    seal = ctx.keyring.create_seal(bureau.id, bureau.name, custodian.account, ctx.config.domain)
    with ctx.sessions.begin() as session:
        audit.record(
            session,
            at=ctx.clock(),
            actor=CONSOLE,
            action="seal.create",
            target=bureau.id,
            detail={"fingerprint": seal.fingerprint, "custodian": custodian.account},
        )
    return seal


def cmd_check(args: argparse.Namespace) -> None:
    """Validate the configuration and, once the database exists, the rules against the org."""
    config = _config()
    where = config.source or "built-in defaults"
    if not config.secret:
        raise CliError("yizhan.secret is not set; run `yizhan init` to generate one")
    rules = load_rules(config)
    print(f"config OK ({where})")
    for line in check_content_rules(config):
        print(line)
    ctx = Context.open(config)
    try:
        if not inspect(ctx.engine).has_table("alembic_version"):
            print("rules not checked against the organisation: run `yizhan init` first")
            return
        with ctx.sessions() as session:
            directory = load_directory(session)
    finally:
        ctx.close()
    problems = check_rules(rules, directory) if directory.units else []
    if problems:
        raise CliError(f"{len(problems)} problem(s) in the rules: " + "; ".join(problems))
    source = config.rules_file if config.rules_file.exists() else "built-in rules"
    print(f"rules OK ({source}, {len(rules.flows)} flows)")


def cmd_doc_show(args: argparse.Namespace) -> None:
    """Show a document: its state, number, steps and trail."""
    with _opened() as ctx, ctx.sessions() as session:
        document = find_document(session, args.ref)
        if document is None:
            raise CliError(f"no document {args.ref!r} (give its id or its number)")
        state = load_state(session, document)
        directory = load_directory(session)
    if args.json:
        print(json.dumps(document_json(state), ensure_ascii=False, indent=1))
    else:
        print(document_summary(state, directory, ctx.config.tzinfo))


def cmd_queue(args: argparse.Namespace) -> None:
    """Print the outbound queue, and inbound mail that could not be processed."""
    from yizhan.mailstore.outbox import format_queue, queue_listing

    with _opened() as ctx, ctx.sessions() as session:
        print(format_queue(queue_listing(session), ctx.config.tzinfo))
        failed = set_aside(session)
    if failed:
        print(f"\n{len(failed)} inbound message(s) set aside after failing to process:")
    for row in failed:
        print(
            f"  #{row.id} {row.message_id or '-'} from <{row.mail_from}> "
            f"in {row.path}: {row.reason}"
        )


def cmd_seal_create(args: argparse.Namespace) -> None:
    """Create a unit's seal with its custodian."""
    with _opened() as ctx:
        with ctx.sessions() as session:
            directory = load_directory(session)
        unit = directory.unit_by_ref(args.unit)
        if unit is None:
            raise CliError(f"no unit {args.unit!r}")
        custodian = directory.people.get(args.custodian)
        if custodian is None or custodian.state != "active":
            raise CliError(f"no active account {args.custodian!r}")
        if "seal_custodian" not in custodian.roles:
            raise CliError(f"{args.custodian} does not hold the seal_custodian role")
        seal = ctx.keyring.create_seal(unit.id, unit.name, custodian.account, ctx.config.domain)
        _audit(
            ctx,
            "seal.create",
            unit.id,
            {"fingerprint": seal.fingerprint, "custodian": custodian.account},
        )
    print(f"{unit.id}: seal {seal.fingerprint}, custodian {seal.custodian}")


def cmd_seal_list(args: argparse.Namespace) -> None:
    """List the seals."""
    with _opened() as ctx:
        seals = ctx.keyring.list_seals()
    rows = [
        {
            "unit": s.unit,
            "fingerprint": s.fingerprint,
            "custodian": s.custodian,
            "state": s.state,
            "created": s.created_at.isoformat(),
            "revoked_at": s.revoked_at.isoformat() if s.revoked_at else None,
        }
        for s in seals
    ]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=1))
    elif not rows:
        print("no seals; create one with `yizhan seal create UNIT --custodian ACCOUNT`")
    for row in [] if args.json else rows:
        print(f"{row['unit']:<12} {row['state']:<8} {row['fingerprint']} {row['custodian']}")


def cmd_seal_export(args: argparse.Namespace) -> None:
    """Print a seal's public key (with the system key that countersigns)."""
    with _opened() as ctx:
        if ctx.keyring.seal(args.unit) is None:
            raise CliError(f"unit {args.unit} has no seal")
        print(ctx.keyring.export_seal(args.unit), end="")


def cmd_seal_change(args: argparse.Namespace) -> None:
    """Rotate or revoke a seal."""
    with _opened() as ctx:
        if args.change == "rotate":
            seal = ctx.keyring.rotate_seal(args.unit)
        else:
            seal = ctx.keyring.revoke_seal(args.unit)
        _audit(ctx, f"seal.{args.change}", args.unit, {"fingerprint": seal.fingerprint})
    print(f"{args.unit}: {seal.state} {seal.fingerprint}")


def cmd_key_import(args: argparse.Namespace) -> None:
    """Register a person's public key, found by --account or by the key's addresses."""
    try:
        armored = args.file.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise CliError(f"{args.file} does not exist") from exc
    with _opened() as ctx:
        with ctx.sessions() as session:
            directory = load_directory(session)
        account = args.account
        if account is None:
            owners = {
                p.account
                for address in ctx.keyring.inspect_key(armored).emails
                if (p := directory.person_by_address(address, ctx.config.domain))
            }
            if len(owners) != 1:
                raise CliError("cannot tell whose key this is from its addresses; use --account")
            account = owners.pop()
        person = directory.people.get(account)
        if person is None:
            raise CliError(f"no such account: {account}")
        addresses = [a for a in (person.email, f"{account}@{ctx.config.domain}") if a]
        fingerprint = ctx.keyring.import_person_key(armored, account, addresses)
        _audit(ctx, "key.import", account, {"fingerprint": fingerprint})
    print(f"{account}: key {fingerprint}")


def cmd_tool_add(args: argparse.Namespace) -> None:
    """Publish a file as a tool, as the IT department does by mail (TOOLS ADD at cmd@)."""
    from yizhan.daemon.tools import publish_file

    try:
        data = args.file.read_bytes()
    except OSError as exc:
        raise CliError(f"{args.file} cannot be read: {exc.strerror}") from exc
    with _opened() as ctx, ctx.sessions.begin() as session:
        result = publish_file(
            session,
            name=args.name,
            description=args.description,
            filename=args.file.name,
            data=data,
            actor=CONSOLE,
            now=ctx.clock(),
        )
        if isinstance(result, str):
            raise CliError(result.splitlines()[-1])  # the English line
    print(
        f"{result.name}: version {result.version}, {result.filename}, {result.size} bytes, "
        f"{result.content_type}, sha256 {result.sha256}"
    )


def cmd_tool_list(args: argparse.Namespace) -> None:
    """List the published tools."""
    from yizhan.mailstore.tools import published

    with _opened() as ctx, ctx.sessions() as session:
        tools = published(session)
    rows: list[dict[str, Any]] = [
        {
            "name": t.name,
            "version": t.version,
            "filename": t.filename,
            "content_type": t.content_type,
            "size": t.size,
            "sha256": t.sha256,
            "published_by": t.published_by,
            "published_at": t.published_at.isoformat(),
            "description": t.description,
        }
        for t in tools
    ]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=1))
    elif not rows:
        print("no tools; publish one with `yizhan tool add NAME FILE --description TEXT`")
    for row in [] if args.json else rows:
        print(
            f"{row['name']:<20} v{row['version']:<3} {row['size']:>10} {row['filename']} "
            f"({row['published_by']}, {row['published_at'][:10]})"
        )


def cmd_tool_remove(args: argparse.Namespace) -> None:
    """Take a tool down."""
    from yizhan.mailstore.tools import remove

    with _opened() as ctx, ctx.sessions.begin() as session:
        removed = remove(session, args.name, actor=CONSOLE, now=ctx.clock())
        if removed is None:
            raise CliError(f"no published tool {args.name!r}; see `yizhan tool list`")
    print(f"{removed.name}: version {removed.version} removed")


def cmd_backup(args: argparse.Namespace) -> None:
    """Back up the database, raw mail, Maildirs and the GnuPG home (第四條(二)3)."""
    with _opened() as ctx:
        counts = backup(ctx.engine, ctx.config.data_dir, ctx.config.signing.gnupg_home, args.dir)
        _audit(ctx, "backup", str(args.dir), counts)
    print(f"backed up {sum(counts.values())} rows of {len(counts)} tables into {args.dir}")


def cmd_restore(args: argparse.Namespace) -> None:
    """Restore a backup into this (new, initialised, empty) instance."""
    with _opened() as ctx:
        counts = restore(ctx.engine, ctx.config.data_dir, ctx.config.signing.gnupg_home, args.dir)
        _audit(ctx, "restore", str(args.dir), counts)
    print(f"restored {sum(counts.values())} rows of {len(counts)} tables from {args.dir}")


def cmd_org_import(args: argparse.Namespace) -> None:
    """Import units and people from an organisation file."""
    try:
        data = tomllib.loads(args.file.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise CliError(f"{args.file} does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise CliError(f"{args.file} is not valid TOML: {exc}") from exc
    directory = parse_org(data)
    with _opened() as ctx, ctx.sessions.begin() as session:
        counts = import_directory(session, directory, actor=CONSOLE, now=ctx.clock())
    print(", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in counts.items()))


def cmd_user_add(args: argparse.Namespace) -> None:
    """Add a person with a temporary password, printed once."""
    with _opened() as ctx, ctx.sessions.begin() as session:
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
    print(password)


def cmd_user_passwd(args: argparse.Namespace) -> None:
    """Set a password, typed twice at a terminal or read from standard input."""
    if sys.stdin.isatty():
        password = getpass.getpass("new password: ")
        if getpass.getpass("again: ") != password:
            raise CliError("the two passwords differ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    with _opened() as ctx, ctx.sessions.begin() as session:
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
    with _opened() as ctx, ctx.sessions.begin() as session:
        accounts.set_state(session, args.account, args.state, actor=CONSOLE, now=ctx.clock())
    print(f"{args.account}: {args.state}")


def cmd_user_list(args: argparse.Namespace) -> None:
    """List people and their accounts, as a table or as JSON."""
    with _opened() as ctx, ctx.sessions() as session:
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
