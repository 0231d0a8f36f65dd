"""Keeps Yizhan's GnuPG home: the system key, the units' seal keys and people's registered keys.

The home is ``<data_dir>/gnupg`` (mode 0700) and every operation runs the ``gpg`` binary on it,
through python-gnupg where it has a call for the job and directly where it has none (protected
key generation, revocation with a reason). What GnuPG cannot record is kept beside it, in
small JSON files written atomically (tmp, fsync, rename):

* ``system.json``: the system key's fingerprint. The system key signs everything Yizhan sends.
  It has no passphrase: the daemon must sign unattended, and a passphrase kept next to it would
  protect nothing (docs/seals.md).
* ``seals/<unit>.json``: a unit's seal keys, current and past, and its custodian (第十八條).
* ``seals/<unit>-<fingerprint>.pass.asc``: a seal key's passphrase, encrypted to the system
  key; one file per key, so that a rotation cut short by a crash leaves every key usable.
  The gpg-agent caches no passphrase, so the seal key signs only inside :meth:`Keyring.seal_signer`,
  which hands the passphrase out only against the custodian's verified signature.
* ``people.json``: which account a person's public key belongs to.
* ``pending/<account>.json``: a key a person sent to cmd@, until they confirm it.

A revoked key stays in the keyring, so that what it signed before can still be checked.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hmac
import json
import logging
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from email.utils import getaddresses
from pathlib import Path
from typing import Any, Final, Literal, NewType, Protocol

import gnupg

from yizhan.mailstore.rawstore import sync_directories

log = logging.getLogger("yizhan.signing")

#: An OpenPGP v4 fingerprint: 40 upper-case hex digits.
Fingerprint = NewType("Fingerprint", str)

#: The digest every Yizhan signature uses; RFC 3156 ``micalg=pgp-sha256``.
DIGEST: Final = "SHA256"
#: OpenPGP's number for SHA-256 (RFC 4880 9.4), as gpg reports it in status lines.
DIGEST_ID: Final = "8"

SealState = Literal["active", "revoked"]
BindingState = Literal["active", "replaced", "revoked"]

# A Unix socket path has room for 107 bytes; gpg puts its agent's sockets in the home when
# /run/user/<uid> does not exist, and fails obscurely when the name is too long.
_MAX_SOCKET_PATH: Final = 107
_UNIT_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_ACCOUNT = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_FPR = re.compile(r"^[0-9A-F]{40}$")
_MASK: Final = "********"

# The agent must never keep a seal passphrase: with a cache, a seal key just used would sign
# again for anyone who asks during the next ten minutes, without its custodian's SEAL.
_AGENT_CONF: Final = (
    "# Written by Yizhan: no passphrase is cached, so a seal key signs only when the\n"
    "# sealing step hands its passphrase over (docs/seals.md).\n"
    "default-cache-ttl 0\n"
    "max-cache-ttl 0\n"
    "allow-loopback-pinentry\n"
)

# gpg's menu numbers for a revocation reason (--gen-revoke), not RFC 4880's reason codes.
_REASON_MENU: Final = {"compromised": "1", "superseded": "2", "retired": "3"}


class KeyringError(Exception):
    """A keyring operation was refused or failed; the message is one line for people."""


class GpgFailed(KeyringError):
    """gpg made no signature, and not for a wrong passphrase: the agent went away (under a
    crash or a load, "Broken pipe"), a key is missing from the ring. A failure of the machine,
    which the next try may not meet; the message being signed is not at fault."""


def utcnow() -> dt.datetime:
    """Now, in UTC."""
    return dt.datetime.now(dt.UTC)


class SealPassphrase:
    """A seal key's passphrase: it masks itself in repr, str and logs, and can be wiped.

    See aiosmtpd's ``LoginPassword``: the value is reachable only through :meth:`reveal`,
    which the signing call uses to hand it to gpg on a pipe. Python cannot erase a string
    from memory; :meth:`wipe` drops this object's reference so nothing later can reveal it.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not value or any(ch in value for ch in "\r\n\0"):
            raise ValueError("a passphrase is one non-empty line")
        self._value: str | None = value

    @classmethod
    def generate(cls) -> SealPassphrase:
        """A fresh random passphrase: 32 random bytes, base64url (43 characters)."""
        return cls(secrets.token_urlsafe(32))

    def reveal(self) -> str:
        """The passphrase itself; only for handing to gpg."""
        if self._value is None:
            raise KeyringError("the seal passphrase was already used and wiped")
        return self._value

    def wipe(self) -> None:
        """Forget the passphrase; :meth:`reveal` fails from now on."""
        self._value = None

    @property
    def wiped(self) -> bool:
        """Whether :meth:`wipe` was called."""
        return self._value is None

    def __repr__(self) -> str:
        return f"SealPassphrase({_MASK!r})"

    def __str__(self) -> str:
        return _MASK

    def __format__(self, spec: str) -> str:
        return _MASK

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SealPassphrase) or self._value is None or other._value is None:
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self) -> Any:
        # Pickling would write the passphrase out in the clear (nothing secret is pickled to disk).
        raise TypeError("a SealPassphrase cannot be pickled")


@dataclass(frozen=True, kw_only=True)
class SignerSpec:
    """One key to sign with, and its passphrase when the key has one (seal keys do)."""

    fingerprint: Fingerprint
    passphrase: SealPassphrase | None = None


@dataclass(frozen=True, kw_only=True)
class SealInfo:
    """One seal key of a unit (第十八條): who keeps it, and whether it is still in use."""

    unit: str
    unit_name: str
    fingerprint: Fingerprint
    uid: str
    custodian: str
    created_at: dt.datetime
    state: SealState
    revoked_at: dt.datetime | None = None
    #: Why it was revoked: ``superseded`` (rotated), ``compromised`` or ``retired``.
    reason: str | None = None
    #: The key that replaced it, after a rotation.
    replaced_by: Fingerprint | None = None


@dataclass(frozen=True, kw_only=True)
class KeyFacts:
    """What an armoured public key says about itself, before or after it is imported."""

    fingerprint: Fingerprint
    uids: tuple[str, ...]
    emails: tuple[str, ...]
    created_at: dt.datetime
    expires_at: dt.datetime | None
    can_sign: bool
    revoked: bool


@dataclass(frozen=True, kw_only=True)
class KeyBinding:
    """That a public key is a person's (their account), and whether it still counts."""

    account: str
    fingerprint: Fingerprint
    addresses: tuple[str, ...]
    state: BindingState
    registered_at: dt.datetime
    ended_at: dt.datetime | None = None


@dataclass(frozen=True, kw_only=True)
class KeyOwner:
    """Whose a key is: a person (``name`` is the account), a unit's seal, or Yizhan itself."""

    kind: Literal["person", "seal", "system"]
    name: str
    #: For a person: active, replaced or revoked; for a seal: active or revoked.
    state: str
    ended_at: dt.datetime | None = None
    reason: str | None = None


@dataclass(frozen=True, kw_only=True)
class SignatureCheck:
    """What gpg said about one signature (one NEWSIG block of its status output)."""

    status: Literal[
        "good", "bad", "unknown_key", "expired_key", "expired_sig", "revoked_key", "error"
    ]
    key_id: str | None = None
    #: The key that made the signature (a subkey, possibly).
    fingerprint: Fingerprint | None = None
    #: The primary key it belongs to: the one registered to a person or a seal.
    primary_fingerprint: Fingerprint | None = None
    signed_at: dt.datetime | None = None
    user_id: str | None = None
    hash_algo: str | None = None


@dataclass(frozen=True, kw_only=True)
class Signature:
    """A detached, ASCII-armoured signature and the keys that made it."""

    armored: bytes
    signers: tuple[Fingerprint, ...]
    hash_algos: tuple[str, ...] = field(default=())


class SealAuthority(Protocol):
    """A verified signature that may unlock a seal: ``pgpmime.Verification`` is one."""

    @property
    def ok(self) -> bool: ...

    @property
    def account(self) -> str | None: ...

    @property
    def fingerprint(self) -> Fingerprint | None: ...


class Keyring:
    """Yizhan's GnuPG home; see the module docstring."""

    def __init__(
        self,
        home: Path,
        *,
        gpg_binary: str = "gpg",
        clock: Callable[[], dt.datetime] = utcnow,
        agent_s2k_count: int | None = None,
    ) -> None:
        """Open (creating if need be) the GnuPG home at ``home``.

        ``agent_s2k_count`` sets how hard the agent makes guessing a protected key's
        passphrase; left None, the agent calibrates it (about 100 ms a try). Tests lower it,
        because every seal signature pays it once.
        """
        self.home = home.absolute()
        self.clock = clock
        if len(os.fsencode(self.home / "S.gpg-agent.browser")) > _MAX_SOCKET_PATH:
            raise KeyringError(
                f"GnuPG home {self.home} is too long a path for gpg-agent's sockets; "
                "choose a shorter data_dir"
            )
        self.home.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.home.chmod(0o700)
        for sub in ("seals", "pending", "tmp"):
            (self.home / sub).mkdir(exist_ok=True, mode=0o700)
        conf = _AGENT_CONF + (f"s2k-count {agent_s2k_count}\n" if agent_s2k_count else "")
        agent_conf = self.home / "gpg-agent.conf"
        if not agent_conf.exists() or agent_conf.read_text(encoding="utf-8") != conf:
            _write_atomically(agent_conf, conf.encode("utf-8"))
            # An agent started with other settings would keep them until it is restarted.
            self._gpgconf("--kill", "gpg-agent")
        self._options = [
            "--pinentry-mode",
            "loopback",
            # Whose key it is, is Yizhan's records' business (people.json, seals/), not the
            # web of trust's; gpg would otherwise add "not certified" noise to every check.
            "--trust-model",
            "always",
            "--no-auto-key-retrieve",
        ]
        self.gpg = gnupg.GPG(
            gpgbinary=gpg_binary, gnupghome=str(self.home), encoding="utf-8", options=self._options
        )
        self._lock = threading.RLock()
        self._lock_depth = 0
        self._lock_file: int | None = None

    def __enter__(self) -> Keyring:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the gpg-agent serving this home (it is started again when next needed)."""
        self._gpgconf("--kill", "gpg-agent")

    # --- The system key ---------------------------------------------------------------------

    def system_fingerprint(self) -> Fingerprint | None:
        """The system key's fingerprint, or None before :meth:`ensure_system_key`."""
        data = _read_json(self.home / "system.json")
        fpr = data.get("fingerprint")
        return Fingerprint(fpr) if isinstance(fpr, str) else None

    def ensure_system_key(self, domain: str) -> Fingerprint:
        """The system key (``Yizhan <cmd@domain>``), generated the first time; idempotent.

        An Ed25519 primary key signs; a Curve25519 subkey lets seal passphrases be encrypted
        to it. It has no passphrase (module docstring).
        """
        with self._locked():
            fpr = self.system_fingerprint()
            if fpr is not None:
                if not self._has_secret(fpr):
                    raise KeyringError(
                        f"system.json names key {fpr}, but its secret key is missing from "
                        f"{self.home}; restore the GnuPG home from the backup"
                    )
                return fpr
            params = self.gpg.gen_key_input(
                key_type="EDDSA",
                key_curve="ed25519",
                key_usage="sign,cert",
                subkey_type="ECDH",
                subkey_curve="cv25519",
                subkey_usage="encrypt",
                name_real="Yizhan",
                name_email=f"cmd@{domain}",
                expire_date=0,
                no_protection=True,
            )
            result = self.gpg.gen_key(params)
            if not result.fingerprint:
                raise KeyringError(f"gpg could not create the system key: {_gpg_error(result)}")
            fpr = Fingerprint(str(result.fingerprint))
            _write_json(
                self.home / "system.json",
                {"version": 1, "fingerprint": fpr, "created_at": self.clock().isoformat()},
            )
            log.info("created the system key %s for %s", fpr, domain)
            return fpr

    def system_signer(self) -> SignerSpec:
        """The system key as a signer; fails before ``yizhan init`` made it."""
        fpr = self.system_fingerprint()
        if fpr is None:
            raise KeyringError("there is no system key yet; run `yizhan init`")
        return SignerSpec(fingerprint=fpr)

    # --- Seals ------------------------------------------------------------------------------

    def create_seal(self, unit_id: str, unit_name: str, custodian: str, domain: str) -> SealInfo:
        """Create ``unit_id``'s seal key, kept by ``custodian``; refused if it has one already.

        The key's user ID is ``<unit_name> seal <seal+<unit_id>@<domain>>``. Its passphrase is
        random, never shown, and stored encrypted to the system key.
        """
        _check_unit(unit_id)
        _check_account(custodian)
        with self._locked():
            record = self._seal_record(unit_id)
            if record is not None and _active_key(record) is not None:
                raise KeyringError(
                    f"unit {unit_id} has a seal already; use rotation to replace its key"
                )
            self.ensure_system_key(domain)
            uid = f"{unit_name} seal <seal+{unit_id}@{domain}>"
            key = self._new_seal_key(unit_id, uid)
            record = record or {"version": 1, "unit": unit_id, "keys": []}
            record.update(unit_name=unit_name, custodian=custodian, domain=domain)
            record["keys"].append(key)
            self._save_seal_record(unit_id, record)
            log.info(
                "created seal %s for unit %s, custodian %s", key["fingerprint"], unit_id, custodian
            )
            return _seal_info(record, key)

    def list_seals(self) -> list[SealInfo]:
        """Every seal key, current and revoked, by unit and then by age."""
        seals: list[SealInfo] = []
        for path in sorted((self.home / "seals").glob("*.json")):
            record = _read_json(path)
            seals.extend(_seal_info(record, key) for key in record.get("keys", []))
        return seals

    def seal(self, unit_id: str) -> SealInfo | None:
        """The unit's seal key in use, or None if it has none."""
        record = self._seal_record(unit_id)
        key = _active_key(record) if record is not None else None
        return _seal_info(record, key) if record is not None and key is not None else None

    def set_custodian(self, unit_id: str, custodian: str) -> SealInfo:
        """Hand the unit's seal to another custodian; the key stays the same."""
        _check_account(custodian)
        with self._locked():
            record, key = self._require_active(unit_id)
            record["custodian"] = custodian
            self._save_seal_record(unit_id, record)
            return _seal_info(record, key)

    def rotate_seal(self, unit_id: str) -> SealInfo:
        """Give the unit a new seal key; the old one is revoked as superseded, its public key kept.

        Documents sealed before still verify with the old public key, whose revocation says
        "superseded" and when, so a reader can tell they were sealed while it was in force.
        """
        with self._locked():
            record, old = self._require_active(unit_id)
            passphrase = self._seal_passphrase(unit_id, Fingerprint(old["fingerprint"]))
            try:
                new = self._new_seal_key(unit_id, str(old["uid"]))
                self._revoke_key(
                    Fingerprint(old["fingerprint"]),
                    passphrase,
                    "superseded",
                    f"superseded by {new['fingerprint']}",
                )
            finally:
                passphrase.wipe()
            old.update(
                state="revoked",
                revoked_at=self.clock().isoformat(),
                reason="superseded",
                replaced_by=new["fingerprint"],
            )
            record["keys"].append(new)
            self._save_seal_record(unit_id, record)
            log.info(
                "rotated seal of unit %s: %s -> %s", unit_id, old["fingerprint"], new["fingerprint"]
            )
            return _seal_info(record, new)

    def revoke_seal(self, unit_id: str, *, reason: str = "compromised") -> SealInfo:
        """Revoke the unit's seal key without a successor (``compromised`` or ``retired``)."""
        if reason not in ("compromised", "retired"):
            raise KeyringError(
                f"reason {reason!r}: use compromised or retired (rotation supersedes)"
            )
        with self._locked():
            record, key = self._require_active(unit_id)
            fpr = Fingerprint(key["fingerprint"])
            passphrase = self._seal_passphrase(unit_id, fpr)
            try:
                self._revoke_key(fpr, passphrase, reason, f"seal of {unit_id} {reason}")
            finally:
                passphrase.wipe()
            key.update(state="revoked", revoked_at=self.clock().isoformat(), reason=reason)
            self._save_seal_record(unit_id, record)
            log.info("revoked seal %s of unit %s (%s)", fpr, unit_id, reason)
            return _seal_info(record, key)

    @contextlib.contextmanager
    def seal_signer(self, unit_id: str, *, authorised_by: SealAuthority) -> Iterator[SignerSpec]:
        """The unit's seal as a signer, for the sealing step only; the passphrase is wiped after.

        ``authorised_by`` must be a good signature by the unit's custodian with their registered
        key: the verification of the custodian's SEAL (第十八條). The caller checks that what
        was signed is a SEAL of this document. Anything else is refused.
        """
        record, key = self._require_active(unit_id)
        custodian = str(record["custodian"])
        if not authorised_by.ok:
            raise KeyringError(f"the seal of {unit_id} needs a valid signature of its custodian")
        if authorised_by.account != custodian:
            raise KeyringError(
                f"the seal of {unit_id} is kept by {custodian}, not {authorised_by.account}"
            )
        if authorised_by.fingerprint is None or authorised_by.fingerprint != self.person_key(
            custodian
        ):
            raise KeyringError(f"{custodian}'s SEAL was not signed with their registered key")
        passphrase = self._seal_passphrase(unit_id, Fingerprint(key["fingerprint"]))
        try:
            yield SignerSpec(fingerprint=Fingerprint(key["fingerprint"]), passphrase=passphrase)
        finally:
            passphrase.wipe()

    def export_public(self, fingerprint: Fingerprint) -> str:
        """One public key, ASCII-armoured, with its revocation if it has one."""
        armored = str(self.gpg.export_keys(fingerprint, armor=True))
        if "BEGIN PGP PUBLIC KEY BLOCK" not in armored:
            raise KeyringError(f"no public key {fingerprint} in the keyring")
        return armored

    def export_seal(self, unit_id: str, *, include_system: bool = True) -> str:
        """Every key the unit's seal has had, ASCII-armoured: ``yizhan seal export UNIT``.

        Past keys come too, with their revocations, so a reader can check old documents and
        learn that a key was replaced. So does the system key, which countersigns every sealed
        document: without it ``gpg --verify`` reports the countersignature as unverifiable
        and exits non-zero, though the seal's signature is good.
        """
        record = self._seal_record(unit_id)
        if record is None or not record.get("keys"):
            raise KeyringError(f"unit {unit_id} has no seal; create one with `yizhan seal create`")
        fprs = [str(k["fingerprint"]) for k in record["keys"]]
        system = self.system_fingerprint()
        if include_system and system is not None:
            fprs.append(system)
        armored = str(self.gpg.export_keys(fprs, armor=True))
        if "BEGIN PGP PUBLIC KEY BLOCK" not in armored:
            raise KeyringError(f"the keys of the seal of {unit_id} are missing from the keyring")
        return armored

    # --- People's keys ----------------------------------------------------------------------

    def inspect_key(self, armored: str) -> KeyFacts:
        """What an armoured public key is, without importing it; exactly one key is accepted."""
        if "PRIVATE KEY BLOCK" in armored:
            raise KeyringError("this is a secret key: send or import only the public key")
        if "BEGIN PGP PUBLIC KEY BLOCK" not in armored:
            raise KeyringError(
                "no ASCII-armoured public key (-----BEGIN PGP PUBLIC KEY BLOCK-----)"
            )
        keys = self.gpg.scan_keys_mem(armored)
        if len(keys) != 1:
            raise KeyringError(f"expected one public key, found {len(keys)}")
        return _key_facts(keys[0])

    def import_person_key(
        self,
        armored: str,
        account: str,
        addresses: Sequence[str],
        *,
        require_uid_match: bool = False,
    ) -> Fingerprint:
        """Import a person's public key and register it as ``account``'s; its fingerprint.

        A key with no user ID at one of ``addresses`` is accepted from an administrator
        (``require_uid_match`` False) and refused otherwise. Refused as well: secret keys,
        several keys at once, keys that cannot sign, keys revoked or expired already, Yizhan's
        own keys, and a key registered to somebody else. The account's previous key, if any,
        stops counting (``replaced``). Importing a registered key again brings in what changed
        (a new expiry date, or the owner's revocation, after which it no longer counts).
        """
        _check_account(account)
        facts = self.inspect_key(armored)
        wanted = {a.strip().lower() for a in addresses if a.strip()}
        if require_uid_match and not wanted.intersection(facts.emails):
            raise KeyringError(
                f"key {facts.fingerprint} has no user ID at {', '.join(sorted(wanted))}"
            )
        if not facts.can_sign:
            raise KeyringError(f"key {facts.fingerprint} cannot make signatures")
        if facts.expires_at is not None and facts.expires_at <= self.clock():
            raise KeyringError(f"key {facts.fingerprint} expired on {facts.expires_at:%Y-%m-%d}")
        with self._locked():
            owner = self.owner_of(facts.fingerprint)
            if owner is not None and owner.kind != "person":
                raise KeyringError(f"key {facts.fingerprint} is one of Yizhan's own keys")
            if owner is not None and owner.name != account:
                raise KeyringError(f"key {facts.fingerprint} is registered to {owner.name}")
            result = self.gpg.import_keys(armored)
            if facts.fingerprint not in (result.fingerprints or []):
                raise KeyringError(
                    f"gpg did not import key {facts.fingerprint}: {_gpg_error(result)}"
                )
            now = self.clock()
            data = self._people()
            if self._is_revoked(facts.fingerprint):
                # The owner published a revocation: the key stops counting here too.
                for binding in data["bindings"]:
                    if binding["fingerprint"] == facts.fingerprint and binding["state"] == "active":
                        binding.update(state="revoked", ended_at=now.isoformat())
                        self._save_people(data)
                        log.info("key %s of %s revoked by its owner", facts.fingerprint, account)
                        return facts.fingerprint
                raise KeyringError(f"key {facts.fingerprint} has been revoked by its owner")
            for binding in data["bindings"]:
                if binding["account"] == account and binding["state"] == "active":
                    if binding["fingerprint"] == facts.fingerprint:
                        binding["addresses"] = sorted(wanted)
                        self._save_people(data)
                        return facts.fingerprint
                    binding.update(state="replaced", ended_at=now.isoformat())
            data["bindings"].append(
                {
                    "account": account,
                    "fingerprint": facts.fingerprint,
                    "addresses": sorted(wanted),
                    "state": "active",
                    "registered_at": now.isoformat(),
                    "ended_at": None,
                }
            )
            self._save_people(data)
            log.info("registered key %s for %s", facts.fingerprint, account)
            return facts.fingerprint

    def stage_person_key(self, armored: str, account: str, addresses: Sequence[str]) -> KeyFacts:
        """Keep a key a person sent to cmd@ until they confirm it; what the key is.

        It must carry a user ID at one of the person's ``addresses``: otherwise anybody could
        claim a colleague's published key as their own. Nothing is imported yet, so the key
        signs for nobody until :meth:`confirm_person_key`.
        """
        _check_account(account)
        facts = self.inspect_key(armored)
        wanted = {a.strip().lower() for a in addresses if a.strip()}
        if not wanted.intersection(facts.emails):
            raise KeyringError(
                f"key {facts.fingerprint} has no user ID at {', '.join(sorted(wanted))}"
            )
        if not facts.can_sign:
            raise KeyringError(f"key {facts.fingerprint} cannot make signatures")
        _write_json(
            self.home / "pending" / f"{account}.json",
            {
                "version": 1,
                "account": account,
                "fingerprint": facts.fingerprint,
                "addresses": sorted(wanted),
                "armored": armored,
                "staged_at": self.clock().isoformat(),
            },
        )
        return facts

    def pending_person_key(self, account: str) -> KeyFacts | None:
        """The key ``account`` sent and has not confirmed yet, if any."""
        _check_account(account)
        data = _read_json(self.home / "pending" / f"{account}.json")
        return self.inspect_key(str(data["armored"])) if data else None

    def confirm_person_key(self, account: str, fingerprint: Fingerprint) -> Fingerprint:
        """Register the staged key of ``account`` whose fingerprint the person confirmed."""
        _check_account(account)
        path = self.home / "pending" / f"{account}.json"
        data = _read_json(path)
        if not data:
            raise KeyringError(f"{account} has no key waiting for confirmation")
        if data["fingerprint"] != fingerprint:
            raise KeyringError(
                f"the key waiting for {account} is {data['fingerprint']}, not {fingerprint}"
            )
        fpr = self.import_person_key(
            str(data["armored"]), account, list(data["addresses"]), require_uid_match=True
        )
        path.unlink(missing_ok=True)
        return fpr

    def person_key(self, account: str) -> Fingerprint | None:
        """The key registered for ``account`` that counts now, if any."""
        for binding in self._people()["bindings"]:
            if binding["account"] == account and binding["state"] == "active":
                return Fingerprint(binding["fingerprint"])
        return None

    def person_bindings(self) -> list[KeyBinding]:
        """Every registration, past and present, oldest first."""
        return [_binding(b) for b in self._people()["bindings"]]

    def revoke_person_key(self, account: str) -> Fingerprint:
        """Stop ``account``'s key from counting (lost, left their post); its fingerprint.

        Yizhan holds no person's secret key, so it cannot publish a revocation: it refuses
        the key's signatures from now on. A revocation certificate the person sends (through
        :meth:`import_person_key`) makes gpg itself report the key revoked.
        """
        with self._locked():
            data = self._people()
            for binding in data["bindings"]:
                if binding["account"] == account and binding["state"] == "active":
                    binding.update(state="revoked", ended_at=self.clock().isoformat())
                    self._save_people(data)
                    log.info("revoked key %s of %s", binding["fingerprint"], account)
                    return Fingerprint(binding["fingerprint"])
        raise KeyringError(f"{account} has no registered key")

    def owner_of(self, fingerprint: Fingerprint) -> KeyOwner | None:
        """Whose key this is by Yizhan's records: a person, a seal, the system; or None."""
        if fingerprint == self.system_fingerprint():
            return KeyOwner(kind="system", name="system", state="active")
        for seal in self.list_seals():
            if seal.fingerprint == fingerprint:
                return KeyOwner(
                    kind="seal",
                    name=seal.unit,
                    state=seal.state,
                    ended_at=seal.revoked_at,
                    reason=seal.reason,
                )
        # The latest registration of the key decides (a key may be replaced, then restored).
        for binding in reversed(self.person_bindings()):
            if binding.fingerprint == fingerprint:
                return KeyOwner(
                    kind="person",
                    name=binding.account,
                    state=binding.state,
                    ended_at=binding.ended_at,
                )
        return None

    # --- Signing and verifying (the gpg side of pgpmime) -------------------------------------

    def sign_detached(self, data: bytes, signers: Sequence[SignerSpec]) -> Signature:
        """One armoured detached signature packet over ``data`` by every signer, SHA-256.

        gpg makes one signature per ``-u`` key in a single run; at most one of the keys may
        need a passphrase, since gpg reads one from the pipe.
        """
        if not signers:
            raise KeyringError("nothing to sign with: no signer given")
        secrets_ = [s.passphrase for s in signers if s.passphrase is not None]
        if len(secrets_) > 1:
            raise KeyringError("at most one signer may need a passphrase")
        args = ["--digest-algo", DIGEST]
        for signer in signers:
            args += ["-u", signer.fingerprint]
        result = self.gpg.sign(
            data,
            detach=True,
            clearsign=False,
            extra_args=args,
            passphrase=secrets_[0].reveal() if secrets_ else None,
        )
        created = [
            line.split()
            for line in _status_lines(str(result.stderr))
            if line.startswith("SIG_CREATED ")
        ]
        made = {Fingerprint(parts[6]) for parts in created if len(parts) >= 7}
        missing = [s.fingerprint for s in signers if s.fingerprint not in made]
        if missing or not result.data:
            problem = (
                f"gpg could not sign with {', '.join(missing) or 'the keys'}: {_gpg_error(result)}"
            )
            if "BAD_PASSPHRASE" in str(result.stderr):
                raise KeyringError(problem)
            raise GpgFailed(problem)
        algos = tuple(parts[3] for parts in created)
        if any(algo != DIGEST_ID for algo in algos):
            raise KeyringError(f"gpg signed with digest {algos}, not SHA-256")
        return Signature(
            armored=bytes(result.data),
            signers=tuple(s.fingerprint for s in signers),
            hash_algos=algos,
        )

    def verify_detached(self, data: bytes, signature: bytes) -> list[SignatureCheck]:
        """Check a detached signature over ``data``; one entry per signature in the packet."""
        fd, name = tempfile.mkstemp(prefix="sig-", dir=self.home / "tmp")
        try:
            with os.fdopen(fd, "wb") as sig_file:
                sig_file.write(signature)
            result = self.gpg.verify_data(name, data)
        finally:
            os.unlink(name)
        return parse_verify_status(str(result.stderr))

    def verify_clearsigned(self, text: bytes) -> list[SignatureCheck]:
        """Check a cleartext-signed block (-----BEGIN PGP SIGNED MESSAGE-----)."""
        result = self.gpg.verify(text)
        return parse_verify_status(str(result.stderr))

    # --- Inside ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        # One writer at a time, across threads (the RLock) and processes (flock on a file);
        # re-entrant, since create_seal calls ensure_system_key.
        with self._lock:
            if self._lock_depth == 0:
                self._lock_file = os.open(self.home / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
                fcntl.flock(self._lock_file, fcntl.LOCK_EX)
            self._lock_depth += 1
            try:
                yield
            finally:
                self._lock_depth -= 1
                if self._lock_depth == 0 and self._lock_file is not None:
                    os.close(self._lock_file)
                    self._lock_file = None

    def _gpgconf(self, *args: str) -> None:
        gpgconf = shutil.which("gpgconf")
        if gpgconf is None or not self.home.is_dir():
            return
        subprocess.run(
            [gpgconf, "--homedir", str(self.home), *args],
            capture_output=True,
            check=False,
            timeout=30,
        )

    def _run_gpg(self, args: Sequence[str], stdin: bytes) -> tuple[int, bytes, str]:
        """gpg on this home, without python-gnupg; ``stdin`` may hold a passphrase: not logged."""
        cmd = [
            self.gpg.gpgbinary,
            "--homedir",
            str(self.home),
            "--no-tty",
            "--status-fd",
            "2",
            *self._options,
            *args,
        ]
        proc = subprocess.run(cmd, input=stdin, capture_output=True, check=False, timeout=120)
        return proc.returncode, proc.stdout, proc.stderr.decode("utf-8", "replace")

    def _new_seal_key(self, unit_id: str, uid: str) -> dict[str, Any]:
        """A new protected seal key and its passphrase file; the key's record entry."""
        system = self.system_fingerprint()
        if system is None:
            raise KeyringError("there is no system key yet; run `yizhan init`")
        passphrase = SealPassphrase.generate()
        try:
            # python-gnupg's gen_key would pass the passphrase in the batch parameters; gpg
            # then makes the self-signature with the passphrase from the agent's cache, which
            # is off (ttl 0) here, and fails at random. --quick-gen-key with a loopback
            # passphrase answers gpg's own request instead.
            args = ["--batch", "--yes", "--passphrase-fd", "0", "--quick-gen-key", uid]
            rc, _out, status = self._run_gpg(
                [*args, "ed25519", "sign", "never"], (passphrase.reveal() + "\n").encode("utf-8")
            )
            created = [
                ln.split()[2] for ln in _status_lines(status) if ln.startswith("KEY_CREATED")
            ]
            if rc != 0 or not created:
                raise KeyringError(f"gpg could not create the seal key: {_last_error(status)}")
            fpr = Fingerprint(created[0])
            secret = json.dumps({"fingerprint": fpr, "passphrase": passphrase.reveal()})
            encrypted = self.gpg.encrypt(secret.encode("utf-8"), [system], armor=True)
            del secret
            if not encrypted.ok:
                raise KeyringError(f"could not encrypt the seal passphrase: {encrypted.status}")
            _write_atomically(_pass_file(self.home, unit_id, fpr), bytes(encrypted.data))
        finally:
            passphrase.wipe()
        return {
            "fingerprint": fpr,
            "uid": uid,
            "created_at": self.clock().isoformat(),
            "state": "active",
            "revoked_at": None,
            "reason": None,
            "replaced_by": None,
        }

    def _seal_passphrase(self, unit_id: str, fingerprint: Fingerprint) -> SealPassphrase:
        path = _pass_file(self.home, unit_id, fingerprint)
        try:
            armored = path.read_bytes()
        except FileNotFoundError:
            raise KeyringError(f"the passphrase of the seal of {unit_id} is missing") from None
        result = self.gpg.decrypt(armored)
        if not result.ok:
            raise KeyringError(
                f"could not decrypt the seal passphrase of {unit_id}: {result.status}"
            )
        content = json.loads(bytes(result.data))
        result.data = b""
        if content.get("fingerprint") != fingerprint:
            raise KeyringError(
                f"the passphrase file of {unit_id} is for key {content.get('fingerprint')}, "
                f"not the seal in use {fingerprint}"
            )
        return SealPassphrase(str(content["passphrase"]))

    def _revoke_key(
        self, fingerprint: Fingerprint, passphrase: SealPassphrase, reason: str, text: str
    ) -> None:
        """Make and import a revocation certificate with ``reason``; drop the secret key."""
        if not self._is_revoked(fingerprint):
            # --gen-revoke asks its questions even with --command-fd, and refuses --batch: the
            # answers go on the pipe after the passphrase (confirm, reason, text, end, confirm).
            answers = "\n".join([passphrase.reveal(), "y", _REASON_MENU[reason], text, "", "y", ""])
            rc, certificate, status = self._run_gpg(
                [
                    "--passphrase-fd",
                    "0",
                    "--command-fd",
                    "0",
                    "--armor",
                    "--gen-revoke",
                    fingerprint,
                ],
                answers.encode("utf-8"),
            )
            if rc != 0 or b"BEGIN PGP PUBLIC KEY BLOCK" not in certificate:
                raise KeyringError(f"gpg could not revoke key {fingerprint}: {_last_error(status)}")
            _write_atomically(self.home / "seals" / f"{fingerprint}.rev.asc", certificate)
            result = self.gpg.import_keys(certificate)
            if not self._is_revoked(fingerprint):
                raise KeyringError(f"key {fingerprint} is not revoked: {_gpg_error(result)}")
        # A revoked seal must never sign again; its public half stays for checking old seals.
        if self._has_secret(fingerprint):
            self.gpg.delete_keys(fingerprint, secret=True, passphrase=passphrase.reveal())
        for path in (self.home / "seals").glob(f"*-{fingerprint}.pass.asc"):
            path.unlink()

    def _has_secret(self, fingerprint: Fingerprint) -> bool:
        return any(k["fingerprint"] == fingerprint for k in self.gpg.list_keys(secret=True))

    def _is_revoked(self, fingerprint: Fingerprint) -> bool:
        keys = self.gpg.list_keys(keys=[fingerprint])
        return any(k["fingerprint"] == fingerprint and k.get("trust") == "r" for k in keys)

    def _seal_record(self, unit_id: str) -> dict[str, Any] | None:
        _check_unit(unit_id)
        data = _read_json(self.home / "seals" / f"{unit_id}.json")
        return data or None

    def _save_seal_record(self, unit_id: str, record: dict[str, Any]) -> None:
        _write_json(self.home / "seals" / f"{unit_id}.json", record)

    def _require_active(self, unit_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
        record = self._seal_record(unit_id)
        key = _active_key(record) if record is not None else None
        if record is None or key is None:
            raise KeyringError(
                f"unit {unit_id} has no seal in use; create one with `yizhan seal create`"
            )
        return record, key

    def _people(self) -> dict[str, Any]:
        data = _read_json(self.home / "people.json")
        return data if data else {"version": 1, "bindings": []}

    def _save_people(self, data: dict[str, Any]) -> None:
        _write_json(self.home / "people.json", data)


def parse_verify_status(status: str) -> list[SignatureCheck]:
    """gpg's ``--status-fd`` output of a ``--verify`` as one check per signature.

    Each signature opens with NEWSIG; then GOODSIG, BADSIG, EXPSIG, EXPKEYSIG, REVKEYSIG or
    ERRSIG says what it came to, and VALIDSIG (only for a mathematically good signature)
    gives the fingerprints and the time. No NEWSIG at all means there was no signature.
    """
    checks: list[dict[str, Any]] = []
    outcome = {
        "GOODSIG": "good",
        "BADSIG": "bad",
        "EXPSIG": "expired_sig",
        "EXPKEYSIG": "expired_key",
        "REVKEYSIG": "revoked_key",
    }
    for line in _status_lines(status):
        keyword, _, rest = line.partition(" ")
        if keyword == "NEWSIG":
            checks.append({"status": "error"})
            continue
        if not checks:
            continue
        current = checks[-1]
        if keyword in outcome:
            key_id, _, user = rest.partition(" ")
            current.update(status=outcome[keyword], key_id=key_id, user_id=user or None)
        elif keyword == "ERRSIG":
            parts = rest.split()
            current["key_id"] = parts[0] if parts else None
            # rc 9 is "no public key"; anything else, gpg could not check it at all.
            current["status"] = "unknown_key" if len(parts) > 5 and parts[5] == "9" else "error"
            if len(parts) > 6 and _FPR.match(parts[6]):
                current["fingerprint"] = parts[6]
        elif keyword == "NO_PUBKEY":
            current["status"] = "unknown_key"
        elif keyword == "VALIDSIG":
            parts = rest.split()
            current["fingerprint"] = Fingerprint(parts[0])
            current["signed_at"] = dt.datetime.fromtimestamp(int(parts[2]), dt.UTC)
            current["hash_algo"] = parts[7] if len(parts) > 7 else None
            current["primary_fingerprint"] = Fingerprint(parts[9] if len(parts) > 9 else parts[0])
    return [SignatureCheck(**c) for c in checks]


def _status_lines(stderr: str) -> list[str]:
    return [line[9:].strip() for line in stderr.splitlines() if line.startswith("[GNUPG:] ")]


def _last_error(status: str) -> str:
    # gpg's own words for the failure: the last "gpg: " line that is not a status line.
    lines = [ln[5:].strip() for ln in status.splitlines() if ln.startswith("gpg: ")]
    return lines[-1] if lines else "no reason given"


def _gpg_error(result: Any) -> str:
    return _last_error(str(getattr(result, "stderr", "") or ""))


def _pass_file(home: Path, unit_id: str, fingerprint: Fingerprint) -> Path:
    return home / "seals" / f"{unit_id}-{fingerprint}.pass.asc"


def _check_unit(unit_id: str) -> None:
    if not _UNIT_ID.match(unit_id):
        raise KeyringError(f"unit id {unit_id!r} must be lower-case ASCII letters, digits, - or _")


def _check_account(account: str) -> None:
    if not _ACCOUNT.match(account):
        raise KeyringError(f"account {account!r} is not an account name")


def _active_key(record: dict[str, Any] | None) -> dict[str, Any] | None:
    if record is None:
        return None
    active = [k for k in record.get("keys", []) if k.get("state") == "active"]
    return active[-1] if active else None


def _seal_info(record: dict[str, Any], key: dict[str, Any]) -> SealInfo:
    return SealInfo(
        unit=str(record["unit"]),
        unit_name=str(record.get("unit_name", "")),
        fingerprint=Fingerprint(key["fingerprint"]),
        uid=str(key["uid"]),
        custodian=str(record.get("custodian", "")),
        created_at=dt.datetime.fromisoformat(key["created_at"]),
        state="active" if key["state"] == "active" else "revoked",
        revoked_at=_time_or_none(key.get("revoked_at")),
        reason=key.get("reason"),
        replaced_by=Fingerprint(key["replaced_by"]) if key.get("replaced_by") else None,
    )


def _binding(data: dict[str, Any]) -> KeyBinding:
    state = data["state"]
    if state not in ("active", "replaced", "revoked"):
        raise KeyringError(f"people.json: unknown state {state!r}")
    return KeyBinding(
        account=str(data["account"]),
        fingerprint=Fingerprint(data["fingerprint"]),
        addresses=tuple(data.get("addresses", ())),
        state=state,
        registered_at=dt.datetime.fromisoformat(data["registered_at"]),
        ended_at=_time_or_none(data.get("ended_at")),
    )


def _key_facts(key: dict[str, Any]) -> KeyFacts:
    uids = tuple(str(u) for u in key.get("uids", ()))
    emails = tuple(addr.lower() for _name, addr in getaddresses(list(uids)) if "@" in addr)
    expires = str(key.get("expires") or "")
    return KeyFacts(
        fingerprint=Fingerprint(str(key["fingerprint"])),
        uids=uids,
        emails=emails,
        created_at=dt.datetime.fromtimestamp(int(key["date"]), dt.UTC),
        expires_at=dt.datetime.fromtimestamp(int(expires), dt.UTC) if expires else None,
        # "s" is a key (or subkey) made for signing; gpg drops the upper-case "S" of an
        # expired key, and whether it has expired is checked separately.
        can_sign="s" in str(key.get("cap", "")).lower(),
        revoked=key.get("trust") == "r",
    )


def _time_or_none(value: Any) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if isinstance(value, str) and value else None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except json.JSONDecodeError as exc:
        raise KeyringError(f"{path} is damaged: {exc}") from exc
    if not isinstance(data, dict):
        raise KeyringError(f"{path} is damaged: not a JSON object")
    return data


def _write_json(path: Path, data: dict[str, Any]) -> None:
    text = json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
    _write_atomically(path, text.encode("utf-8"))


def _write_atomically(path: Path, content: bytes) -> None:
    """Write ``content`` to a temporary file, fsync it, rename it over ``path``, fsync the dir."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        view = memoryview(content)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    os.close(fd)
    os.replace(tmp, path)
    sync_directories([path.parent])
