"""Tests for yizhan.routing.replies: each client's reply, as literal bytes, down to its own text.

The mails are written as the clients in shared/reference/mail-clients.md write them: their
charsets, transfer encodings, separators, attribution lines and HTML quote containers. The
decoded text of each body is given in a comment above it.
"""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage

import pytest
from hypothesis import given
from hypothesis import strategies as st

from yizhan.routing.replies import body_text, normalise, reply_part


def parse(raw: bytes) -> EmailMessage:
    """The message as the daemon parses it from the bytes it stored."""
    return email.message_from_bytes(raw, policy=email.policy.default)


def reply_of(msg: EmailMessage) -> str:
    """The reply's own text, as command_from_message reads it."""
    return reply_part(normalise(body_text(msg)))


def html_part(msg: EmailMessage) -> EmailMessage:
    """The text/html alternative of a multipart message."""
    part = msg.get_body(preferencelist=("html",))
    assert isinstance(part, EmailMessage)
    return part


# --- Client mails -------------------------------------------------------------------------------

# QQ Mail web (zh). text/plain, gb18030 base64:
#   同意，请办公室核稿。 / (blank) / 谢谢！ / (blank) (blank)
#   ------------------&nbsp;原始邮件&nbsp;------------------
#   发件人: "王芳"<wangfang@bureau.example>; / 发送时间: 2021年11月19日(星期五) 下午5:27 / ...
#   &nbsp; &nbsp; 附件是2022年度工作计划（送审稿），请审批。
# text/html, gb18030 base64: the same, the original inside <includetail>.
QQ_MAIL = b"""\
From: "=?gb18030?B?wO6+/A==?=" <12345678@qq.com>
To: "wangfang" <r+AbC123@oa.example>
Subject: =?gb18030?B?u9i4tKO6udjT2jIwMjLE6rbIuaTX97zGu661xMfryr4=?=
Mime-Version: 1.0
Content-Type: multipart/alternative;
\tboundary="----=_NextPart_6197A1B2_0F3C2D48_5E2A7C11"
Content-Transfer-Encoding: 8Bit
Date: Fri, 19 Nov 2021 17:31:30 +0800
X-Priority: 3
Message-ID: <tencent_1A2B3C4D5E6F@qq.com>
X-QQ-MIME: TCMime 1.0 by Tencent
X-Mailer: QQMail 2.x

This is a multi-part message in MIME format.

------=_NextPart_6197A1B2_0F3C2D48_5E2A7C11
Content-Type: text/plain;
\tcharset="gb18030"
Content-Transfer-Encoding: base64

zazS4qOsx+uw7LmrytK6y7jloaMNCg0K0LvQu6OhDQoNCg0KLS0tLS0tLS0tLS0tLS0tLS0tJm5i
c3A71K3KvNPKvP4mbmJzcDstLS0tLS0tLS0tLS0tLS0tLS0NCreivP7IyzogIs31t7wiPHdhbmdm
YW5nQGJ1cmVhdS5leGFtcGxlPjsNCreiy83KsbzkOiAyMDIxxOoxMdTCMTnI1SjQx8bazuUpIM/C
zuc1OjI3DQrK1bz+yMs6ICLA7r78IjwxMjM0NTY3OEBxcS5jb20+Ow0KDQrW98ziOiC52NPaMjAy
MsTqtsi5pNf3vMa7rrXEx+vKvg0KDQrA7r7Ws6Sjug0KJm5ic3A7ICZuYnNwOyC4vbz+yscyMDIy
xOq2yLmk1/e8xruuo6jLzcnzuOWjqaOsx+vJ88X6oaMNCg==

------=_NextPart_6197A1B2_0F3C2D48_5E2A7C11
Content-Type: text/html;
\tcharset="gb18030"
Content-Transfer-Encoding: base64

PG1ldGEgaHR0cC1lcXVpdj0iQ29udGVudC1UeXBlIiBjb250ZW50PSJ0ZXh0L2h0bWw7IGNoYXJz
ZXQ9R0IxODAzMCI+PGRpdj7NrNLio6zH67DsuavK0rrLuOWhozwvZGl2PjxkaXY+PGJyPjwvZGl2
PjxkaXY+0LvQu6OhPC9kaXY+PGRpdj48YnI+PC9kaXY+PGRpdj48YnI+PC9kaXY+PGRpdj48aW5j
bHVkZXRhaWw+PGRpdiBzdHlsZT0iZm9udDpWZXJkYW5hIG5vcm1hbCAxNHB4O2NvbG9yOiMwMDA7
Ij48ZGl2IHN0eWxlPSJGT05ULVNJWkU6IDEycHg7Rk9OVC1GQU1JTFk6IEFyaWFsIE5hcnJvdztw
YWRkaW5nOjJweCAwIDJweCAwOyI+LS0tLS0tLS0tLS0tLS0tLS0tJm5ic3A71K3KvNPKvP4mbmJz
cDstLS0tLS0tLS0tLS0tLS0tLS08L2Rpdj48ZGl2IHN0eWxlPSJGT05ULVNJWkU6IDEycHg7YmFj
a2dyb3VuZDojZWZlZmVmO3BhZGRpbmc6OHB4OyI+PGRpdj48Yj63orz+yMs6PC9iPiZuYnNwOyLN
9be8IiZsdDt3YW5nZmFuZ0BidXJlYXUuZXhhbXBsZSZndDs7PC9kaXY+PGRpdj48Yj63osvNyrG8
5Do8L2I+Jm5ic3A7MjAyMcTqMTHUwjE5yNUo0MfG2s7lKSDPws7nNToyNzwvZGl2PjxkaXY+PGI+
1vfM4jo8L2I+Jm5ic3A7udjT2jIwMjLE6rbIuaTX97zGu661xMfryr48L2Rpdj48L2Rpdj48ZGl2
Pjxicj48L2Rpdj7A7r7Ws6Sjujxicj4mbmJzcDsgJm5ic3A7ILi9vP7KxzIwMjLE6rbIuaTX97zG
u66jqMvNyfO45aOpo6zH68nzxfqhozwvZGl2PjwvaW5jbHVkZXRhaWw+PC9kaXY+DQo=

------=_NextPart_6197A1B2_0F3C2D48_5E2A7C11--
"""


def test_qq_mail_plain_part_with_literal_nbsp() -> None:
    # QQ Mail writes &nbsp; into its text/plain separator; the reply stops above it anyway.
    assert reply_of(parse(QQ_MAIL)) == "同意,请办公室核稿。\n\n谢谢!"


def test_qq_mail_html_part_cut_at_includetail() -> None:
    # Were the plain part missing, the HTML part alone gives the same reply.
    html_text = body_text(html_part(parse(QQ_MAIL)))
    assert "原始邮件" not in html_text
    assert reply_part(normalise(html_text)) == "同意,请办公室核稿。\n\n谢谢!"


# Tencent Exmail (en), UTF-8 base64:
#   Approve. Please proceed. / (blank) / ------------------ Original ------------------
#   From:  "Wang Fang"<wangfang@bureau.example>; / Date: ... / To: ... / Subject: ...
EXMAIL = b"""\
From: "Li Jun" <lijun@exmail.example>
To: r+AbC123@oa.example
Subject: Re: Work plan 2022
Mime-Version: 1.0
Content-Type: text/plain; charset="utf-8"
Content-Transfer-Encoding: base64

QXBwcm92ZS4gUGxlYXNlIHByb2NlZWQuDQoNCi0tLS0tLS0tLS0tLS0tLS0tLSBPcmlnaW5hbCAt
LS0tLS0tLS0tLS0tLS0tLS0NCkZyb206ICAiV2FuZyBGYW5nIjx3YW5nZmFuZ0BidXJlYXUuZXhh
bXBsZT47DQpEYXRlOiAgRnJpLCBOb3YgMTksIDIwMjEgMDU6MjcgUE0NClRvOiAgIkxpIEp1biI8
bGlqdW5AZXhtYWlsLmV4YW1wbGU+Ow0KU3ViamVjdDogIFdvcmsgcGxhbiAyMDIyDQo=
"""


def test_exmail_english_original_separator() -> None:
    # Tencent Exmail in English separates the quote with "---- Original ----".
    assert reply_of(parse(EXMAIL)) == "Approve. Please proceed."


# Foxmail 7.2, multipart/alternative, both UTF-8 base64.
# text/plain:  退回：格式不对，请按公文格式重排。 / (blank) / -------------- / lijun@bureau.example
#              / (blank) / >李局长： / >    附件是请示稿，请审批。
# text/html:   the reply <div>, an <hr color="#b5c4df">, the signature, then
#              <blockquote> with the #B5C4DF header box and <div class="FoxDiv2021...">; the
#              <style> in <head> mentions "blockquote", which must not count as a quote.
FOXMAIL = b"""\
Date: Fri, 19 Nov 2021 17:29:31 +0800
From: "lijun@bureau.example" <lijun@bureau.example>
To: r+AbC123@oa.example
Subject: =?UTF-8?B?5Zue5aSNOiDlhbPkuo7or7fnpLo=?=
X-Priority: 3
X-GUID: 5C2E1F0A-7B3D-4E21-9A6C-1D2E3F4A5B6C
X-Has-Attach: no
X-Mailer: Foxmail 7.2.23.121[cn]
Mime-Version: 1.0
Message-ID: <202111191729312751484@bureau.example>
Content-Type: multipart/alternative;
\tboundary="----=_001_NextPart421746835316_=----"

This is a multi-part message in MIME format.

------=_001_NextPart421746835316_=----
Content-Type: text/plain;
\tcharset="UTF-8"
Content-Transfer-Encoding: base64

6YCA5Zue77ya5qC85byP5LiN5a+577yM6K+35oyJ5YWs5paH5qC85byP6YeN5o6S44CCDQoNCi0t
LS0tLS0tLS0tLS0tDQpsaWp1bkBidXJlYXUuZXhhbXBsZQ0KDQo+5p2O5bGA6ZW/77yaDQo+ICAg
IOmZhOS7tuaYr+ivt+ekuueov++8jOivt+WuoeaJueOAgg0K

------=_001_NextPart421746835316_=----
Content-Type: text/html;
\tcharset="UTF-8"
Content-Transfer-Encoding: base64

PGh0bWw+PGhlYWQ+PG1ldGEgaHR0cC1lcXVpdj0iY29udGVudC10eXBlIiBjb250ZW50PSJ0ZXh0
L2h0bWw7IGNoYXJzZXQ9VVRGLTgiPjxzdHlsZT5ib2R5IHsgbGluZS1oZWlnaHQ6IDEuNTsgfWJs
b2NrcXVvdGUgeyBtYXJnaW4tdG9wOiAwcHg7IG1hcmdpbi1ib3R0b206IDBweDsgbWFyZ2luLWxl
ZnQ6IDAuNWVtOyB9Ym9keSB7IGZvbnQtc2l6ZTogMTAuNXB0OyBmb250LWZhbWlseTogJ01pY3Jv
c29mdCBZYUhlaSBVSSc7IGNvbG9yOiByZ2IoMCwgMCwgMCk7IGxpbmUtaGVpZ2h0OiAxLjU7IH08
L3N0eWxlPjwvaGVhZD48Ym9keT4NCjxkaXY+PHNwYW4+PC9zcGFuPumAgOWbnu+8muagvOW8j+S4
jeWvue+8jOivt+aMieWFrOaWh+agvOW8j+mHjeaOkuOAgjwvZGl2Pg0KPGhyIHN0eWxlPSJ3aWR0
aDogMjEwcHg7IGhlaWdodDogMXB4OyIgY29sb3I9IiNiNWM0ZGYiIHNpemU9IjEiIGFsaWduPSJs
ZWZ0Ij4NCjxkaXY+PHNwYW4+PGRpdiBzdHlsZT0iTUFSR0lOOiAxMHB4OyBGT05ULUZBTUlMWTog
dmVyZGFuYTsgRk9OVC1TSVpFOiAxMHB0Ij48ZGl2PmxpanVuQGJ1cmVhdS5leGFtcGxlPC9kaXY+
PC9kaXY+PC9zcGFuPjwvZGl2Pg0KPGJsb2NrcXVvdGUgc3R5bGU9Im1hcmdpbi1Ub3A6IDBweDsg
bWFyZ2luLUJvdHRvbTogMHB4OyBtYXJnaW4tTGVmdDogMC41ZW07IG1hcmdpbi1SaWdodDogaW5o
ZXJpdCI+PGRpdj4mbmJzcDs8L2Rpdj48ZGl2IHN0eWxlPSJib3JkZXI6bm9uZTtib3JkZXItdG9w
OnNvbGlkICNCNUM0REYgMS4wcHQ7cGFkZGluZzozLjBwdCAwY20gMGNtIDBjbSI+PGRpdiBzdHls
ZT0iUEFERElORy1SSUdIVDogOHB4OyBQQURESU5HLUxFRlQ6IDhweDsgRk9OVC1TSVpFOiAxMnB4
O0ZPTlQtRkFNSUxZOnRhaG9tYTtDT0xPUjojMDAwMDAwOyBCQUNLR1JPVU5EOiAjZWZlZmVmOyBQ
QURESU5HLUJPVFRPTTogOHB4OyBQQURESU5HLVRPUDogOHB4Ij48ZGl2PjxiPuWPkeS7tuS6uu+8
mjwvYj4mbmJzcDs8YSBocmVmPSJtYWlsdG86d2FuZ2ZhbmdAYnVyZWF1LmV4YW1wbGUiPueOi+iK
szwvYT48L2Rpdj48ZGl2PjxiPuWPkemAgeaXtumXtO+8mjwvYj4mbmJzcDsyMDIxLTExLTE5Jm5i
c3A7MTc6Mjc8L2Rpdj48ZGl2PjxiPuaUtuS7tuS6uu+8mjwvYj4mbmJzcDs8YSBocmVmPSJtYWls
dG86bGlqdW5AYnVyZWF1LmV4YW1wbGUiPuadjuWGmzwvYT48L2Rpdj48ZGl2PjxiPuS4u+mimO+8
mjwvYj4mbmJzcDvlhbPkuo7or7fnpLo8L2Rpdj48L2Rpdj48L2Rpdj48ZGl2Pjxicj48L2Rpdj48
ZGl2IGNsYXNzPSJGb3hEaXYyMDIxMTExOTE3MjkzMTI3NTE0OCI+PGRpdj7mnY7lsYDplb/vvJrp
mYTku7bmmK/or7fnpLrnqL/vvIzor7flrqHmibnjgII8L2Rpdj48L2Rpdj48L2Jsb2NrcXVvdGU+
DQo8L2JvZHk+PC9odG1sPg0K

------=_001_NextPart421746835316_=----
"""


def test_foxmail_plain_part_stops_at_its_14_hyphen_rule() -> None:
    # Foxmail's text/plain: the reply, 14 hyphens and the sender's address, then ">" lines.
    assert reply_of(parse(FOXMAIL)) == "退回:格式不对,请按公文格式重排。"


def test_foxmail_html_part_cut_at_b5c4df_before_conversion() -> None:
    # Foxmail's HTML: cut at the #b5c4df rule, so neither signature nor original remains, and
    # the word "blockquote" in its <style> sheet is not mistaken for the quote.
    html_text = body_text(html_part(parse(FOXMAIL)))
    assert html_text == "退回：格式不对，请按公文格式重排。"


# Outlook 2016 (zh-CN), text/plain, gb2312, 8bit:
#   意见：建议第三条补充经费来源。 / (blank) / -----邮件原件----- /
#   发件人: 王芳 <wangfang@bureau.example> / 发送时间: 2021年12月14日 12:49 / 收件人: ... /
#   抄送: ... / 主题: 关于2022年度工作计划的请示 / (blank) / 李局长： /
#   附件是2022年度工作计划，请审批。
OUTLOOK_ZH = (
    b"From: =?gb2312?B?wO6+/A==?= <lijun@bureau.example>\r\n"
    b"To: <r+AbC123@oa.example>\r\n"
    b"Subject: =?gb2312?B?tPC4tDogudjT2jIwMjLE6rbIuaTX97zGu661xMfryr4=?=\r\n"
    b"Date: Tue, 14 Dec 2021 13:02:11 +0800\r\n"
    b"Message-ID: <000001d7f0a1$2b3c4d50$81d4e7f0$@bureau.example>\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: text/plain;\r\n\tcharset="gb2312"\r\n'
    b"Content-Transfer-Encoding: 8bit\r\n"
    b"X-Mailer: Microsoft Outlook 16.0\r\n"
    b"Thread-Index: AdfwoSs8TVCB1Ofw\r\n"
    b"Content-Language: zh-cn\r\n"
    b"\r\n"
    b"\xd2\xe2\xbc\xfb\xa3\xba\xbd\xa8\xd2\xe9\xb5\xda\xc8\xfd\xcc\xf5\xb2\xb9\xb3\xe4\xbe\xad\xb7"
    b"\xd1\xc0\xb4\xd4\xb4\xa1\xa3\r\n\r\n-----\xd3\xca\xbc\xfe\xd4\xad\xbc\xfe-----\r\n\xb7\xa2"
    b"\xbc\xfe\xc8\xcb: \xcd\xf5\xb7\xbc <wangfang@bureau.example> \r\n\xb7\xa2\xcb\xcd\xca\xb1"
    b"\xbc\xe4: 2021\xc4\xea12\xd4\xc214\xc8\xd5 12:49\r\n\xca\xd5\xbc\xfe\xc8\xcb: \xc0\xee\xbe"
    b"\xfc <lijun@bureau.example>\r\n\xb3\xad\xcb\xcd: \xb0\xec\xb9\xab\xca\xd2 <office@bureau.ex"
    b"ample>\r\n\xd6\xf7\xcc\xe2: \xb9\xd8\xd3\xda2022\xc4\xea\xb6\xc8\xb9\xa4\xd7\xf7\xbc\xc6"
    b"\xbb\xae\xb5\xc4\xc7\xeb\xca\xbe\r\n\r\n\xc0\xee\xbe\xd6\xb3\xa4\xa3\xba\r\n    \xb8\xbd"
    b"\xbc\xfe\xca\xc72022\xc4\xea\xb6\xc8\xb9\xa4\xd7\xf7\xbc\xc6\xbb\xae\xa3\xac\xc7\xeb\xc9"
    b"\xf3\xc5\xfa\xa1\xa3\r\n"
)


def test_outlook_zh_gb2312_8bit_original_separator() -> None:
    # Outlook (zh) sends GB2312 as raw 8-bit and separates the quote with -----邮件原件-----.
    assert reply_of(parse(OUTLOOK_ZH)) == "意见:建议第三条补充经费来源。"


def test_outlook_html_reply_header_block_without_separator() -> None:
    # Outlook's HTML replies have no separator: the quote opens with a 发件人/发送时间 block.
    text = "同意\n\n发件人: 王芳 [mailto:wangfang@bureau.example]\n发送时间: 2021年12月14日 12:49\n"
    assert reply_part(text) == "同意"


def test_a_single_from_line_in_the_reply_is_not_a_header_block() -> None:
    # Someone writing "发件人:" in their own text, with no header block after it, keeps it.
    text = "意见:\n发件人: 请写全称\n其余同意"
    assert reply_part(text) == text


# Thunderbird (zh-CN), text/plain, UTF-8, format=flowed, 8bit. The long first line is soft-wrapped
# (a trailing space before the line break):
#   批准。请按此稿印发，注意核对文号（辽检办〔2020〕15号）和主送␠ / 单位。 / (blank) /
#   在 2020/8/5 5:56, 王芳 写道: / > 李局长： / >      附件是发文稿，请签发。
THUNDERBIRD_ZH_CN = (
    b"To: r+AbC123@oa.example\r\n"
    b"From: =?UTF-8?B?5p2O5Yab?= <lijun@bureau.example>\r\n"
    b"Subject: =?UTF-8?B?UmU6IOWFs+S6juWPkeaWh+eov+eahOivt+ekug==?=\r\n"
    b"Message-ID: <8c1e2f3a-4b5c-6d7e-8f90-a1b2c3d4e5f6@bureau.example>\r\n"
    b"Date: Wed, 5 Aug 2020 08:14:02 +0800\r\n"
    b"User-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:68.0) Gecko/20100101\r\n"
    b" Thunderbird/68.11.0\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8; format=flowed\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n"
    b"Content-Language: zh-CN\r\n"
    b"\r\n"
    b"\xe6\x89\xb9\xe5\x87\x86\xe3\x80\x82\xe8\xaf\xb7\xe6\x8c\x89\xe6\xad\xa4\xe7\xa8\xbf\xe5\x8d"
    b"\xb0\xe5\x8f\x91\xef\xbc\x8c\xe6\xb3\xa8\xe6\x84\x8f\xe6\xa0\xb8\xe5\xaf\xb9\xe6\x96\x87\xe5"
    b"\x8f\xb7\xef\xbc\x88\xe8\xbe\xbd\xe6\xa3\x80\xe5\x8a\x9e\xe3\x80\x942020\xe3\x80\x9515\xe5"
    b"\x8f\xb7\xef\xbc\x89\xe5\x92\x8c\xe4\xb8\xbb\xe9\x80\x81 \r\n\xe5\x8d\x95\xe4\xbd\x8d\xe3"
    b"\x80\x82\r\n\r\n\xe5\x9c\xa8 2020/8/5 5:56, \xe7\x8e\x8b\xe8\x8a\xb3 \xe5\x86\x99\xe9\x81"
    b"\x93:\r\n> \xe6\x9d\x8e\xe5\xb1\x80\xe9\x95\xbf\xef\xbc\x9a\r\n>      \xe9\x99\x84\xe4\xbb"
    b"\xb6\xe6\x98\xaf\xe5\x8f\x91\xe6\x96\x87\xe7\xa8\xbf\xef\xbc\x8c\xe8\xaf\xb7\xe7\xad\xbe\xe5"
    b"\x8f\x91\xe3\x80\x82\r\n"
)


def test_thunderbird_zh_cn_flowed_reply_rejoined_above_attribution() -> None:
    # Thunderbird soft-wraps long lines (format=flowed); the reply is read as one line, and
    # the quote starts at "在 2020/8/5 5:56, 王芳 写道:".
    assert reply_of(parse(THUNDERBIRD_ZH_CN)) == (
        "批准。请按此稿印发,注意核对文号(辽检办〔2020〕15号)和主送 单位。"
    )


# Thunderbird (zh-TW), text/plain, UTF-8, quoted-printable:
#   已閱 / (blank) / 王芳 於 2023/6/15 下午 03:38 寫道: / > 各處室： /
#   >     現將上半年工作總結印發給你們。
THUNDERBIRD_ZH_TW = b"""\
To: r+XyZ789@oa.example
From: =?UTF-8?B?5p2O6LuN?= <lijun@bureau.example>
Subject: Re: =?UTF-8?B?5LiK5Y2K5bm05bel5L2c57i957WQ?=
Date: Thu, 15 Jun 2023 16:02:44 +0800
User-Agent: Mozilla Thunderbird
MIME-Version: 1.0
Content-Type: text/plain; charset=UTF-8; format=flowed
Content-Transfer-Encoding: quoted-printable
Content-Language: zh-TW

=E5=B7=B2=E9=96=B1

=E7=8E=8B=E8=8A=B3 =E6=96=BC 2023/6/15 =E4=B8=8B=E5=8D=88 03:38 =E5=AF=AB=
=E9=81=93:
> =E5=90=84=E8=99=95=E5=AE=A4=EF=BC=9A
>     =E7=8F=BE=E5=B0=87=E4=B8=8A=E5=8D=8A=E5=B9=B4=E5=B7=A5=E4=BD=9C=E7=B8=
=BD=E7=B5=90=E5=8D=B0=E7=99=BC=E7=B5=A6=E4=BD=A0=E5=80=91=E3=80=82
"""


def test_thunderbird_zh_tw_attribution() -> None:
    # Thunderbird (zh-TW) writes "王芳 於 2023/6/15 下午 03:38 寫道:".
    assert reply_of(parse(THUNDERBIRD_ZH_TW)) == "已閱"


@pytest.mark.parametrize(
    "separator",
    [
        "-------- 原始消息 --------",
        "-------- 转发的消息 --------",
        "------- 原始郵件 -------",
        "-------- 轉寄郵件 --------",
        "-------- Original Message --------",
        "-------- Forwarded Message --------",
    ],
)
def test_thunderbird_separators(separator: str) -> None:
    # Thunderbird's "inline original" and forward separators, in zh-CN, zh-TW and English.
    assert reply_part(f"转交 张敏\n\n{separator}\n主题: 关于请示\n") == "转交 张敏"


# Gmail (zh-CN), text/plain, UTF-8 base64. The attribution is folded before the address:
#   转交 办公室张敏，请她按程序办理。 / (blank) / 王芳 (辽宁省人民检察院办公室综合处) /
#   <wangfang.bureau@gmail.com> 于2020年3月26日周四 下午4:12写道： / (blank) /
#   > 李局长：附件是来函，请阅示。
GMAIL_WRAPPED = b"""\
MIME-Version: 1.0
References: <CAKz9mT1x@mail.gmail.com>
In-Reply-To: <CAKz9mT1x@mail.gmail.com>
From: Li Jun <lijun.bureau@gmail.com>
Date: Thu, 26 Mar 2020 16:40:05 +0800
Message-ID: <CAH7q2Lr8y@mail.gmail.com>
Subject: Re: =?UTF-8?B?5YWz5LqO5p2l5Ye955qE5aSE55CG?=
To: r+AbC123@oa.example
Content-Type: multipart/alternative; boundary="000000000000a1b2c3059c0d4e5f"

--000000000000a1b2c3059c0d4e5f
Content-Type: text/plain; charset="UTF-8"
Content-Transfer-Encoding: base64

6L2s5LqkIOWKnuWFrOWupOW8oOaVj++8jOivt+WlueaMieeoi+W6j+WKnueQhuOAgg0KDQrnjovo
irMgKOi+veWugeecgeS6uuawkeajgOWvn+mZouWKnuWFrOWupOe7vOWQiOWkhCkNCjx3YW5nZmFu
Zy5idXJlYXVAZ21haWwuY29tPiDkuo4yMDIw5bm0M+aciDI25pel5ZGo5ZubIOS4i+WNiDQ6MTLl
hpnpgZPvvJoNCg0KPiDmnY7lsYDplb/vvJrpmYTku7bmmK/mnaXlh73vvIzor7fpmIXnpLrjgIIN
Cg==
--000000000000a1b2c3059c0d4e5f
Content-Type: text/html; charset="UTF-8"
Content-Transfer-Encoding: quoted-printable

<div dir=3D"ltr">transfer</div><br><div class=3D"gmail_quote">quoted</div>
--000000000000a1b2c3059c0d4e5f--
"""


def test_gmail_attribution_folded_over_two_lines() -> None:
    # Gmail folds a long attribution before "<address>"; both halves belong to the quote.
    assert reply_of(parse(GMAIL_WRAPPED)) == "转交 办公室张敏,请她按程序办理。"


def test_gmail_attribution_folded_after_the_date() -> None:
    # A fold later in the line: neither half matches alone, the two lines together do.
    text = "同意\n\n王芳 <wangfang@gmail.com> 于2020年3月26日周四\n下午4:12写道:\n\n> 原文"
    assert reply_part(text) == "同意"


def test_gmail_attribution_right_below_the_reply_keeps_the_reply() -> None:
    # An unfolded attribution straight under the reply does not swallow the reply's last line.
    text = "同意\n<wangfang@gmail.com> 于2020年3月26日周四 下午4:12写道:\n> 原文"
    assert reply_part(text) == "同意"


def test_gmail_zh_tw_attribution() -> None:
    # Gmail in Traditional Chinese: "於 2023年6月15日 週四 下午3:38寫道:".
    text = "同意\n\n王芳 <wangfang@gmail.com> 於 2023年6月15日 週四 下午3:38寫道:\n\n> 原文"
    assert reply_part(text) == "同意"


# iPhone Mail (zh-CN), text/plain, UTF-8, quoted-printable. The attribution is itself quoted and
# the first quoted line starts with U+FEFF:
#   同意 / (blank) / 发自我的iPhone / (blank) / > 在 2020年6月29日，下午5:45，王芳 <…> 写道： / > /
#   > \ufeff李局长：附件是请示，请审批。
IPHONE = b"""\
Content-Type: text/plain;
\tcharset=utf-8
Content-Transfer-Encoding: quoted-printable
From: =?utf-8?B?5p2O5Yab?= <lijun@bureau.example>
Mime-Version: 1.0 (1.0)
Date: Mon, 29 Jun 2020 18:02:37 +0800
Subject: =?utf-8?B?UmU6IOWFs+S6juivt+ekug==?=
Message-Id: <3F1A2B3C-4D5E-6F70-8192-A3B4C5D6E7F8@bureau.example>
In-Reply-To: <yizhan.step.42@oa.example>
To: r+AbC123@oa.example
X-Mailer: iPhone Mail (17F80)

=E5=90=8C=E6=84=8F

=E5=8F=91=E8=87=AA=E6=88=91=E7=9A=84iPhone

> =E5=9C=A8 2020=E5=B9=B46=E6=9C=8829=E6=97=A5=EF=BC=8C=E4=B8=8B=E5=8D=885:=
45=EF=BC=8C=E7=8E=8B=E8=8A=B3 <wangfang@bureau.example> =E5=86=99=E9=81=93=
=EF=BC=9A
>=20
> =EF=BB=BF=E6=9D=8E=E5=B1=80=E9=95=BF=EF=BC=9A=E9=99=84=E4=BB=B6=E6=98=AF=
=E8=AF=B7=E7=A4=BA=EF=BC=8C=E8=AF=B7=E5=AE=A1=E6=89=B9=E3=80=82
"""


def test_iphone_signature_ends_the_reply() -> None:
    # iPhone Mail adds 发自我的iPhone under the reply; the quoted text carries U+FEFF.
    msg = parse(IPHONE)
    assert "\ufeff" in body_text(msg)
    assert reply_of(msg) == "同意"


@pytest.mark.parametrize(
    "signature",
    [
        "发自我的iPhone",
        "发自我的 iPhone",
        "從我的 iPhone 傳送",
        "从我的 iPhone 发送",
        "来自 网易邮箱大师",
        "获取 Outlook for iOS",
        "Sent from my iPhone",
        "-- ",
    ],
)
def test_client_signatures_end_the_reply(signature: str) -> None:
    # Phone and desktop clients sign below the reply; the signature and all below it go.
    assert reply_part(f"已阅\n\n{signature}\n王芳\n") == "已阅"


# 163 webmail (Coremail), multipart/alternative, GBK base64; no blank line before the attribution.
# text/plain: 签收，已转办公室登记。 / 在 2023-05-04 15:39:57，"王芳" <wangfang@163.com> 写道： /
#             >李局长： / >附件是来文，请签收。
# text/html:  the reply, the attribution, <blockquote id="isReplyContent">.
NETEASE_163 = b"""\
Date: Thu, 4 May 2023 16:02:18 +0800 (CST)
From: "=?GBK?B?wO6+/A==?=" <lijun_bureau@163.com>
To: r+AbC123@oa.example
Subject: Re:Re:=?GBK?B?udjT2sC0zsS1xMepytU=?=
X-Priority: 3
X-Mailer: Coremail Webmail Server Version XT5.0.14 build 20230109(dcb5de15)
Content-Type: multipart/alternative;
\tboundary="----=_Part_1234567_890123456.1683187338123"
MIME-Version: 1.0
Message-ID: <4a5b6c7d.8e9f.187e5a1b2c3.Coremail.lijun_bureau@163.com>

------=_Part_1234567_890123456.1683187338123
Content-Type: text/plain; charset=GBK
Content-Transfer-Encoding: base64

x6nK1aOs0tHXqrDsuavK0rXHvMehow0K1NogMjAyMy0wNS0wNCAxNTozOTo1N6OsIs31t7wiIDx3
YW5nZmFuZ0AxNjMuY29tPiDQtLXAo7oNCj7A7r7Ws6Sjug0KPri9vP7Kx8C0zsSjrMfrx6nK1aGj
DQo=
------=_Part_1234567_890123456.1683187338123
Content-Type: text/html; charset=GBK
Content-Transfer-Encoding: base64

PGRpdiBzdHlsZT0ibGluZS1oZWlnaHQ6MS43O2NvbG9yOiMwMDAwMDA7Zm9udC1zaXplOjE0cHg7
Zm9udC1mYW1pbHk6QXJpYWwiPsepytWjrNLR16qw7LmrytK1x7zHoaM8YnI+PGJyPjxkaXYgc3R5
bGU9InBvc2l0aW9uOnJlbGF0aXZlO3pvb206MSI+1NogMjAyMy0wNS0wNCAxNTozOTo1N6OsIs31
t7wiJm5ic3A7Jmx0O3dhbmdmYW5nQDE2My5jb20mZ3Q7INC0tcCjujxicj4gPGJsb2NrcXVvdGUg
aWQ9ImlzUmVwbHlDb250ZW50IiBzdHlsZT0iUEFERElORy1MRUZUOiAxZXg7IE1BUkdJTjogMHB4
IDBweCAwcHggMC44ZXg7IEJPUkRFUi1MRUZUOiAjY2NjIDFweCBzb2xpZCI+wO6+1rOko7o8YnI+
uL28/srHwLTOxKOsx+vHqcrVoaM8L2Jsb2NrcXVvdGU+PC9kaXY+PC9kaXY+
------=_Part_1234567_890123456.1683187338123--
"""


def test_163_gbk_attribution_directly_under_the_reply() -> None:
    # 163 webmail puts 在 2023-05-04 15:39:57,"王芳" <…> 写道: right under the reply text.
    assert reply_of(parse(NETEASE_163)) == "签收,已转办公室登记。"


def test_163_html_cut_at_is_reply_content() -> None:
    # The HTML part loses <blockquote id="isReplyContent">; its attribution goes by the table.
    html_text = body_text(html_part(parse(NETEASE_163)))
    assert "附件是来文" not in html_text
    assert reply_part(normalise(html_text)) == "签收,已转办公室登记。"


def test_163_english_attribution() -> None:
    # 163 webmail in English: At 2022-07-23 01:54:52, "Name" <a> wrote:
    text = 'DONE\nAt 2022-07-23 01:54:52, "Wang Fang" <wangfang@163.com> wrote:\n>original'
    assert reply_part(text) == "DONE"


# 网易邮箱大师 (MailMaster), HTML only, UTF-8 quoted-printable:
#   <div>进展：初稿已完成，下周一报送。</div> … <div>来自 网易邮箱大师</div> …
#   <div class="ntes-mailmaster-quote"> ---- 回复的原邮件 ---- 发件人 王芳<…> 发送日期 … </div>
MAILMASTER = b"""\
From: =?UTF-8?B?5p2O5Yab?= <lijun_bureau@163.com>
To: "duban" <r+AbC123@oa.example>
Subject: =?UTF-8?B?UmU6IOWFs+S6juedo+WKnuS6i+mhueeahOmAmuefpQ==?=
Date: Fri, 26 Dec 2025 14:05:51 +0800
Message-ID: <AFgA7gC1Ik2Bm3x9.1.1766729151@163.com>
X-Mailer: MailMasterPC/5.0.9.1138_(Windows10)
MIME-Version: 1.0
Content-Type: text/html; charset=UTF-8
Content-Transfer-Encoding: quoted-printable

<html><head><meta http-equiv=3D"Content-Type" content=3D"text/html; charset=
=3DUTF-8"></head><body>
<div style=3D"line-height:1.7;color:#000000;font-size:14px;font-family:Aria=
l"><div>=E8=BF=9B=E5=B1=95=EF=BC=9A=E5=88=9D=E7=A8=BF=E5=B7=B2=E5=AE=8C=E6=
=88=90=EF=BC=8C=E4=B8=8B=E5=91=A8=E4=B8=80=E6=8A=A5=E9=80=81=E3=80=82</div>=
<div><br></div><div id=3D"ntes-pcmail-signature"><div>=E6=9D=A5=E8=87=AA =
=E7=BD=91=E6=98=93=E9=82=AE=E7=AE=B1=E5=A4=A7=E5=B8=88</div></div></div>
<div class=3D"ntes-mailmaster-quote" style=3D"padding-top: 1px; padding-bot=
tom: 1px"><div style=3D"margin-top: 14px; margin-bottom: 14px;"><b style=3D=
"font-size: 14px; color: rgba(100, 100, 100, 1);">---- =E5=9B=9E=E5=A4=8D=
=E7=9A=84=E5=8E=9F=E9=82=AE=E4=BB=B6 ----</b></div><table><tr><td>=E5=8F=91=
=E4=BB=B6=E4=BA=BA</td><td>=E7=8E=8B=E8=8A=B3&lt;wangfang@bureau.example&gt=
;</td></tr><tr><td>=E5=8F=91=E9=80=81=E6=97=A5=E6=9C=9F</td><td>2025=E5=B9=
=B412=E6=9C=8826=E6=97=A5 13:17</td></tr><tr><td>=E4=B8=BB=E9=A2=98</td><td=
>=E5=85=B3=E4=BA=8E=E7=9D=A3=E5=8A=9E=E4=BA=8B=E9=A1=B9=E7=9A=84=E9=80=9A=
=E7=9F=A5</td></tr></table><div>=E8=AF=B7=E4=BA=8E=E4=B8=8B=E5=91=A8=E4=B8=
=80=E5=89=8D=E6=8A=A5=E9=80=81=E8=BF=9B=E5=B1=95=E3=80=82</div></div></body=
></html>
"""


def test_mailmaster_html_only_reply() -> None:
    # MailMaster sends HTML only: cut at ntes-mailmaster-quote, then at its signature.
    msg = parse(MAILMASTER)
    assert "回复的原邮件" not in body_text(msg)
    assert reply_of(msg) == "进展:初稿已完成,下周一报送。"


def test_mailmaster_separators_in_plain_text() -> None:
    # MailMaster's separators, Chinese and English, when its quote reaches text/plain.
    for separator in ("---- 回复的原邮件 ----", "---- Replied Message ----"):
        assert reply_part(f"进展:已完成\n\n{separator}\n发件人 王芳<a@x>\n") == "进展:已完成"


# Coremail (an agency's server), text/plain, UTF-8 base64:
#   办结。已按要求答复来函单位，答复件见附件。 / (blank) /  -----原始邮件----- /
#   发件人:"王芳" <wangfang@bureau.example> / 发送时间:2021-03-11 19:05:03 (星期四) / …
COREMAIL = b"""\
From: "=?UTF-8?B?5p2O5Yab?=" <lijun@bureau.example>
To: r+AbC123@oa.example
Subject: Re: Re: =?UTF-8?B?5YWz5LqO5biC5Zy655uR566h5bGA5p2l5Ye955qE5aSE55CG5oSP6KeB?=
Date: Thu, 11 Mar 2021 19:20:41 +0800 (GMT+08:00)
X-Mailer: Coremail Webmail Server Version XT5.0.13 build 20201104(ab4fc71e)
Content-Transfer-Encoding: base64
Content-Type: text/plain; charset=UTF-8
MIME-Version: 1.0
Message-ID: <2f3e4d5c.1a2b.17821a3b4c5.Coremail.lijun@bureau.example>

5Yqe57uT44CC5bey5oyJ6KaB5rGC562U5aSN5p2l5Ye95Y2V5L2N77yM562U5aSN5Lu26KeB6ZmE
5Lu244CCDQoNCiAtLS0tLeWOn+Wni+mCruS7ti0tLS0tDQrlj5Hku7bkuro6IueOi+iKsyIgPHdh
bmdmYW5nQGJ1cmVhdS5leGFtcGxlPg0K5Y+R6YCB5pe26Ze0OjIwMjEtMDMtMTEgMTk6MDU6MDMg
KOaYn+acn+WbmykNCuaUtuS7tuS6ujogbGlqdW5AYnVyZWF1LmV4YW1wbGUNCuS4u+mimDog5YWz
5LqO5biC5Zy655uR566h5bGA5p2l5Ye955qE5aSE55CG5oSP6KeBDQo=
"""


def test_coremail_indented_original_separator() -> None:
    # Coremail servers write " -----原始邮件-----" (indented) and colons with no space.
    assert reply_of(parse(COREMAIL)) == "办结。已按要求答复来函单位,答复件见附件。"


# Alibaba Mail, text/plain, UTF-8 quoted-printable: 用印 / (blank) / 66 hyphens /
#   发件人：王芳 <…> / 发送时间：2016年5月7日(星期六) 02:30 / 收件人：… / 抄　送：… / 主　题：…
ALIBABA = b"""\
From: "=?UTF-8?B?5p2O5Yab?=" <lijun@bureau.example>
To: "r+AbC123" <r+AbC123@oa.example>
Subject: =?UTF-8?B?5Zue5aSN77ya5YWz5LqO55Sz6K+35Yqg55uW5bGA5Y2w55qE6K+356S6?=
Date: Sat, 07 May 2016 02:41:12 +0800
X-Mailer: Alimail-Mailagent revision 2
MIME-Version: 1.0
Content-Type: text/plain; charset="UTF-8"
Content-Transfer-Encoding: quoted-printable

=E7=94=A8=E5=8D=B0

------------------------------------------------------------------
=E5=8F=91=E4=BB=B6=E4=BA=BA=EF=BC=9A=E7=8E=8B=E8=8A=B3 <wangfang@bureau.exa=
mple>
=E5=8F=91=E9=80=81=E6=97=B6=E9=97=B4=EF=BC=9A2016=E5=B9=B45=E6=9C=887=E6=97=
=A5(=E6=98=9F=E6=9C=9F=E5=85=AD) 02:30
=E6=94=B6=E4=BB=B6=E4=BA=BA=EF=BC=9A=E6=9D=8E=E5=86=9B <lijun@bureau.exampl=
e>
=E6=8A=84=E3=80=80=E9=80=81=EF=BC=9A=E5=8A=9E=E5=85=AC=E5=AE=A4 <office@bur=
eau.example>
=E4=B8=BB=E3=80=80=E9=A2=98=EF=BC=9A=E5=85=B3=E4=BA=8E=E7=94=B3=E8=AF=B7=E5=
=8A=A0=E7=9B=96=E5=B1=80=E5=8D=B0=E7=9A=84=E8=AF=B7=E7=A4=BA
"""


def test_alibaba_66_hyphens() -> None:
    # Alibaba Mail separates the quote with 66 hyphens.
    assert reply_of(parse(ALIBABA)) == "用印"


def test_alibaba_header_block_with_ideographic_spaces() -> None:
    # Without the hyphen line, Alibaba's header labels (full-width colons, U+3000 inside
    # 抄　送 and 主　题) still start the quote once normalised.
    text = normalise(
        "用印\n发件人：王芳 <a@x>\n发送时间：2016年5月7日(星期六) 02:30\n抄　送：办公室"
    )
    assert "抄 送:" in text
    assert reply_part(text) == "用印"


# Outlook (zh-TW), text/plain, Big5 base64:
#   不同意，請補充法律依據後再報。 / (blank) / -----原始郵件----- /
#   寄件者: 王芳 [mailto:wangfang@bureau.example] / 寄件日期: 2023年6月15日 下午 03:38 / …
BIG5_OUTLOOK = b"""\
From: =?big5?B?p/WteA==?= <lijun@bureau.example>
To: <r+AbC123@oa.example>
Subject: =?big5?B?pl7C0Dogw/ap873VvuO/7KS9pc6p0Kq6vdCl3A==?=
Date: Thu, 15 Jun 2023 15:51:09 +0800
MIME-Version: 1.0
Content-Type: text/plain; charset="big5"
Content-Transfer-Encoding: base64
X-Mailer: Microsoft Outlook 16.0
Content-Language: zh-tw

pKOmULdOoUG90LjJpVKqa6vfqMy+2qvhpkGz+KFDDQoNCi0tLS0treypbLZspfMtLS0tLQ0KsUil
86rMOiCk/araIFttYWlsdG86d2FuZ2ZhbmdAYnVyZWF1LmV4YW1wbGVdIA0KsUil86TptME6IDIw
MjOmfjak6zE1pOkgpFWkyCAwMzozOA0Kpqyl86rMOiCn9a14DQqlRKauOiDD9qnzvdW+47/spL2l
zqnQqrq90KXcDQo=
"""


def test_big5_traditional_reply() -> None:
    # A Traditional Chinese reply in Big5, with Outlook's zh-TW separator -----原始郵件-----.
    assert reply_of(parse(BIG5_OUTLOOK)) == "不同意,請補充法律依據後再報。"


# Hong Kong client labelling Big5-HKSCS text as plain "big5", base64:
#   意見：佢話㗎，冇問題嘅。  (㗎 and 嘅 exist only in HKSCS)
BIG5_HKSCS = b"""\
From: lijun@bureau.example
To: r+AbC123@oa.example
Subject: Re: report
MIME-Version: 1.0
Content-Type: text/plain; charset=big5
Content-Transfer-Encoding: base64

t06oo6FHyly43J3uoUHJTrDdw0Sd76FDDQo=
"""


def test_big5_label_on_hkscs_text_falls_back_to_big5hkscs() -> None:
    # Plain Big5 has no 㗎 or 嘅; the HKSCS superset is tried before anything is replaced.
    assert body_text(parse(BIG5_HKSCS)) == "意見：佢話㗎，冇問題嘅。\n"


# Outlook for iOS (zh-CN) top-posting from a phone, HTML only, UTF-8 base64:
#   <div>已阅</div><div><br></div><div>获取 <a>Outlook for iOS</a></div><hr>
#   <div id="divRplyFwdMsg"><b>发件人:</b> 王芳 … <b>主题:</b> …</div><div>各处室：…</div>
PHONE_HTML_ONLY = b"""\
From: =?utf-8?B?5p2O5Yab?= <lijun@bureau.example>
To: "r+AbC123@oa.example" <r+AbC123@oa.example>
Subject: =?utf-8?B?5Zue5aSNOiDlhbPkuo4yMDIz5bm05LiK5Y2K5bm05bel5L2c5oC757uT55qE6YCa5oql?=
Thread-Topic: =?utf-8?B?5YWz5LqOMjAyM+W5tOS4iuWNiuW5tOW3peS9nOaAu+e7k+eahOmAmuaKpQ==?=
Date: Thu, 15 Jun 2023 08:12:40 +0000
Message-ID: <TYCP286MB1234ABCD5678EF90@TYCP286MB1234.JPNP286.PROD.OUTLOOK.COM>
Content-Language: zh-CN
X-MS-Has-Attach:
Content-Type: text/html; charset="utf-8"
Content-Transfer-Encoding: base64
MIME-Version: 1.0

PGh0bWw+PGhlYWQ+PG1ldGEgaHR0cC1lcXVpdj0iQ29udGVudC1UeXBlIiBjb250ZW50PSJ0ZXh0
L2h0bWw7IGNoYXJzZXQ9dXRmLTgiPjwvaGVhZD48Ym9keT48ZGl2IGRpcj0iYXV0byI+5bey6ZiF
PC9kaXY+PGRpdiBkaXI9ImF1dG8iPjxicj48L2Rpdj48ZGl2IGRpcj0iYXV0byI+6I635Y+WIDxh
IGhyZWY9Imh0dHBzOi8vYWthLm1zL28wdWtlZiI+T3V0bG9vayBmb3IgaU9TPC9hPjwvZGl2Pjxo
ciBzdHlsZT0iZGlzcGxheTppbmxpbmUtYmxvY2s7d2lkdGg6OTglIiB0YWJpbmRleD0iLTEiPjxk
aXYgaWQ9ImRpdlJwbHlGd2RNc2ciIGRpcj0ibHRyIj48Zm9udCBmYWNlPSJDYWxpYnJpLCBzYW5z
LXNlcmlmIiBzdHlsZT0iZm9udC1zaXplOjExcHQiIGNvbG9yPSIjMDAwMDAwIj48Yj7lj5Hku7bk
uro6PC9iPiDnjovoirMgJmx0O3dhbmdmYW5nQGJ1cmVhdS5leGFtcGxlJmd0Ozxicj48Yj7lj5Hp
gIHml7bpl7Q6PC9iPiBUaHVyc2RheSwgSnVuZSAxNSwgMjAyMyAzOjM4OjEyIFBNPGJyPjxiPuaU
tuS7tuS6ujo8L2I+IOadjuWGmyAmbHQ7bGlqdW5AYnVyZWF1LmV4YW1wbGUmZ3Q7PGJyPjxiPuS4
u+mimDo8L2I+IOWFs+S6jjIwMjPlubTkuIrljYrlubTlt6XkvZzmgLvnu5PnmoTpgJrmiqU8L2Zv
bnQ+PGRpdj4mbmJzcDs8L2Rpdj48L2Rpdj48ZGl2PuWQhOWkhOWupO+8mueOsOWwhuS4iuWNiuW5
tOW3peS9nOaAu+e7k+WNsOWPkee7meS9oOS7rOOAgjwvZGl2PjwvYm9keT48L2h0bWw+DQo=
"""


def test_html_only_phone_top_post() -> None:
    # A phone client that sends only HTML: the text above the Outlook for iOS signature.
    msg = parse(PHONE_HTML_ONLY)
    assert body_text(msg) == "已阅\n\n获取 Outlook for iOS"
    assert reply_of(msg) == "已阅"


@pytest.mark.parametrize(
    "quote_start",
    [
        '<hr id="replySplit"><div>原文</div>',  # China Mobile 139
        '<div id="reply139content">原文</div>',
        '<div class="gmail_quote"><div class="gmail_attr">王芳 于…写道:</div>原文</div>',
        '<div class="moz-cite-prefix">在 2020/8/5 5:56, 王芳 写道:</div>原文',
        '<blockquote type="cite">原文</blockquote>',  # Apple Mail
        '<div id="isForwardContent">原文</div>',
        '<div id="original-content">原文</div>',
        '<div name="oriMsgHtmlSeperator">原文</div>',
        '<DIV CLASS="FOXDIV20240101">原文</DIV>',  # markers are matched without regard to case
    ],
)
def test_html_quote_markers(quote_start: str) -> None:
    # Each client's quote container cuts the HTML before conversion.
    raw = (
        "Content-Type: text/html; charset=utf-8\n\n<div>同意&nbsp;办理</div>" + quote_start + "\n"
    ).encode()
    assert body_text(parse(raw)) == "同意\xa0办理"


def test_html_text_that_names_a_marker_is_kept() -> None:
    # A marker word in the text, not in a tag, is just a word.
    raw = b"Content-Type: text/html; charset=utf-8\n\n<p>blockquote &amp; FoxDiv</p>\n"
    assert body_text(parse(raw)) == "blockquote & FoxDiv"


# --- Choosing the part and decoding it ------------------------------------------------------------


def test_gb2312_label_on_gbk_text() -> None:
    # GB2312-labelled text with a GBK-only character (喆) is read as GB18030, not replaced.
    raw = b"Content-Type: text/plain; charset=gb2312\nContent-Transfer-Encoding: 8bit\n\n\x86\xb4\n"
    assert body_text(parse(raw)) == "喆\n"


def test_utf8_label_on_gbk_text() -> None:
    # A client that declares UTF-8 but writes GBK (同意) is still read.
    raw = (
        b"Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
        b"\xcd\xac\xd2\xe2\n"
    )
    assert body_text(parse(raw)) == "同意\n"


def test_utf8_with_a_stray_byte_stays_utf8() -> None:
    # A UTF-8 body with one broken byte is not mistaken for GB text: one character is lost.
    raw = (
        b"Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
        b"\xe5\x90\x8c\xe6\x84\x8f\xef\xbc\x8c\xe8\xaf\xb7\xe5\x8a\x9e\xe7\x90\x86\xe3\x80\x82\xff\n"
    )
    assert body_text(parse(raw)) == "同意，请办理。\ufffd\n"


def test_unknown_charset_is_read_as_utf8() -> None:
    # An unknown label falls back to UTF-8, with replacement characters where it cannot.
    raw = (
        b"Content-Type: text/plain; charset=x-bureau\nContent-Transfer-Encoding: 8bit\n\n"
        b"\xe5\x90\x8c\xe6\x84\x8f \xff\n"
    )
    assert body_text(parse(raw)) == "同意 \ufffd\n"


def test_attached_original_is_not_the_reply() -> None:
    # Outlook's "attach original": an HTML reply and the original as message/rfc822, which has
    # a text/plain part that must not win over the reply's HTML.
    raw = b"""\
Content-Type: multipart/mixed; boundary="b1"

--b1
Content-Type: text/html; charset=utf-8

<p>READ</p>
--b1
Content-Type: message/rfc822

Subject: original
Content-Type: text/plain; charset=utf-8

the original text
--b1--
"""
    assert body_text(parse(raw)) == "READ"


def test_text_attachment_is_not_the_reply() -> None:
    # A .txt attachment beside an HTML reply is a document, not the reply.
    raw = b"""\
Content-Type: multipart/mixed; boundary="b1"

--b1
Content-Type: text/html; charset=utf-8

<p>SEAL</p>
--b1
Content-Type: text/plain; charset=utf-8; name="notes.txt"
Content-Disposition: attachment; filename="notes.txt"

APPROVE
--b1--
"""
    assert body_text(parse(raw)) == "SEAL"


def test_empty_plain_part_falls_back_to_html() -> None:
    # Some webmail sends an empty text/plain beside the HTML the person wrote in.
    raw = b"""\
Content-Type: multipart/alternative; boundary="b1"

--b1
Content-Type: text/plain; charset=utf-8


--b1
Content-Type: text/html; charset=utf-8

<div>TODO</div>
--b1--
"""
    assert body_text(parse(raw)) == "TODO"


def test_flowed_delsp_and_quote_depth() -> None:
    # RFC 3676: with DelSp=yes the space before a soft break goes; a quote never joins the reply.
    raw = (
        b"Content-Type: text/plain; charset=utf-8; format=flowed; delsp=yes\n\n"
        b"APPROVE, with the sec \nond paragraph kept \n> quoted  \n> line\n-- \nLi Jun\n"
    )
    assert body_text(parse(raw)) == (
        "APPROVE, with the second paragraph kept\n> quoted line\n-- \nLi Jun\n"
    )


def test_message_without_text_gives_empty_string() -> None:
    # A reply that is only an attachment has no text.
    raw = b"Content-Type: application/pdf\nContent-Transfer-Encoding: base64\n\nJVBERi0=\n"
    assert body_text(parse(raw)) == ""


@given(st.binary(max_size=2000))
def test_body_text_never_raises(raw: bytes) -> None:
    # Whatever arrives, reading its body returns text.
    assert isinstance(body_text(parse(raw)), str)


@given(
    st.sampled_from(["utf-8", "gbk", "gb2312", "gb18030", "big5", "x-unknown", "zlib", ""]),
    st.sampled_from(["8bit", "base64", "quoted-printable"]),
    st.binary(max_size=300),
)
def test_body_text_never_raises_on_any_charset(charset: str, cte: str, body: bytes) -> None:
    # Broken bytes under every label the clients use, and under nonsense labels.
    raw = f"Content-Type: text/plain; charset={charset}\nContent-Transfer-Encoding: {cte}\n\n"
    assert isinstance(body_text(parse(raw.encode() + body)), str)


# --- Normalising ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("同意&nbsp;办理", "同意 办理"),  # QQ's literal entity in text/plain
        ("意见：同意，请办理", "意见:同意,请办理"),  # full-width colon and comma
        ("抄\u3000送", "抄 送"),  # ideographic space inside Alibaba's labels
        ("\ufeff同意", " 同意"),  # Apple Mail's byte-order mark
        ("ＡＰＰＲＯＶＥ！", "APPROVE!"),  # full-width letters from a Chinese input method
        ("R&D &copyright", "R&D &copyright"),  # no semicolon, so not an entity
        ("第①条……", "第①条……"),  # NFKC would change these; they are left alone
        ("一\r\n二\r三", "一\n二\n三"),
        ("同\u200b意", "同意"),
    ],
)
def test_normalise(raw: str, expected: str) -> None:
    # What the clients vary is made uniform; what people wrote otherwise stays.
    assert normalise(raw) == expected


# --- The reply part -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "quote",
    [
        "------------------ 原始邮件 ------------------",  # QQ Mail
        "------------------ Original ------------------",  # QQ / Exmail (en)
        "-----邮件原件-----",  # Outlook (zh)
        "-----Original Message-----",  # Outlook (en)
        "--------------\nwangfang@bureau.example",  # Foxmail
        "-" * 66,  # Alibaba Mail
        "________________________________",  # Outlook on the web
        "在 2020/8/5 5:56, 王芳 写道:",  # Thunderbird (zh-CN)
        "在 2020年6月29日,下午5:45,王芳 <a@x> 写道:",  # Apple Mail (zh-CN)
        "On Mon, Jan 6, 2025 at 10:00 AM Wang Fang <a@x> wrote:",  # Gmail (en)
        "From: Wang Fang\nSent: Monday, January 6, 2025 10:00 AM",  # Outlook (en)
        "> 原文",
    ],
)
def test_reply_part_stops_at_each_marker(quote: str) -> None:
    # Each row of the table ends the reply; later lines never come back.
    assert reply_part(f"同意\n请办理\n\n{quote}\n原文\n\n同意") == "同意\n请办理"


def test_reply_part_without_quote_is_the_whole_text() -> None:
    # A new mail to cmd@ has no quote at all.
    assert reply_part("\n  TODO\n\n") == "TODO"


def test_reply_part_of_a_bottom_post_is_empty() -> None:
    # Text only below the quote is not looked for: the subject is used instead.
    assert reply_part("在 2020/8/5 5:56, 王芳 写道:\n> 原文\n\n同意") == ""


@given(st.text())
def test_reply_part_is_a_prefix(text: str) -> None:
    # The reply part is cut from the text, never rewritten.
    part = reply_part(normalise(text))
    assert part in normalise(text)
