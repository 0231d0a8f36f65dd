"""Measures the cost of signing: system-key signatures per second, and sealing one document
and queueing it for 1,000 recipients.

``python -m bench.signing`` works in a fresh temporary directory (a GnuPG home for Yizhan,
another for the seal custodian's mail client, an SQLite database) and prints:

* signatures per second with the system key (one gpg run each, as the outbox makes them);
* the time to seal one document and queue it for N recipients (default 1,000), from the
  custodian's signed SEAL to the committed queue: verify the SEAL, unlock the seal, sign the
  document version once (seal and system key), store its signed body once, make each
  recipient's header block (``pgpmime.HeadMaker``) and queue them all with the shared body
  (``outbox.enqueue_many``), in one transaction, as the desk does. Delivery is not included
  (``python -m bench.fanout`` measures it). The target is under 5 s;
* the same distribution through the convenience path a hook would take without knowing the
  document version (``sign_message_bytes`` per recipient with a :class:`SignatureCache`).

The seal key is protected as in production (the agent's calibrated passphrase hashing), so
the unlock costs what it costs on this machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from email.message import EmailMessage
from pathlib import Path
from typing import Final

from yizhan.daemon.config import parse_config
from yizhan.daemon.context import Context
from yizhan.mailstore import outbox
from yizhan.mailstore.db import upgrade
from yizhan.signing import pgpmime
from yizhan.signing.keyring import Keyring

DOMAIN: Final = "oa.example"
CUSTODIAN: Final = "zhoujing"
CUSTODIAN_EMAIL: Final = "zhoujing@bureau.example"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the figures; exit status 1 if the target is missed."""
    parser = argparse.ArgumentParser(prog="python -m bench.signing", description=__doc__)
    parser.add_argument("--signatures", type=int, default=200, help="system-key signatures")
    parser.add_argument("--recipients", type=int, default=1000)
    parser.add_argument(
        "--attachment",
        type=int,
        nargs="+",
        default=[0, 200 * 1024],
        help="sizes of the document's PDF attachment to try, bytes (0: text only)",
    )
    parser.add_argument("--hook", action="store_true", help="also time the per-message path")
    parser.add_argument("--target", type=float, default=5.0, help="seconds, seal + queue")
    args = parser.parse_args(argv)

    # Short path: gpg-agent's sockets live in the home and a socket name has 107 bytes.
    base = Path(tempfile.mkdtemp(prefix="yzb-", dir="/tmp"))
    keyring = Keyring(base / "gnupg")
    client = base / "client"
    client.mkdir(mode=0o700)
    ctx = _context(base)
    try:
        print(f"{os.cpu_count()} CPUs, gpg {'.'.join(map(str, keyring.gpg.version or ()))}")
        keyring.ensure_system_key(DOMAIN)
        keyring.create_seal("bureau", "遼寧出入境檢驗檢疫局", CUSTODIAN, DOMAIN)
        keyring.import_person_key(_custodian_key(client), CUSTODIAN, [CUSTODIAN_EMAIL])

        rate = _signatures_per_second(keyring, args.signatures)
        print(f"system key: {rate:.0f} signatures/s ({args.signatures} signatures, one gpg each)")

        missed = False
        for size in args.attachment:
            seal_command = _signed_seal_command(client)
            document = _document(size)
            recipients = [f"clerk{i:04d}@bureau.example" for i in range(args.recipients)]
            elapsed, stages = _seal_and_queue(
                ctx, keyring, seal_command, document, recipients, tag=f"{size}"
            )
            missed = missed or elapsed >= args.target
            what = f"{size // 1024} KB PDF" if size else "text only"
            print(
                f"seal + queue, {what}, {len(recipients)} recipients: {elapsed:.2f} s "
                f"(target {args.target:.0f} s: {'met' if elapsed < args.target else 'MISSED'})"
            )
            for name, seconds in stages:
                print(f"  {name:<38} {seconds:7.3f} s")
            if args.hook:
                hook = _hook_path(ctx, keyring, document, recipients, tag=f"{size}")
                print(f"  per-message path (sign_message_bytes + cache): {hook:.2f} s")
        return 1 if missed else 0
    finally:
        ctx.close()
        keyring.close()
        subprocess.run(
            ["gpgconf", "--homedir", str(client), "--kill", "gpg-agent"],
            check=False,
            capture_output=True,
        )
        shutil.rmtree(base, ignore_errors=True)


def _context(base: Path) -> Context:
    config = parse_config(
        {
            "yizhan": {"data_dir": str(base / "var"), "secret": "bench-secret-0123456789"},
            "database": {"url": f"sqlite:///{base / 'var' / 'yizhan.db'}"},
        }
    )
    config.data_dir.mkdir(parents=True)
    ctx = Context.open(config)
    upgrade(ctx.engine)
    return ctx


def _gpg(home: Path, *args: str, stdin: bytes = b"") -> bytes:
    cmd = ["gpg", "--homedir", str(home), "--batch", "--pinentry-mode", "loopback", *args]
    return subprocess.run(cmd, input=stdin, capture_output=True, check=True).stdout


def _custodian_key(client: Path) -> str:
    """The custodian's own key, made in their mail client's keyring; its public half."""
    _gpg(
        client,
        "--passphrase",
        "",
        "--quick-gen-key",
        f"周靜 <{CUSTODIAN_EMAIL}>",
        "ed25519",
        "sign",
        "never",
    )
    return _gpg(client, "--armor", "--export", CUSTODIAN_EMAIL).decode("ascii")


def _signed_seal_command(client: Path) -> bytes:
    """The custodian's SEAL reply, inline-signed as a mail client would send it."""
    signed = _gpg(client, "--clearsign", "-u", CUSTODIAN_EMAIL, stdin="用印\n".encode())
    reply = EmailMessage()
    reply["From"] = f"周靜 <{CUSTODIAN_EMAIL}>"
    reply["To"] = f"r+token@{DOMAIN}"
    reply["Subject"] = "Re: 請用印"
    reply.set_content(signed.decode("utf-8"))
    return reply.as_bytes()


def _document(size: int) -> EmailMessage:
    """A sealed bureau document as a recipient gets it, less the per-recipient headers."""
    doc = EmailMessage()
    doc["From"] = f"遼寧出入境檢驗檢疫局 <fawen@{DOMAIN}>"
    doc["Subject"] = "關於開展2026年度安全檢查的通知"
    doc["X-Yizhan-Doc"] = "1042"
    doc["X-Yizhan-Kind"] = "fawen"
    doc["X-Yizhan-State"] = "distributing"
    doc["X-Yizhan-Step"] = "receive"
    doc["X-Yizhan-Action"] = "receive"
    doc["X-Yizhan-Number"] = "遼檢發〔2026〕42號"
    doc["X-Yizhan-Urgency"] = "加急"
    doc.set_content("各處室、各分支機構：\n\n現將有關事項通知如下。請於十個工作日內簽收。\n" * 20)
    if size:
        doc.add_attachment(
            os.urandom(size),
            maintype="application",
            subtype="pdf",
            filename="遼檢發〔2026〕42號.pdf",
        )
    return doc


def _signatures_per_second(keyring: Keyring, count: int) -> float:
    signer = [keyring.system_signer()]
    start = time.perf_counter()
    for i in range(count):
        keyring.sign_detached(f"message {i}\r\n".encode(), signer)
    return count / (time.perf_counter() - start)


def _seal_and_queue(
    ctx: Context,
    keyring: Keyring,
    seal_command: bytes,
    document: EmailMessage,
    recipients: Sequence[str],
    *,
    tag: str,
) -> tuple[float, list[tuple[str, float]]]:
    stages: list[tuple[str, float]] = []
    start = mark = time.perf_counter()

    def stage(name: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        stages.append((name, now - mark))
        mark = now

    verification = pgpmime.verify_message(seal_command, keyring, account=CUSTODIAN)
    if not verification.ok:
        raise SystemExit(f"the SEAL did not verify: {verification.reason}")
    stage("verify the custodian's SEAL")
    content = pgpmime.signed_content(document)
    stage("build the signed part once")
    with keyring.seal_signer("bureau", authorised_by=verification) as seal:
        signed = pgpmime.sign_once(content, keyring, [seal, keyring.system_signer()])
    stage("unlock seal, sign once (seal+system)")
    # As the desk distributes a sealed document (daemon/desk/mailer.py, Mailer.distribute):
    # a head per recipient, the shared headers folded once.
    maker = pgpmime.HeadMaker(signed)
    shared = [
        (name, str(value))
        for name, value in document.items()
        if not name.lower().startswith("content-") and name.lower() != "mime-version"
    ]
    heads = [
        maker.head([*shared, ("To", rcpt), ("Reply-To", f"r+tok{i:06d}@{DOMAIN}")])
        for i, rcpt in enumerate(recipients)
    ]
    stage(f"head x{len(recipients)}")
    now = dt.datetime.now(dt.UTC)
    body = pgpmime.signed_body(signed)
    with ctx.sessions.begin() as session:
        # The signed body stored once, the copies queued together (Mailer.queue_distribution).
        body_id = outbox.store_body(session, body, now=now)
        outbox.enqueue_many(
            session,
            [
                outbox.Outgoing(
                    source=f"bench:seal:{tag}:{i}",
                    body_id=body_id,
                    head=head,
                    rcpt=rcpt,
                    document_id=1042,
                )
                for i, (rcpt, head) in enumerate(zip(recipients, heads, strict=True))
            ],
            mail_from=f"fawen@{DOMAIN}",
            now=now,
            expires_after=dt.timedelta(days=5),
            domain=DOMAIN,
        )
        stage(
            f"outbox.enqueue_many x{len(recipients)} "
            f"({len(heads[0]) // 1024} KB head + {len(body) // 1024} KB shared body)"
        )
    stage("commit")
    return time.perf_counter() - start, stages


def _hook_path(
    ctx: Context,
    keyring: Keyring,
    document: EmailMessage,
    recipients: Sequence[str],
    *,
    tag: str,
) -> float:
    cache = pgpmime.SignatureCache()
    signer = [keyring.system_signer()]
    now = dt.datetime.now(dt.UTC)
    start = time.perf_counter()
    with ctx.sessions.begin() as session:
        for i, rcpt in enumerate(recipients):
            msg = EmailMessage()
            for name, value in document.items():
                msg[name] = value
            msg.set_payload(document.get_payload())
            msg["To"] = rcpt
            msg["Reply-To"] = f"r+tok{i:06d}@{DOMAIN}"
            outbox.enqueue(
                session,
                source=f"bench:hook:{tag}:{i}",
                message=pgpmime.sign_message_bytes(msg, keyring, signer, cache=cache),
                mail_from=f"fawen@{DOMAIN}",
                rcpts=[rcpt],
                now=now,
                expires_after=dt.timedelta(days=5),
                domain=DOMAIN,
            )
    elapsed = time.perf_counter() - start
    if cache.misses != 1:
        raise SystemExit(f"expected one signature for the document, made {cache.misses}")
    return elapsed


if __name__ == "__main__":
    raise SystemExit(main())
