"""Registering a signature key by mail at cmd@ (公鑰登記, 第十八條): send it, confirm it.

A person mails their OpenPGP public key (in the body or attached); Yizhan keeps it aside and
answers with its fingerprint; their APPROVE registers it, and from then on it signs for them
(簽發, 用印 need it).
"""

from __future__ import annotations

from email.message import EmailMessage
from typing import Final

from yizhan.daemon.desk.commands.base import Usage
from yizhan.daemon.desk.request import Request
from yizhan.mailstore import audit
from yizhan.routing.commands import Command
from yizhan.signing.keyring import KeyringError

__all__ = ["RegisterKey", "public_key_block"]

_BEGIN: Final = "-----BEGIN PGP PUBLIC KEY BLOCK-----"
_END: Final = "-----END PGP PUBLIC KEY BLOCK-----"


def public_key_block(msg: EmailMessage) -> str | None:
    """An ASCII-armoured public key in the body or attached (application/pgp-keys), if any."""
    for part in msg.walk():
        if part.is_multipart():
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            continue
        text = payload.decode("utf-8", "replace")
        start = text.find(_BEGIN)
        end = text.find(_END)
        if start != -1 and end > start:
            return text[start : end + len(_END)] + "\n"
    return None


class RegisterKey:
    """Known by the key the mail carries, not by a word; APPROVE at cmd@ confirms it. See
    ``EmailCommand``."""

    verb = None
    usages = (
        Usage(
            example="公鑰（貼在正文或作為附件）",
            form="your public key, pasted or attached",
            summary="公鑰登記 register your OpenPGP key (then reply 同意 / APPROVE)",
        ),
    )
    doc = r"""### 公鑰登記 · Registering your OpenPGP key

```
To: cmd@oa.example
Subject: 我的公鑰

-----BEGIN PGP PUBLIC KEY BLOCK-----
…
-----END PGP PUBLIC KEY BLOCK-----
```

```
To: cmd@oa.example
Subject: My public key

(attached: my-key.asc)
```

公鑰可貼在正文或作為附件。回覆 Answer: the fingerprint; reply `同意` / `APPROVE` to register
it (簽發、用印 need it). The key may be pasted in the body or attached."""

    def process(self, request: Request, command: Command) -> str:
        """Keep the key the mail carries until the sender confirms its fingerprint."""
        account = request.account
        assert account is not None
        armored = public_key_block(request.msg)
        assert armored is not None
        person = request.directory.people[account]
        domain = request.desk.domain
        addresses = [a for a in (person.email, f"{account}@{domain}") if a]
        try:
            facts = request.ctx.keyring.stage_person_key(armored, account, addresses)
        except KeyringError as exc:
            return f"未登記公鑰：{exc}\nKey not registered: {exc}"
        audit.record(
            request.session,
            at=request.now,
            actor=account,
            action="key.staged",
            target=account,
            detail={"fingerprint": facts.fingerprint},
        )
        grouped = " ".join(
            facts.fingerprint[i : i + 4] for i in range(0, len(facts.fingerprint), 4)
        )
        return (
            f"收到您的公鑰，指紋：{grouped}\n請核對無誤後回覆「同意」確認登記。\n"
            f"Yizhan received your public key, fingerprint {grouped}.\n"
            "If it is yours, reply APPROVE to register it."
        )

    def waiting(self, request: Request) -> bool:
        """Whether the sender has a key waiting for their APPROVE."""
        return (
            request.account is not None
            and request.ctx.keyring.pending_person_key(request.account) is not None
        )

    def confirm(self, request: Request) -> str:
        """The sender confirmed the key they sent: from now on it signs for them."""
        account = request.account
        assert account is not None
        keyring = request.ctx.keyring
        pending = keyring.pending_person_key(account)
        assert pending is not None
        fingerprint = keyring.confirm_person_key(account, pending.fingerprint)
        audit.record(
            request.session,
            at=request.now,
            actor=account,
            action="key.import",
            target=account,
            detail={"fingerprint": fingerprint, "by": "mail"},
        )
        return f"公鑰已登記：{fingerprint}\nYour key {fingerprint} is registered."
