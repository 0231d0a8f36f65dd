"""The crash suite: SIGKILL the daemon again and again under load, then check what survived.

``python -m proofs.crash`` (``make proofs``) sets up a demo bureau on SQLite (``--postgresql``:
a scratch schema in ``$YIZHAN_TEST_PG``'s database), starts ``yizhan serve`` as an operator
would, and keeps a steady load on it over SMTP with AUTH: clerks register incoming documents at
shouwen@ (each gets a number at once), staff send HELP to cmd@, and a replier answers every step
request it finds in people's Maildirs as a person would (同意 to a proposal, an instruction
naming a unit, 辦結 to a handling step). Meanwhile the daemon is killed ``--kills`` times at
random moments and restarted, then once at each crash point of ``yizhan.crashpoints`` (inside a
database commit, a Maildir delivery, a relay delivery, a scheduled job, the pickup's rows of
spooled messages committed and their spool file kept, a sealed distribution:
for that one a bureau document is taken through its approvals, the leader's signed 簽發 and the
custodian's signed 用印, with keys made by gpg and registered by ``yizhan key import``). When
the load stops and the queues drain, it checks, and prints:

- every message that got 250 is stored and processed; every stored message was answered
  exactly once (its answer's In-Reply-To names it);
- no step was decided twice (one decision entry per step in the trail);
- no one got the same step's request twice, nor the same Message-ID twice;
- registration numbers run 1..N with none given twice or skipped;
- each receiving clerk got the sealed document once, signed (multipart/signed);
- the inbound and outbound queues are empty.

Exit status 0 when every check holds. Figures go into docs/proofs.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import email
import hashlib
import os
import random
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from email.message import EmailMessage
from email.policy import default
from email.utils import make_msgid
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, select, text, update

from yizhan.cli.setup import DEMO_PASSWORD
from yizhan.crashpoints import POINTS
from yizhan.mailstore.maildir import deliver
from yizhan.mailstore.models import AuditEntry, Delivery, Document, Inbound, Step

DOMAIN = "oa.example"
#: Who registers incoming documents, and who asks for HELP.
REGISTRARS = ("wangfang",)
ASKERS = ("xuna", "hanxue", "fenggang")
#: What the replier says at each step of the incoming-document flow.
ANSWERS = {"propose": "同意", "instruct": "同意：衛生檢疫處辦理", "handle": "辦結：已辦理"}
_NUMBER = re.compile(r"〔\d{4}〕(\d+)")
#: The bureau document the ``seal`` point needs: who drafts it, to whom it goes.
DRAFTER = "songjia"
FAWEN_BODY = "主送：大連分局、丹東分局\n\n各分局要加強口岸檢疫工作。"
#: Seconds the bureau document may take to reach its seal, and the SEAL to be processed.
SEAL_WITHIN = 600


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Bureau:
    """A demo bureau in a scratch directory and the daemon serving it."""

    def __init__(self, root: Path, database_url: str, *, name: str = "yizhan") -> None:
        self.root = root
        self.name = name
        self.database_url = database_url
        self.port = _free_port()
        self.config = root / f"{name}.toml"
        self.config.write_text(
            f'[yizhan]\ndata_dir = "{root / "var"}"\n'
            f'[database]\nurl = "{database_url}"\n'
            f'[smtp]\nlisten = "127.0.0.1:{self.port}"\n[admin]\nlisten = "127.0.0.1:0"\n'
            '[imap]\nlisten = ""\n',
            encoding="utf-8",
        )
        self.env = {**os.environ, "YIZHAN_CONFIG": str(self.config)}
        self.env.pop("YIZHAN_CRASH_AT", None)
        self.process: subprocess.Popen[bytes] | None = None
        if name != "yizhan":
            return  # another daemon of a bureau already set up
        for verb in ("init", "demo"):
            subprocess.run(
                [sys.executable, "-m", "yizhan", verb],
                env=self.env,
                check=True,
                capture_output=True,
            )

    def relay_to(self, port: int) -> None:
        """From the next start, send every mail through the MTA at ``port``."""
        with self.config.open("a", encoding="utf-8") as config:
            config.write(f'[relay]\nhost = "127.0.0.1"\nport = {port}\nfirst_retry_seconds = 1\n')

    def start(self, crash_at: str | None = None) -> None:
        env = dict(self.env)
        if crash_at:
            env["YIZHAN_CRASH_AT"] = crash_at
        with (self.root / f"{self.name}.log").open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "yizhan", "serve"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait_listening(self, timeout: float = 60) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return True
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("the daemon did not start listening")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        if self.process is not None:
            self.process.wait(30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(60)

    def maildir(self, account: str) -> Path:
        return self.root / "var" / "maildirs" / account / "new"

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


class Relay:
    """The organisation's MTA and final delivery, as far as the proof needs them: an SMTP sink
    on loopback that files each message into the recipient's Maildir.

    SMTP hands a message over at least once: a daemon killed after the relay's 250 and before
    it marks the mail sent gives it again, with the same Message-ID. Final delivery keys each
    copy by Message-ID and recipient (as Dovecot does with Sieve's duplicate test), so the
    person gets it once; ``resent`` counts the second hand-overs.
    """

    def __init__(self, bureau: Bureau) -> None:
        from aiosmtpd.controller import Controller

        self.bureau = bureau
        self.received: Counter[tuple[str, str]] = Counter()
        # What the Maildir courier delivered before the relay took over counts as filed: a mail
        # it delivered but had not marked sent when the daemon died comes again by the relay.
        for new in (bureau.root / "var" / "maildirs").glob("*/new"):
            for path in new.iterdir():
                mail = email.message_from_bytes(path.read_bytes(), policy=default)
                self.received[(new.parent.name, str(mail["Message-ID"]))] += 1
        self.port = _free_port()
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    async def handle_DATA(self, _server: object, _session: object, envelope: Any) -> str:
        data = bytes(envelope.original_content or envelope.content)
        mail = email.message_from_bytes(data, policy=default)
        message_id = str(mail["Message-ID"])
        for rcpt in envelope.rcpt_tos:
            account = rcpt.partition("@")[0].lower()
            self.received[(account, message_id)] += 1
            if self.received[(account, message_id)] > 1:
                continue
            unique = hashlib.sha1(f"{message_id} {account}".encode()).hexdigest()
            deliver(
                self.bureau.root / "var" / "maildirs",
                account,
                data,
                unique,
                mail_from=envelope.mail_from,
            )
        return "250 OK"

    @property
    def resent(self) -> int:
        return sum(n - 1 for n in self.received.values() if n > 1)

    def stop(self) -> None:
        self._controller.stop()


class Load:
    """Clients keeping the daemon busy; what got 250 is remembered by Message-ID."""

    def __init__(self, bureau: Bureau, *, servers: Sequence[Bureau] = ()) -> None:
        self.bureau = bureau
        #: The daemons clients may send to (the bureau's own by default), one picked per mail.
        self.servers = list(servers) or [bureau]
        self.acknowledged: set[str] = set()
        self.refused: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.replied: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        self._threads = [
            threading.Thread(target=self._register, args=(a,), daemon=True) for a in REGISTRARS
        ]
        self._threads += [
            threading.Thread(target=self._ask, args=(a,), daemon=True) for a in ASKERS
        ]
        self._threads.append(threading.Thread(target=self._reply, daemon=True))
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)

    def send(
        self,
        account: str,
        to: str,
        subject: str,
        body: str,
        *,
        message_id: str | None = None,
        **headers: str,
    ) -> bool:
        """One message over SMTP with AUTH; True once it got 250."""
        mail = EmailMessage()
        mail["From"] = f"{account}@{DOMAIN}"
        mail["To"] = to
        mail["Subject"] = subject
        mail["Message-ID"] = message_id or make_msgid("crash", domain=DOMAIN)
        for name, value in headers.items():
            mail[name.replace("_", "-")] = value
        mail.set_content(body)
        try:
            live = [server for server in self.servers if server.alive] or self.servers
            port = random.choice(live).port
            with smtplib.SMTP("127.0.0.1", port, timeout=15) as smtp:
                smtp.login(account, DEMO_PASSWORD)
                smtp.send_message(mail)
        except smtplib.SMTPResponseException as exc:
            with self._lock:
                self.refused[f"{exc.smtp_code}"] += 1
            return False
        except (OSError, smtplib.SMTPException) as exc:
            with self._lock:
                self.errors[type(exc).__name__] += 1
            time.sleep(0.1)
            return False
        with self._lock:
            self.acknowledged.add(str(mail["Message-ID"]))
        return True

    def _register(self, account: str) -> None:
        n = 0
        while not self._stop.is_set():
            n += 1
            self.send(account, f"shouwen@{DOMAIN}", f"海關來文 第{n}件", "外單位來文，請登記。")
            time.sleep(0.2)

    def _ask(self, account: str) -> None:
        while not self._stop.is_set():
            self.send(account, f"cmd@{DOMAIN}", "HELP", "HELP")
            time.sleep(0.3)

    def _reply(self) -> None:
        """Answer each step request once, as its recipient would; again only if not 250'd."""
        while not self._stop.is_set():
            for request, account in self.requests():
                if self._stop.is_set():
                    return
                step = str(request["X-Yizhan-Step"])
                key = (account, str(request["Message-ID"]))
                if key in self.replied or step not in ANSWERS:
                    continue
                if self.send(
                    account,
                    str(request["Reply-To"]),
                    f"Re: {request['Subject']}",
                    ANSWERS[step],
                    In_Reply_To=str(request["Message-ID"]),
                ):
                    self.replied.add(key)
            time.sleep(0.3)

    def requests(self) -> Iterator[tuple[EmailMessage, str]]:
        root = self.bureau.root / "var" / "maildirs"
        for new in root.glob("*/new"):
            for path in sorted(new.iterdir()):
                try:
                    mail = email.message_from_bytes(path.read_bytes(), policy=default)
                except OSError:
                    continue
                if str(mail.get("Reply-To", "")).startswith("r+"):
                    assert isinstance(mail, EmailMessage)
                    yield mail, new.parent.name


def make_reminders_due(bureau: Bureau) -> None:
    """Let time pass for a few waiting steps: the reminder sweep has work at the next start."""
    engine = create_engine(bureau.database_url)
    with engine.begin() as conn:
        ids = conn.execute(select(Step.id).where(Step.state == "waiting").limit(5)).scalars().all()
        conn.execute(
            update(Step)
            .where(Step.id.in_(ids))
            .values(next_reminder_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))
        )
    engine.dispose()


class Signers:
    """The own OpenPGP keys of the people a bureau document needs signatures from (簽發 and
    用印, 第十八條), made with gpg as on their computers and registered with
    ``yizhan key import`` as IT would, the first time each is needed."""

    def __init__(self, bureau: Bureau) -> None:
        self.bureau = bureau
        self.home = Path(tempfile.mkdtemp(prefix="yzkeys"))
        self.home.chmod(0o700)
        self.registered: set[str] = set()

    def _gpg(self, *args: str, stdin: bytes = b"") -> bytes:
        done = subprocess.run(
            ["gpg", "--homedir", str(self.home), "--batch", "--pinentry-mode", "loopback", *args],
            input=stdin,
            capture_output=True,
            check=True,
        )
        return done.stdout

    def clearsign(self, account: str, text: str) -> str:
        """``text`` signed inline by ``account``'s key (registered first if need be)."""
        uid = f"{account}@{DOMAIN}"
        if account not in self.registered:
            self._gpg("--passphrase", "", "--quick-gen-key", uid, "ed25519", "sign", "1y")
            exported = self.home / f"{account}.asc"
            exported.write_bytes(self._gpg("--armor", "--export", uid))
            verb = ["key", "import", str(exported), "--account", account]
            subprocess.run(
                [sys.executable, "-m", "yizhan", *verb],
                env=self.bureau.env,
                check=True,
                capture_output=True,
            )
            self.registered.add(account)
        return self._gpg("--clearsign", "-u", uid, stdin=text.encode()).decode()

    def close(self) -> None:
        subprocess.run(["gpgconf", "--homedir", str(self.home), "--kill", "gpg-agent"], check=False)
        shutil.rmtree(self.home, ignore_errors=True)


def up_to_the_seal(bureau: Bureau, load: Load, signers: Signers) -> tuple[EmailMessage, str]:
    """A bureau document at fawen@ taken through its approvals and the leader's signed 簽發 to
    the custodian's 用印 request, as the people would; that request and its addressee."""
    while not load.send(DRAFTER, f"fawen@{DOMAIN}", "關於加強口岸檢疫工作的通知", FAWEN_BODY):
        time.sleep(0.5)
    answered: set[str] = set()
    # Each request waits its turn behind the load's backlog, in the processor and the couriers.
    deadline = time.monotonic() + SEAL_WITHIN
    while time.monotonic() < deadline:
        for request, account in load.requests():
            if request["X-Yizhan-Kind"] != "fawen" or str(request["Message-ID"]) in answered:
                continue
            step = str(request["X-Yizhan-Step"])
            if step == "seal":
                return request, account
            if step == "receive":
                continue
            body = signers.clearsign(account, "同意") if step == "signoff" else "同意"
            if load.send(
                account,
                str(request["Reply-To"]),
                f"Re: {request['Subject']}",
                body,
                In_Reply_To=str(request["Message-ID"]),
            ):
                answered.add(str(request["Message-ID"]))
        time.sleep(0.3)
    raise RuntimeError(f"the bureau document did not reach its seal in {SEAL_WITHIN} s")


def seal(
    bureau: Bureau, load: Load, signers: Signers, request: EmailMessage, custodian: str
) -> str | None:
    """Send the custodian's signed 用印 until it gets 250; its Message-ID, or None if the
    daemon died first."""
    body = signers.clearsign(custodian, "用印")
    message_id = make_msgid("seal", domain=DOMAIN)
    while bureau.alive:
        if load.send(
            custodian,
            str(request["Reply-To"]),
            f"Re: {request['Subject']}",
            body,
            message_id=message_id,
            In_Reply_To=str(request["Message-ID"]),
        ):
            return message_id
        time.sleep(0.2)
    return None


def processed(bureau: Bureau, message_id: str) -> bool:
    """Whether the daemon has processed the message (it did not die in it)."""
    engine = create_engine(bureau.database_url)
    try:
        with engine.connect() as conn:
            state = conn.execute(
                select(Inbound.state).where(Inbound.message_id == message_id)
            ).scalar()
        return state == "processed"
    finally:
        engine.dispose()


def sealed_copies(bureau: Bureau) -> tuple[int, int, list[str]]:
    """The sealed copies of the bureau document in people's mailboxes: how many, to how many
    people, and what is wrong with any (not signed by the seal)."""
    copies: Counter[str] = Counter()
    problems: list[str] = []
    for new in (bureau.root / "var" / "maildirs").glob("*/new"):
        for path in new.iterdir():
            mail = email.message_from_bytes(path.read_bytes(), policy=default)
            if mail["X-Yizhan-Kind"] == "fawen" and mail["X-Yizhan-Step"] == "receive":
                copies[new.parent.name] += 1
                if mail.get_content_type() != "multipart/signed":
                    problems.append(f"{new.parent.name}: {mail.get_content_type()}")
    return sum(copies.values()), len(copies), problems


def drain(bureau: Bureau, timeout: float = 180) -> bool:
    engine = create_engine(bureau.database_url)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                busy = (
                    conn.execute(select(Inbound.id).where(Inbound.state == "accepted")).first()
                    or conn.execute(select(Delivery.id).where(Delivery.state == "queued")).first()
                )
            # A message 250'd but still in the spool has no row yet.
            spooled = any((bureau.root / "var" / "spool" / "incoming").glob("*.json"))
            if busy is None and not spooled:
                return True
            time.sleep(0.5)
        return False
    finally:
        engine.dispose()


def check(bureau: Bureau, load: Load) -> dict[str, list[str]]:
    """Every invariant of the module docstring; what broke each, by name (empty: held)."""
    problems: dict[str, list[str]] = defaultdict(list)
    engine = create_engine(bureau.database_url)
    with engine.connect() as conn:
        stored = conn.execute(
            select(Inbound.message_id, Inbound.state, Inbound.sender_account)
        ).all()
        steps = conn.execute(select(Step.id, Step.document_id, Step.state)).all()
        trail = conn.execute(
            select(AuditEntry.target, AuditEntry.action, AuditEntry.detail).where(
                AuditEntry.action.startswith("doc.")
            )
        ).all()
        numbers = (
            conn.execute(select(Document.number).where(Document.kind == "shouwen")).scalars().all()
        )
        queued = conn.execute(
            select(Delivery.id).where(Delivery.state.in_(("queued", "sending")))
        ).all()
        waiting_in = conn.execute(select(Inbound.id).where(Inbound.state == "accepted")).all()
    engine.dispose()

    states = {mid: state for mid, state, _who in stored}
    for mid in load.acknowledged:
        if mid not in states:
            problems["a 250'd message is missing"].append(mid)
        elif states[mid] != "processed":
            problems["a 250'd message was not processed"].append(f"{mid}: {states[mid]}")

    answers: Counter[tuple[str, str]] = Counter()
    step_mails: Counter[tuple[str, str, str, str]] = Counter()
    ids: Counter[tuple[str, str]] = Counter()
    root = bureau.root / "var" / "maildirs"
    for new in root.glob("*/new"):
        account = new.parent.name
        for path in new.iterdir():
            mail = email.message_from_bytes(path.read_bytes(), policy=default)
            ids[(account, str(mail["Message-ID"]))] += 1
            if mail["In-Reply-To"]:
                answers[(account, str(mail["In-Reply-To"]))] += 1
            if str(mail.get("Reply-To", "")).startswith("r+"):
                # A reminder is another mail about the same step: told apart by its subject.
                doc, step = str(mail["X-Yizhan-Doc"]), str(mail["X-Yizhan-Step"])
                step_mails[(account, doc, step, str(mail["Subject"]))] += 1
    for message_id, state, who in stored:
        if who is None or message_id is None or state != "processed":
            continue
        count = answers[(who, message_id)]
        if count != 1:
            problems["a message was not answered exactly once"].append(f"{message_id}: {count}")
    problems["someone got the same step's request twice"] += [
        f"{k}: {n}" for k, n in step_mails.items() if n > 1
    ]
    problems["a mailbox holds a Message-ID twice"] += [f"{k}: {n}" for k, n in ids.items() if n > 1]

    decided: Counter[tuple[str, object]] = Counter()
    for target, action, detail in trail:
        decided_step = (detail or {}).get("step")
        if decided_step is not None and action not in ("doc.open", "doc.remind", "doc.escalate"):
            decided[(str(target), decided_step)] += 1
    problems["a step was decided twice"] += [f"{k}: {n}" for k, n in decided.items() if n > 1]

    given = sorted(int(m[1]) for n in numbers if n and (m := _NUMBER.search(n)))
    if given != list(range(1, len(given) + 1)):
        twice = [n for n, c in Counter(given).items() if c > 1]
        skipped = sorted(set(range(1, max(given, default=0) + 1)) - set(given))
        problems["registration numbers not 1..N"].append(f"twice {twice}, skipped {skipped}")
    if queued or waiting_in:
        problems["the queues did not drain"].append(f"{len(waiting_in)} in, {len(queued)} out")
    figures = {
        "acknowledged": len(load.acknowledged),
        "stored": len(stored),
        "documents": len(numbers),
        "steps": len(steps),
        "steps done": sum(1 for s in steps if s.state == "done"),
        "answers": sum(answers.values()),
    }
    print("figures: " + ", ".join(f"{k} {v}" for k, v in figures.items()))
    return problems


@contextmanager
def scratch_database(postgresql: bool, root: Path) -> Iterator[str]:
    if not postgresql:
        yield f"sqlite:///{root / 'var' / 'yizhan.db'}"
        return
    base = os.environ.get("YIZHAN_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    schema = f"crash_{uuid.uuid4().hex[:10]}"
    engine = create_engine(base)
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        joiner = "&" if "?" in base else "?"
        yield f"{base}{joiner}options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


def run(kills: int, postgresql: bool, seed: int) -> int:
    rng = random.Random(seed)
    root = Path(tempfile.mkdtemp(prefix="yzcrash"))
    with scratch_database(postgresql, root) as url:
        bureau = Bureau(root, url)
        load = Load(bureau)
        signers = Signers(bureau)
        relay: Relay | None = None
        bureau.start()
        bureau.wait_listening()
        load.start()
        started = time.monotonic()
        try:
            for n in range(kills):
                time.sleep(rng.uniform(1.0, 6.0))
                bureau.kill()
                bureau.start()
                bureau.wait_listening()
                print(f"kill {n + 1}/{kills}: {len(load.acknowledged)} acknowledged", flush=True)
            for point in POINTS:
                # Scheduled jobs run at start-up and every minute: the first one will do; a
                # document is sealed once, so is its distribution.
                turn = 1 if point in ("job", "seal") else rng.randint(1, 5)
                seal_request = up_to_the_seal(bureau, load, signers) if point == "seal" else None
                bureau.kill()
                if point == "job":
                    make_reminders_due(bureau)
                if point == "relay":
                    relay = Relay(bureau)
                    bureau.relay_to(relay.port)
                bureau.start(crash_at=f"{point}:{turn}")
                died = not bureau.wait_listening()
                sealing: str | None = None
                if seal_request is not None and not died:
                    # The custodian's signed 用印: the daemon dies distributing the sealed copies,
                    # once the processor reaches it behind the load's backlog.
                    sealing = seal(bureau, load, signers, *seal_request)
                    died = sealing is None
                wait = {"job": 90, "seal": SEAL_WITHIN}.get(point, 30)
                deadline = time.monotonic() + wait
                while not died and time.monotonic() < deadline:
                    died = bureau.process is not None and bureau.process.poll() is not None
                    if sealing is not None and not died and processed(bureau, sealing):
                        break
                    time.sleep(0.1 if sealing is None else 1.0)
                print(f"crash point {point}:{turn}: {'died there' if died else 'not reached'}")
                bureau.kill()
                bureau.start()
                bureau.wait_listening()
            time.sleep(2)
        except BaseException:
            # The suite itself failed: leave no daemon running behind it.
            bureau.kill()
            if relay is not None:
                relay.stop()
            raise
        finally:
            load.stop()
            signers.close()
        drained = drain(bureau)
        elapsed = time.monotonic() - started
        bureau.stop()
        if relay is not None:
            relay.stop()
            print(f"relay: {sum(relay.received.values())} hand-overs, {relay.resent} resent")
        problems = check(bureau, load)
        copies, clerks, unsealed = sealed_copies(bureau)
        print(f"sealed distribution: {copies} copies to {clerks} clerks")
        if copies != clerks or not copies:
            problems["the sealed distribution was not one copy per clerk"].append(
                f"{copies} copies to {clerks} clerks"
            )
        problems["a distributed copy is not sealed"] += unsealed
        if not drained:
            problems["the queues did not drain"].append("still busy after 180 s")
    kind = "PostgreSQL" if postgresql else "SQLite"
    print(
        f"{kind}: {kills} kills in {elapsed:.0f} s; refused {dict(load.refused)}, "
        f"client errors {dict(load.errors)}"
    )
    return verdict(problems)


def verdict(problems: dict[str, list[str]]) -> int:
    """Print each broken check with a few of its cases; the exit status (1: something broke)."""
    broken = {k: v for k, v in problems.items() if v}
    for what, cases in broken.items():
        print(f"BROKEN: {what}: {len(cases)}: {cases[:5]}")
    if not broken:
        print("every check held")
    return 1 if broken else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--postgresql", action="store_true")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    args = parser.parse_args(argv)
    print(f"seed {args.seed}")
    return run(args.kills, args.postgresql, args.seed)


if __name__ == "__main__":
    sys.exit(main())
