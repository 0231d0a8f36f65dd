"""Tests of yizhan.daemon.outbound against real loopback SMTP relays and real Maildirs.

The relays are aiosmtpd servers on 127.0.0.1 whose handlers record, defer or refuse; time is a
settable clock on the Context, so retries and expiry are driven without waiting.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import mailbox
import os
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import func, select

from yizhan.daemon.context import Context
from yizhan.daemon.desk.mailer import Distribution, Mailer, MailFile
from yizhan.daemon.outbound import OutboundWorker
from yizhan.mailstore import outbox
from yizhan.mailstore.directory import load_directory
from yizhan.mailstore.models import AuditEntry, Delivery, OutboundMessage
from yizhan.signing.pgpmime import verify_message

NOW = dt.datetime(2024, 5, 6, 2, 0, tzinfo=dt.UTC)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


@dataclass
class Received:
    """One message as the relay got it."""

    mail_from: str
    rcpts: list[str]
    data: bytes
    tls: bool = False


@dataclass
class Recorder:
    """An aiosmtpd handler that keeps what it accepts and refuses some recipients every time."""

    refuse: dict[str, str] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        reply = self.refuse.get(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        got = Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.content)
        got.tls = session.ssl is not None
        self.received.append(got)
        return "250 2.0.0 Queued"


@dataclass
class Greylister(Recorder):
    """Answers 451 to the first try of each recipient and accepts the second."""

    seen: set[str] = field(default_factory=set)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address not in self.seen:
            self.seen.add(address)
            return "451 4.7.1 Greylisted, try again later"
        return await super().handle_RCPT(server, session, envelope, address, rcpt_options)


class Relay(Controller):
    """An aiosmtpd server on a free loopback port."""

    def __init__(self, handler: Recorder, **kwargs: Any) -> None:
        super().__init__(handler, hostname="127.0.0.1", port=0, **kwargs)

    def _trigger_server(self) -> None:
        # Port 0 lets the kernel choose; learn which before the readiness check connects.
        assert isinstance(self.server, asyncio.Server)
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()  # type: ignore[no-untyped-call]


@pytest.fixture
def clock(bureau: Context) -> Clock:
    """The demo bureau's clock, made settable."""
    settable = Clock(NOW)
    bureau.clock = settable
    return settable


@pytest.fixture
def relays() -> Iterator[Callable[..., Relay]]:
    """Starts loopback relays for the test and stops them afterwards."""
    started: list[Relay] = []

    def start(handler: Recorder, **kwargs: Any) -> Relay:
        relay = Relay(handler, **kwargs)
        relay.start()
        started.append(relay)
        return relay

    yield start
    for relay in started:
        relay.stop()


@pytest.fixture
def server_tls(tmp_path: Path) -> ssl.SSLContext:
    """A TLS context for a relay, with a self-signed certificate no client trusts."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(dt.datetime.now(dt.UTC) - dt.timedelta(days=1))
        .not_valid_after(dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "relay-cert.pem", tmp_path / "relay-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context


def use_relay(ctx: Context, relay: Relay, **settings: Any) -> None:
    """Point ``ctx`` at ``relay``."""
    settings = {"host": "127.0.0.1", "port": relay.port, **settings}
    ctx.config = replace(ctx.config, relay=replace(ctx.config.relay, **settings))


def enqueue(
    ctx: Context,
    *,
    source: str = "test:1",
    message: EmailMessage | bytes | None = None,
    mail_from: str = "lijun@oa.example",
    rcpts: tuple[str, ...] = ("wangfang@bureau.example",),
) -> OutboundMessage:
    """Queue a message as the processor would."""
    with ctx.sessions.begin() as session:
        return outbox.enqueue(
            session,
            source=source,
            message=message if message is not None else notice(),
            mail_from=mail_from,
            rcpts=rcpts,
            now=ctx.clock(),
            expires_after=dt.timedelta(days=ctx.config.relay.retry_days),
            domain=ctx.config.domain,
        )


def notice(subject: str = "會議通知") -> EmailMessage:
    """A small message with Chinese text, as Yizhan renders them."""
    msg = EmailMessage()
    msg["From"] = "李軍 <lijun@oa.example>"
    msg["To"] = "wangfang@bureau.example"
    msg["Subject"] = subject
    msg.set_content("請於明天上午九點到會。\n")
    return msg


def run(worker: OutboundWorker) -> int:
    """Let ``worker`` work until nothing is due."""
    return asyncio.run(worker.run_until_empty())


def files(ctx: Context, account: str, sub: str = "new") -> list[Path]:
    """The messages in an account's Maildir folder."""
    folder = ctx.config.maildir_root / account / sub
    return sorted(folder.iterdir()) if folder.is_dir() else []


def deliveries(ctx: Context) -> dict[str, Delivery]:
    """Every delivery, by recipient."""
    with ctx.sessions() as session:
        return {d.rcpt: d for d in session.scalars(select(Delivery))}


def parse(data: bytes) -> EmailMessage:
    """A message as a client reads it."""
    return BytesParser(policy=policy.default).parsebytes(data)


def status_fields(report: EmailMessage) -> tuple[dict[str, str], list[dict[str, str]]]:
    """The per-message and per-recipient fields of a delivery status notification."""
    assert report.get_content_type() == "multipart/report"
    assert report.get_param("report-type") == "delivery-status"
    parts = list(report.iter_parts())
    assert [p.get_content_type() for p in parts] == [
        "text/plain",
        "message/delivery-status",
        "text/rfc822-headers",
    ]
    blocks = parts[1].get_payload()
    assert isinstance(blocks, list)
    fields = [dict(b.items()) for b in blocks if isinstance(b, Message)]
    return fields[0], fields[1:]


def test_maildir_delivery_keeps_the_bytes_after_return_path(bureau: Context, clock: Clock) -> None:
    # With no relay, mail for a person (by own mailbox or account@domain) lands in
    # var/maildirs/<account>/new, Return-Path first, then exactly the queued bytes.
    row = enqueue(bureau, rcpts=("wangfang@bureau.example", "zhoujing@oa.example"))
    assert run(OutboundWorker(bureau)) == 2
    for account in ("wangfang", "zhoujing"):
        (path,) = files(bureau, account)
        assert path.read_bytes() == b"Return-Path: <lijun@oa.example>\r\n" + row.data
    assert bureau.config.maildir_root == bureau.config.data_dir / "maildirs"
    assert {d.state for d in deliveries(bureau).values()} == {"sent"}
    assert {d.sent_at for d in deliveries(bureau).values()} == {NOW}


def test_a_distribution_is_in_each_readers_maildir_and_each_reads_their_own_copy(
    bureau: Context, clock: Clock
) -> None:
    # A document distributed to several people (one signed body, a head each, as a sealed
    # document goes to a thousand clerks) is in each one's Maildir once, as a mail client
    # reads it: their own To and reply address, the signature good. One reader's client
    # marking it read (renaming it into cur/ with the S flag, as Dovecot does) leaves the
    # others' copies new and unread.
    readers = ("wangfang", "mali", "zhoujing")
    pdf = MailFile(filename="通知.pdf", content_type="application/pdf", data=os.urandom(65536))
    with bureau.sessions.begin() as session:
        people = load_directory(session).people
        mailer = Mailer(bureau)
        distribution = Distribution()
        for account in readers:
            mailer.distribute(
                session,
                source=f"test:distribution:{account}",
                to=people[account],
                template="reply.txt",
                distribution=distribution,
                headers={"X-Yizhan-Doc": "7", "Reply-To": f"r+{account}-abc@oa.example"},
                variables={"subject": "關於安全檢查的通知", "text": "請簽收。"},
                attachments=[pdf],
            )
        assert mailer.queue_distribution(session, distribution) == len(readers)
    assert run(OutboundWorker(bureau)) == len(readers)
    assert {d.state for d in deliveries(bureau).values()} == {"sent"}

    boxes = {a: mailbox.Maildir(bureau.config.maildir_root / a, create=False) for a in readers}
    bodies = set()
    for account, box in boxes.items():
        (key,) = box.keys()
        assert box[key].get_subdir() == "new" and box[key].get_flags() == ""
        data = box.get_bytes(key)
        copy = parse(data)
        assert copy["Return-Path"] == "<cmd@oa.example>"
        assert f"{account}@bureau.example" in str(copy["To"])
        assert copy["Reply-To"] == f"r+{account}-abc@oa.example"
        assert str(copy["Subject"]).endswith("關於安全檢查的通知")
        (attached,) = [p for p in copy.walk() if p.get_filename() == "通知.pdf"]
        assert attached.get_content() == pdf.data
        assert verify_message(data.split(b"\r\n", 1)[1], bureau.keyring).ok
        bodies.add(data.split(b"\r\n\r\n", 1)[1])
    assert len(bodies) == 1

    # wangfang reads it.
    (name,) = os.listdir(bureau.config.maildir_root / "wangfang" / "new")
    os.rename(
        bureau.config.maildir_root / "wangfang" / "new" / name,
        bureau.config.maildir_root / "wangfang" / "cur" / f"{name}:2,S",
    )
    for account, box in boxes.items():
        (key,) = box.keys()
        read = account == "wangfang"
        assert box[key].get_subdir() == ("cur" if read else "new")
        assert box[key].get_flags() == ("S" if read else "")
        assert parse(box.get_bytes(key))["Reply-To"] == f"r+{account}-abc@oa.example"


def test_unknown_recipient_without_relay_bounces_into_senders_maildir(
    bureau: Context, clock: Clock
) -> None:
    # With no relay, an address outside the organisation cannot be delivered: the sender gets
    # an RFC 3464 report in their Maildir, saying why in both languages.
    row = enqueue(bureau, rcpts=("stranger@elsewhere.example",))
    run(OutboundWorker(bureau))
    assert deliveries(bureau)["stranger@elsewhere.example"].state == "bounced"
    (path,) = files(bureau, "lijun")
    data = path.read_bytes()
    assert data.startswith(b"Return-Path: <>\r\n")
    report = parse(data.split(b"\r\n", 1)[1])
    assert report["To"] == "lijun@oa.example"
    assert report["Message-ID"].endswith("@oa.example>")
    reason = (
        "no relay is configured and stranger@elsewhere.example is not a person of this organisation"
    )
    note = next(report.iter_parts()).get_content()
    assert "您的郵件未能送達" in note and "Your message could not be delivered" in note
    assert reason in note
    per_message, (recipient,) = status_fields(report)
    assert per_message["Reporting-MTA"] == "dns; oa.example"
    assert per_message["Arrival-Date"] == "Mon, 06 May 2024 02:00:00 +0000"
    assert recipient["Final-Recipient"] == "rfc822; stranger@elsewhere.example"
    assert recipient["Action"] == "failed"
    assert recipient["Status"] == "5.1.1"
    assert recipient["Diagnostic-Code"] == f"smtp; 550 5.1.1 {reason}"
    assert recipient["Last-Attempt-Date"] == "Mon, 06 May 2024 02:00:00 +0000"
    headers = list(report.iter_parts())[2].get_content()
    assert f"Message-ID: {row.message_id}" in headers
    with bureau.sessions() as session:
        entry = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "delivery.bounced")
        ).one()
    assert entry.detail["rcpt"] == "stranger@elsewhere.example"


def test_null_sender_failure_is_not_bounced_again(bureau: Context, clock: Clock) -> None:
    # A report that cannot be delivered is marked failed; a report about it would loop.
    enqueue(bureau, mail_from="", rcpts=("stranger@elsewhere.example",))
    run(OutboundWorker(bureau))
    assert deliveries(bureau)["stranger@elsewhere.example"].state == "failed"
    with bureau.sessions() as session:
        assert session.scalar(select(func.count()).select_from(OutboundMessage)) == 1
        actions = session.scalars(select(AuditEntry.action).where(AuditEntry.actor == "yizhan"))
        assert list(actions) == ["delivery.failed"]
    assert not bureau.config.maildir_root.exists() or not any(
        bureau.config.maildir_root.rglob("yizhan-*")
    )


def test_relay_gets_one_transaction_per_message(
    bureau: Context, clock: Clock, relays: Callable[..., Relay]
) -> None:
    # With a relay, a message goes out once for all its recipients, bytes unchanged, with
    # the envelope sender it was queued with.
    recorder = Recorder()
    use_relay(bureau, relays(recorder))
    row = enqueue(bureau, rcpts=("a@remote.example", "b@remote.example"))
    assert run(OutboundWorker(bureau)) == 2
    (got,) = recorder.received
    assert got.mail_from == "lijun@oa.example"
    assert got.rcpts == ["a@remote.example", "b@remote.example"]
    assert got.data == row.data
    assert {d.state for d in deliveries(bureau).values()} == {"sent"}


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_relay_auth_uses_configured_credentials(
    bureau: Context, clock: Clock, relays: Callable[..., Relay]
) -> None:
    # relay.username/password log in before sending; a relay that insists on AUTH accepts us.
    logins: list[tuple[bytes, bytes]] = []

    def authenticator(
        server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        logins.append((data.login, data.password))
        return AuthResult(success=data.password == b"s3cret-pass")

    recorder = Recorder()
    relay = relays(
        recorder, authenticator=authenticator, auth_required=True, auth_require_tls=False
    )
    use_relay(bureau, relay, username="yizhan", password="s3cret-pass")
    enqueue(bureau, rcpts=("a@remote.example",))
    run(OutboundWorker(bureau))
    assert logins == [(b"yizhan", b"s3cret-pass")]
    assert len(recorder.received) == 1


def test_starttls_is_used_when_offered(
    bureau: Context, clock: Clock, relays: Callable[..., Relay], server_tls: ssl.SSLContext
) -> None:
    # Without relay.starttls, a relay that offers STARTTLS still gets the mail encrypted (its
    # certificate unchecked, as Postfix's "may" level), never in clear text when it insists.
    recorder = Recorder()
    use_relay(bureau, relays(recorder, tls_context=server_tls, require_starttls=True))
    enqueue(bureau, rcpts=("a@remote.example",))
    run(OutboundWorker(bureau))
    (got,) = recorder.received
    assert got.tls


def test_configured_starttls_refuses_an_untrusted_certificate(
    bureau: Context, clock: Clock, relays: Callable[..., Relay], server_tls: ssl.SSLContext
) -> None:
    # With relay.starttls the certificate is checked: an untrusted one defers the mail (the
    # administrator can fix the relay in time) instead of sending it or bouncing it.
    recorder = Recorder()
    use_relay(bureau, relays(recorder, tls_context=server_tls), starttls=True)
    enqueue(bureau, rcpts=("a@remote.example",))
    run(OutboundWorker(bureau))
    assert recorder.received == []
    waiting = deliveries(bureau)["a@remote.example"]
    assert (waiting.state, waiting.attempts) == ("queued", 1)
    assert waiting.last_error is not None and "CERTIFICATE_VERIFY_FAILED" in waiting.last_error


def test_temporary_failure_is_retried_after_backoff(
    bureau: Context, clock: Clock, relays: Callable[..., Relay]
) -> None:
    # A 451 defers the delivery by first_retry_seconds; `yizhan queue` says why it waits;
    # nothing is tried before the time, and the second try succeeds.
    recorder = Greylister()
    use_relay(bureau, relays(recorder), first_retry_seconds=60)
    enqueue(bureau, rcpts=("a@remote.example",))
    run(OutboundWorker(bureau))
    waiting = deliveries(bureau)["a@remote.example"]
    assert (waiting.state, waiting.attempts) == ("queued", 1)
    assert waiting.next_attempt_at == NOW + dt.timedelta(seconds=60)
    with bureau.sessions() as session:
        (row,) = outbox.queue_listing(session, now=clock())
    assert row.last_error == "451 4.7.1 Greylisted, try again later"
    listing = outbox.format_queue([row], bureau.config.tzinfo)
    assert "a@remote.example" in listing and "why: 451 4.7.1 Greylisted" in listing

    clock.advance(seconds=59)
    assert run(OutboundWorker(bureau)) == 0
    clock.advance(seconds=1)
    assert run(OutboundWorker(bureau)) == 1
    done = deliveries(bureau)["a@remote.example"]
    assert (done.state, done.attempts) == ("sent", 2)
    assert [r.rcpts for r in recorder.received] == [["a@remote.example"]]


def test_permanent_refusal_bounces_that_recipient_only(
    bureau: Context, clock: Clock, relays: Callable[..., Relay]
) -> None:
    # A 550 for one recipient bounces that one; the other is delivered. The report goes to
    # the sender from <> through the relay.
    recorder = Recorder(refuse={"nobody@remote.example": "550 5.1.1 No such user"})
    use_relay(bureau, relays(recorder))
    row = enqueue(bureau, rcpts=("ok@remote.example", "nobody@remote.example"))
    run(OutboundWorker(bureau))
    states = {rcpt: d.state for rcpt, d in deliveries(bureau).items()}
    assert states == {
        "ok@remote.example": "sent",
        "nobody@remote.example": "bounced",
        "lijun@oa.example": "sent",
    }
    original, dsn = recorder.received
    assert original.rcpts == ["ok@remote.example"]
    # aiosmtpd spells the null sender as the command had it.
    assert (dsn.mail_from, dsn.rcpts) == ("<>", ["lijun@oa.example"])
    report = parse(dsn.data)
    assert report["In-Reply-To"] == row.message_id
    _, (recipient,) = status_fields(report)
    assert recipient["Final-Recipient"] == "rfc822; nobody@remote.example"
    assert recipient["Status"] == "5.1.1"
    assert recipient["Diagnostic-Code"] == "smtp; 550 5.1.1 No such user"


def test_expiry_after_retry_days_bounces(
    bureau: Context, clock: Clock, relays: Callable[..., Relay]
) -> None:
    # A recipient that answers 451 for longer than relay.retry_days is given up at the
    # deadline, after backoff of 1, 2, 4 … minutes; the sender learns the last reply.
    recorder = Recorder(refuse={"busy@remote.example": "451 4.3.0 Mailbox busy"})
    use_relay(bureau, relays(recorder), retry_days=0.01, first_retry_seconds=60)
    enqueue(bureau, rcpts=("busy@remote.example",))
    tries = []
    while deliveries(bureau)["busy@remote.example"].state == "queued":
        clock.now = deliveries(bureau)["busy@remote.example"].next_attempt_at
        tries.append((clock.now - NOW).total_seconds())
        run(OutboundWorker(bureau))
    assert tries == [0, 60, 180, 420, 864]
    gone = deliveries(bureau)["busy@remote.example"]
    assert (gone.state, gone.attempts) == ("bounced", 5)
    (dsn,) = recorder.received
    _, (recipient,) = status_fields(parse(dsn.data))
    assert recipient["Status"] == "5.4.7"
    assert recipient["Diagnostic-Code"] == "smtp; 451 4.3.0 Mailbox busy"
    assert "多次重試直至期限仍未送達" in next(parse(dsn.data).iter_parts()).get_content()


class Crash(Exception):
    """Stands for the process dying."""


class CrashingWorker(OutboundWorker):
    """Delivers, then dies before it can record that it did."""

    async def record(self, outcomes: Any) -> None:
        raise Crash


def test_crash_between_maildir_delivery_and_mark_leaves_one_copy(
    bureau: Context, clock: Clock
) -> None:
    # The daemon dies after writing into the Maildir but before marking the delivery sent.
    # After restart the claim's lease runs out, the delivery is made again, and the Maildir
    # still holds one copy.
    enqueue(bureau)
    with pytest.raises(Crash):
        run(CrashingWorker(bureau))
    (first,) = files(bureau, "wangfang")
    assert deliveries(bureau)["wangfang@bureau.example"].state == "queued"

    restarted = OutboundWorker(bureau)
    assert run(restarted) == 0  # still leased to the dead worker
    clock.advance(seconds=restarted.lease.total_seconds() + 1)
    assert run(restarted) == 1
    assert files(bureau, "wangfang") == [first]
    assert deliveries(bureau)["wangfang@bureau.example"].state == "sent"


def test_crash_resend_through_relay_has_same_message_id(
    bureau: Context, clock: Clock, relays: Callable[..., Relay]
) -> None:
    # Through a relay a crash before marking means a second send; it carries the same bytes
    # and Message-ID, so mail clients show the message once.
    recorder = Recorder()
    use_relay(bureau, relays(recorder))
    row = enqueue(bureau, rcpts=("a@remote.example",))
    with pytest.raises(Crash):
        run(CrashingWorker(bureau))
    clock.advance(hours=1)
    run(OutboundWorker(bureau))
    first, second = recorder.received
    assert first.data == second.data
    assert parse(first.data)["Message-ID"] == parse(second.data)["Message-ID"] == row.message_id


def test_two_workers_on_one_database_never_send_twice(
    bureau: Context, clock: Clock, relays: Callable[..., Relay]
) -> None:
    # Two daemons (two Contexts, two connection pools) share one queue of 200 deliveries.
    # Each is sent exactly once: leases, and SKIP LOCKED on PostgreSQL, keep them apart.
    recorder = Recorder()
    use_relay(bureau, relays(recorder))
    with bureau.sessions.begin() as session:
        for i in range(100):
            outbox.enqueue(
                session,
                source=f"load:{i}",
                message=notice(f"通知 {i}"),
                mail_from="lijun@oa.example",
                rcpts=[f"a{i}@remote.example", f"b{i}@remote.example"],
                now=NOW,
                expires_after=dt.timedelta(days=5),
                domain="oa.example",
            )
    other = Context.open(bureau.config, clock=clock)
    try:
        first = OutboundWorker(bureau, batch=7)
        second = OutboundWorker(other, batch=7)

        async def both() -> list[int]:
            return list(await asyncio.gather(first.run_until_empty(), second.run_until_empty()))

        counts = asyncio.run(both())
    finally:
        other.close()
    assert sum(counts) == 200 and min(counts) > 0
    sent = [(r, got.data) for got in recorder.received for r in got.rcpts]
    assert len(sent) == 200
    assert len({r for r, _ in sent}) == 200
    assert {d.state for d in deliveries(bureau).values()} == {"sent"}


def test_run_wakes_when_told_and_stops(bureau: Context, clock: Clock) -> None:
    # The daemon's loop sleeps while the queue is empty; wake() (called by the processor after
    # queueing) makes it deliver at once, and stop ends it.
    worker = OutboundWorker(bureau, idle_seconds=30)

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop))
        await asyncio.sleep(0.2)
        await asyncio.to_thread(enqueue, bureau)
        worker.wake()
        for _ in range(100):
            if files(bureau, "wangfang"):
                break
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.wait_for(task, timeout=5)

    asyncio.run(scenario())
    assert len(files(bureau, "wangfang")) == 1
    assert deliveries(bureau)["wangfang@bureau.example"].state == "sent"


def test_what_the_relay_took_is_recorded_even_when_the_round_breaks_off(
    bureau: Context, clock: Clock, relays: Callable[..., Relay], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Outcomes are recorded a chunk at a time; when the round breaks off (here the relay client
    # fails on the 19th message), what the relay already took is still marked sent, so it does
    # not go out again when the lease runs out: a relay cannot tell it has it.
    from yizhan.daemon import outbound

    recorder = Recorder()
    use_relay(bureau, relays(recorder))
    for n in range(20):
        enqueue(bureau, source=f"test:{n}", rcpts=(f"r{n}@remote.example",))
    send = outbound._RelayCourier.send
    calls = 0

    async def failing(self: Any, group: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 19:
            raise RuntimeError("the relay client broke")
        return await send(self, group)

    monkeypatch.setattr(outbound._RelayCourier, "send", failing)
    with pytest.raises(RuntimeError):
        asyncio.run(OutboundWorker(bureau).run_once())
    states = [d.state for d in deliveries(bureau).values()]
    assert len(recorder.received) == 18
    assert states.count("sent") == 18 and states.count("queued") == 2
