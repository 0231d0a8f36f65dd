"""Recognises the command a person wrote.

A command is the first non-empty line of a reply above the quoted original, or the subject when
the body has no text (docs/modules.md). It opens with one of the words in ``VERB_WORDS``,
in Simplified Chinese, Traditional Chinese or English; what follows is its argument.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from email.header import decode_header, make_header
from email.message import EmailMessage
from types import MappingProxyType
from typing import Final

from yizhan.routing.replies import body_text, normalise, reply_part

__all__ = [
    "VERB_WORDS",
    "Command",
    "Verb",
    "command_from_message",
    "parse_command",
    "parse_delegate",
    "parse_delegate_period",
    "subject_text",
]


class Verb(enum.StrEnum):
    """What a command asks Yizhan to do."""

    APPROVE = "approve"
    REJECT = "reject"
    COMMENT = "comment"
    RECEIVED = "received"
    DONE = "done"
    PROGRESS = "progress"
    FORWARD = "forward"
    READ = "read"
    SEAL = "seal"
    OBJECT = "object"
    DELEGATE = "delegate"
    REVOKE = "revoke"
    STATUS = "status"
    TODO = "todo"
    SEARCH = "search"
    SET = "set"
    TOOLS = "tools"
    GET = "get"
    HELP = "help"
    REASSIGN = "reassign"
    CANCEL = "cancel"
    EXTEND = "extend"
    UNKNOWN = "unknown"


#: The words that open each command, exactly as README and docs/modules.md list them; English
#: is matched without regard to case.
VERB_WORDS: Final[Mapping[Verb, tuple[str, ...]]] = MappingProxyType(
    {
        Verb.APPROVE: ("APPROVE", "同意", "批准"),
        Verb.REJECT: ("REJECT", "不同意", "退回"),
        Verb.COMMENT: ("COMMENT", "意見", "意见"),
        Verb.RECEIVED: ("RECEIVED", "簽收", "签收"),
        Verb.DONE: ("DONE", "辦結", "办结"),
        Verb.PROGRESS: ("PROGRESS", "進展", "进展"),
        Verb.FORWARD: ("FORWARD", "轉交", "转交"),
        Verb.READ: ("READ", "已閱", "已阅"),
        Verb.SEAL: ("SEAL", "用印"),
        Verb.OBJECT: ("OBJECT", "異議", "异议"),
        Verb.DELEGATE: ("DELEGATE", "授權", "授权"),
        Verb.REVOKE: ("REVOKE", "收回授權", "收回授权"),
        Verb.STATUS: ("STATUS", "查詢", "查询"),
        Verb.TODO: ("TODO", "待辦", "待办"),
        Verb.SEARCH: ("SEARCH", "搜索"),
        Verb.SET: ("SET", "設置", "设置"),
        Verb.TOOLS: ("TOOLS", "工具"),
        Verb.GET: ("GET", "下載", "下载"),
        Verb.HELP: ("HELP", "幫助", "帮助"),
        Verb.REASSIGN: ("REASSIGN", "轉辦", "转办"),
        Verb.CANCEL: ("CANCEL", "撤銷", "撤销"),
        Verb.EXTEND: ("EXTEND", "延期"),
    }
)

_VERB_OF_WORD: Final[Mapping[str, Verb]] = {
    word.casefold(): verb for verb, words in VERB_WORDS.items() for word in words
}


def _word_pattern(word: str) -> str:
    # An English word must end where the word ends, so READY is not READ and SETTINGS not SET.
    # Chinese is written without spaces ("同意辦理"), so a Chinese word may run on.
    if word.isascii():
        return re.escape(word) + r"(?![A-Za-z0-9_])"
    return re.escape(word)


# A word counts only at the start of the line, so 不同意 is never read as 同意, nor 收回授權 as
# 授權. Longest words come first because an alternation takes the first alternative that
# matches: should one word ever begin another (已閱, 已閱讀), the longer must win.
_COMMAND: Final = re.compile(
    r"(?P<word>"
    + "|".join(_word_pattern(w) for w in sorted(_VERB_OF_WORD, key=len, reverse=True))
    + ")",
    re.IGNORECASE,
)

# What may stand between the word and its argument: "同意，請辦公室核稿", "退回：格式不對",
# "同意。", "APPROVE - ok".
_SEPARATORS: Final = " \t,，.。:：;；!！?？、~～-–—…·"
# Invisible characters a line may open with (Apple Mail's byte-order mark, editors' caret marks).
_LEADING_JUNK: Final = " \t\u3000\u00a0\ufeff\u200b"


@dataclass(frozen=True)
class Command:
    """A recognised command.

    ``argument`` is the rest of the command's line after the word and its punctuation (for
    UNKNOWN, the whole line as written, so that the answer can quote it); ``text`` is the rest of
    the reply below that line, where an opinion may go on.
    """

    verb: Verb
    argument: str
    text: str

    @property
    def opinion(self) -> str:
        """The argument and the following text together, as the opinion or summary to record."""
        return "\n".join(part for part in (self.argument, self.text) if part)


def parse_command(first_line: str) -> Command:
    """The command written on ``first_line``, or a Command with verb UNKNOWN.

    If ``first_line`` holds several lines, its first non-empty line is the command and the
    rest becomes ``text``. Expects normalised text (see ``replies.normalise``) but accepts any.
    """
    lines = first_line.splitlines()
    for index, raw in enumerate(lines):
        line = raw.strip(_LEADING_JUNK).strip()
        if line:
            rest = "\n".join(lines[index + 1 :]).strip()
            break
    else:
        return Command(Verb.UNKNOWN, "", "")
    found = _COMMAND.match(line)
    if found is None:
        return Command(Verb.UNKNOWN, line, rest)
    verb = _VERB_OF_WORD.get(found["word"].casefold(), Verb.UNKNOWN)
    return Command(verb, line[found.end() :].lstrip(_SEPARATORS).rstrip(), rest)


# Reply and forward prefixes, stacked as clients stack them: "回复：回复：", "Re:Re:", "RE: 答复:".
# "Re[2]:" counts its replies.
_SUBJECT_PREFIXES: Final = re.compile(
    r"^(?:\s*(?:re|fw|fwd|aw|sv|回复|回覆|答复|答覆|转发|轉發|轉寄)(?:\s*(?:\[\d+\]|\(\d+\)))?\s*[:：])+",
    re.IGNORECASE,
)


def _subject_command_text(subject: str) -> str:
    """The subject with reply prefixes and a gateway's note removed."""
    text = _SUBJECT_PREFIXES.sub("", subject).strip()
    # Mail gateways append notes such as 【请注意，邮件由…代发】. Found by position rather than
    # by a regex, which would backtrack over a long subject.
    if text.endswith("】"):
        note = text.rfind("【")
        if note != -1 and ("代发" in text[note:] or "代發" in text[note:]):
            text = text[:note].rstrip()
    return text


def _subject(msg: EmailMessage) -> str:
    """The decoded Subject of ``msg``, or "" when it has none or it cannot be read."""
    try:
        value = msg.get("Subject")
        text = "" if value is None else str(value)
        if "=?" in text:
            # A message parsed with the compat32 policy still holds RFC 2047 encoded words.
            text = str(make_header(decode_header(text)))
    except Exception:
        # A header the email package cannot read must not stop the reply getting an answer.
        return ""
    return text


def command_from_message(msg: EmailMessage, body: str | None = None) -> Command:
    """The command in a reply: the first non-empty line above the quote, else in the subject.

    ``body`` is ``body_text(msg)`` when the caller has it already.
    """
    reply = reply_part(normalise(body_text(msg) if body is None else body))
    if reply:
        return parse_command(reply)
    return parse_command(subject_text(_subject(msg)))


def subject_text(subject: str) -> str:
    """A decoded subject as a command line: normalised, reply prefixes and gateway notes gone."""
    return _subject_command_text(normalise(subject))


# "李軍 UNTIL 2026-12-01", "李軍 至 2026年12月1日", "李軍 到 下周五".
# The name ends, and the date begins, with a non-space, so a long run of spaces is scanned once.
_DELEGATE_SPACED: Final = re.compile(
    r"^(?P<name>.*?\S)\s+(?:until|till|直至|直到|至|到)\s+(?P<date>\S.*)$",
    re.IGNORECASE | re.DOTALL,
)
# "李軍至2026-12-01": unspaced, so the date must open with a digit, or 李至遠 would be split.
_DELEGATE_JOINED: Final = re.compile(
    r"^(?P<name>.+?)(?:until|直至|直到|至|到)(?P<date>\d.*)$", re.IGNORECASE | re.DOTALL
)
_NAME_TRIM: Final = " \t,，、:：;；"
_DATE_TRIM: Final = " \t,，、;；。."


def parse_delegate(argument: str) -> tuple[str, str] | None:
    """Split a DELEGATE argument into the delegate's name and the end date as written.

    Accepts "name UNTIL date", "name 至 date" and "name 到 date"; the date is not parsed here.
    Returns None when either part is missing.
    """
    text = argument.strip()
    found = _DELEGATE_SPACED.match(text) or _DELEGATE_JOINED.match(text)
    if found is None:
        return None
    name = found["name"].strip(_NAME_TRIM)
    date = found["date"].strip(_DATE_TRIM)
    if not name or not date:
        return None
    return name, date


# "趙敏 自 2026-12-10 至 2026-12-20", "zhaomin FROM 2026-12-10 UNTIL 2026-12-20",
# "趙敏 从 12月10日 到 12月20日": a delegation planned ahead (第九條). The words stand between
# spaces, so a name with 自 or 至 in it (王自強, 李至遠) stays whole.
_DELEGATE_PERIOD_SPACED: Final = re.compile(
    r"^(?P<name>.*?\S)\s+(?:from|自|从|從)\s+(?P<start>\S.*?)\s+"
    r"(?:until|till|to|直至|直到|至|到)\s+(?P<end>\S.*)$",
    re.IGNORECASE | re.DOTALL,
)
# "趙敏自2026-12-10至2026-12-20": unspaced, so each date must open with a digit.
_DELEGATE_PERIOD_JOINED: Final = re.compile(
    r"^(?P<name>.+?)\s*(?:\bfrom\b|自|从|從)\s*(?P<start>\d.*?)\s*"
    r"(?:\buntil\b|\btill\b|\bto\b|直至|直到|至|到)\s*(?P<end>\d.*)$",
    re.IGNORECASE | re.DOTALL,
)


def parse_delegate_period(argument: str) -> tuple[str, str, str] | None:
    """Split ``name FROM date UNTIL date`` (``name 自 date 至 date``) into the delegate's name and
    the first and last days as written; None when it is not of that form."""
    text = argument.strip()
    found = _DELEGATE_PERIOD_SPACED.match(text) or _DELEGATE_PERIOD_JOINED.match(text)
    if found is None:
        return None
    name = found["name"].strip(_NAME_TRIM)
    start, end = found["start"].strip(_DATE_TRIM), found["end"].strip(_DATE_TRIM)
    if not name or not start or not end:
        return None
    return name, start, end
