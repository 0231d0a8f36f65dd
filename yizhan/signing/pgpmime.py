"""Signs outgoing mail as PGP/MIME (RFC 3156) and verifies signed mail, PGP/MIME or inline.

A signed message is ``multipart/signed; protocol="application/pgp-signature";
micalg=pgp-sha256`` with two parts: the signed entity and a detached, armoured signature over
its exact bytes. The classic pitfall is that those bytes must arrive unchanged: any re-encoding
on the way (8-bit downgrade, trailing spaces stripped, ``From `` escaped, lines re-wrapped)
breaks the signature. So the entity is made transport-proof first (every leaf 7-bit:
quoted-printable or base64, CRLF line ends, no trailing white space, no line that starts with
``From ``), serialised once, and those bytes are both signed and written into the message.
The outer message is assembled around them byte for byte; nothing re-serialises the entity.

Every ``X-Yizhan-*`` header is repeated inside the signed entity, so it is covered by the
signature; the copies outside are for mail filters and are checked against the signed ones.
A document version is signed once: the signed entity holds nothing per recipient (no To, no
reply token), so :class:`SignatureCache` reuses one signature for every recipient whose signed
entity is the same, and :func:`wrap` puts each recipient's envelope around it.
"""

from __future__ import annotations

import base64
import codecs
import copy
import datetime as dt
import functools
import hashlib
import quopri
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from email.message import EmailMessage, Message
from email.parser import BytesHeaderParser, BytesParser
from email.policy import EmailPolicy
from email.utils import getaddresses
from typing import Final, Literal

from yizhan.routing.mailpolicy import MAIL, WIRE, WIRE_UTF8
from yizhan.signing.keyring import (
    Fingerprint,
    GpgFailed,
    KeyOwner,
    Keyring,
    KeyringError,
    SignatureCheck,
    SignerSpec,
)

MICALG: Final = "pgp-sha256"
PROTOCOL: Final = "application/pgp-signature"
PREAMBLE: Final = b"This is an OpenPGP/MIME signed message (RFC 4880 and 3156)"
HEADER_PREFIX: Final = "x-yizhan-"

_ADDRESS_HEADERS: Final = ("From", "To", "Cc", "Bcc", "Reply-To", "Sender")
# A line a mail system might change: trailing white space, or "From " (mbox escaping).
_FRAGILE_LINE = re.compile(rb"(?m)(?:[ \t]\r?$|^From )")
_CLEARSIGNED = re.compile(
    rb"(?ms)^-----BEGIN PGP SIGNED MESSAGE-----\r?$.*?^-----END PGP SIGNATURE-----[ \t]*\r?$"
)

VerifyStatus = Literal[
    "good",
    "not_signed",
    "bad",
    "unknown_key",
    "wrong_key",
    "expired",
    "revoked",
    "headers_differ",
    "error",
]


class SigningError(Exception):
    """A message could not be signed as asked; nothing half-signed is ever returned."""


class SigningUnavailable(SigningError):
    """gpg could not sign at this moment (``keyring.GpgFailed``): worth trying again later."""


@dataclass(frozen=True, kw_only=True)
class SignedPart:
    """One signed entity (a document version's content and headers) and its signature."""

    #: The entity's exact bytes, CRLF, 7-bit: the first part of every message that carries it.
    content: bytes
    #: The detached signature, ASCII-armoured, CRLF.
    signature: bytes
    signers: tuple[Fingerprint, ...]
    #: The X-Yizhan-* headers inside the entity, lower-cased name and decoded value.
    protected: tuple[tuple[str, str], ...]
    boundary: str


@dataclass(frozen=True, kw_only=True)
class SignedParts:
    """The two parts of a received multipart/signed message, as the signer saw them."""

    content: bytes
    signature: bytes


@dataclass(frozen=True, kw_only=True)
class Verification:
    """Whether a message's signature counts, whose it is, and why not in plain words.

    ``signed_text`` is the text that was actually signed: read a command from it, never from
    the rest of the message (an inline signature covers only its own block).
    """

    ok: bool
    status: VerifyStatus
    reason_zh: str
    reason_en: str
    kind: Literal["pgp/mime", "inline"] | None = None
    #: The primary key of the signature the verdict is about.
    fingerprint: Fingerprint | None = None
    #: The person whose registered key made it.
    account: str | None = None
    #: The unit whose seal key made a signature, for a sealed document.
    seal_unit: str | None = None
    by_system: bool = False
    signed_at: dt.datetime | None = None
    signatures: tuple[SignatureCheck, ...] = ()
    signed_text: str | None = None
    signed_part: EmailMessage | None = None

    @property
    def reason(self) -> str:
        """Both languages, for a reply or a log line."""
        return f"{self.reason_zh} ({self.reason_en})"


class SignatureCache:
    """Signs each distinct signed entity once and hands out the same signature afterwards.

    Keyed by the entity's SHA-256 and the signers' fingerprints, so one document version sent
    to a thousand recipients costs one signature (and one seal unlock). Thread-safe; keeps the
    ``max_entries`` most recent entries.
    """

    def __init__(self, max_entries: int = 256) -> None:
        self.max_entries = max_entries
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[tuple[bytes, tuple[str, ...]], SignedPart] = OrderedDict()
        self._lock = threading.Lock()

    def sign(self, content: bytes, keyring: Keyring, signers: Sequence[SignerSpec]) -> SignedPart:
        """The signed part for ``content`` by ``signers``: from the cache, or signed now."""
        key = (hashlib.sha256(content).digest(), tuple(s.fingerprint for s in signers))
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
                self.hits += 1
                return found
        # Signing happens outside the lock: a seal unlock takes a while, and two threads
        # signing the same entity at once merely make two good signatures.
        signed = sign_once(content, keyring, signers)
        with self._lock:
            self.misses += 1
            self._entries[key] = signed
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return signed


# --- Signing -------------------------------------------------------------------------------


def signed_content(msg: EmailMessage, *, protect: Sequence[str] = ()) -> bytes:
    """The entity to sign for ``msg``: its content, its X-Yizhan-* headers, transport-proof.

    ``msg`` itself is not changed. Its Content-* headers and body become the entity; every
    X-Yizhan-* header, and the headers named in ``protect`` (such as Subject), are copied in.
    Nothing that differs per recipient belongs here. The result is CRLF, 7-bit, and
    serialises to itself when parsed again, so it survives any hop and any re-serialisation.
    """
    inner = _copy_tree(msg)
    for name in {k.lower() for k in inner}:
        if not name.startswith("content-"):
            del inner[name]
    wanted = {p.lower() for p in protect}
    for name, value in msg.items():
        if name.lower().startswith(HEADER_PREFIX) or name.lower() in wanted:
            inner[name] = _unfold(str(value))
    if not inner.get("Content-Type"):
        inner["Content-Type"] = "text/plain; charset=us-ascii"
    _make_7bit(inner)
    _fix_boundaries(inner)
    data = inner.as_bytes(policy=WIRE)
    data = _fixed_point(data)
    if not data.isascii():
        raise SigningError("the signed part is not 7-bit after encoding")
    return data


def sign_once(content: bytes, keyring: Keyring, signers: Sequence[SignerSpec]) -> SignedPart:
    """Sign the exact bytes ``content`` (from :func:`signed_content`) with every signer.

    One call per document version: the result goes into every recipient's message through
    :func:`wrap`. Seal and system key sign in one gpg run, giving one signature packet with
    both signatures.
    """
    if b"\n" in content.replace(b"\r\n", b""):
        raise SigningError("the signed part must have CRLF line ends only")
    try:
        signature = keyring.sign_detached(content, signers)
    except GpgFailed as exc:
        raise SigningUnavailable(str(exc)) from exc
    except KeyringError as exc:
        raise SigningError(str(exc)) from exc
    return restore_signed_part(content, signature.armored, signature.signers)


def restore_signed_part(
    content: bytes, signature: bytes, signers: Sequence[Fingerprint]
) -> SignedPart:
    """A :class:`SignedPart` again from its stored content and signature.

    A sealed document version must outlive the sealing step: a reminder, or a recipient added
    later, gets the same sealed part, since the custodian's SEAL cannot be asked for again.
    Keep ``content`` and ``signature`` (and the signers) with the document; this rebuilds the
    rest. Nothing is checked here: :func:`verify_message` checks what is received.
    """
    armored = re.sub(rb"\r?\n", b"\r\n", signature.strip()) + b"\r\n"
    digest = hashlib.sha256(content + armored).hexdigest()
    # "=_" can start no line of quoted-printable, base64 or an armoured signature.
    boundary = f"=_yizhan_signed_{digest[:32]}"
    if boundary.encode("ascii") in content:
        raise SigningError("the boundary occurs in the signed part")
    headers = BytesHeaderParser(policy=MAIL).parsebytes(content)
    protected = tuple(
        (name.lower(), _unfold(str(value)))
        for name, value in headers.items()
        if name.lower().startswith(HEADER_PREFIX)
    )
    return SignedPart(
        content=content,
        signature=armored,
        signers=tuple(signers),
        protected=protected,
        boundary=boundary,
    )


def wrap(signed: SignedPart, envelope: Message) -> bytes:
    """One recipient's message: ``envelope``'s headers around ``signed``, as bytes to queue.

    The envelope's Content-* headers and MIME-Version are replaced; everything else (From, To,
    Subject, Reply-To, X-Yizhan-* …) is kept in order. Its X-Yizhan-* headers must be those
    inside ``signed``: a recipient asked for something else needs a signed part of its own.
    Queue the bytes as they are (``outbox.enqueue(message=bytes)``).
    """
    return wrap_head(signed, envelope) + signed_body(signed)


def wrap_head(signed: SignedPart, envelope: Message) -> bytes:
    """The header block of :func:`wrap`'s message, up to and with the empty line.

    Only the head differs from one recipient to the next: queue it with the body that
    :func:`signed_body` gives once for all of them (``outbox.store_body``).
    """
    outer = _yizhan_headers(envelope)
    if sorted(outer) != sorted(signed.protected) and outer:
        names = sorted({n for n, _ in set(outer) ^ set(signed.protected)})
        raise SigningError(
            f"{', '.join(names)} differ from the signed copy; sign a separate part for them"
        )
    wire = _policy_for(envelope)
    lines: list[bytes] = []
    for name, value in envelope.items():
        lower = name.lower()
        if lower.startswith("content-") or lower == "mime-version":
            continue
        lines.append(wire.fold_binary(name, value))
    if not outer and signed.protected:
        # The filters' copy of the protected headers, when the envelope came without them.
        lines.extend(wire.fold_binary(name, value) for name, value in _headers_of(signed))
    lines.append(b"MIME-Version: 1.0\r\n")
    lines.append(
        b'Content-Type: multipart/signed; micalg="'
        + MICALG.encode()
        + b'";\r\n protocol="'
        + PROTOCOL.encode()
        + b'";\r\n boundary="'
        + signed.boundary.encode()
        + b'"\r\n'
    )
    lines.append(b"\r\n")
    return b"".join(lines)


class HeadMaker:
    """Makes the header blocks of many messages around one :class:`SignedPart`, as
    :func:`wrap_head` does, folding each distinct header once.

    A sealed document goes to a thousand readers whose heads differ only in To, Reply-To
    and Message-ID: the shared headers (From, Subject, the X-Yizhan-* copy, the threading
    headers) are folded for the first reader and reused, and a short ASCII line is written
    as it is. Folding a header through the email package's header registry took most of the
    time of queueing a distribution.
    """

    def __init__(self, signed: SignedPart) -> None:
        self.signed = signed
        self._folded: dict[tuple[str, str, bool], bytes] = {}
        self._tail = (
            b"MIME-Version: 1.0\r\n"
            b'Content-Type: multipart/signed; micalg="'
            + MICALG.encode()
            + b'";\r\n protocol="'
            + PROTOCOL.encode()
            + b'";\r\n boundary="'
            + signed.boundary.encode()
            + b'"\r\n\r\n'
        )
        self._protected = sorted(signed.protected)

    def head(self, headers: Sequence[tuple[str, str]]) -> bytes:
        """The header block for ``headers`` (name, value), up to and with the empty line.

        ``headers`` must carry the signed part's X-Yizhan-* headers unchanged, as for
        :func:`wrap_head`; Content-* and MIME-Version are the signed message's own.
        """
        outer = [
            (name.lower(), _unfold(value))
            for name, value in headers
            if name.lower().startswith(HEADER_PREFIX)
        ]
        if outer and sorted(outer) != self._protected:
            names = sorted({n for n, _ in set(outer) ^ set(self.signed.protected)})
            raise SigningError(
                f"{', '.join(names)} differ from the signed copy; sign a separate part for them"
            )
        addresses = getaddresses([v for n, v in headers if n in _ADDRESS_HEADERS])
        utf8 = any(not addr.isascii() for _, addr in addresses)
        lines = [
            self._fold(name, value, utf8)
            for name, value in headers
            if not (name.lower().startswith("content-") or name.lower() == "mime-version")
        ]
        if not outer and self.signed.protected:
            lines.extend(self._fold(n, v, utf8) for n, v in _headers_of(self.signed))
        lines.append(self._tail)
        return b"".join(lines)

    def _fold(self, name: str, value: str, utf8: bool) -> bytes:
        if (
            value.isascii()
            and len(name) + 2 + len(value) <= 78
            and "\n" not in value
            and "\r" not in value
            and value == value.strip()
        ):
            # What the policy would write: a short 7-bit line needs no folding or encoding.
            return f"{name}: {value}\r\n".encode("ascii")
        key = (name, value, utf8)
        folded = self._folded.get(key)
        if folded is None:
            wire = WIRE_UTF8 if utf8 else WIRE
            # As a message's header: parsed by the policy's header registry, then folded.
            stored = wire.header_store_parse(name, value)[1]
            folded = self._folded[key] = wire.fold_binary(name, stored)
        return folded


def signed_body(signed: SignedPart) -> bytes:
    """The body of every message that carries ``signed``: the signed part and the signature."""
    delimiter = b"--" + signed.boundary.encode("ascii")
    return b"".join(
        [
            PREAMBLE,
            b"\r\n",
            delimiter,
            b"\r\n",
            signed.content,
            b"\r\n",
            delimiter,
            b"\r\n",
            b'Content-Type: application/pgp-signature; name="signature.asc"\r\n',
            b"Content-Description: OpenPGP digital signature\r\n",
            b'Content-Disposition: attachment; filename="signature.asc"\r\n',
            b"\r\n",
            signed.signature,
            b"\r\n",
            delimiter,
            b"--\r\n",
        ]
    )


def sign_message_bytes(
    msg: EmailMessage,
    keyring: Keyring,
    signers: Sequence[SignerSpec],
    *,
    cache: SignatureCache | None = None,
    protect: Sequence[str] = (),
) -> bytes:
    """``msg`` signed by ``signers``, as the bytes to queue; see :func:`sign_message`."""
    content = signed_content(msg, protect=protect)
    if cache is not None:
        signed = cache.sign(content, keyring, signers)
    else:
        signed = sign_once(content, keyring, signers)
    return wrap(signed, msg)


def sign_message(
    msg: EmailMessage,
    keyring: Keyring,
    signers: Sequence[SignerSpec],
    *,
    cache: SignatureCache | None = None,
    protect: Sequence[str] = (),
) -> EmailMessage:
    """``msg`` as an RFC 3156 multipart/signed message by ``signers`` (seal, then system).

    The result serialises (``as_bytes()``, policy SMTP) to exactly the bytes that were signed
    around; this is checked, so a message whose signature would break is never returned.
    Prefer :func:`sign_message_bytes` when the next step is the queue: bytes are stored as
    they are.
    """
    data = sign_message_bytes(msg, keyring, signers, cache=cache, protect=protect)
    parsed = BytesParser(policy=_policy_for(msg)).parsebytes(data)
    if not isinstance(parsed, EmailMessage) or parsed.as_bytes() != data:
        raise SigningError("the signed message does not serialise back to the signed bytes")
    return parsed


# --- Verifying -----------------------------------------------------------------------------


def split_signed(raw: bytes) -> SignedParts | None:
    """The signed bytes and the signature of a top-level PGP/MIME message; None if it is not.

    Works on the bytes as received: the signed part is everything between the first two
    boundary lines, less the line break that belongs to the second (RFC 2046), with its line
    ends made CRLF again (a Maildir or mbox may have stored them as LF).
    """
    head_end = _header_end(raw)
    if head_end is None:
        return None
    headers = BytesHeaderParser(policy=MAIL).parsebytes(raw[:head_end])
    if headers.get_content_type() != "multipart/signed":
        return None
    protocol = str(headers.get_param("protocol", "", header="content-type")).lower()
    boundary = headers.get_boundary()
    if protocol != PROTOCOL or not boundary:
        return None
    body = raw[head_end:]
    delimiters = list(
        re.finditer(rb"(?m)^--" + re.escape(boundary.encode("utf-8")) + rb"(--)?[ \t]*\r?$", body)
    )
    if len(delimiters) < 3 or delimiters[0].group(1) or delimiters[1].group(1):
        return None
    first, second, third = delimiters[:3]
    content = _between(body, first, second)
    signature_part = BytesParser(policy=MAIL).parsebytes(_between(body, second, third))
    if signature_part.get_content_type() != PROTOCOL:
        return None
    signature = signature_part.get_payload(decode=True)
    if not isinstance(signature, bytes) or b"BEGIN PGP SIGNATURE" not in signature:
        return None
    return SignedParts(content=re.sub(rb"\r?\n", b"\r\n", content), signature=signature)


def find_clearsigned(msg: Message) -> tuple[bytes, str] | None:
    """The first inline-signed block in a text/plain part and the text it signs; or None.

    The block is taken from the part's decoded bytes (after quoted-printable or base64), in
    the charset the sender signed in, so a client that encoded the body after signing, or
    that encoded nothing at all, verifies alike.
    """
    for part in msg.walk():
        if part.get_content_type() != "text/plain" or part.is_multipart():
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            continue
        found = _CLEARSIGNED.search(payload)
        if found is None:
            continue
        block = found.group(0)
        charset = part.get_content_charset() or "utf-8"
        return block, _cleartext(block).decode(_codec(charset), "replace")
    return None


def verify_message(
    message: EmailMessage | bytes, keyring: Keyring, *, account: str | None = None
) -> Verification:
    """Check the signature of ``message`` (PGP/MIME or inline) against the registered keys.

    Pass the raw bytes as received when you have them: a parsed message is serialised again
    first, which reproduces the signed bytes only if the parser kept them. With ``account``
    (the authenticated sender of a command) the signature must be by that person's registered
    key that counts now; a bad, unknown, expired or revoked signature, or another person's
    key, is refused with the reason. Without ``account`` every signature must be good and
    Yizhan's (a seal, the system key) or a registered person's: for checking a sealed document.
    """
    raw = message if isinstance(message, bytes) else message.as_bytes()
    parts = split_signed(raw)
    if parts is not None:
        checks = keyring.verify_detached(parts.content, parts.signature)
        inner = BytesParser(policy=MAIL).parsebytes(parts.content)
        assert isinstance(inner, EmailMessage)
        verdict = _decide(checks, keyring, account, kind="pgp/mime")
        text = _first_text(inner)
        outer = BytesHeaderParser(policy=MAIL).parsebytes(raw[: _header_end(raw)])
        differ = _differing_headers(outer, inner)
        if verdict.ok and differ:
            names = ", ".join(differ)
            verdict = _verdict(
                "headers_differ",
                f"郵件頭 {names} 與簽名內的副本不一致，可能被改動過",
                f"header {names} differs from the signed copy: it may have been altered",
                base=verdict,
            )
        return _with(verdict, signed_text=text, signed_part=inner)
    msg = BytesParser(policy=MAIL).parsebytes(raw)
    inline = find_clearsigned(msg)
    if inline is not None:
        block, text = inline
        checks = keyring.verify_clearsigned(block)
        return _with(_decide(checks, keyring, account, kind="inline"), signed_text=text)
    return Verification(
        ok=False,
        status="not_signed",
        reason_zh="郵件沒有 OpenPGP 簽名",
        reason_en="the message has no OpenPGP signature",
    )


# --- Inside --------------------------------------------------------------------------------


def _decide(
    checks: Sequence[SignatureCheck], keyring: Keyring, account: str | None, *, kind: str
) -> Verification:
    """The verdict on gpg's checks, given whose keys Yizhan knows and who claims to have sent."""
    base = Verification(
        ok=False,
        status="error",
        reason_zh="",
        reason_en="",
        kind="pgp/mime" if kind == "pgp/mime" else "inline",
        signatures=tuple(checks),
    )
    if not checks:
        return _verdict(
            "error", "無法驗證簽名：找不到簽名", "the signature cannot be checked: none found", base
        )
    owners = {
        c.primary_fingerprint: keyring.owner_of(c.primary_fingerprint)
        for c in checks
        if c.primary_fingerprint
    }
    # A bad signature anywhere spoils the whole message: part of it was changed.
    for check in checks:
        if check.status == "bad":
            return _verdict(
                "bad",
                "簽名無效：簽名後內容已被改動",
                "bad signature: the content was changed after it was signed",
                base,
                check,
            )
    if account is not None:
        mine = [
            c
            for c in checks
            if (o := _owner_of(owners, c)) is not None and o.kind == "person" and o.name == account
        ]
        if not mine:
            return _not_theirs(checks, owners, account, base)
        check = mine[0]
        owner = _owner_of(owners, check)
        assert owner is not None
        problem = _key_problem(check, owner)
        if problem is not None:
            return problem(base)
        return _good(check, owner, base)
    # A document: every signature must be good and by a key Yizhan knows.
    verdict: Verification | None = None
    for check in checks:
        owner = _owner_of(owners, check)
        if owner is None:
            return _unknown(check, base)
        problem = _key_problem(check, owner)
        if problem is not None:
            return problem(base)
        good = _good(check, owner, verdict or base)
        verdict = good if verdict is None else _merge(verdict, good)
    assert verdict is not None
    return verdict


def _key_problem(check: SignatureCheck, owner: KeyOwner) -> _Pending | None:
    """Why a mathematically checked signature by a known key does not count; None if it does."""
    key = check.primary_fingerprint or check.key_id or "?"
    if check.status == "expired_key":
        return _Pending(
            "expired", f"簽名密鑰 {key} 已過期", f"the signing key {key} has expired", check
        )
    if check.status == "expired_sig":
        return _Pending("expired", "簽名已過期", "the signature has expired", check)
    if check.status == "unknown_key":
        return _Pending(
            "unknown_key", f"簽名密鑰 {key} 未登記", f"unknown signing key {key}", check
        )
    if check.status == "error":
        return _Pending("error", "無法驗證簽名", "the signature cannot be checked", check)
    if owner.kind == "seal" and check.status == "revoked_key":
        # A rotated seal was superseded, not compromised: what it sealed while in force stands.
        in_force = (
            owner.reason == "superseded"
            and owner.ended_at is not None
            and check.signed_at is not None
            and check.signed_at < owner.ended_at
        )
        if in_force:
            return None
    if check.status != "revoked_key" and owner.state == "replaced":
        return _Pending(
            "revoked",
            f"簽名密鑰 {key} 已被新登記的密鑰取代，請用新密鑰簽名",
            f"the signing key {key} was replaced by a newer registered key: sign with that one",
            check,
        )
    if check.status == "revoked_key" or owner.state != "active":
        when = f"{owner.ended_at:%Y-%m-%d}" if owner.ended_at else ""
        return _Pending(
            "revoked",
            f"簽名密鑰 {key} 已被撤銷{('（' + when + '）') if when else ''}",
            f"the signing key {key} has been revoked{(' on ' + when) if when else ''}",
            check,
        )
    return None


@dataclass(frozen=True)
class _Pending:
    """A refusal waiting for the base verdict to be filled into."""

    status: VerifyStatus
    zh: str
    en: str
    check: SignatureCheck

    def __call__(self, base: Verification) -> Verification:
        return _verdict(self.status, self.zh, self.en, base, self.check)


def _not_theirs(
    checks: Sequence[SignatureCheck],
    owners: dict[Fingerprint, KeyOwner | None],
    account: str,
    base: Verification,
) -> Verification:
    """None of the signatures is by ``account``'s key: say whose they are."""
    for check in checks:
        owner = _owner_of(owners, check)
        if owner is not None and owner.kind == "person":
            return _verdict(
                "wrong_key",
                f"簽名密鑰屬於 {owner.name}，不是發件人 {account} 的",
                f"signed with the key of {owner.name}, not of the sender {account}",
                base,
                check,
            )
        if owner is not None:
            return _verdict(
                "wrong_key",
                f"簽名密鑰是驛站自己的密鑰，不是發件人 {account} 的",
                f"signed with one of Yizhan's own keys, not the sender {account}'s",
                base,
                check,
            )
    return _unknown(checks[0], base)


def _unknown(check: SignatureCheck, base: Verification) -> Verification:
    key = check.primary_fingerprint or check.key_id or "?"
    if check.status == "unknown_key":
        return _verdict(
            "unknown_key",
            f"簽名密鑰 {key} 未登記；請先登記您的公鑰（管理員執行 yizhan key import，"
            "或把公鑰寄到 cmd@ 並回覆確認）",
            f"unknown signing key {key}: register your public key first (an administrator "
            "runs yizhan key import, or send it to cmd@ and confirm)",
            base,
            check,
        )
    return _verdict(
        "unknown_key",
        f"簽名密鑰 {key} 不屬於任何已登記的人員",
        f"the signing key {key} is not registered to anyone",
        base,
        check,
    )


def _good(check: SignatureCheck, owner: KeyOwner, base: Verification) -> Verification:
    who_zh = {"person": owner.name, "seal": f"{owner.name} 印章", "system": "驛站系統密鑰"}
    who_en = {"person": owner.name, "seal": f"the seal of {owner.name}", "system": "Yizhan"}
    verdict = _verdict(
        "good",
        f"簽名有效（{who_zh[owner.kind]}）",
        f"good signature by {who_en[owner.kind]}",
        base,
        check,
    )
    return _with(
        verdict,
        ok=True,
        account=owner.name if owner.kind == "person" else base.account,
        seal_unit=owner.name if owner.kind == "seal" else base.seal_unit,
        by_system=base.by_system or owner.kind == "system",
    )


def _merge(first: Verification, second: Verification) -> Verification:
    """Two good signatures on one document (seal and system): keep what each says."""
    return _with(
        first,
        reason_zh=first.reason_zh + "；" + second.reason_zh,
        reason_en=first.reason_en + "; " + second.reason_en,
        account=first.account or second.account,
        seal_unit=first.seal_unit or second.seal_unit,
        by_system=first.by_system or second.by_system,
        # The verdict is about the weightiest signature: a seal's over the system's.
        fingerprint=first.fingerprint if first.seal_unit or first.account else second.fingerprint,
    )


def _verdict(
    status: VerifyStatus,
    zh: str,
    en: str,
    base: Verification,
    check: SignatureCheck | None = None,
) -> Verification:
    changes: dict[str, object] = {
        "ok": status == "good",
        "status": status,
        "reason_zh": zh,
        "reason_en": en,
    }
    if check is not None:
        changes["fingerprint"] = check.primary_fingerprint
        changes["signed_at"] = check.signed_at
    return _with(base, **changes)


def _with(verification: Verification, **changes: object) -> Verification:
    return replace(verification, **changes)  # type: ignore[arg-type]


def _owner_of(owners: dict[Fingerprint, KeyOwner | None], check: SignatureCheck) -> KeyOwner | None:
    return owners.get(check.primary_fingerprint) if check.primary_fingerprint else None


def _differing_headers(outer: Message, inner: Message) -> list[str]:
    """The X-Yizhan-* headers whose outside copy is not the signed one (if any are signed)."""
    signed = _yizhan_headers(inner)
    if not signed:
        return []
    shown = _yizhan_headers(outer)
    return sorted({n for n, _ in set(signed) ^ set(shown)})


def _yizhan_headers(msg: Message) -> list[tuple[str, str]]:
    return [
        (name.lower(), _unfold(str(value)))
        for name, value in msg.items()
        if name.lower().startswith(HEADER_PREFIX)
    ]


def _headers_of(signed: SignedPart) -> list[tuple[str, str]]:
    headers = BytesHeaderParser(policy=MAIL).parsebytes(signed.content)
    return [(n, str(v)) for n, v in headers.items() if n.lower().startswith(HEADER_PREFIX)]


def _first_text(msg: Message) -> str | None:
    for part in msg.walk():
        if part.get_content_type() == "text/plain" and not part.is_multipart():
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                return payload.decode(_codec(part.get_content_charset() or "utf-8"), "replace")
    return None


def _copy_tree(msg: Message) -> Message:
    """A copy of ``msg`` whose headers and payloads may be changed without changing ``msg``.

    Each part gets its own header list and, for a multipart, its own list of copied parts;
    the leaves' payloads are strings, which no change alters in place, so they are shared.
    ``copy.deepcopy`` copied every header object and string too, and was a tenth of the CPU
    of a command's answer.
    """
    part = copy.copy(msg)
    # The header list is what del and set change in place; copy.copy shares it.
    part.__dict__["_headers"] = list(msg.__dict__["_headers"])
    children = msg.get_payload()
    if isinstance(children, list):
        part.__dict__["_payload"] = [
            _copy_tree(child) if isinstance(child, Message) else child for child in children
        ]
    return part


def _make_7bit(entity: Message) -> None:
    """Re-encode every leaf that a mail hop might change: quoted-printable for text, base64
    for the rest. A leaf that is plain short ASCII lines already stays as it is."""
    for part in entity.walk():
        if part.is_multipart():
            continue
        cte = str(part.get("Content-Transfer-Encoding", "7bit")).strip().lower()
        if part.get_content_maintype() == "message":
            # RFC 2046: a message/* part is never encoded itself; its own parts were (walk()
            # went into them), so it is 7-bit now.
            if cte != "7bit":
                del part["Content-Transfer-Encoding"]
            continue
        if cte == "base64":
            continue
        data = part.get_payload(decode=True)
        if not isinstance(data, bytes):
            data = b""
        text = part.get_content_maintype() == "text"
        if cte in ("7bit", "8bit", "binary") and text and _safe_7bit(data):
            continue
        del part["Content-Transfer-Encoding"]
        if text:
            # Text is signed in canonical form (RFC 3156 5): CRLF line ends. Quoted-printable
            # keeps Latin text readable; Chinese text is a third the size in base64.
            canonical = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            qp = _quoted_printable(canonical)
            b64 = base64.encodebytes(canonical.replace(b"\n", b"\r\n")).decode("ascii")
            part.set_payload(qp if len(qp) <= len(b64) else b64)
            part["Content-Transfer-Encoding"] = (
                "quoted-printable" if len(qp) <= len(b64) else "base64"
            )
        else:
            part.set_payload(base64.encodebytes(data).decode("ascii"))
            part["Content-Transfer-Encoding"] = "base64"


def _fix_boundaries(entity: Message) -> None:
    """Give every multipart without one a boundary made from its content.

    The email package invents a random boundary at each serialisation when none is set, so
    two recipients' copies of one document would differ, and each need a signature of its own.
    """
    if not entity.is_multipart():
        return
    payload = entity.get_payload()
    children = [c for c in payload if isinstance(c, Message)] if isinstance(payload, list) else []
    for child in children:
        _fix_boundaries(child)
    if entity.get_boundary() is not None:
        return
    body = b"".join(child.as_bytes(policy=WIRE) for child in children)
    digest = hashlib.sha256(body).hexdigest()
    for length in range(24, 65, 8):
        # "=_" starts no line of quoted-printable or base64; 7-bit text is checked.
        boundary = f"=_yizhan_part_{digest[:length]}"
        if boundary.encode("ascii") not in body:
            entity.set_boundary(boundary)
            return
    raise SigningError("no boundary could be found for a multipart part")


def _safe_7bit(data: bytes) -> bool:
    if not data.isascii() or b"\0" in data or b"\r" in data.replace(b"\r\n", b""):
        return False
    lines = data.replace(b"\r\n", b"\n").split(b"\n")
    return all(len(line) <= 76 for line in lines) and not _FRAGILE_LINE.search(data)


def _quoted_printable(text: bytes) -> str:
    # The line ends (LF here) become CRLF when the part is written.
    encoded = quopri.encodestring(text, quotetabs=False)
    # quopri protects trailing white space (=20) but not "From " at the start of a line,
    # which an mbox on the way would turn into ">From ".
    encoded = re.sub(rb"(?m)^From ", b"=46rom ", encoded)
    return encoded.decode("ascii")


#: Signed parts up to this size have their fixed point kept (:func:`_fixed_point`).
_KEPT_FIXED_POINT: Final = 64 * 1024


def _fixed_point(data: bytes) -> bytes:
    """``data`` as the email package writes it back after parsing it: the bytes that any later
    serialisation (a queue, a Maildir, a test) reproduces. Usually one round.

    The same answer (HELP, a refusal, a notice to many) is signed again and again; its fixed
    point, like its signature (:class:`SignatureCache`), is worked out once.
    """
    if len(data) <= _KEPT_FIXED_POINT:
        return _kept_fixed_point(data)
    return _find_fixed_point(data)


@functools.lru_cache(maxsize=32)
def _kept_fixed_point(data: bytes) -> bytes:
    return _find_fixed_point(data)


def _find_fixed_point(data: bytes) -> bytes:
    for _ in range(3):
        again = BytesParser(policy=WIRE).parsebytes(data).as_bytes(policy=WIRE)
        if again == data:
            return data
        data = again
    raise SigningError("the signed part does not serialise to the same bytes twice")


def _policy_for(msg: Message) -> EmailPolicy[EmailMessage]:
    # An address whose mailbox itself is not ASCII needs UTF-8 headers (RFC 6532); the
    # outbox makes the same choice (mailstore/outbox.py).
    addresses = getaddresses([str(v) for h in _ADDRESS_HEADERS for v in msg.get_all(h, [])])
    return WIRE_UTF8 if any(not addr.isascii() for _, addr in addresses) else WIRE


def _header_end(raw: bytes) -> int | None:
    found = re.search(rb"\r?\n\r?\n", raw)
    return found.end() if found else None


def _between(body: bytes, start: re.Match[bytes], end: re.Match[bytes]) -> bytes:
    begin = start.end()
    # The line break after the opening delimiter line starts the part …
    if body[begin : begin + 2] == b"\r\n":
        begin += 2
    elif body[begin : begin + 1] == b"\n":
        begin += 1
    stop = end.start()
    # … and the one before the next delimiter belongs to that delimiter (RFC 2046 5.1.1).
    if body[stop - 2 : stop] == b"\r\n":
        stop -= 2
    elif body[stop - 1 : stop] == b"\n":
        stop -= 1
    return body[begin:stop]


def _cleartext(block: bytes) -> bytes:
    """The text a cleartext signature covers (RFC 4880 7.1): armour headers and the
    signature dropped, dash-escaping undone."""
    lines = re.split(rb"\r?\n", block)
    # Line 0 is the BEGIN line; then "Hash:" armour headers up to an empty line.
    index = 1
    while index < len(lines) and lines[index].strip():
        index += 1
    text: list[bytes] = []
    for line in lines[index + 1 :]:
        if line.startswith(b"-----BEGIN PGP SIGNATURE-----"):
            break
        text.append(line[2:] if line.startswith(b"- ") else line)
    return b"\n".join(text)


def _codec(charset: str) -> str:
    try:
        return codecs.lookup(charset).name
    except LookupError:
        return "utf-8"


def _unfold(value: str) -> str:
    return " ".join(value.split())
