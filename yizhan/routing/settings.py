"""Reads a ``SET`` command at cmd@ into the personal settings it changes (設置, 设置).

``SET`` alone lists a person's settings; ``SET digest off`` and ``SET digest on`` turn the
to-do digest off and back to the windows of their role; ``SET digest 08:30,13:30`` chooses
windows (half hours of the working day); ``SET language zh_CN|zh_TW|en`` chooses the language
of Yizhan's mail; ``SET xinxi on|off`` subscribes to the news items the office publishes
(信息宣傳, 第二條), which nobody gets until they subscribe. Keys and values may be written in
Chinese (``設置 摘要 關閉``, ``設置 信息訂閱 是``). The transition
is pure: current settings in, changes and the answer out; ``mailstore.settings``
keeps them.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

from yizhan.routing.calendar import WorkCalendar
from yizhan.routing.digests import OFF, allowed_windows, windows_for

__all__ = [
    "DIGEST",
    "LANGUAGE",
    "LANGUAGES",
    "SUBSCRIBED",
    "XINXI",
    "SetOutcome",
    "apply_set",
    "describe",
]

DIGEST: Final = "digest"
LANGUAGE: Final = "language"
#: The news subscription (信息宣傳); stored as :data:`SUBSCRIBED`, absent when not subscribed.
XINXI: Final = "xinxi"
SUBSCRIBED: Final = "on"
#: The person's OpenPGP key for signed replies; kept in Yizhan's keyring, not as a setting.
KEY: Final = "key"
#: The languages Yizhan writes mail in.
LANGUAGES: Final = ("zh_CN", "zh_TW", "en")

# Every way of naming a key, compared after NFKC and case folding.
_KEYS: Final[Mapping[str, str]] = MappingProxyType(
    {
        **dict.fromkeys(("digest", "digests", "摘要", "待辦摘要", "待办摘要", "提醒"), DIGEST),
        **dict.fromkeys(("language", "lang", "語言", "语言"), LANGUAGE),
        **dict.fromkeys(
            (
                "xinxi",
                "news",
                "publicity",
                "信息",
                "信息訂閱",
                "信息订阅",
                "信息宣傳",
                "信息宣传",
                "訂閱",
                "订阅",
            ),
            XINXI,
        ),
        **dict.fromkeys(
            ("key", "pgp", "openpgp", "signature", "密鑰", "密钥", "簽名密鑰", "签名密钥"), KEY
        ),
    }
)
# Words that take the registered signature key back.
_KEY_REMOVE: Final = frozenset({"off", "none", "remove", "delete", "刪除", "删除", "撤銷", "撤销"})
_ON: Final = frozenset(
    {"on", "開", "开", "開啟", "开启", "打開", "打开", "默認", "默认", "default"}
)
_OFF: Final = frozenset({"off", "關", "关", "關閉", "关闭", "停止", "不要"})
# Subscribing is opting in: "default" is not among the words, since the default is off.
_SUBSCRIBE: Final = frozenset(
    {"on", "yes", "subscribe", "是", "開", "开", "開啟", "开启", "訂閱", "订阅", "要"}
)
_UNSUBSCRIBE: Final = frozenset(
    {"off", "no", "unsubscribe", "否", "關", "关", "關閉", "关闭", "退訂", "退订", "取消", "不要"}
)
_LANGUAGE_WORDS: Final[Mapping[str, str]] = MappingProxyType(
    {
        **dict.fromkeys(
            ("zh_cn", "zh-cn", "zh-hans", "简体", "簡體", "简体中文", "簡體中文"), "zh_CN"
        ),
        **dict.fromkeys(
            ("zh_tw", "zh-tw", "zh-hant", "繁体", "繁體", "繁体中文", "繁體中文"), "zh_TW"
        ),
        **dict.fromkeys(("en", "english", "英文", "英語", "英语"), "en"),
    }
)
_TIME: Final = re.compile(r"^(\d{1,2})[:：.](\d{2})$")
_LIST_SEPARATORS: Final = re.compile(r"[\s,，、;；]+")
_USAGE: Final = (
    "用法 Usage:\n"
    "  設置 摘要 關閉 / SET digest off\n"
    "  設置 摘要 開啟 / SET digest on\n"
    "  設置 摘要 08:30,13:30 / SET digest 08:30,13:30\n"
    "  設置 語言 zh_TW / SET language zh_CN|zh_TW|en\n"
    "  設置 信息訂閱 是 / SET xinxi on   (否 / off: 退訂 unsubscribe)\n"
    "  設置 密鑰 / SET key  (登記簽名密鑰 how to register a signature key; 刪除 / off: remove)\n"
    "  設置 / SET  (列出 list)"
)


@dataclass(frozen=True, kw_only=True)
class SetOutcome:
    """What a SET command changes (a key to its new value, None: back to the default) and the
    answer to send; ``changes`` is empty for a listing or a refusal."""

    changes: Mapping[str, str | None] = field(default_factory=dict)
    reply: str
    #: The person asked to take their registered signature key back (the caller does it).
    remove_key: bool = False


def apply_set(
    argument: str,
    current: Mapping[str, str],
    *,
    roles: Iterable[str],
    calendar: WorkCalendar,
    signature_key: str | None = None,
) -> SetOutcome:
    """Read ``SET argument`` against ``current`` (key → stored value) for a person with
    ``roles`` whose registered signature key has the fingerprint ``signature_key``; the
    answer is Chinese, then English, and says what to send instead of a command it cannot
    read."""
    roles = frozenset(roles)
    words = unicodedata.normalize("NFKC", argument).strip().split(None, 1)
    if not words:
        return SetOutcome(reply=describe(current, roles=roles, signature_key=signature_key))
    key = _KEYS.get(words[0].casefold())
    if key is None:
        return SetOutcome(
            reply=f"沒有「{words[0]}」這項設置。There is no setting {words[0]!r}.\n\n{_USAGE}"
        )
    value = words[1].strip() if len(words) > 1 else ""
    if key == KEY:
        return _key_setting(value, signature_key)
    if not value:
        listing = describe(current, roles=roles, signature_key=signature_key)
        return SetOutcome(reply=listing + "\n\n" + _USAGE)
    if key == LANGUAGE:
        language = _LANGUAGE_WORDS.get(value.casefold())
        if language is None:
            return SetOutcome(
                reply=f"看不懂語言「{value}」。Unknown language {value!r}.\n\n{_USAGE}"
            )
        changes: dict[str, str | None] = {LANGUAGE: language}
    elif key == XINXI:
        folded = value.casefold()
        if folded not in _SUBSCRIBE | _UNSUBSCRIBE:
            return SetOutcome(
                reply=f"信息訂閱只能是「是」或「否」，不是「{value}」。\n"
                f"The news subscription is on or off, not {value!r}.\n\n{_USAGE}"
            )
        changes = {XINXI: SUBSCRIBED if folded in _SUBSCRIBE else None}
    else:
        digest = _digest_value(value, calendar)
        if isinstance(digest, _Refusal):
            return SetOutcome(reply=f"{digest.text}\n\n{_USAGE}")
        changes = {DIGEST: digest}
    after = {k: v for k, v in {**current, **changes}.items() if v is not None}
    listing = describe(after, roles=roles, signature_key=signature_key)
    return SetOutcome(changes=changes, reply="已設置。Saved.\n\n" + listing)


def _key_setting(value: str, signature_key: str | None) -> SetOutcome:
    """SET key: how to register or replace the key for signed replies, or take it back.

    Sign-off and sealing need a signed reply (第十八條), so a person registers
    the public key of their mail client; the key itself travels in a mail, not in a SET line.
    """
    current = f"當前密鑰 Current key: {signature_key or '未登記 none'}\n"
    if value.casefold() in _KEY_REMOVE:
        if signature_key is None:
            return SetOutcome(reply=current + "沒有已登記的密鑰。No key is registered.")
        return SetOutcome(
            reply=(
                f"已刪除簽名密鑰 {signature_key}；簽發和用印須重新登記密鑰後簽名回覆。\n"
                f"Signature key {signature_key} removed; register a key again before signing "
                "off or sealing."
            ),
            remove_key=True,
        )
    return SetOutcome(
        reply=current
        + "登記或更換密鑰：將您的 OpenPGP 公鑰（ASCII 格式，-----BEGIN PGP PUBLIC KEY BLOCK-----）"
        "貼在正文或作為附件發到 cmd@，再按回覆中的提示回覆「同意」確認。\n"
        "To register or replace it, mail your OpenPGP public key (ASCII-armoured) to cmd@ in "
        "the body or attached, then confirm by replying APPROVE to the answer.\n"
        "刪除 Remove: 設置 密鑰 刪除 / SET key off"
    )


def describe(
    current: Mapping[str, str], *, roles: Iterable[str], signature_key: str | None = None
) -> str:
    """A person's settings as the answer to ``SET`` lists them."""
    roles = frozenset(roles)
    setting = current.get(DIGEST)
    windows = windows_for(roles, setting)
    if not windows:
        digest = "關閉 off"
    else:
        times = ", ".join(w.strftime("%H:%M") for w in windows)
        chosen = "" if setting in (None, "on") else "（自選 chosen）"
        digest = f"{times}{chosen}，工作日 on working days"
    language = current.get(LANGUAGE) or "默認 default"
    news = "已訂閱 on" if current.get(XINXI) == SUBSCRIBED else "未訂閱 off"
    key = signature_key or "未登記 none (設置 密鑰 / SET key)"
    return (
        f"待辦摘要 digest: {digest}\n語言 language: {language}\n信息訂閱 news (xinxi@): {news}\n"
        f"簽名密鑰 signature key: {key}"
    )


@dataclass(frozen=True)
class _Refusal:
    text: str


def _digest_value(value: str, calendar: WorkCalendar) -> str | _Refusal | None:
    """The stored value for ``SET digest value``: OFF, None (the role's windows) or times."""
    folded = value.casefold()
    if folded in _ON:
        return None
    if folded in _OFF:
        return OFF
    allowed = allowed_windows(calendar)
    chosen: set[dt.time] = set()
    for part in filter(None, _LIST_SEPARATORS.split(value)):
        found = _TIME.match(part)
        moment = None
        if found is not None and int(found[1]) < 24 and int(found[2]) < 60:
            moment = dt.time(int(found[1]), int(found[2]))
        if moment is None or moment not in allowed:
            first, last = allowed[0].strftime("%H:%M"), allowed[-1].strftime("%H:%M")
            return _Refusal(
                f"時間「{part}」不可用：請寫 {first} 至 {last} 之間的整點或半點，"
                f"用逗號分開，例如 08:30,13:30。\n"
                f"{part!r} cannot be used: write times on the hour or half hour from {first} "
                f"to {last}, separated by commas, e.g. 08:30,13:30."
            )
        chosen.add(moment)
    if not chosen:
        return _Refusal("請寫時間，例如 08:30,13:30。Write the times, e.g. 08:30,13:30.")
    return ",".join(t.strftime("%H:%M") for t in sorted(chosen))
