"""Tests for yizhan.routing.commands: the command a person wrote, from a line or a whole mail.

The word table is restated here from DESIGN.md ("Commands") rather than read from the module,
so that a mistake in the module's table shows up as a failure.
"""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage

import pytest
from hypothesis import given
from hypothesis import strategies as st

from yizhan.routing.commands import (
    VERB_WORDS,
    Command,
    Verb,
    command_from_message,
    parse_command,
    parse_delegate,
    parse_delegate_period,
)
from yizhan.routing.replies import normalise

DESIGN_WORDS = {
    Verb.APPROVE: ["APPROVE", "同意", "批准"],
    Verb.REJECT: ["REJECT", "不同意", "退回"],
    Verb.COMMENT: ["COMMENT", "意見", "意见"],
    Verb.RECEIVED: ["RECEIVED", "簽收", "签收"],
    Verb.DONE: ["DONE", "辦結", "办结"],
    Verb.PROGRESS: ["PROGRESS", "進展", "进展"],
    Verb.FORWARD: ["FORWARD", "轉交", "转交"],
    Verb.READ: ["READ", "已閱", "已阅"],
    Verb.SEAL: ["SEAL", "用印"],
    Verb.OBJECT: ["OBJECT", "異議", "异议"],
    Verb.DELEGATE: ["DELEGATE", "授權", "授权"],
    Verb.REVOKE: ["REVOKE", "收回授權", "收回授权"],
    Verb.STATUS: ["STATUS", "查詢", "查询"],
    Verb.TODO: ["TODO", "待辦", "待办"],
    Verb.SEARCH: ["SEARCH", "搜索"],
    Verb.SET: ["SET", "設置", "设置"],
    Verb.TOOLS: ["TOOLS", "工具"],
    Verb.GET: ["GET", "下載", "下载"],
    Verb.HELP: ["HELP", "幫助", "帮助"],
    # The office's commands (DESIGN.md, "More commands"); 转办 is the simplified 轉辦.
    Verb.REASSIGN: ["REASSIGN", "轉辦", "转办"],
    Verb.CANCEL: ["CANCEL", "撤銷", "撤销"],
    Verb.EXTEND: ["EXTEND", "延期"],
}
ALL_WORDS = [(verb, word) for verb, words in DESIGN_WORDS.items() for word in words]


def parse(raw: bytes) -> EmailMessage:
    """The message as the daemon parses it from the bytes it stored."""
    return email.message_from_bytes(raw, policy=email.policy.default)


# --- The word table -------------------------------------------------------------------------------


def test_table_is_the_design_table() -> None:
    # The module's table holds exactly DESIGN.md's words, and every verb but UNKNOWN has some.
    assert {verb: list(words) for verb, words in VERB_WORDS.items()} == DESIGN_WORDS
    assert set(VERB_WORDS) == set(Verb) - {Verb.UNKNOWN}


@pytest.mark.parametrize(("verb", "word"), ALL_WORDS)
def test_each_word_alone(verb: Verb, word: str) -> None:
    # Every command word, on its own line, is its command with no argument.
    assert parse_command(word) == Command(verb, "", "")


@pytest.mark.parametrize(("verb", "word"), [(v, w) for v, w in ALL_WORDS if w.isascii()])
def test_english_words_ignore_case(verb: Verb, word: str) -> None:
    # Phones capitalise the first letter; people type in lower case.
    assert parse_command(word.lower()).verb is verb
    assert parse_command(word.capitalize()).verb is verb


@pytest.mark.parametrize(
    ("line", "verb"),
    [
        ("不同意", Verb.REJECT),  # not 同意
        ("不同意，理由如下", Verb.REJECT),
        ("收回授權", Verb.REVOKE),  # not 授權
        ("收回授权 李军", Verb.REVOKE),
    ],
)
def test_longest_word_wins(line: str, verb: Verb) -> None:
    # A word that contains another word is read as itself.
    assert parse_command(line).verb is verb


@pytest.mark.parametrize("line", ["READY", "SETTINGS please", "GETTING", "Approved", "TODOS"])
def test_english_word_must_end(line: str) -> None:
    # READY is not READ: an English word counts only when the word ends there.
    assert parse_command(line).verb is Verb.UNKNOWN


# --- Arguments and opinions -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("同意，請辦公室核稿", Command(Verb.APPROVE, "請辦公室核稿", "")),
        ("同意,請辦公室核稿", Command(Verb.APPROVE, "請辦公室核稿", "")),  # after normalise()
        ("退回：格式不對", Command(Verb.REJECT, "格式不對", "")),
        ("退回:格式不對", Command(Verb.REJECT, "格式不對", "")),
        ("同意。", Command(Verb.APPROVE, "", "")),
        ("同意!", Command(Verb.APPROVE, "", "")),
        ("同意！！", Command(Verb.APPROVE, "", "")),
        ("同意辦理", Command(Verb.APPROVE, "辦理", "")),  # Chinese needs no space
        ("APPROVE - ok", Command(Verb.APPROVE, "ok", "")),
        ("DELEGATE 李軍 UNTIL 2026-12-01", Command(Verb.DELEGATE, "李軍 UNTIL 2026-12-01", "")),
        ("FORWARD 张敏", Command(Verb.FORWARD, "张敏", "")),
        ("STATUS 遼檢辦〔2024〕3號", Command(Verb.STATUS, "遼檢辦〔2024〕3號", "")),
        ("SEARCH 督办 2024", Command(Verb.SEARCH, "督办 2024", "")),
        ("SET digest 08:30", Command(Verb.SET, "digest 08:30", "")),
        ("GET vpn-client", Command(Verb.GET, "vpn-client", "")),
        ("  \ufeff已閱  ", Command(Verb.READ, "", "")),  # Apple's byte-order mark, spaces
        ("辦結。已答復來函單位。", Command(Verb.DONE, "已答復來函單位。", "")),
    ],
)
def test_word_then_argument(line: str, expected: Command) -> None:
    # The punctuation or space after the word goes; the rest of the line is the argument.
    assert parse_command(line) == expected


def test_opinion_goes_on_over_following_lines() -> None:
    # A leader writes the word on the first line and the opinion below it.
    command = parse_command("\n\n退回\n第三条依据不足，\n请补充后再报。\n")
    assert command == Command(Verb.REJECT, "", "第三条依据不足，\n请补充后再报。")
    assert command.opinion == "第三条依据不足，\n请补充后再报。"


def test_opinion_joins_argument_and_text() -> None:
    # The opinion to record is the argument and the following lines together.
    assert parse_command("同意，請核稿\n另：抄送辦公室").opinion == "請核稿\n另：抄送辦公室"


@pytest.mark.parametrize("line", ["收到", "好的，谢谢", "请同意", "Re: 同意", "Thanks!"])
def test_unknown_keeps_the_line(line: str) -> None:
    # What is not a command is UNKNOWN, with the line kept so that the answer can quote it.
    assert parse_command(line) == Command(Verb.UNKNOWN, line, "")


def test_empty_is_unknown() -> None:
    # Nothing written at all.
    assert parse_command(" \n\n ") == Command(Verb.UNKNOWN, "", "")


@given(st.text())
def test_parse_command_never_raises(text: str) -> None:
    # Arbitrary text is always some command, if only UNKNOWN.
    assert isinstance(parse_command(text).verb, Verb)


@given(st.text(alphabet=" \t\n\u3000\ufeff"), st.text())
def test_bu_tongyi_is_never_approve(before: str, after: str) -> None:
    # Whatever follows 不同意, and whatever blank precedes it, it never approves.
    assert parse_command(before + "不同意" + after).verb is not Verb.APPROVE
    assert parse_command(normalise(before + "不同意" + after)).verb is not Verb.APPROVE


# --- DELEGATE arguments ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argument", "expected"),
    [
        ("李軍 UNTIL 2026-12-01", ("李軍", "2026-12-01")),
        ("Li Jun until 1 December 2026", ("Li Jun", "1 December 2026")),
        ("李軍 至 2026年12月1日", ("李軍", "2026年12月1日")),
        ("李军 到 下周五", ("李军", "下周五")),
        ("李軍至2026-12-01", ("李軍", "2026-12-01")),
        ("李至遠 至 2026-12-01", ("李至遠", "2026-12-01")),  # 至 in the name
        ("李至遠至2026-12-01", ("李至遠", "2026-12-01")),
        ("李軍,至2026年12月1日。", ("李軍", "2026年12月1日")),
        ("李军 直到 12月1日", ("李军", "12月1日")),
    ],
)
def test_parse_delegate(argument: str, expected: tuple[str, str]) -> None:
    # "name UNTIL date", "name 至 date", "name 到 date"; the date is kept as written.
    assert parse_delegate(argument) == expected


@pytest.mark.parametrize("argument", ["", "李軍", "李軍 UNTIL", "UNTIL 2026-12-01", "李軍 至 。"])
def test_parse_delegate_needs_both_parts(argument: str) -> None:
    # A delegation without a delegate or without an end date is refused by the caller.
    assert parse_delegate(argument) is None


# --- Whole mails ----------------------------------------------------------------------------------

# QQ Mail web (zh), text/plain, gb18030 base64; the opinion goes on below the first line:
#   同意，请办公室核稿。 / 请于本周五前印发， / 抄送各处室。 / (3 blank) /
#   ------------------&nbsp;原始邮件&nbsp;------------------ / 发件人: "王芳"<…>; / …
QQ_APPROVE = b"""\
From: "=?gb18030?B?wO6+/A==?=" <12345678@qq.com>
To: "wangfang" <r+AbC123@oa.example>
Subject: =?gb18030?B?u9i4tKO6udjT2tOht6KhtjIwMjTE6rmk1/fSqrXjobe1xMfryr4=?=
Mime-Version: 1.0
Content-Type: text/plain;
\tcharset="gb18030"
Content-Transfer-Encoding: base64
Date: Fri, 8 Mar 2024 09:40:12 +0800
Message-ID: <tencent_9F8E7D6C5B4A@qq.com>
X-Mailer: QQMail 2.x

zazS4qOsx+uw7LmrytK6y7jloaMNCsfr09qxvtbczuXHsNOht6KjrA0Ks63Lzbj3tKbK0qGjDQoN
Cg0KDQotLS0tLS0tLS0tLS0tLS0tLS0mbmJzcDvUrcq808q8/iZuYnNwOy0tLS0tLS0tLS0tLS0t
LS0tLQ0Kt6K8/sjLOiAizfW3vCI8d2FuZ2ZhbmdAYnVyZWF1LmV4YW1wbGU+Ow0Kt6LLzcqxvOQ6
IDIwMjTE6jPUwjjI1SjQx8bazuUpIMnPzuc5OjEyDQrK1bz+yMs6ICLA7r78IjwxMjM0NTY3OEBx
cS5jb20+Ow0K1vfM4jogudjT2tOht6KhtjIwMjTE6rmk1/fSqrXjobe1xMfryr4NCg==
"""


def test_qq_mail_approval_with_opinion_over_three_lines() -> None:
    # A leader approves from QQ Mail; the opinion continues below the command line.
    assert command_from_message(parse(QQ_APPROVE)) == Command(
        Verb.APPROVE, "请办公室核稿。", "请于本周五前印发,\n抄送各处室。"
    )


# Outlook (zh-TW), text/plain, Big5 base64:
#   不同意，請補充法律依據後再報。 / 另：附件二數據有誤。 / (blank) /
#   -----原始郵件----- / 寄件者: … / …
BIG5_REJECT = b"""\
From: =?big5?B?p/WteA==?= <lijun@bureau.example>
To: <r+AbC123@oa.example>
Subject: =?big5?B?pl7C0Dogw/ap873VvuO/7KS9pc6p0Kq6vdCl3A==?=
Date: Thu, 15 Jun 2023 15:51:09 +0800
MIME-Version: 1.0
Content-Type: text/plain; charset="big5"
Content-Transfer-Encoding: base64
X-Mailer: Microsoft Outlook 16.0

pKOmULdOoUG90LjJpVKqa6vfqMy+2qvhpkGz+KFDDQqldKFHqv6l86RHvMa+2qazu36hQw0KDQot
LS0tLa3sqWy2bKXzLS0tLS0NCrFIpfOqzDogpP2q2iBbbWFpbHRvOndhbmdmYW5nQGJ1cmVhdS5l
eGFtcGxlXSANCrFIpfOk6bTBOiAyMDIzpn42pOsxNaTpIKRVpMggMDM6MzgNCqaspfOqzDogp/Wt
eA0KpUSmrjogw/ap873VvuO/7KS9pc6p0Kq6vdCl3A0K
"""


def test_big5_traditional_rejection() -> None:
    # A Traditional Chinese 不同意 in Big5 is a rejection with its reason, never an approval.
    assert command_from_message(parse(BIG5_REJECT)) == Command(
        Verb.REJECT, "請補充法律依據後再報。", "另:附件二數據有誤。"
    )


# QQ Mail, empty text/plain; the command is in the stacked-prefix subject 回复：回复：同意.
QQ_SUBJECT_ONLY = b"""\
From: "=?gb18030?B?wO6+/A==?=" <12345678@qq.com>
To: r+AbC123@oa.example
Subject: =?gb18030?B?u9i4tKO6u9i4tKO6zazS4g==?=
Mime-Version: 1.0
Content-Type: text/plain; charset="gb18030"
Content-Transfer-Encoding: base64


"""


def test_empty_body_uses_the_subject() -> None:
    # A phone user types 同意 into the subject and sends no body.
    assert command_from_message(parse(QQ_SUBJECT_ONLY)) == Command(Verb.APPROVE, "", "")


# 163 webmail (Coremail), GBK base64; the person wrote only in the subject (Re:Re: + 已阅), the
# body holds just the attribution and the quote:
#   在 2024-03-08 09:12:30，"王芳" <…> 写道： / >各处室： / >现将《2024年工作要点》印发给你们。
NETEASE_QUOTE_ONLY = b"""\
From: "=?GBK?B?wO6+/A==?=" <lijun_bureau@163.com>
To: r+AbC123@oa.example
Subject: Re:Re:=?gbk?B?0tHUxA==?=
Date: Fri, 8 Mar 2024 10:02:18 +0800 (CST)
X-Mailer: Coremail Webmail Server Version XT5.0.14 build 20230109(dcb5de15)
Content-Type: text/plain; charset=GBK
Content-Transfer-Encoding: base64
MIME-Version: 1.0

1NogMjAyNC0wMy0wOCAwOToxMjozMKOsIs31t7wiIDx3YW5nZmFuZ0BidXJlYXUuZXhhbXBsZT4g
0LS1wKO6DQo+uPe0psrSo7oNCj7P1r2robYyMDI0xOq5pNf30qq146G306G3orj4xOPDx6GjDQo=
"""


def test_quote_only_body_uses_the_subject() -> None:
    # Nothing above the quote, so the subject (Re:Re:已阅) is the command.
    assert command_from_message(parse(NETEASE_QUOTE_ONLY)) == Command(Verb.READ, "", "")


# A mail gateway appended 【请注意，邮件由 … 代发】 to the subject (folded into two encoded words);
# the body is empty.
#   Subject: 答复: 退回：格式不對【请注意，邮件由 mail-gw.bureau.example 代发】
GATEWAY_SUBJECT = b"""\
From: lijun@bureau.example
To: r+AbC123@oa.example
Subject: =?utf-8?B?562U5aSNOiDpgIDlm57vvJrmoLzlvI/kuI3lsI3jgJA=?=
 =?utf-8?B?6K+35rOo5oSP77yM6YKu5Lu255SxIG1haWwtZ3cuYnVyZWF1LmV4YW1wbGUg5Luj5Y+R44CR?=
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

"""


def test_gateway_suffix_is_not_part_of_the_reason() -> None:
    # The gateway's note is not the reason for sending back.
    assert command_from_message(parse(GATEWAY_SUBJECT)) == Command(Verb.REJECT, "格式不對", "")


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("回复：回复：同意", Command(Verb.APPROVE, "", "")),
        ("Re:Re: 已阅", Command(Verb.READ, "", "")),
        ("Re: Re: DONE", Command(Verb.DONE, "", "")),
        ("RE: 答复: 意见：同意", Command(Verb.COMMENT, "同意", "")),
        ("回覆: 已閱", Command(Verb.READ, "", "")),
        ("Fw: FW: HELP", Command(Verb.HELP, "", "")),
        ("转发: 查询 遼檢辦〔2024〕3號", Command(Verb.STATUS, "遼檢辦〔2024〕3號", "")),
        ("Re[2]: SEAL", Command(Verb.SEAL, "", "")),
        (
            "回复：关于2022年度工作计划的请示",
            Command(Verb.UNKNOWN, "关于2022年度工作计划的请示", ""),
        ),
    ],
)
def test_subject_prefixes_are_stripped(subject: str, expected: Command) -> None:
    # Clients stack their reply and forward prefixes; the command is what is left.
    raw = f"Subject: {subject}\nContent-Type: text/plain; charset=utf-8\n\n".encode()
    assert command_from_message(parse(raw)) == expected


def test_re_in_the_body_is_not_stripped() -> None:
    # "Re:" is a subject prefix only; in the body it is text, and the line is not a command.
    raw = (
        b"Subject: Re: x\nContent-Type: text/plain; charset=utf-8\n\nRe: \xe5\x90\x8c\xe6\x84\x8f\n"
    )
    assert command_from_message(parse(raw)) == Command(Verb.UNKNOWN, "Re: 同意", "")


# iPhone Mail (zh-HK) to cmd@, a new mail, UTF-8 quoted-printable; it opens with U+FEFF:
#   \ufeffDELEGATE 李軍 UNTIL 2026-12-01 / (blank) / 從我的 iPhone 發送
IPHONE_DELEGATE = b"""\
Content-Type: text/plain;
\tcharset=utf-8
Content-Transfer-Encoding: quoted-printable
From: =?utf-8?B?546L6Iqz?= <wangfang@bureau.example>
Mime-Version: 1.0 (1.0)
Date: Mon, 23 Nov 2026 07:58:01 +0800
Subject: =?utf-8?B?5Ye65beu?=
Message-Id: <8E7D6C5B-4A39-2817-0605-F4E3D2C1B0A9@bureau.example>
To: cmd@oa.example
X-Mailer: iPhone Mail (20G75)

=EF=BB=BFDELEGATE =E6=9D=8E=E8=BB=8D UNTIL 2026-12-01

=E5=BE=9E=E6=88=91=E7=9A=84 iPhone =E7=99=BC=E9=80=81
"""


def test_iphone_delegation_to_cmd() -> None:
    # A clerk leaving on business delegates from her phone before she goes.
    command = command_from_message(parse(IPHONE_DELEGATE))
    assert command == Command(Verb.DELEGATE, "李軍 UNTIL 2026-12-01", "")
    assert parse_delegate(command.argument) == ("李軍", "2026-12-01")


# A Huawei phone's mail app to cmd@, HTML only, UTF-8 base64:
#   <div>搜索 2024年 督办</div><div><br></div><div>发自我的华为手机</div>
HTML_ONLY_SEARCH = b"""\
From: lijun@bureau.example
To: cmd@oa.example
Subject: search
MIME-Version: 1.0
Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: base64

PGh0bWw+PGJvZHk+PGRpdiBkaXI9ImF1dG8iPuaQnOe0oiAyMDI05bm0IOedo+WKnjwvZGl2Pjxk
aXYgZGlyPSJhdXRvIj48YnI+PC9kaXY+PGRpdiBkaXI9ImF1dG8iPuWPkeiHquaIkeeahOWNjuS4
uuaJi+acujwvZGl2PjwvYm9keT48L2h0bWw+DQo=
"""


def test_html_only_phone_search() -> None:
    # An HTML-only phone mail: the command is above the phone's signature.
    assert command_from_message(parse(HTML_ONLY_SEARCH)) == Command(Verb.SEARCH, "2024年 督办", "")


# A Chinese input method left in full-width mode, gb18030 base64:  ＡＰＰＲＯＶＥ，ｏｋ
FULL_WIDTH = b"""\
From: lijun@bureau.example
To: r+AbC123@oa.example
Subject: Re: plan
MIME-Version: 1.0
Content-Type: text/plain; charset=gb18030
Content-Transfer-Encoding: base64

o8Gj0KPQo9Kjz6PWo8WjrKPvo+sNCg==
"""


def test_full_width_english_command() -> None:
    # Full-width letters are the same command once normalised.
    assert command_from_message(parse(FULL_WIDTH)) == Command(Verb.APPROVE, "ok", "")


@given(st.binary(max_size=2000))
def test_command_from_message_never_raises(raw: bytes) -> None:
    # Every mail gets an answer, so reading its command never fails.
    assert isinstance(command_from_message(parse(raw)).verb, Verb)


@pytest.mark.parametrize(
    ("argument", "expected"),
    [
        ("趙敏 自 2026-12-10 至 2026-12-20", ("趙敏", "2026-12-10", "2026-12-20")),
        # A name with 自 or 至 in it stays whole (it was split into 王 and a date 強 …).
        ("王自強 自 2026-12-10 至 2026-12-20", ("王自強", "2026-12-10", "2026-12-20")),
        ("王自强自2026-12-10至2026-12-20", ("王自强", "2026-12-10", "2026-12-20")),
        ("李至遠 自 下周一 至 下周五", ("李至遠", "下周一", "下周五")),
        (
            "wangziqiang FROM 2026-12-10 UNTIL 2026-12-20",
            ("wangziqiang", "2026-12-10", "2026-12-20"),
        ),
        ("趙敏 从 12月10日 到 12月20日", ("趙敏", "12月10日", "12月20日")),
        # Not a planned delegation: DELEGATE name UNTIL date is parse_delegate's.
        ("王自強 至 2026-12-01", None),
        ("趙敏", None),
    ],
)
def test_a_delegation_planned_ahead_names_its_delegate_and_days(
    argument: str, expected: tuple[str, str, str] | None
) -> None:
    assert parse_delegate_period(argument) == expected
