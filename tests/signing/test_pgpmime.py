"""Tests of yizhan.signing.pgpmime with the real gpg binary.

Yizhan's GnuPG home is made once per session (system key, the bureau's seal, three people's
public keys) and copied for each test. The people's own keys live in a separate home, their
"mail client", which signs the way Thunderbird or gpg on the command line would. What Yizhan
signs is checked the way a recipient would: the gpg CLI, in a fresh home that holds nothing
but the output of ``yizhan seal export``.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import formataddr
from pathlib import Path

import pytest

from yizhan.daemon.context import Context
from yizhan.daemon.outbound import OutboundWorker
from yizhan.mailstore import outbox
from yizhan.signing import pgpmime
from yizhan.signing.keyring import Fingerprint, Keyring, KeyringError, SignerSpec

DOMAIN = "oa.example"
# The lowest passphrase-hashing cost gpg-agent takes; production keeps its calibrated default.
S2K = 65536
PEOPLE = {
    "zhoujing": "周靜 <zhoujing@bureau.example>",
    "lijun": "李軍 <lijun@bureau.example>",
    "wangfang": "王芳 <wangfang@bureau.example>",
    "mallory": "Mallory <mallory@elsewhere.example>",
}
REGISTERED = ("zhoujing", "lijun", "wangfang")
GPG_VERIFY = ("gpg", "--batch", "--status-fd", "1", "--verify")


def _short_dir() -> Path:
    # gpg-agent puts its sockets in the home; pytest's tmp_path is too long for a socket name.
    return Path(tempfile.mkdtemp(prefix="yz", dir="/tmp"))


def _kill_agent(home: Path) -> None:
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], check=False)


@dataclass
class Client:
    """The people's own keyring, as on their computers; signs as their mail clients do."""

    home: Path

    def gpg(self, *args: str, stdin: bytes = b"") -> bytes:
        cmd = ["gpg", "--homedir", str(self.home), "--batch", "--pinentry-mode", "loopback"]
        return subprocess.run([*cmd, *args], input=stdin, capture_output=True, check=True).stdout

    def email(self, who: str) -> str:
        return PEOPLE[who].split("<")[1].rstrip(">") if who in PEOPLE else f"{who}@bureau.example"

    def export(self, who: str) -> str:
        return self.gpg("--armor", "--export", self.email(who)).decode("ascii")

    def clearsign(self, who: str, text: str) -> bytes:
        return self.gpg("--clearsign", "-u", self.email(who), stdin=text.encode("utf-8"))

    def detach_sign(self, who: str, data: bytes, *extra: str) -> bytes:
        return self.gpg(*extra, "--detach-sign", "--armor", "-u", self.email(who), stdin=data)


@pytest.fixture(scope="session")
def client() -> Iterator[Client]:
    """Keys for the demo bureau's custodian, a leader, a clerk, and an outsider."""
    home = _short_dir()
    home.chmod(0o700)
    people = Client(home)
    for uid in PEOPLE.values():
        people.gpg("--passphrase", "", "--quick-gen-key", uid, "ed25519", "sign", "never")
    yield people
    _kill_agent(home)
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def template(client: Client) -> Iterator[Path]:
    """A Yizhan GnuPG home with its system key, the bureau seal and three registered people."""
    base = _short_dir()
    keyring = Keyring(base / "g", agent_s2k_count=S2K)
    keyring.ensure_system_key(DOMAIN)
    keyring.create_seal("bureau", "遼寧出入境檢驗檢疫局", "zhoujing", DOMAIN)
    for who in REGISTERED:
        keyring.import_person_key(client.export(who), who, [client.email(who)])
    keyring.close()
    yield base / "g"
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def keyring(template: Path) -> Iterator[Keyring]:
    """A copy of the template home for one test."""
    base = _short_dir()
    shutil.copytree(template, base / "g", ignore=shutil.ignore_patterns("S.*", ".lock", "*.tmp"))
    keyring = Keyring(base / "g", agent_s2k_count=S2K)
    yield keyring
    keyring.close()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def recipient_home(keyring: Keyring) -> Iterator[Path]:
    """A recipient's fresh GnuPG home holding only ``yizhan seal export bureau``."""
    home = _short_dir()
    home.chmod(0o700)
    subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--import"],
        input=keyring.export_seal("bureau").encode("ascii"),
        capture_output=True,
        check=True,
    )
    yield home
    _kill_agent(home)
    shutil.rmtree(home, ignore_errors=True)


def document(action: str = "receive") -> EmailMessage:
    """A bureau document as Yizhan sends it: Chinese text, a PDF, the X-Yizhan-* headers."""
    msg = EmailMessage()
    msg["From"] = f"遼寧出入境檢驗檢疫局 <fawen@{DOMAIN}>"
    msg["To"] = "王芳 <wangfang@bureau.example>"
    msg["Subject"] = "關於開展安全檢查的通知"
    msg["Reply-To"] = f"r+token1@{DOMAIN}"
    msg["X-Yizhan-Doc"] = "42"
    msg["X-Yizhan-Kind"] = "fawen"
    msg["X-Yizhan-State"] = "distributing"
    msg["X-Yizhan-Action"] = action
    msg["X-Yizhan-Number"] = "遼檢發〔2026〕7號"
    # Trailing spaces and a line starting "From " are what mail hops like to change.
    msg.set_content("各處室：\n\n請於本週五前完成檢查。  \nFrom now on, report weekly.\n")
    msg.add_attachment(b"%PDF-1.4\n\x00\xff" * 50, "application", "pdf", filename="通知.pdf")
    return msg


def seal_command(client: Client, keyring: Keyring, who: str = "zhoujing") -> pgpmime.Verification:
    """The custodian's SEAL reply, inline-signed in their client, verified by Yizhan."""
    reply = EmailMessage()
    reply["From"] = PEOPLE[who]
    reply["Subject"] = "Re: 請用印"
    reply.set_content(client.clearsign(who, "用印\n").decode("utf-8"))
    return pgpmime.verify_message(reply.as_bytes(), keyring, account=who)


def seal_document(client: Client, keyring: Keyring, msg: EmailMessage) -> bytes:
    """``msg`` sealed as the sealing step does: the custodian's SEAL unlocks the seal."""
    with keyring.seal_signer("bureau", authorised_by=seal_command(client, keyring)) as seal:
        return pgpmime.sign_message_bytes(msg, keyring, [seal, keyring.system_signer()])


def two_parts(raw: bytes) -> tuple[bytes, bytes]:
    """The exact signed bytes and the signature of a saved message, cut out by hand (not by
    the code under test), as a recipient following RFC 3156 would."""
    boundary = BytesParser(policy=policy.default).parsebytes(raw).get_boundary()
    assert boundary
    delimiter = b"\r\n--" + boundary.encode("ascii")
    start = raw.index(delimiter + b"\r\n") + len(delimiter) + 2
    end = raw.index(delimiter, start)
    signature_part = raw[end + len(delimiter) + 2 : raw.index(delimiter + b"--", end)]
    signature = signature_part[signature_part.index(b"-----BEGIN PGP SIGNATURE-----") :]
    return raw[start:end], signature


def gpg_verify(home: Path, content: bytes, signature: bytes) -> tuple[int, str]:
    """``gpg --verify sig content`` in ``home``: exit status and status lines."""
    with tempfile.TemporaryDirectory(prefix="yzv", dir="/tmp") as tmp:
        (Path(tmp) / "msg").write_bytes(content)
        (Path(tmp) / "msg.asc").write_bytes(signature)
        proc = subprocess.run(
            [
                *GPG_VERIFY,
                "--homedir",
                str(home),
                str(Path(tmp) / "msg.asc"),
                str(Path(tmp) / "msg"),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
    return proc.returncode, proc.stdout


def signed_by(raw: bytes, signature: bytes, who: str) -> bytes:
    """A PGP/MIME command as Thunderbird makes it, around ``raw`` (the signed entity)."""
    boundary = "------------tb8KQ3uYb1Yq7C0LmSGMxk2V"
    return (
        f"From: {PEOPLE[who]}\r\nTo: cmd@{DOMAIN}\r\nSubject: Re: 請審批\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/signed; micalg=pgp-sha256;\r\n protocol="application/pgp-'
        f'signature";\r\n boundary="{boundary}"\r\n\r\n'
        "This is an OpenPGP/MIME signed message (RFC 4880 and 3156)\r\n"
        f"--{boundary}\r\n"
    ).encode() + (
        raw
        + f"\r\n--{boundary}\r\n".encode()
        + b'Content-Type: application/pgp-signature; name="OpenPGP_signature.asc"\r\n\r\n'
        + signature
        + f"\r\n--{boundary}--\r\n".encode()
    )


def thunderbird_command(client: Client, who: str, text: str, *, signer: str = "") -> bytes:
    """A command ``text`` signed PGP/MIME by ``signer`` (default: ``who``), sent by ``who``."""
    entity = (
        b"Content-Type: text/plain; charset=UTF-8; format=flowed\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n"
    ) + base64.encodebytes(text.encode("utf-8")).replace(b"\n", b"\r\n")
    return signed_by(entity, client.detach_sign(signer or who, entity), who)


# --- What a recipient sees -------------------------------------------------------------------


def test_delivered_sealed_message_verifies_with_gpg_using_only_the_exported_seal(
    bureau: Context, client: Client, keyring: Keyring, recipient_home: Path
) -> None:
    # 第十八條/第十九條: a sealed document, queued and delivered into the clerk's Maildir, is
    # saved as a file; its two parts verify with the gpg CLI in a home that knows nothing but
    # the exported seal (which brings Yizhan's countersigning system key along).
    data = seal_document(client, keyring, document())
    with bureau.sessions.begin() as session:
        outbox.enqueue(
            session,
            source="test:sealed",
            message=data,
            mail_from=f"fawen@{DOMAIN}",
            rcpts=["wangfang@bureau.example"],
            now=bureau.clock(),
            expires_after=dt.timedelta(days=5),
            domain=DOMAIN,
        )
    assert asyncio.run(OutboundWorker(bureau).run_until_empty()) == 1
    (saved,) = (bureau.config.maildir_root / "wangfang" / "new").iterdir()
    raw = saved.read_bytes()

    outer = BytesParser(policy=policy.default).parsebytes(raw)
    assert outer.get_content_type() == "multipart/signed"
    assert outer.get_param("protocol") == "application/pgp-signature"
    assert outer.get_param("micalg") == "pgp-sha256"
    content, signature = two_parts(raw)
    status, lines = gpg_verify(recipient_home, content, signature)
    seal = keyring.seal("bureau")
    assert seal is not None
    assert status == 0, lines
    assert f"VALIDSIG {seal.fingerprint}" in lines
    assert f"VALIDSIG {keyring.system_fingerprint()}" in lines
    # The X-Yizhan-* headers are inside what was signed.
    inner = BytesParser(policy=policy.default).parsebytes(content)
    assert inner["X-Yizhan-Number"] == "遼檢發〔2026〕7號"
    assert inner["X-Yizhan-Action"] == "receive"


def test_tampered_body_fails_gpg_verify(
    client: Client, keyring: Keyring, recipient_home: Path
) -> None:
    # A changed word in the document body (here, in its encoded text) breaks the seal.
    raw = seal_document(client, keyring, document())
    content, signature = two_parts(raw)
    body_at = content.index(b"\r\n\r\n", content.index(b"text/plain")) + 4
    tampered = content[:body_at] + bytes([content[body_at] ^ 1]) + content[body_at + 1 :]
    status, lines = gpg_verify(recipient_home, tampered, signature)
    assert status != 0 and "BADSIG" in lines
    verdict = pgpmime.verify_message(raw.replace(content, tampered), keyring)
    assert (verdict.ok, verdict.status) == (False, "bad")


def test_tampered_signed_x_yizhan_header_fails_gpg_verify(
    client: Client, keyring: Keyring, recipient_home: Path
) -> None:
    # The protected copy of X-Yizhan-Action is signed: turning "receive" into "approve"
    # inside the signed part fails verification.
    raw = seal_document(client, keyring, document())
    content, signature = two_parts(raw)
    tampered = content.replace(b"X-Yizhan-Action: receive", b"X-Yizhan-Action: approve")
    assert tampered != content
    status, lines = gpg_verify(recipient_home, tampered, signature)
    assert status != 0 and "BADSIG" in lines
    assert pgpmime.verify_message(raw.replace(content, tampered), keyring).status == "bad"


def test_tampered_outer_x_yizhan_header_is_caught(client: Client, keyring: Keyring) -> None:
    # The copy outside the signed part is only for filters; verification compares it with the
    # signed one and says which header was changed.
    raw = seal_document(client, keyring, document())
    head, sep, body = raw.partition(b"\r\n\r\n")
    tampered = head.replace(b"X-Yizhan-State: distributing", b"X-Yizhan-State: closed") + sep + body
    verdict = pgpmime.verify_message(tampered, keyring)
    assert verdict.status == "headers_differ"
    assert "x-yizhan-state" in verdict.reason_en
    assert pgpmime.verify_message(raw, keyring).ok


# --- Producing the bytes ----------------------------------------------------------------------


def test_signed_message_serialises_back_to_the_signed_bytes(
    keyring: Keyring, recipient_home: Path
) -> None:
    # The classic pitfall: the signed part must be byte-identical after every serialisation
    # (EmailMessage.as_bytes, the outbox's, a parser's round trip), and 7-bit safe.
    msg = document()
    signed = pgpmime.sign_message(msg, keyring, [keyring.system_signer()])
    data = signed.as_bytes()
    for pol in (policy.SMTP, policy.default.clone(linesep="\r\n")):
        again = BytesParser(policy=pol).parsebytes(data).as_bytes(policy=policy.SMTP)
        assert again == data
    parts = pgpmime.split_signed(data)
    assert parts is not None
    assert parts.content == pgpmime.signed_content(msg)
    assert parts.content.isascii()
    assert all(len(line) <= 78 for line in parts.content.split(b"\r\n"))
    assert not re.search(rb"[ \t]\r\n|\r\nFrom ", parts.content)
    # The text survives exactly, trailing spaces and "From " included (in canonical form:
    # CRLF line ends, RFC 3156 section 5).
    inner = BytesParser(policy=policy.default).parsebytes(parts.content)
    text = next(p for p in inner.walk() if p.get_content_type() == "text/plain")
    assert text.get_content().replace("\r\n", "\n") == (
        "各處室：\n\n請於本週五前完成檢查。  \nFrom now on, report weekly.\n"
    )
    # A Maildir or mbox that stored the message with LF line ends verifies alike.
    assert pgpmime.verify_message(data.replace(b"\r\n", b"\n"), keyring).ok
    status, _ = gpg_verify(recipient_home, parts.content, parts.signature)
    assert status == 0


def test_signing_leaves_the_message_it_signs_as_it_was(keyring: Keyring) -> None:
    # The mailer signs a message and then takes its headers (and, for the next recipient, the
    # message again): making the signed part 7-bit and giving multiparts their boundaries must
    # happen on a copy.
    msg = document()
    msg.add_attachment(
        "第二頁 8-bit 文字\n".encode(),
        maintype="text",
        subtype="plain",
        cte="8bit",
        filename="附件.txt",
    )
    del msg["Content-Type"]
    msg["Content-Type"] = "multipart/mixed"  # no boundary: signing must choose one
    before = (
        [(k, str(v)) for k, v in msg.items()],
        [[(k, str(v)) for k, v in part.items()] for part in msg.walk()],
    )
    payloads = [part.get_payload() for part in msg.walk() if not part.is_multipart()]
    first = pgpmime.signed_content(msg)
    assert (
        [(k, str(v)) for k, v in msg.items()],
        [[(k, str(v)) for k, v in part.items()] for part in msg.walk()],
    ) == before
    assert [part.get_payload() for part in msg.walk() if not part.is_multipart()] == payloads
    assert pgpmime.signed_content(msg) == first
    assert first.isascii() and b"boundary=" in first


def test_outbox_keeps_a_signed_email_message_intact(ctx: Context, keyring: Keyring) -> None:
    # Handing the queue the EmailMessage (not bytes) still stores the signed bytes unchanged.
    msg = document()
    signed = pgpmime.sign_message(msg, keyring, [keyring.system_signer()])
    with ctx.sessions.begin() as session:
        row = outbox.enqueue(
            session,
            source="test:msg",
            message=signed,
            mail_from=f"fawen@{DOMAIN}",
            rcpts=["wangfang@bureau.example"],
            now=ctx.clock(),
            expires_after=dt.timedelta(days=1),
            domain=DOMAIN,
        )
        stored = row.data
    parts = pgpmime.split_signed(stored)
    assert parts is not None and parts.content == pgpmime.signed_content(msg)
    assert pgpmime.verify_message(stored, keyring).ok


def test_a_document_version_is_signed_once_for_all_its_recipients(
    client: Client, keyring: Keyring, recipient_home: Path
) -> None:
    # Sign once per document version: 30 recipients, each with their own To and reply token,
    # share one signature; a recipient asked for something else needs a part of their own.
    cache = pgpmime.SignatureCache()
    messages = []
    for i in range(30):
        msg = document()
        msg.replace_header("To", f"clerk{i}@bureau.example")
        msg.replace_header("Reply-To", f"r+token{i}@{DOMAIN}")
        messages.append(
            pgpmime.sign_message_bytes(msg, keyring, [keyring.system_signer()], cache=cache)
        )
    assert (cache.misses, cache.hits) == (1, 29)
    assert len({two_parts(m) for m in messages}) == 1
    assert b"clerk29@bureau.example" in messages[29]
    assert gpg_verify(recipient_home, *two_parts(messages[29]))[0] == 0

    signed = pgpmime.sign_once(
        pgpmime.signed_content(document()), keyring, [keyring.system_signer()]
    )
    # Stored with the document and restored later (a reminder), it wraps the same way.
    again = pgpmime.restore_signed_part(signed.content, signed.signature, signed.signers)
    assert again == signed
    with pytest.raises(pgpmime.SigningError, match="x-yizhan-action"):
        pgpmime.wrap(signed, document(action="read"))


def test_head_maker_writes_the_heads_wrap_head_writes(
    keyring: Keyring, recipient_home: Path
) -> None:
    # A distribution's heads are made with the shared headers folded once: each reader's
    # message reads as the one wrap_head makes (Chinese names and subject, the X-Yizhan-*
    # copy, a long header folded), verifies, and a changed X-Yizhan-* header is refused.
    signed = pgpmime.sign_once(
        pgpmime.signed_content(document()), keyring, [keyring.system_signer()]
    )
    body = pgpmime.signed_body(signed)
    maker = pgpmime.HeadMaker(signed)
    parse = BytesParser(policy=policy.default).parsebytes
    for i in range(3):
        envelope = EmailMessage()
        for name, value in document().items():
            if name.lower() not in ("to", "reply-to", "content-type", "mime-version"):
                envelope[name] = value
        envelope["To"] = formataddr((f"文書{i}", f"clerk{i}@bureau.example"))
        envelope["Reply-To"] = f"r+token{i}{'x' * 90}@{DOMAIN}"
        wrapped = pgpmime.wrap_head(signed, envelope)
        expected = parse(wrapped + body)
        pairs = [(n, str(v)) for n, v in envelope.items()]
        made = maker.head(pairs)
        got = parse(made + body)
        assert [(n, str(v)) for n, v in got.items()] == [(n, str(v)) for n, v in expected.items()]
        # Folded as the policy folds: no line longer than wrap_head's longest (an address
        # cannot be broken).
        assert max(map(len, made.split(b"\r\n"))) <= max(map(len, wrapped.split(b"\r\n")))
        assert made.isascii()
        assert gpg_verify(recipient_home, *two_parts(made + body))[0] == 0
    with pytest.raises(pgpmime.SigningError, match="x-yizhan-action"):
        maker.head([("To", "a@b.example"), ("X-Yizhan-Action", "read")])


# --- Verifying commands -----------------------------------------------------------------------


def test_inline_signed_command_is_verified(client: Client, keyring: Keyring) -> None:
    # A leader's 簽發 sent as an inline-signed text body: as the client sent it (8-bit,
    # encoded nothing) and quoted-printable encoded after signing; text outside the signed
    # block is not part of what counts.
    signed = client.clearsign("lijun", "同意\n請辦公室編號印發。\n").decode("utf-8")
    for cte in ("8bit", "quoted-printable"):
        reply = EmailMessage()
        reply["From"] = PEOPLE["lijun"]
        reply.set_content("不同意\n\n" + signed, cte=cte)
        verdict = pgpmime.verify_message(reply.as_bytes(), keyring, account="lijun")
        assert verdict.ok, verdict.reason
        assert (verdict.kind, verdict.account) == ("inline", "lijun")
        # RFC 4880 7.1: the line break before the signature is not part of the signed text.
        assert verdict.signed_text == "同意\n請辦公室編號印發。"


def test_pgpmime_signed_command_is_verified(client: Client, keyring: Keyring) -> None:
    # The same from Thunderbird: PGP/MIME, base64 text, delivered with LF line ends.
    raw = thunderbird_command(client, "lijun", "APPROVE\n")
    verdict = pgpmime.verify_message(raw.replace(b"\r\n", b"\n"), keyring, account="lijun")
    assert verdict.ok, verdict.reason
    assert (verdict.kind, verdict.signed_text) == ("pgp/mime", "APPROVE\n")
    assert verdict.fingerprint == keyring.person_key("lijun")


def test_command_signed_by_unknown_key_is_refused(client: Client, keyring: Keyring) -> None:
    # Somebody signs lijun's sign-off with a key Yizhan has never seen: refused, with the
    # reason in both languages and what to do about it.
    verdict = pgpmime.verify_message(
        thunderbird_command(client, "lijun", "APPROVE\n", signer="mallory"),
        keyring,
        account="lijun",
    )
    assert (verdict.ok, verdict.status) == (False, "unknown_key")
    assert "未登記" in verdict.reason_zh and "register your public key" in verdict.reason_en


def test_command_signed_by_another_persons_key_is_refused(client: Client, keyring: Keyring) -> None:
    # 第七條: wangfang's valid signature on a mail in lijun's name is not lijun's sign-off.
    verdict = pgpmime.verify_message(
        thunderbird_command(client, "lijun", "APPROVE\n", signer="wangfang"),
        keyring,
        account="lijun",
    )
    assert (verdict.ok, verdict.status) == (False, "wrong_key")
    assert "wangfang" in verdict.reason_en and "lijun" in verdict.reason_en


def test_revoked_key_is_refused(client: Client, keyring: Keyring) -> None:
    # lijun lost his laptop: the administrator revokes his key, and his signature stops
    # counting. A revocation published by the key's owner (gpg's own) is refused as well.
    command = thunderbird_command(client, "lijun", "APPROVE\n")
    assert pgpmime.verify_message(command, keyring, account="lijun").ok
    keyring.revoke_person_key("lijun")
    verdict = pgpmime.verify_message(command, keyring, account="lijun")
    assert (verdict.ok, verdict.status) == (False, "revoked")

    fpr = keyring.person_key("wangfang")
    assert fpr is not None
    keyring.gpg.import_keys(_owner_revocation(client, fpr))
    verdict = pgpmime.verify_message(
        thunderbird_command(client, "wangfang", "READ\n"), keyring, account="wangfang"
    )
    assert (verdict.ok, verdict.status) == (False, "revoked")


def _owner_revocation(client: Client, fpr: str) -> str:
    # gpg refuses --gen-revoke in batch mode; the certificate it made with the key will do.
    text = (client.home / "openpgp-revocs.d" / f"{fpr}.rev").read_text(encoding="utf-8")
    return text.replace(
        ":-----BEGIN PGP PUBLIC KEY BLOCK-----", "-----BEGIN PGP PUBLIC KEY BLOCK-----"
    )


def test_expired_key_is_refused(client: Client, keyring: Keyring) -> None:
    # sunlimin registered a key valid for a year in 2020 and signs with it today.
    old = dt.datetime(2020, 3, 1, tzinfo=dt.UTC)
    faked = ("--faked-system-time", "20200301T000000!")
    uid = "孫立民 <sunlimin@bureau.example>"
    client.gpg(*faked, "--passphrase", "", "--quick-gen-key", uid, "ed25519", "sign", "1y")
    exported = client.gpg("--armor", "--export", "sunlimin@bureau.example").decode("ascii")
    then = Keyring(keyring.home, clock=lambda: old, agent_s2k_count=S2K)
    then.import_person_key(exported, "sunlimin", ["sunlimin@bureau.example"])
    entity = b"Content-Type: text/plain; charset=UTF-8\r\n\r\nAPPROVE\r\n"
    signature = client.detach_sign("sunlimin", entity, *faked)
    verdict = pgpmime.verify_message(
        signed_by(entity, signature, "lijun"), keyring, account="sunlimin"
    )
    assert (verdict.ok, verdict.status) == (False, "expired")


def test_unsigned_message_is_reported_as_not_signed(keyring: Keyring) -> None:
    msg = EmailMessage()
    msg["From"] = PEOPLE["lijun"]
    msg.set_content("同意\n")
    verdict = pgpmime.verify_message(msg, keyring, account="lijun")
    assert (verdict.ok, verdict.status) == (False, "not_signed")


# --- Seals over time --------------------------------------------------------------------------


def test_document_sealed_before_a_rotation_still_verifies(client: Client, keyring: Keyring) -> None:
    # A rotated seal is superseded, not compromised: what it sealed before stands. A seal
    # revoked as compromised makes its documents fail.
    sealed = seal_document(client, keyring, document())
    keyring.rotate_seal("bureau")
    verdict = pgpmime.verify_message(sealed, keyring)
    assert verdict.ok, verdict.reason
    assert (verdict.seal_unit, verdict.by_system) == ("bureau", True)

    resealed = seal_document(client, keyring, document())
    keyring.revoke_seal("bureau")
    assert pgpmime.verify_message(resealed, keyring).status == "revoked"


def test_seal_needs_its_custodians_signed_seal(client: Client, keyring: Keyring) -> None:
    # 第十八條: only the custodian's signed SEAL unlocks the seal; a leader's valid signature
    # does not, nor does an unsigned claim.
    leader = seal_command(client, keyring, "lijun")
    assert leader.ok
    with (
        pytest.raises(KeyringError, match="kept by zhoujing"),
        keyring.seal_signer("bureau", authorised_by=leader),
    ):
        pass
    unsigned = pgpmime.verify_message(document().as_bytes(), keyring, account="zhoujing")
    with (
        pytest.raises(KeyringError, match="valid signature"),
        keyring.seal_signer("bureau", authorised_by=unsigned),
    ):
        pass
    with keyring.seal_signer("bureau", authorised_by=seal_command(client, keyring)) as seal:
        assert seal.passphrase is not None and not seal.passphrase.wiped
    assert seal.passphrase.wiped
    # Without the passphrase the seal key does not sign: the agent keeps no cached copy.
    with pytest.raises(pgpmime.SigningError):
        pgpmime.sign_once(
            b"x\r\n", keyring, [SignerSpec(fingerprint=Fingerprint(seal.fingerprint))]
        )
