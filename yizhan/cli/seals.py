"""The ``seal`` and ``key`` verbs: units' seals with their custodians (第十八條), people's keys."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from yizhan.cli.base import CliError, Verbs, audit_console, opened
from yizhan.mailstore.directory import load_directory


def cmd_seal_create(args: argparse.Namespace) -> None:
    """Create a unit's seal with its custodian."""
    with opened() as ctx:
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
        audit_console(
            ctx,
            "seal.create",
            unit.id,
            {"fingerprint": seal.fingerprint, "custodian": custodian.account},
        )
    print(f"{unit.id}: seal {seal.fingerprint}, custodian {seal.custodian}")


def cmd_seal_list(args: argparse.Namespace) -> None:
    """List the seals."""
    with opened() as ctx:
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
    with opened() as ctx:
        if ctx.keyring.seal(args.unit) is None:
            raise CliError(f"unit {args.unit} has no seal")
        print(ctx.keyring.export_seal(args.unit), end="")


def cmd_seal_change(args: argparse.Namespace) -> None:
    """Rotate or revoke a seal."""
    with opened() as ctx:
        if args.change == "rotate":
            seal = ctx.keyring.rotate_seal(args.unit)
        else:
            seal = ctx.keyring.revoke_seal(args.unit)
        audit_console(ctx, f"seal.{args.change}", args.unit, {"fingerprint": seal.fingerprint})
    print(f"{args.unit}: {seal.state} {seal.fingerprint}")


def cmd_key_import(args: argparse.Namespace) -> None:
    """Register a person's public key, found by --account or by the key's addresses."""
    try:
        armored = args.file.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise CliError(f"{args.file} does not exist") from exc
    with opened() as ctx:
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
        audit_console(ctx, "key.import", account, {"fingerprint": fingerprint})
    print(f"{account}: key {fingerprint}")


def add_parser(verbs: Verbs) -> None:
    """Add ``seal create|list|export|rotate|revoke`` and ``key import``."""
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
