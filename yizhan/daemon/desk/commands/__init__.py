"""The commands at cmd@ (第九條): one class each, in a registry, and the reading of a mail to cmd@.

To add a command: write ``desk/commands/<verb>.py`` with one class that keeps the
``EmailCommand`` contract (its verb, its usages, its section of docs/modules.md, its
``process``), give its verb words in ``routing.commands`` and list it in :data:`COMMANDS` below;
HELP and docs/modules.md (``python -m yizhan.daemon.desk.commands.doc``) then show it.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from yizhan.daemon.desk.commands.base import EmailCommand, Usage
from yizhan.daemon.desk.commands.cancel import Cancel
from yizhan.daemon.desk.commands.delegate import Delegate
from yizhan.daemon.desk.commands.extend import Extend
from yizhan.daemon.desk.commands.get import GetDocument
from yizhan.daemon.desk.commands.help import Help
from yizhan.daemon.desk.commands.key import RegisterKey, public_key_block
from yizhan.daemon.desk.commands.reassign import Reassign
from yizhan.daemon.desk.commands.revoke import Revoke
from yizhan.daemon.desk.commands.search import Search
from yizhan.daemon.desk.commands.set import Set
from yizhan.daemon.desk.commands.status import Status
from yizhan.daemon.desk.commands.todo import Todo
from yizhan.daemon.desk.commands.tools import Tools
from yizhan.daemon.desk.request import Outcome, Request
from yizhan.routing.addresses import Recipient
from yizhan.routing.commands import Command, Verb

__all__ = ["BY_VERB", "COMMANDS", "HELP", "EmailCommand", "Usage", "receive"]

KEY: Final = RegisterKey()
TOOLS: Final = Tools()
#: HELP, which lists the commands before it and itself.
HELP: Final = Help(
    (
        Delegate(),
        Revoke(),
        Status(),
        Todo(),
        Search(),
        GetDocument(),
        Set(),
        KEY,
        TOOLS,
        Reassign(),
        Cancel(),
        Extend(),
    )
)
#: Every command at cmd@, in the order HELP and docs/modules.md show them.
COMMANDS: Final[tuple[EmailCommand, ...]] = (*HELP.others, HELP)
#: The commands called by a verb, by their verb.
BY_VERB: Final[Mapping[Verb, EmailCommand]] = MappingProxyType(
    {c.verb: c for c in COMMANDS if c.verb is not None}
)


def receive(request: Request, _recipient: Recipient) -> Outcome | None:
    """A mail to cmd@: find its command and answer it; every mail gets an answer.

    A public key is registered whatever else the mail says; a tools command is read by its own
    grammar; HELP and what Yizhan cannot read are answered to anyone; the rest only to an
    authenticated sender (第七條), whose APPROVE confirms a key waiting for it.
    """
    command = request.command
    has_key = public_key_block(request.msg) is not None
    if has_key and request.account is not None:
        _answer(request, KEY, command)
        return None
    asked = TOOLS.recognise(request)
    if not has_key and asked is not None:
        TOOLS.answer(request, asked)
        return None
    if not has_key and command.verb in (Verb.HELP, Verb.UNKNOWN):
        _answer(request, HELP, command)
        return None
    if request.account is None:
        request.refuse_unauthenticated()
        return None
    if command.verb is Verb.APPROVE and KEY.waiting(request):
        request.reply(KEY.confirm(request))
        return None
    found = BY_VERB.get(command.verb)
    if found is None:
        request.reply(
            f"「{command.verb.value}」命令不在 cmd@ 使用，或尚未開放。\n"
            f"The command {command.verb.value.upper()} is not available at cmd@.\n\n"
            + HELP.text(request.ctx.config, command)
        )
        return None
    return _answer(request, found, command)


def _answer(request: Request, found: EmailCommand, command: Command) -> Outcome | None:
    # A command that decides about a document (the office's) returns the decision to apply.
    answer = found.process(request, command)
    if isinstance(answer, Outcome):
        return answer
    if answer is not None:
        request.reply(answer)
    return None
