"""Tests of yizhan.signing.keyring with the real gpg binary.

Yizhan's GnuPG home (system key and the bureau seal) is made once per session and copied for
each test; people's keys come from a separate home standing for their own computers.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import pickle
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from yizhan.signing.keyring import (
    Fingerprint,
    Keyring,
    KeyringError,
    SealPassphrase,
    SignerSpec,
    parse_verify_status,
)

DOMAIN = "oa.example"
# The lowest passphrase-hashing cost gpg-agent takes; production keeps its calibrated default.
S2K = 65536
PEOPLE = {
    "zhoujing": "周靜 <zhoujing@bureau.example>",
    "lijun": "李軍 <lijun@bureau.example>",
}


def _short_dir() -> Path:
    # gpg-agent puts its sockets in the home; pytest's tmp_path is too long for a socket name.
    return Path(tempfile.mkdtemp(prefix="yz", dir="/tmp"))


def _gpg(home: Path, *args: str, stdin: bytes = b"") -> bytes:
    cmd = ["gpg", "--homedir", str(home), "--batch", "--pinentry-mode", "loopback", *args]
    return subprocess.run(cmd, input=stdin, capture_output=True, check=True).stdout


def _kill_agent(home: Path) -> None:
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], check=False)


@dataclass(frozen=True)
class Authority:
    """What the sealing step gets from verifying a SEAL (see ``SealAuthority``)."""

    ok: bool
    account: str | None
    fingerprint: Fingerprint | None


@pytest.fixture(scope="session")
def people() -> Iterator[dict[str, str]]:
    """The public keys of the custodian and of a leader, made on their own computers."""
    home = _short_dir()
    home.chmod(0o700)
    keys = {}
    for who, uid in PEOPLE.items():
        _gpg(home, "--passphrase", "", "--quick-gen-key", uid, "ed25519", "sign", "never")
        keys[who] = _gpg(home, "--armor", "--export", f"{who}@bureau.example").decode("ascii")
    keys["both"] = _gpg(home, "--armor", "--export").decode("ascii")
    yield keys
    _kill_agent(home)
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def template() -> Iterator[Path]:
    """A GnuPG home with the system key and the bureau's seal, kept by zhoujing."""
    base = _short_dir()
    keyring = Keyring(base / "g", agent_s2k_count=S2K)
    keyring.ensure_system_key(DOMAIN)
    keyring.create_seal("bureau", "遼寧出入境檢驗檢疫局", "zhoujing", DOMAIN)
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


def custodian(keyring: Keyring, people: dict[str, str]) -> Authority:
    """zhoujing's key registered, and her verified SEAL as the sealing step would see it."""
    fpr = keyring.import_person_key(people["zhoujing"], "zhoujing", ["zhoujing@bureau.example"])
    return Authority(ok=True, account="zhoujing", fingerprint=fpr)


def passphrase_of(keyring: Keyring, unit: str) -> str:
    """The seal's passphrase, decrypted with the system key the way only Yizhan can."""
    seal = keyring.seal(unit)
    assert seal is not None
    path = keyring.home / "seals" / f"{unit}-{seal.fingerprint}.pass.asc"
    secret = json.loads(bytes(keyring.gpg.decrypt(path.read_bytes()).data))
    return str(secret["passphrase"])


def test_home_is_private_and_the_agent_caches_no_passphrase(keyring: Keyring) -> None:
    # The data dir's GnuPG home is the service's alone, and the agent keeps no passphrase, so a
    # seal key signs only with its passphrase in hand.
    assert keyring.home.stat().st_mode & 0o777 == 0o700
    conf = (keyring.home / "gpg-agent.conf").read_text(encoding="utf-8")
    assert "default-cache-ttl 0" in conf and "max-cache-ttl 0" in conf


def test_system_key_is_made_once(keyring: Keyring) -> None:
    # `yizhan init` may run again: the system key stays the same.
    fpr = keyring.system_fingerprint()
    assert fpr is not None
    assert keyring.ensure_system_key(DOMAIN) == fpr
    (key,) = keyring.gpg.list_keys(secret=True, keys=[fpr])
    assert key["uids"] == ["Yizhan <cmd@oa.example>"]


def test_seal_has_a_custodian_and_a_chinese_user_id(keyring: Keyring) -> None:
    # 第十八條: the seal is kept by a named custodian; its key says whose seal it is, in
    # Chinese; its passphrase is on disk only encrypted.
    (seal,) = keyring.list_seals()
    assert (seal.unit, seal.custodian, seal.state) == ("bureau", "zhoujing", "active")
    assert seal.uid == "遼寧出入境檢驗檢疫局 seal <seal+bureau@oa.example>"
    (key,) = keyring.gpg.list_keys(keys=[seal.fingerprint])
    assert key["uids"] == [seal.uid]
    record = (keyring.home / "seals" / "bureau.json").read_text(encoding="utf-8")
    assert "passphrase" not in record
    stored = (keyring.home / "seals" / f"bureau-{seal.fingerprint}.pass.asc").read_text()
    assert stored.startswith("-----BEGIN PGP MESSAGE-----")
    with pytest.raises(KeyringError, match="has a seal already"):
        keyring.create_seal("bureau", "遼寧出入境檢驗檢疫局", "zhoujing", DOMAIN)


def test_seal_key_signs_only_with_its_passphrase(keyring: Keyring, people: dict[str, str]) -> None:
    # A seal signs with the system key in one signature packet when its custodian authorises
    # it; without the passphrase gpg refuses, also right after a signature (nothing cached).
    seal = keyring.seal("bureau")
    assert seal is not None
    system = keyring.system_signer()
    with keyring.seal_signer("bureau", authorised_by=custodian(keyring, people)) as signer:
        signature = keyring.sign_detached(b"document\r\n", [signer, system])
    assert signature.signers == (seal.fingerprint, system.fingerprint)
    checks = keyring.verify_detached(b"document\r\n", signature.armored)
    assert [(c.status, c.primary_fingerprint, c.hash_algo) for c in checks] == [
        ("good", seal.fingerprint, "8"),
        ("good", system.fingerprint, "8"),
    ]
    with pytest.raises(KeyringError, match="could not sign"):
        keyring.sign_detached(b"document\r\n", [SignerSpec(fingerprint=seal.fingerprint)])


def test_seal_is_unlocked_only_for_its_custodian(keyring: Keyring, people: dict[str, str]) -> None:
    # Anything but a good signature by the custodian's registered key is refused.
    good = custodian(keyring, people)
    lijun = keyring.import_person_key(people["lijun"], "lijun", ["lijun@bureau.example"])
    refused = {
        "valid signature": Authority(ok=False, account="zhoujing", fingerprint=good.fingerprint),
        "kept by zhoujing": Authority(ok=True, account="lijun", fingerprint=lijun),
        "registered key": Authority(ok=True, account="zhoujing", fingerprint=lijun),
    }
    for reason, authority in refused.items():
        with (
            pytest.raises(KeyringError, match=reason),
            keyring.seal_signer("bureau", authorised_by=authority),
        ):
            pass
    with keyring.seal_signer("bureau", authorised_by=good) as signer:
        assert signer.passphrase is not None
    assert signer.passphrase.wiped
    with pytest.raises(KeyringError, match="wiped"):
        signer.passphrase.reveal()


def test_passphrase_is_never_shown_logged_or_stored_in_clear(
    keyring: Keyring, people: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    # STYLE 13, "secrets mask themselves": the passphrase appears in no repr, str, log record
    # (python-gnupg's debug log included) and no file of the GnuPG home.
    caplog.set_level(logging.DEBUG)
    authority = custodian(keyring, people)
    keyring.create_seal("office", "辦公室", "zhoujing", DOMAIN)
    secret = passphrase_of(keyring, "office")
    with keyring.seal_signer("office", authorised_by=authority) as signer:
        keyring.sign_detached(b"x\r\n", [signer])
        shown = [repr(signer), str(signer), f"{signer.passphrase}", repr(signer.passphrase)]
        logging.getLogger("test").info("signer %s %r", signer.passphrase, signer)
        with pytest.raises(TypeError):
            pickle.dumps(signer.passphrase)
    keyring.rotate_seal("office")
    assert all(secret not in text for text in shown)
    assert "********" in shown[2]
    assert secret not in caplog.text
    for path in keyring.home.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
    assert SealPassphrase("a") == SealPassphrase("a")


def test_rotation_revokes_the_old_key_and_keeps_it(
    keyring: Keyring, people: dict[str, str]
) -> None:
    # Rotation: a new key for the same seal and custodian; the old one is revoked as
    # superseded, its secret half deleted, its public half kept and exported with the new.
    authority = custodian(keyring, people)
    old = keyring.seal("bureau")
    assert old is not None
    new = keyring.rotate_seal("bureau")
    assert new.fingerprint != old.fingerprint and new.custodian == "zhoujing"
    (past, current) = keyring.list_seals()
    assert (past.state, past.reason, past.replaced_by) == ("revoked", "superseded", new.fingerprint)
    assert current == new
    (key,) = keyring.gpg.list_keys(keys=[old.fingerprint])
    assert key["trust"] == "r"
    assert not keyring.gpg.list_keys(secret=True, keys=[old.fingerprint])

    exported = keyring.export_seal("bureau")
    fresh = _short_dir()
    try:
        _gpg(fresh, "--import", stdin=exported.encode())
        listed = _gpg(fresh, "--with-colons", "--list-keys").decode()
        assert (
            f"fpr:::::::::{old.fingerprint}" in listed
            and f"fpr:::::::::{new.fingerprint}" in listed
        )
        assert f"fpr:::::::::{keyring.system_fingerprint()}" in listed
    finally:
        _kill_agent(fresh)
        shutil.rmtree(fresh)
    with keyring.seal_signer("bureau", authorised_by=authority) as signer:
        assert signer.fingerprint == new.fingerprint
        keyring.sign_detached(b"x\r\n", [signer])


def test_revoked_seal_cannot_seal(keyring: Keyring, people: dict[str, str]) -> None:
    # A seal revoked as compromised has no successor until a new one is created.
    authority = custodian(keyring, people)
    revoked = keyring.revoke_seal("bureau")
    assert (revoked.state, revoked.reason) == ("revoked", "compromised")
    assert keyring.seal("bureau") is None
    with (
        pytest.raises(KeyringError, match="no seal in use"),
        keyring.seal_signer("bureau", authorised_by=authority),
    ):
        pass
    with pytest.raises(KeyringError, match="no seal in use"):
        keyring.revoke_seal("bureau")
    again = keyring.create_seal("bureau", "遼寧出入境檢驗檢疫局", "zhoujing", DOMAIN)
    assert [s.state for s in keyring.list_seals()] == ["revoked", "active"]
    assert again.fingerprint != revoked.fingerprint


def test_custodian_changes_hands(keyring: Keyring) -> None:
    # A custodian leaves the post: the seal is handed over, the key stays.
    before = keyring.seal("bureau")
    after = keyring.set_custodian("bureau", "wangfang")
    assert before is not None and after.fingerprint == before.fingerprint
    assert after.custodian == "wangfang"


def test_person_key_is_registered_to_one_account(keyring: Keyring, people: dict[str, str]) -> None:
    # `yizhan key import FILE --account lijun`: the binding is kept; the same key cannot be
    # somebody else's; what is not one public signing key is refused.
    fpr = keyring.import_person_key(people["lijun"], "lijun", ["lijun@bureau.example"])
    assert keyring.person_key("lijun") == fpr
    assert keyring.import_person_key(people["lijun"], "lijun", ["lijun@bureau.example"]) == fpr
    owner = keyring.owner_of(fpr)
    assert owner is not None and (owner.kind, owner.name, owner.state) == (
        "person",
        "lijun",
        "active",
    )
    with pytest.raises(KeyringError, match="registered to lijun"):
        keyring.import_person_key(people["lijun"], "wangfang", [])
    with pytest.raises(KeyringError, match="secret key"):
        keyring.import_person_key("-----BEGIN PGP PRIVATE KEY BLOCK-----\n", "lijun", [])
    with pytest.raises(KeyringError, match="one public key, found 2"):
        keyring.import_person_key(people["both"], "lijun", [])
    with pytest.raises(KeyringError, match="no user ID"):
        keyring.import_person_key(
            people["zhoujing"], "zhoujing", ["zj@x.example"], require_uid_match=True
        )
    seal = keyring.seal("bureau")
    assert seal is not None
    with pytest.raises(KeyringError, match="Yizhan's own"):
        keyring.import_person_key(keyring.export_public(seal.fingerprint), "lijun", [])
    # An administrator may bind a key whose user ID is elsewhere; a new key replaces the old.
    other = keyring.import_person_key(people["zhoujing"], "lijun", ["lijun@bureau.example"])
    assert keyring.person_key("lijun") == other
    assert [b.state for b in keyring.person_bindings()] == ["replaced", "active"]
    data = json.loads((keyring.home / "people.json").read_text(encoding="utf-8"))
    assert [b["fingerprint"] for b in data["bindings"]] == [fpr, other]


def test_key_sent_to_cmd_counts_after_confirmation(
    keyring: Keyring, people: dict[str, str]
) -> None:
    # A person mails their key to cmd@: it must name one of their addresses, and it counts
    # only once they confirm its fingerprint by replying.
    with pytest.raises(KeyringError, match="no user ID"):
        keyring.stage_person_key(people["zhoujing"], "lijun", ["lijun@bureau.example"])
    facts = keyring.stage_person_key(people["lijun"], "lijun", ["LiJun@bureau.example"])
    assert facts.emails == ("lijun@bureau.example",)
    assert keyring.person_key("lijun") is None
    pending = keyring.pending_person_key("lijun")
    assert pending is not None and pending.fingerprint == facts.fingerprint
    with pytest.raises(KeyringError, match="not 0000"):
        keyring.confirm_person_key("lijun", Fingerprint("0" * 40))
    assert keyring.confirm_person_key("lijun", facts.fingerprint) == facts.fingerprint
    assert keyring.person_key("lijun") == facts.fingerprint
    assert keyring.pending_person_key("lijun") is None


def test_revoked_person_key_stops_counting(keyring: Keyring, people: dict[str, str]) -> None:
    fpr = keyring.import_person_key(people["lijun"], "lijun", ["lijun@bureau.example"])
    assert keyring.revoke_person_key("lijun") == fpr
    assert keyring.person_key("lijun") is None
    owner = keyring.owner_of(fpr)
    assert owner is not None and owner.state == "revoked" and owner.ended_at is not None
    with pytest.raises(KeyringError, match="no registered key"):
        keyring.revoke_person_key("lijun")


def test_gpg_status_is_read_per_signature() -> None:
    # Literal status output of a --verify with two signatures: the seal's good, the second by
    # a key not in the keyring; then a bad one and a revoked one.
    seal, old = (
        "B0280DBA224837A980C4A8228550FF99B821FFAB",
        "47FA1C1DAFFD3FFF057DB6286745623A874F8490",
    )
    status = f"""\
[GNUPG:] NEWSIG
[GNUPG:] KEY_CONSIDERED {seal} 0
[GNUPG:] SIG_ID aAczLzzaaIsYQxFfVjbBwD+752s 2026-11-25 1795629099
[GNUPG:] GOODSIG 8550FF99B821FFAB 遼檢辦 seal <seal+office@oa.example>
[GNUPG:] VALIDSIG {seal} 2026-11-25 1795629099 0 4 0 22 8 00 {seal}
[GNUPG:] TRUST_UNDEFINED 0 pgp
[GNUPG:] NEWSIG
[GNUPG:] ERRSIG F3F5DF1EEDD35D81 22 8 00 1795629099 9 B1B3D8A080F6BBCD475335E5F3F5DF1EEDD35D81
[GNUPG:] NO_PUBKEY F3F5DF1EEDD35D81
gpg: Can't check signature: No public key
[GNUPG:] NEWSIG
[GNUPG:] BADSIG 8550FF99B821FFAB 遼檢辦 seal <seal+office@oa.example>
[GNUPG:] NEWSIG lijun@bureau.example
[GNUPG:] REVKEYSIG 6745623A874F8490 seal <seal+u1@oa.example>
[GNUPG:] VALIDSIG {old} 2026-11-25 1795628683 0 4 0 22 8 00 {old}
"""
    good, unknown, bad, revoked = parse_verify_status(status)
    assert (good.status, good.primary_fingerprint, good.hash_algo) == ("good", seal, "8")
    assert good.signed_at == dt.datetime.fromtimestamp(1795629099, dt.UTC)
    assert good.user_id == "遼檢辦 seal <seal+office@oa.example>"
    assert (unknown.status, unknown.key_id, unknown.primary_fingerprint) == (
        "unknown_key",
        "F3F5DF1EEDD35D81",
        None,
    )
    assert (bad.status, bad.primary_fingerprint) == ("bad", None)
    assert (revoked.status, revoked.key_id, revoked.primary_fingerprint) == (
        "revoked_key",
        "6745623A874F8490",
        old,
    )
    assert parse_verify_status("[GNUPG:] NODATA 1\n") == []


def test_home_path_too_long_for_agent_sockets_is_refused(tmp_path: Path) -> None:
    with pytest.raises(KeyringError, match="too long"):
        Keyring(tmp_path / ("d" * 120))
