"""The verbs that set an instance up and run it: ``init``, ``serve``, ``demo``, ``check``."""

from __future__ import annotations

import argparse
import tomllib
from importlib import resources
from pathlib import Path

from sqlalchemy import inspect

from yizhan.cli.base import CONSOLE, CliError, Verbs, chain_legacy_audit, load, opened
from yizhan.daemon.config import (
    config_path,
    load_rules,
    new_secret,
)
from yizhan.daemon.context import Context
from yizhan.daemon.screening.check import check_content_rules
from yizhan.mailstore import accounts, audit
from yizhan.mailstore.db import SchemaMismatch, require_current_schema, upgrade
from yizhan.mailstore.directory import import_directory, load_directory
from yizhan.routing.directory import Directory, parse_org
from yizhan.routing.duties import staffing_gaps
from yizhan.routing.rules import check_rules
from yizhan.signing.keyring import Keyring, SealInfo

DEMO_PASSWORD = "yizhan-demo-2026"


def cmd_init(args: argparse.Namespace) -> None:
    """Create the data dir, the config's secret, the database schema and a TLS certificate."""
    from yizhan.daemon.gateway.tls import ensure_certificate

    path = config_path()
    config = load()
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
        config = load()
    ctx = Context.open(config)
    try:
        upgrade(ctx.engine)
        chain_legacy_audit(ctx)
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
    from yizhan.cli.serve import serve

    with opened() as ctx:
        serve(ctx)


def cmd_demo(args: argparse.Namespace) -> None:
    """Load the demo bureau, give every account the demo password, and say how to log in."""
    data = tomllib.loads(
        (resources.files("yizhan.demo") / "bureau.toml").read_text(encoding="utf-8")
    )
    directory = parse_org(data)
    with opened() as ctx:
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
    config = load()
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
        try:
            require_current_schema(ctx.engine)
        except SchemaMismatch as exc:
            raise CliError(str(exc)) from exc
        print("database schema OK (the one this version expects)")
        with ctx.sessions() as session:
            directory = load_directory(session)
    finally:
        ctx.close()
    for gap in staffing_gaps(directory):
        print(gap)
    problems = check_rules(rules, directory) if directory.units else []
    if problems:
        raise CliError(f"{len(problems)} problem(s) in the rules: " + "; ".join(problems))
    source = config.rules_file if config.rules_file.exists() else "built-in rules"
    print(f"rules OK ({source}, {len(rules.flows)} flows)")


def add_parser(verbs: Verbs) -> None:
    """Add ``init``, ``serve``, ``demo`` and ``check``."""
    p = verbs.add_parser("init", help="create the data dir, database, secret and TLS certificate")
    p.set_defaults(handler=cmd_init)
    p = verbs.add_parser("serve", help="run the daemon in the foreground")
    p.set_defaults(handler=cmd_serve)
    p = verbs.add_parser("demo", help="create and load the demo bureau")
    p.set_defaults(handler=cmd_demo)
    p = verbs.add_parser("check", help="validate the configuration and the rules")
    p.set_defaults(handler=cmd_check)
