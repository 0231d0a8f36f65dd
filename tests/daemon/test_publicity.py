"""End-to-end: 信息宣傳 at xinxi@ (第二條; mine rules 一(六)), over SMTP on loopback.

People subscribe and unsubscribe with SET at cmd@; a unit's news item is reviewed by its head,
edited and approved by the office's clerk, and only the subscribers receive it, in its edited
form, with its attachment; a rejection sends it back; anyone may ask each unit's yearly count.
"""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from typing import Any

from sqlalchemy import select

from tests.daemon.test_content import rules_file
from tests.daemon.test_flows import PASSWORD, Daemon, reply
from tests.daemon.test_modules import one, text
from yizhan.mailstore.models import Delivery, OutboundMessage

pytest_plugins = ["tests.daemon.test_flows"]

AUTHOR, HEAD, EDITOR = "xiewenbin", "liangguoqiang", "wangfang"
HEADLINE = "我局開展進口冷鏈食品專項檢查"
DRAFT = "今年，我局對進口冷鏈食品開展專項檢查。\n（初稿）"
EDITED = "今年，我局對進口冷鏈食品開展專項檢查，共抽檢樣品120批，全部合格。"


def submit(daemon: Daemon, png: bytes | None = None) -> None:
    """謝文斌 of 檢驗監管處 sends a news item to the English alias news@, maybe with a photo."""
    msg = EmailMessage()
    msg["From"] = f"{AUTHOR}@bureau.example"
    msg["To"] = "news@oa.example"
    msg["Subject"] = HEADLINE
    msg.set_content(DRAFT)
    if png is not None:
        msg.add_attachment(png, maintype="image", subtype="png", filename="現場.png")
    with smtplib.SMTP("127.0.0.1", daemon.port, timeout=30) as client:
        client.login(AUTHOR, PASSWORD)
        client.send_message(msg)


def command(daemon: Daemon, account: str, to: str, line: str) -> str:
    """Send ``line`` as the subject of an empty mail and return the text of the answer."""
    daemon.send(account, to, line, "")
    return text(one(daemon, account))


def news_recipients(daemon: Daemon) -> set[str]:
    """Everyone a news item was queued for (the publication is one transaction)."""
    with daemon.ctx.sessions.begin() as session:
        return set(
            session.scalars(
                select(Delivery.rcpt)
                .join(OutboundMessage, Delivery.message_pk == OutboundMessage.id)
                .where(OutboundMessage.source.like("%:news:%"))
            )
        )


def test_subscribers_get_the_item_as_the_office_edited_it(
    daemon: Daemon, clamd_socket: str, content_files: Any
) -> None:
    # Two people subscribe, one of them unsubscribes again; the item passes the unit head
    # (mine rules 一(六)) and the office's clerk, who edits it; only the remaining subscriber
    # gets it, edited, with the photo, and can filter on List-Id; the author hears it was
    # published; the yearly count shows one item for 檢驗監管處.
    rules_file(daemon.ctx, clamd_socket)
    assert "已訂閱 on" in command(daemon, "fenggang", "cmd@oa.example", "SET xinxi on")
    assert "已訂閱 on" in command(daemon, "luomin", "cmd@oa.example", "設置 信息訂閱 是")
    assert "未訂閱 off" in command(daemon, "luomin", "cmd@oa.example", "设置 信息订阅 否")
    assert "信息訂閱 news (xinxi@): 未訂閱 off" in command(
        daemon, "dongchao", "cmd@oa.example", "設置"
    )

    submit(daemon, content_files.png())
    assert "下一步" in text(one(daemon, AUTHOR))
    review = one(daemon, HEAD)
    assert (review["X-Yizhan-Kind"], review["X-Yizhan-Step"]) == ("xinxi", "review")
    assert review["X-Yizhan-Action"] == "approve"
    reply(daemon, HEAD, review, "同意")
    one(daemon, HEAD)  # the confirmation

    ask = one(daemon, EDITOR)
    assert (ask["X-Yizhan-Step"], ask["X-Yizhan-Action"]) == ("edit", "approve")
    assert "修改稿：" in text(ask) and "今年，我局" in text(ask)  # the item to edit, as written
    reply(daemon, EDITOR, ask, f"同意，已核實數據\n修改稿：\n{EDITED}")
    assert "本件已辦結" in text(one(daemon, EDITOR))

    item = one(daemon, "fenggang")
    assert item["List-Id"] == "信息宣傳 <xinxi.oa.example>"
    assert "SET%20xinxi%20off" in str(item["List-Unsubscribe"])
    assert "xinxi@oa.example" in str(item["From"])
    assert (item["X-Yizhan-Kind"], item["X-Yizhan-State"]) == ("xinxi", "published")
    assert item["X-Yizhan-Unit"] == "inspection" and item["X-Yizhan-Action"] == "none"
    assert HEADLINE in str(item["Subject"])
    body = text(item)
    assert EDITED in body and "初稿" not in body and "已核實數據" not in body
    (photo,) = [p for p in item.walk() if p.get_content_type() == "image/png"]
    assert photo.get_filename() == "現場.png" and photo.get_content() == content_files.png()
    assert news_recipients(daemon) == {"fenggang@bureau.example"}

    published = one(daemon, AUTHOR)
    assert published["X-Yizhan-State"] == "closed" and "已發布" in str(published["Subject"])
    assert EDITED in text(published)

    count = command(daemon, "hanxue", "xinxi@oa.example", "統計")
    assert "檢驗監管處（inspection）: 1" in count and "合計 Total: 1" in count
    assert "合計 Total: 0" in command(daemon, "hanxue", "news@oa.example", "STATUS 2020")


def test_the_office_sends_an_item_back_and_nothing_is_published(daemon: Daemon) -> None:
    # An edit marker with no text is answered with what to send; REJECT returns the item to
    # its author with the reason; no subscriber gets anything and the count stays at zero; the
    # author's revision starts the review again.
    assert "已訂閱 on" in command(daemon, "fenggang", "cmd@oa.example", "SET news on")
    submit(daemon)
    one(daemon, AUTHOR)
    reply(daemon, HEAD, one(daemon, HEAD), "同意")
    one(daemon, HEAD)
    ask = one(daemon, EDITOR)
    reply(daemon, EDITOR, ask, "同意\n修改稿：")
    assert "修改稿" in text(one(daemon, EDITOR))

    reply(daemon, EDITOR, ask, "退回：數據需核實後再報")
    one(daemon, EDITOR)
    returned = one(daemon, AUTHOR)
    assert returned["X-Yizhan-State"] == "returned" and "數據需核實後再報" in text(returned)
    assert news_recipients(daemon) == set()
    assert "合計 Total: 0" in command(daemon, "fenggang", "xinxi@oa.example", "統計")

    # The author's revision goes to the unit head again, in the characters it was written in.
    reply(daemon, AUTHOR, returned, "今年，我局抽檢樣品120批（已核實）。")
    one(daemon, AUTHOR)
    again = one(daemon, HEAD)
    assert again["X-Yizhan-Step"] == "review" and "今年，我局抽檢樣品120批（已核實）。" in text(
        again
    )
