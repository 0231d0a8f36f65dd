"""End-to-end with real gpg: 簽發 and 用印 need signed replies, and the sealed document that
every clerk receives verifies with nothing but the exported seal key (第十八條, 第十九條)."""

from __future__ import annotations

import shutil
import smtplib
import subprocess
import tempfile
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.conftest import make_config, seed_keyring
from tests.daemon.test_flows import PASSWORD, Daemon, reply, start_daemon
from yizhan.daemon.context import Context
from yizhan.mailstore.db import upgrade
from yizhan.mailstore.models import OutboundBody, OutboundMessage
from yizhan.signing.pgpmime import split_signed

PEOPLE = {
    "sunlimin": "孫立民 <sunlimin@bureau.example>",
    "zhoujing": "周靜 <zhoujing@bureau.example>",
    "liangguoqiang": "梁國強 <liangguoqiang@bureau.example>",
}
REGISTERED = ("sunlimin", "zhoujing")


def _gpg(home: Path, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--pinentry-mode", "loopback", *args],
        input=stdin,
        capture_output=True,
        check=False,
    )


@pytest.fixture
def people_keys() -> Iterator[Path]:
    """The leader's and the custodian's own keyrings, as on their computers."""
    home = Path(tempfile.mkdtemp(prefix="yz", dir="/tmp"))
    home.chmod(0o700)
    for uid in PEOPLE.values():
        assert (
            _gpg(home, "--passphrase", "", "--quick-gen-key", uid, "ed25519", "sign").returncode
            == 0
        )
    yield home
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], check=False)
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def signed_daemon(
    tmp_path: Path, database_url: str, people_keys: Path, system_key_home: Path
) -> Iterator[Daemon]:
    """The demo bureau with its seal and the two people's keys registered; defaults otherwise."""
    config = make_config(tmp_path, database_url)
    seed_keyring(config, system_key_home)
    ctx = Context.open(config)
    upgrade(ctx.engine)
    ctx.keyring.ensure_system_key(ctx.config.domain)
    ctx.keyring.create_seal("bureau", "遼寧出入境檢驗檢疫局", "zhoujing", ctx.config.domain)
    for account in REGISTERED:
        address = PEOPLE[account].split("<")[1].rstrip(">")
        exported = _gpg(people_keys, "--armor", "--export", address).stdout.decode("ascii")
        ctx.keyring.import_person_key(exported, account, [address])
    running = start_daemon(ctx)
    yield running
    running.stop()
    ctx.close()
    shutil.rmtree(ctx.config.signing.gnupg_home.parent, ignore_errors=True)


def signed_reply(d: Daemon, keys: Path, account: str, to_mail: EmailMessage, text: str) -> None:
    """A reply whose command is inline-signed (gpg --clearsign), as Enigmail-style clients do."""
    signed = _gpg(keys, "--clearsign", "-u", f"{account}@bureau.example", stdin=text.encode())
    assert signed.returncode == 0, signed.stderr
    msg = EmailMessage()
    msg["From"] = f"{account}@bureau.example"
    msg["To"] = str(to_mail["Reply-To"])
    msg["Subject"] = "Re: " + str(to_mail["Subject"])
    msg["In-Reply-To"] = str(to_mail["Message-ID"])
    msg.set_content(signed.stdout.decode("utf-8") + "\n> 原文\n")
    with smtplib.SMTP("127.0.0.1", d.port, timeout=30) as client:
        client.login(account, PASSWORD)
        client.send_message(msg)


def test_signoff_and_seal_need_signatures_and_the_seal_verifies(
    signed_daemon: Daemon, people_keys: Path, tmp_path: Path
) -> None:
    # A draft goes up the chain; the leader's unsigned 同意 is refused, the signed one counts;
    # the custodian's signed 用印 seals it; a clerk's copy verifies with `gpg --verify`.
    d = signed_daemon
    d.send(
        "songjia", "fawen@oa.example", "關於檢驗工作的通知", "主送：大連分局、丹東分局\n\n正文。"
    )
    d.inbox("songjia")
    for approver in ("liangguoqiang", "liuyang"):
        (ask,) = d.inbox(approver)
        reply(d, approver, ask, "同意")
        d.inbox(approver)
    (ask,) = d.inbox("sunlimin")
    reply(d, "sunlimin", ask, "同意")
    (refused,) = d.inbox("sunlimin")
    text = refused.get_body(("plain",))
    assert text is not None and "OpenPGP" in text.get_content()
    signed_reply(d, people_keys, "sunlimin", ask, "同意")
    d.inbox("sunlimin")
    (seal,) = d.inbox("zhoujing")
    signed_reply(d, people_keys, "zhoujing", seal, "用印")
    d.inbox("zhoujing")
    (sealed,) = d.inbox("tianlu")
    assert sealed.get_content_type() == "multipart/signed"
    assert sealed["X-Yizhan-Action"] == "receive"
    # Every clerk's copy is the one signed body, stored once, each with its own reply token.
    with d.ctx.sessions() as session:
        copies = session.scalars(
            select(OutboundMessage).where(OutboundMessage.body_id.is_not(None))
        ).all()
        assert len(copies) >= 2 and len({c.body_id for c in copies}) == 1
        assert len({c.message_bytes.split(b"\r\n\r\n", 1)[1] for c in copies}) == 1
        assert len({c.data for c in copies}) == len(copies)
        assert session.scalar(select(func.count()).select_from(OutboundBody)) == 1
    # The official form travels with it: GB/T 9704 HTML for mail clients and a PDF.
    content = sealed.get_payload()[0]
    html = content.get_body(("html",))
    assert html is not None and "遼寧出入境檢驗檢疫局" in html.get_content()
    (pdf,) = [p for p in content.iter_attachments() if p.get_content_type() == "application/pdf"]
    assert pdf.get_content().startswith(b"%PDF")
    assert str(pdf.get_filename()).endswith("號.pdf")

    # The recipient's side: only the exported seal key, nothing of Yizhan's keyring.
    raw = next((d.ctx.config.maildir_root / "tianlu" / "new").iterdir()).read_bytes()
    parts = split_signed(raw)
    assert parts is not None
    home = Path(tempfile.mkdtemp(prefix="yz", dir="/tmp"))
    home.chmod(0o700)
    try:
        seal_key = d.ctx.keyring.export_seal("bureau")
        _gpg(home, "--import", stdin=seal_key.encode("ascii"))
        (tmp_path / "doc.eml").write_bytes(parts.content)
        (tmp_path / "doc.asc").write_bytes(parts.signature)
        good = _gpg(
            home,
            "--status-fd",
            "1",
            "--verify",
            str(tmp_path / "doc.asc"),
            str(tmp_path / "doc.eml"),
        )
        assert good.returncode == 0, good.stderr
        seal_fpr = d.ctx.keyring.seal("bureau")
        assert seal_fpr is not None and seal_fpr.fingerprint.encode() in good.stdout
        tampered = parts.content.replace(b"X-Yizhan-Action: receive", b"X-Yizhan-Action: none")
        assert tampered != parts.content
        (tmp_path / "bad.eml").write_bytes(tampered)
        bad = _gpg(home, "--verify", str(tmp_path / "doc.asc"), str(tmp_path / "bad.eml"))
        assert bad.returncode != 0
    finally:
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], check=False)
        shutil.rmtree(home, ignore_errors=True)


def test_a_person_registers_their_key_by_mail(signed_daemon: Daemon, people_keys: Path) -> None:
    # Issue 4: a person sends their public key to cmd@ and confirms its fingerprint by reply.
    d = signed_daemon
    exported = _gpg(people_keys, "--armor", "--export", "liangguoqiang@bureau.example").stdout
    d.send("liangguoqiang", "cmd@oa.example", "我的公鑰", exported.decode("ascii"))
    (answer,) = d.inbox("liangguoqiang")
    text = answer.get_body(("plain",))
    assert text is not None and "同意" in text.get_content()
    assert d.ctx.keyring.person_key("liangguoqiang") is None
    reply(d, "liangguoqiang", answer, "同意")
    (done,) = d.inbox("liangguoqiang")
    fingerprint = d.ctx.keyring.person_key("liangguoqiang")
    assert fingerprint is not None and fingerprint in done.get_body(("plain",)).get_content()

    # SET lists the registered key; SET key off takes it back (issue 6, 個人設置).
    d.send("liangguoqiang", "cmd@oa.example", "設置", "")
    (listing,) = d.inbox("liangguoqiang")
    assert fingerprint in listing.get_body(("plain",)).get_content()
    d.send("liangguoqiang", "cmd@oa.example", "設置 密鑰 刪除", "")
    (removed,) = d.inbox("liangguoqiang")
    assert "已刪除" in removed.get_body(("plain",)).get_content()
    assert d.ctx.keyring.person_key("liangguoqiang") is None
