"""Who sent a message, as far as the gateway can tell: pure decisions on addresses, headers and
the trusted MTA's Authentication-Results (第七條)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from email import policy
from email.parser import BytesHeaderParser
from email.utils import getaddresses
from typing import Final

from yizhan.daemon.config import ConfigError
from yizhan.daemon.extract.headers import plain_header_section, plain_mailbox
from yizhan.daemon.extract.text import decode_header_text
from yizhan.daemon.gateway.peers import ip_of
from yizhan.routing.directory import Directory

# --- Identity methods stored in Inbound.auth_method (see mailstore.inbound.AUTH_METHODS) ----------

AUTH_SMTP: Final = "smtp-auth"
AUTH_RELAY: Final = "relay-auth"
AUTH_RELAY_DKIM: Final = "relay-dkim"
AUTH_NONE: Final = "none"

# The header section ends at the first empty line.
_HEADER_END: Final = re.compile(rb"\r?\n\r?\n")
_HEADER_PARSER: Final = BytesHeaderParser(policy=policy.compat32)
# Anything in a From field that looks like an address, wherever it stands.
_ADDRESS_TOKEN: Final = re.compile(r"[^\s<>()\[\]\",;:@\\]+@[^\s<>()\[\]\",;:@\\]+")
# A backslash-escaped character inside a quoted local part.
_QUOTED_PAIR: Final = re.compile(r"\\(?P<char>.)")
# Characters never valid in an address we would store or echo: controls, and lone surrogates
# (aiosmtpd decodes non-UTF-8 bytes with surrogateescape).
_BAD_ADDRESS_CHAR: Final = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
# An envelope address has a local part and a domain; aiosmtpd passes on anything it can quote.
_ADDRESS_SHAPE: Final = re.compile(r"^(?P<local>.+)@(?P<domain>[^@\s\"]+)$")
# The usual envelope path, <dot-atom@domain> and its parameters: read without email's parser.
# Authentication-Results (RFC 8601): comments, one "method=result" and its properties.
_AR_COMMENT: Final = re.compile(r"\([^()]*\)")
_AR_RESULT: Final = re.compile(r"^\s*(?P<method>[A-Za-z0-9_-]+)(?:/\d+)?\s*=\s*(?P<result>\w+)")
_AR_PROPERTY: Final = re.compile(
    r"(?P<ptype>[A-Za-z0-9_-]+)\.(?P<prop>[A-Za-z0-9_.-]+)\s*=\s*"
    r'(?:"(?P<quoted>[^"]*)"|(?P<value>[^\s";]+))'
)


@dataclass(frozen=True)
class TrustedRelays:
    """The networks of the organisation's MTA (``smtp.trusted_relays``)."""

    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> TrustedRelays:
        """Read addresses or networks (``10.0.0.5``, ``10.0.0.0/24``, ``::1``)."""
        networks = []
        for entry in entries:
            try:
                networks.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError as exc:
                raise ConfigError(
                    "smtp.trusted_relays", f"{entry!r} is not an IP address or network"
                ) from exc
        return cls(tuple(networks))

    def trusts(self, host: str) -> bool:
        """Whether a peer address is one of the trusted relays."""
        if not self.networks:
            return False
        address = ip_of(host)
        return address is not None and any(address in network for network in self.networks)


class HeaderError(ValueError):
    """The header section cannot be used; the message says why, for the SMTP reply."""


@dataclass(frozen=True, kw_only=True)
class HeaderFacts:
    """What the gateway needs from the header section."""

    from_addresses: tuple[str, ...]
    #: Authentication-Results values, topmost (added last, by the nearest MTA) first.
    auth_results: tuple[str, ...]
    #: The topmost ``X-Yizhan-Login`` and ``Received`` values (``gateway.login_header``).
    login_header: str | None = None
    first_received: str | None = None
    #: Sender: names who sent a message on the From's behalf: it must be the sender too.
    sender_addresses: tuple[str, ...] = ()
    #: The display names of the From field, decoded ("李軍" in 李軍 <wangfang@…>).
    from_names: tuple[str, ...] = ()


def auth_allowed(peer_host: str, *, tls: bool) -> bool:
    """Whether AUTH may be offered: over TLS, or in clear text to a loopback peer only."""
    if tls:
        return True
    address = ip_of(peer_host)
    return address is not None and address.is_loopback


def address_problem(address: str) -> str | None:
    """Why an envelope address cannot be taken (it could not be stored or echoed), or None."""
    bad = _BAD_ADDRESS_CHAR.search(address)
    if bad is not None:
        if "\ud800" <= bad.group() <= "\udfff":
            return "it is not UTF-8 (RFC 6531)"
        return "it contains control characters"
    if _ADDRESS_SHAPE.match(address) is None:
        return f"<{address}> needs a local part, an @ and a domain"
    return None


def address_belongs(address: str, account: str, directory: Directory, domain: str) -> bool:
    """Whether ``address`` is one of the account's two addresses (case-insensitive)."""
    address = address.strip().lower()
    if address == f"{account}@{domain}".lower():
        return True
    person = directory.people.get(account)
    return person is not None and person.email is not None and address == person.email.lower()


def parse_headers(data: bytes) -> HeaderFacts:
    """Read the From addresses and Authentication-Results; raise HeaderError if impossible.

    Lenient about everything else: a broken MIME body, unknown charsets and 8-bit bytes in
    headers are left for the processor. Only the header section is read, as stored (compat32,
    no header objects; ``daemon.extract.headers`` for plain ones): this runs for every message
    on the event loop, and the structured parse of policy.default costs five times as much. The From
    addresses are what a lenient parser finds plus every address-like token in the field, so
    that no quoting trick can hide an address from the check that they all belong to the
    sender.
    """
    plain = plain_header_section(data)
    if plain is not None:
        fields = plain[0]
    else:
        end = _HEADER_END.search(data)
        head = data[: end.end()] if end else data
        try:
            fields = list(_HEADER_PARSER.parsebytes(head).raw_items())
        except Exception as exc:
            raise HeaderError(
                f"the header section cannot be parsed ({exc.__class__.__name__})"
            ) from exc
    if not fields:
        raise HeaderError(
            "no header section found; a message starts with header lines such as From: and Subject:"
        )
    values = [_unfold(value) for name, value in fields if name.lower() == "from"]
    if not values:
        raise HeaderError("the message has no From: header (RFC 5322 section 3.6)")
    mailboxes = [plain_mailbox(value) for value in values]
    if all(mailboxes):
        found = dict.fromkeys(address for address in mailboxes if address)
    else:
        found = dict.fromkeys(address for _name, address in getaddresses(values) if address)
    for value in values:
        found.update(dict.fromkeys(_ADDRESS_TOKEN.findall(value)))
    addresses = tuple(
        dict.fromkeys(_unquote(_utf8(address)) for address in found if address != "<>")
    )
    if not addresses:
        raise HeaderError("the From: header holds no address")
    results = tuple(
        _unfold(value) for name, value in fields if name.lower() == "authentication-results"
    )
    senders = [_unfold(value) for name, value in fields if name.lower() == "sender"]
    sender_addresses = tuple(
        dict.fromkeys(
            _unquote(_utf8(address))
            for value in senders
            for address in [a for _n, a in getaddresses([value])] + _ADDRESS_TOKEN.findall(value)
            if address and address != "<>"
        )
    )
    names = tuple(
        " ".join(decode_header_text(name).split())
        for name, _address in getaddresses([decode_header_text(v) for v in values])
        if name.strip()
    )
    return HeaderFacts(
        from_addresses=addresses,
        auth_results=results,
        sender_addresses=sender_addresses,
        from_names=names,
        login_header=_first(fields, "x-yizhan-login"),
        first_received=_first(fields, "received"),
    )


def name_of_another(names: Sequence[str], account: str, directory: Directory) -> str | None:
    """The account of another person whose name a From display name shows, when it is not the
    sender's own name too (AUTH as 王芳, From: 李軍 <wangfang@…>): sending in another's name
    (第七條); else None."""
    own = directory.people.get(account)
    for name in names:
        bare = name.strip("\"' ")
        if not bare or (own is not None and bare == own.name):
            continue
        for person in directory.people.values():
            if person.account != account and person.name == bare:
                return person.account
    return None


def parse_auth_results(value: str) -> list[tuple[str, str, dict[str, str]]]:
    """One Authentication-Results value as ``(method, result, {ptype.property: value})``.

    The authserv-id (before the first ";") is dropped; methods and results are lower-cased.
    """
    text = value
    while True:
        stripped = _AR_COMMENT.sub(" ", text)
        if stripped == text:
            break
        text = stripped
    found = []
    for resinfo in text.split(";")[1:]:
        match = _AR_RESULT.match(resinfo)
        if match is None:
            continue
        properties = {
            f"{p['ptype'].lower()}.{p['prop'].lower()}": p["quoted"] or p["value"] or ""
            for p in _AR_PROPERTY.finditer(resinfo, match.end())
        }
        found.append((match["method"].lower(), match["result"].lower(), properties))
    return found


def relay_identity(
    auth_results: Sequence[str],
    from_addresses: Sequence[str],
    directory: Directory,
    domain: str,
) -> tuple[str | None, str]:
    """The sender's account as the trusted MTA vouches for it, and how; (None, "none") if not.

    Only the topmost Authentication-Results counts: that is the one the trusted MTA added;
    any below it came with the message. ``auth=pass smtp.auth=<login>`` names the account
    (an account name or either of its addresses); failing that, ``dkim=pass`` with
    ``header.i`` (or ``header.d``) matching every From address names the From's owner.
    """
    if not auth_results:
        return None, AUTH_NONE
    results = parse_auth_results(auth_results[0])
    for method, result, props in results:
        if method == "auth" and result == "pass" and props.get("smtp.auth"):
            account = _person_for_login(props["smtp.auth"], directory, domain)
            if account is not None:
                return account, AUTH_RELAY
    for method, result, props in results:
        if method != "dkim" or result != "pass" or not from_addresses:
            continue
        identity = props.get("header.i") or ("@" + props["header.d"] if "header.d" in props else "")
        if not all(_dkim_covers(identity, address) for address in from_addresses):
            continue
        owners = {directory.person_by_address(a, domain) for a in from_addresses}
        if len(owners) == 1:
            owner = owners.pop()
            if owner is not None and owner.state == "active":
                return owner.account, AUTH_RELAY_DKIM
    return None, AUTH_NONE


def _dkim_covers(identity: str, address: str) -> bool:
    # "user@domain" vouches for that address; "@domain" for every address at that domain.
    identity, address = identity.strip().lower(), address.strip().lower()
    if not identity or "@" not in identity:
        return False
    if identity.startswith("@"):
        return address.rpartition("@")[2] == identity[1:]
    return address == identity


def _person_for_login(login: str, directory: Directory, domain: str) -> str | None:
    login = login.strip().lower()
    person = (
        directory.person_by_address(login, domain) if "@" in login else directory.people.get(login)
    )
    return person.account if person is not None and person.state == "active" else None


def _first(fields: Sequence[tuple[str, str]], name: str) -> str | None:
    for field, value in fields:
        if field.lower() == name:
            return _unfold(value)
    return None


def _unfold(value: str) -> str:
    return " ".join(value.split())


def _unquote(address: str) -> str:
    # '"lijun"@oa.example' is lijun@oa.example; the check must see it as such.
    local, at, domain = address.rpartition("@")
    if at and len(local) >= 2 and local[0] == local[-1] == '"':
        local = _QUOTED_PAIR.sub(r"\g<char>", local[1:-1])
    return f"{local}{at}{domain}"


def _utf8(text: str) -> str:
    # The parser reads header bytes as ASCII and keeps the rest as lone surrogates; raw UTF-8
    # (RFC 6532, sent with SMTPUTF8) is turned back into the characters it stands for. Other
    # 8-bit bytes stay escaped, and such an address matches no one.
    try:
        return text.encode("utf-8", errors="surrogateescape").decode("utf-8")
    except UnicodeError:
        return text
