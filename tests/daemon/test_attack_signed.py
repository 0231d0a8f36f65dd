"""The attack suite for signed commands and vouched identities, over SMTP against the whole
daemon with real gpg (issue 17, part 4).

A sign-off (簽發, 第十八條) signed with a key that has expired in Yizhan's records, or with a
copy of a key its owner has since revoked, is refused with the reason, recorded, and changes
nothing. A client that is not in ``smtp.trusted_relays`` cannot make Yizhan believe an
Authentication-Results or X-Yizhan-Login naming someone else; the organisation's MTA, which is,
can (the control that shows the refusals come from the trust check). Guessed reply addresses
that come through that MTA stop their envelope sender, never the MTA.
"""

from __future__ import annotations

import shutil
import smtplib
import subprocess
import tempfile
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.conftest import make_config, seed_keyring
from tests.daemon.test_flows import PASSWORD, Daemon, reply, start_daemon, text
from tests.daemon.test_signed_flow import _gpg, signed_reply
from yizhan.daemon.context import Context
from yizhan.mailstore.db import upgrade
from yizhan.mailstore.models import AuditEntry, Document, Inbound, Step
from yizhan.routing.tokens import make_token

LEADER = "sunlimin"
LEADER_ADDRESS = "sunlimin@bureau.example"
#: Seconds the leader's first key is valid: long enough to register it, short enough to wait.
SHORT_LIFE = 8


@pytest.fixture
def keys() -> Iterator[Path]:
    """The leader's own GnuPG home, as on his computer (no key yet)."""
    home = Path(tempfile.mkdtemp(prefix="yz", dir="/tmp"))
    home.chmod(0o700)
    yield home
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], check=False)
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def daemon(tmp_path: Path, database_url: str, system_key_home: Path) -> Iterator[Daemon]:
    """The demo bureau, sign-off and sealing needing signatures (the defaults), with the
    organisation's MTA at 127.0.0.1 trusted; staff connect from 127.0.0.1 too, with AUTH."""
    config = make_config(
        tmp_path, database_url, smtp={"listen": "127.0.0.1:0", "trusted_relays": ["127.0.0.1"]}
    )
    seed_keyring(config, system_key_home)
    ctx = Context.open(config)
    upgrade(ctx.engine)
    ctx.keyring.ensure_system_key(ctx.config.domain)
    running = start_daemon(ctx)
    yield running
    running.stop()
    ctx.close()
    shutil.rmtree(ctx.config.signing.gnupg_home.parent, ignore_errors=True)


def new_key(home: Path, expire: str = "never") -> str:
    """Make the leader's signing key in ``home``; its fingerprint."""
    made = _gpg(
        home, "--passphrase", "", "--quick-gen-key", f"孫立民 <{LEADER_ADDRESS}>", "ed25519",
        "sign", expire,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    listing = _gpg(home, "--with-colons", "--list-keys", LEADER_ADDRESS).stdout.decode()
    return next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:"))


def register(d: Daemon, home: Path) -> None:
    """The leader's public key as he hands it to IT (`yizhan key import`)."""
    exported = _gpg(home, "--armor", "--export", LEADER_ADDRESS).stdout.decode("ascii")
    d.ctx.keyring.import_person_key(exported, LEADER, [LEADER_ADDRESS])


def to_signoff(d: Daemon) -> EmailMessage:
    """A bureau document drafted and approved up to the leader's sign-off; his request."""
    d.send(
        "songjia", "fawen@oa.example", "關於檢驗工作的通知", "主送：大連分局、丹東分局\n\n正文。"
    )
    d.inbox("songjia")
    for approver in ("liangguoqiang", "liuyang"):
        (ask,) = d.inbox(approver)
        reply(d, approver, ask, "同意")
        d.inbox(approver)
    (ask,) = d.inbox(LEADER)
    assert ask["X-Yizhan-Action"] == "approve"
    return ask


def waiting_step(d: Daemon, doc_id: int) -> str:
    with d.ctx.sessions() as session:
        document = session.get(Document, doc_id)
        assert document is not None and document.state != "closed"
        (step,) = session.scalars(
            select(Step).where(Step.document_id == doc_id, Step.state == "waiting")
        ).all()
        return step.assignee


def refusals(d: Daemon) -> list[AuditEntry]:
    with d.ctx.sessions() as session:
        return list(
            session.scalars(select(AuditEntry).where(AuditEntry.action == "refused.signature"))
        )


def test_a_signoff_signed_by_a_key_expired_in_yizhans_records_is_refused(
    daemon: Daemon, keys: Path
) -> None:
    # 孫立民 registered a key valid for a few seconds, then extended it on his own computer
    # without registering the new date. Signed with it after it expired here, his 同意 is refused
    # ("expired"), recorded, and the document waits for him still; once he registers the
    # extended key the same kind of reply counts.
    made = time.monotonic()
    fingerprint = new_key(keys, f"seconds={SHORT_LIFE}")
    register(daemon, keys)
    assert _gpg(keys, "--passphrase", "", "--quick-set-expire", fingerprint, "1y").returncode == 0
    ask = to_signoff(daemon)
    doc_id = int(ask["X-Yizhan-Doc"])
    time.sleep(max(0.0, SHORT_LIFE + 1 - (time.monotonic() - made)))

    signed_reply(daemon, keys, LEADER, ask, "同意")
    (refused,) = daemon.inbox(LEADER)
    assert "已過期" in text(refused) and "has expired" in text(refused)
    assert waiting_step(daemon, doc_id) == LEADER
    (entry,) = refusals(daemon)
    assert entry.actor == LEADER and entry.detail["status"] == "expired"
    assert entry.target == f"doc:{doc_id}"

    register(daemon, keys)
    signed_reply(daemon, keys, LEADER, ask, "同意")
    daemon.inbox(LEADER)
    (seal,) = daemon.inbox("zhoujing")
    assert seal["X-Yizhan-Doc"] == str(doc_id) and waiting_step(daemon, doc_id) == "zhoujing"


def test_a_signoff_signed_with_a_copy_of_a_revoked_key_is_refused(
    daemon: Daemon, keys: Path
) -> None:
    # 孫立民's laptop is lost with his key on it: he revokes the key and IT imports the
    # revocation. A sign-off signed with the lost copy (which knows nothing of the revocation)
    # is refused ("revoked"), recorded, and changes nothing.
    fingerprint = new_key(keys)
    register(daemon, keys)
    lost = Path(tempfile.mkdtemp(prefix="yz", dir="/tmp"))
    try:
        shutil.copytree(keys, lost, dirs_exist_ok=True, ignore=shutil.ignore_patterns("S.*"))
        certificate = (keys / "openpgp-revocs.d" / f"{fingerprint}.rev").read_text()
        revocation = certificate.replace(":-----BEGIN", "-----BEGIN")
        assert _gpg(keys, "--import", stdin=revocation.encode()).returncode == 0
        register(daemon, keys)
        ask = to_signoff(daemon)
        doc_id = int(ask["X-Yizhan-Doc"])

        signed_reply(daemon, lost, LEADER, ask, "同意")
        (refused,) = daemon.inbox(LEADER)
        assert "已被撤銷" in text(refused) and "has been revoked" in text(refused)
        assert waiting_step(daemon, doc_id) == LEADER
        (entry,) = refusals(daemon)
        assert entry.actor == LEADER and entry.detail["status"] == "revoked"
    finally:
        subprocess.run(["gpgconf", "--homedir", str(lost), "--kill", "gpg-agent"], check=False)
        shutil.rmtree(lost, ignore_errors=True)


# --- Identities vouched for by a relay ----------------------------------------------------------

#: The first approver of a bureau document: his step needs no signature.
APPROVER = "liangguoqiang"
APPROVER_ADDRESS = "liangguoqiang@bureau.example"
#: What the organisation's MTA writes above a message it checked; forged below by others.
VOUCHED = (
    f"Authentication-Results: mta.bureau.example; auth=pass smtp.auth={APPROVER}\r\n"
    f"X-Yizhan-Login: {APPROVER}; queue-id=4Ab0C1xyZ; mac=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\r\n"
)


def approval(ask: EmailMessage, sender: str) -> bytes:
    return (
        VOUCHED + f"From: {sender}\r\nTo: {ask['Reply-To']}\r\nSubject: Re: {ask['Subject']}\r\n"
        f"In-Reply-To: {ask['Message-ID']}\r\nMessage-ID: <{time.monotonic_ns()}@client.test>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n同意\r\n"
    ).encode()


def inbound_count(d: Daemon) -> int:
    with d.ctx.sessions() as session:
        return len(session.scalars(select(Inbound.id)).all())


def test_a_client_that_is_not_a_trusted_relay_cannot_vouch_for_anyone(daemon: Daemon) -> None:
    # 王芳 at 127.0.0.2 (not in smtp.trusted_relays) tries to approve 梁國強's step with the
    # headers the organisation's MTA would add for him. Without AUTH: 530 at MAIL, nothing
    # stored. With AUTH as herself: as From 梁國強, 550 and recorded; as From herself, her own
    # reply, refused as not the person asked (第七條). Only the real MTA (127.0.0.1) is believed.
    daemon.send("songjia", "fawen@oa.example", "關於檢驗工作的通知", "主送：大連分局\n\n正文。")
    daemon.inbox("songjia")
    (ask,) = daemon.inbox(APPROVER)
    doc_id = int(ask["X-Yizhan-Doc"])
    to = str(ask["Reply-To"])
    before = inbound_count(daemon)

    with (
        smtplib.SMTP("127.0.0.1", daemon.port, timeout=30, source_address=("127.0.0.2", 0)) as c,
        pytest.raises(smtplib.SMTPSenderRefused) as refused,
    ):
        c.sendmail(APPROVER_ADDRESS, [to], approval(ask, APPROVER_ADDRESS))
    assert refused.value.smtp_code == 530 and inbound_count(daemon) == before

    with smtplib.SMTP("127.0.0.1", daemon.port, timeout=30, source_address=("127.0.0.2", 0)) as c:
        c.login("wangfang", PASSWORD)
        with pytest.raises(smtplib.SMTPDataError) as not_hers:
            c.sendmail("wangfang@bureau.example", [to], approval(ask, APPROVER_ADDRESS))
        assert not_hers.value.smtp_code == 550 and b"article 7" in not_hers.value.smtp_error
        c.sendmail("wangfang@bureau.example", [to], approval(ask, "wangfang@bureau.example"))
    (answer,) = daemon.inbox("wangfang")
    assert "第七條" in text(answer) and "梁國強" in text(answer)
    assert waiting_step(daemon, doc_id) == APPROVER
    with daemon.ctx.sessions() as session:
        stored = session.scalars(select(Inbound).where(Inbound.id > before)).all()
        claims = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "impersonation")
        ).all()
    assert [(r.sender_account, r.auth_method) for r in stored] == [("wangfang", "smtp-auth")]
    assert b"X-Yizhan-Login" not in daemon.ctx.raw.read(stored[0].path)
    assert {c.actor for c in claims} == {"wangfang"} and len(claims) == 2

    # The control: the same headers from the trusted MTA, without AUTH, are its word.
    with smtplib.SMTP("127.0.0.1", daemon.port, timeout=30) as mta:
        mta.sendmail(APPROVER_ADDRESS, [to], approval(ask, APPROVER_ADDRESS))
    daemon.inbox(APPROVER)
    (next_ask,) = daemon.inbox("liuyang")
    assert next_ask["X-Yizhan-Doc"] == str(doc_id) and waiting_step(daemon, doc_id) == "liuyang"


def test_guessing_through_the_trusted_mta_stops_the_sender_not_the_mta(daemon: Daemon) -> None:
    # The organisation's MTA carries everyone's mail, so guessed r+ addresses are counted by
    # envelope sender there: after five from 王芳's address the sixth gets 450, while the same
    # MTA still hands over 李軍's reply to a genuine token.
    def relay_rcpt(sender: str, address: str) -> tuple[int, bytes]:
        with smtplib.SMTP("127.0.0.1", daemon.port, timeout=30) as mta:
            mta.ehlo()
            mta.mail(sender)
            code, answer = mta.rcpt(address)
            mta.rset()
        return code, answer

    guesser = "wangfang@bureau.example"
    for n in range(5):
        assert relay_rcpt(guesser, f"r+relayed{n:016d}@oa.example")[0] == 250
    code, answer = relay_rcpt(guesser, "r+relayed0000000000000005@oa.example")
    assert code == 450 and b"never gave" in answer
    token = make_token(daemon.ctx.config.secret, document_id=3, step_id=4, account="lijun")
    assert relay_rcpt("lijun@bureau.example", f"r+{token}@oa.example")[0] == 250
    with daemon.ctx.sessions() as session:
        (lock,) = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "reply.guessing_locked")
        ).all()
    assert lock.target == f"r+*/from:{guesser}" and lock.actor == guesser
