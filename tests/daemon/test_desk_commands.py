"""Tests for yizhan.daemon.desk.commands: the registry, HELP and docs/modules.md made from it."""

from __future__ import annotations

from pathlib import Path

import pytest

from yizhan.daemon.config import Config
from yizhan.daemon.desk.commands import BY_VERB, COMMANDS, HELP
from yizhan.daemon.desk.commands.doc import cmd_section, main, with_cmd_section
from yizhan.daemon.desk.modules import MODULES
from yizhan.routing.commands import VERB_WORDS, Verb, parse_command

MODULES_PAGE = Path(__file__).parents[2] / "docs" / "modules.md"

#: The commands written in a reply to a step, decided by the workflow engine, not at cmd@.
REPLY_VERBS = {
    Verb.APPROVE,
    Verb.REJECT,
    Verb.COMMENT,
    Verb.RECEIVED,
    Verb.DONE,
    Verb.PROGRESS,
    Verb.FORWARD,
    Verb.READ,
    Verb.SEAL,
    Verb.OBJECT,
}


def test_every_verb_is_a_reply_command_or_has_its_class_at_cmd() -> None:
    # A new verb in routing.commands must get a command class (or be a reply command); a
    # verb with two classes would leave one of them unreachable.
    assert set(BY_VERB) == set(Verb) - {Verb.UNKNOWN} - REPLY_VERBS
    verbs = [c.verb for c in COMMANDS if c.verb is not None]
    assert len(verbs) == len(set(verbs))


def test_help_lists_every_module_every_command_and_every_word(config: Config) -> None:
    # 第十一條 (issue 6): HELP is made from the module table and the registry, so whatever
    # is added to either is in it, with every word a command may be written with.
    text = HELP.text(config)
    for name in MODULES:
        assert f"{config.addresses[name][0]}@{config.domain}" in text
        assert MODULES[name].help in text
    for command in COMMANDS:
        assert command.usages, command
        for usage in command.usages:
            assert usage.line() in text
    for words in VERB_WORDS.values():
        assert " / ".join(words) in text
    # The module guide is served by the admin page; HELP links to it (issue 14).
    assert f"{config.admin_public_url}help" in text


def test_help_quotes_what_it_did_not_understand(config: Config) -> None:
    # A mail to cmd@ that Yizhan cannot read gets the help, opening with what it could not
    # read, so the sender sees what to write instead.
    text = HELP.text(config, parse_command("請問怎麼請假"))
    assert text.startswith("沒有看懂「請問怎麼請假」")


def test_docs_modules_md_says_what_the_registry_says() -> None:
    # The cmd@ section of docs/modules.md is generated (python -m
    # yizhan.daemon.desk.commands.doc --write docs/modules.md): a command added to the
    # registry and not to the page fails here.
    page = MODULES_PAGE.read_text(encoding="utf-8")
    assert with_cmd_section(page) == page
    for command in COMMANDS:
        assert command.doc.startswith("### ") and command.doc in page


def test_the_generator_writes_the_section_in_place(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Run by hand after changing a command: it prints the section, or rewrites the page's.
    page = tmp_path / "modules.md"
    page.write_text("# Modules\n\nintro\n\n## cmd@ — 個人命令 Personal commands (第九條)\n\nold\n")
    assert main(["--write", str(page)]) == 0
    assert page.read_text(encoding="utf-8") == "# Modules\n\nintro\n\n" + cmd_section()
    assert main([]) == 0
    assert capsys.readouterr().out == cmd_section()
