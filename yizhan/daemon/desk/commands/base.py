"""What a command at cmd@ is: the contract every command class keeps, in the manner of GNU
Mailman 3's email commands (``mailman/commands/eml_*.py``, ``IEmailCommand``).

A command class names its verb (the words that call it are ``routing.commands.VERB_WORDS``,
where the pure parser reads them), says how it is written (:class:`Usage`: an example in
Chinese, the English form with its arguments, what it does), carries its section of
docs/modules.md, and answers with :meth:`EmailCommand.process`. HELP and docs/modules.md are
made from these, so a command cannot be left out of either.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from yizhan.daemon.desk.request import Outcome, Request
from yizhan.routing.commands import Command, Verb

__all__ = ["EmailCommand", "Usage"]


@dataclass(frozen=True, kw_only=True)
class Usage:
    """One way to write a command, as HELP lists it.

    ``example`` is written as a person would in Chinese (``授權 王芳 至 2026-12-01``);
    ``form`` is the English form with its arguments described (``DELEGATE name UNTIL date``);
    ``summary`` says what it does, in Chinese and English.
    """

    example: str
    form: str
    summary: str

    def line(self) -> str:
        """The usage as one line of HELP."""
        return f"  {self.example} / {self.form} — {self.summary}"


class EmailCommand(Protocol):
    """A command at cmd@ (see the module docstring)."""

    @property
    def verb(self) -> Verb | None:
        """The verb that calls it; None for a command known by what the mail carries."""

    @property
    def usages(self) -> tuple[Usage, ...]:
        """How it is written, for HELP."""

    @property
    def doc(self) -> str:
        """Its section of docs/modules.md (Markdown, with its ``###`` headings)."""

    def process(self, request: Request, command: Command) -> str | Outcome | None:
        """Carry out ``command`` for the authenticated sender of ``request``; the answer to
        send them, None when the command has answered itself (a file sent, say), or the
        decision about a document for the desk to apply (``desk.decisions``), which answers."""
        ...
