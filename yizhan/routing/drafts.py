"""Reads a new document from the mail that starts it.

A new document is a mail to its kind's address (README, "Working by mail"). The
subject is its title, with tags such as [特急] taken out; the body may open with a block of
``key: value`` lines, ended by a blank line, in Simplified Chinese, Traditional Chinese or
English. Nothing here checks the values against the organisation except :func:`resolve_units`,
and nothing is refused here: the workflow decides what a missing or odd field means.

Subject tags, in square brackets ``[]`` or lenticular brackets ``【】``, case-insensitive:

===================================  ==========================
tag                                  meaning
===================================  ==========================
特急, extra urgent, most urgent       urgency 特急
加急, urgent                          urgency 加急
重要, important                       important
特殊, special                         special (e.g. an all-bureau bulletin, 第二十三條)
===================================  ==========================

English "urgent" is 加急, not 特急: GB/T 9704 renders 特急 as "extra urgent" and 加急 as
"urgent", and a sender who writes a plain [URGENT] asks for speed, not for the top grade.
When a mail names two grades (a tag and a 緊急程度 line), the more urgent one wins.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, Literal

from yizhan.routing.directory import Directory

__all__ = [
    "ALL_UNITS_WORDS",
    "EXTRA_FIELDS",
    "HEADER_KEYS",
    "Draft",
    "Urgency",
    "parse_draft",
    "resolve_units",
    "simplified",
    "split_units",
]

Urgency = Literal["特急", "加急"]


@dataclass(frozen=True, kw_only=True)
class Draft:
    """A new document as its author wrote it; values are raw text, unresolved.

    ``to_units``, ``cc_units`` and ``scope`` hold unit references exactly as written (ids or
    names, see :func:`resolve_units`). ``deadline`` and ``period`` are the text of the
    期限 and 起止 lines. ``extra`` holds the fields of the change request form (申請表,
    第十條) by their English names (:data:`EXTRA_FIELDS`). ``unknown_keys`` names header lines
    whose key is not known, so that the answer can say which were ignored; ``problems`` says
    what else could not be read.
    """

    title: str
    urgency: Urgency | None = None
    important: bool = False
    special: bool = False
    to_units: tuple[str, ...] = ()
    cc_units: tuple[str, ...] = ()
    scope: tuple[str, ...] = ()
    doc_type: str | None = None
    deadline: str | None = None
    leave_type: str | None = None
    period: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict)
    body: str = ""
    unknown_keys: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()


# --- Traditional and Simplified -----------------------------------------------------------------

# Pairs of (Traditional, Simplified) for the characters of unit names, people's names and the
# header keys that differ between the two scripts: the demo bureau's, and those common in the
# names of Chinese government units. A full converter (OpenCC) would be a dependency for a
# few hundred characters; one that is missing here only means that a name written in the other
# script is not recognised, and the author is told so.
_TRADITIONAL_SIMPLIFIED: Final = (
    # The demo bureau: units, then people.
    "遼辽寧宁檢检驗验辦办處处監监衛卫衞卫財财務务連连東东"
    "軍军趙赵國国孫孙陳陈劉刘靜静吳吴鄭郑偉伟馬马麗丽紅红濤涛羅罗強强謝谢韓韩曉晓許许馮冯"
    "剛刚鄧邓蔣蒋華华鵬鹏"
    # Units and offices of government bodies.
    "區区縣县鄉乡鎮镇審审計计紀纪黨党組组織织傳传統统團团會会檔档綜综規规劃划發发質质術术"
    "條条農农業业產产動动實实關关稅税證证書书據据報报電电話话網网絡络機机構构編编領领導导"
    "幹干離离體体廳厅門门後后裝装備备設设車车輛辆場场灣湾島岛陽阳錦锦營营撫抚順顺鐵铁嶺岭"
    "蘆芦盤盘長长興兴際际對对聯联協协調调標标準准認认級级專专員员總总經经濟济貿贸進进簽签"
    "與与應应災灾險险風风評评優优環环測测試试輸输運运簡简歷历學学習习訓训練练義义樓楼館馆"
    "醫医藥药療疗飲饮戶户護护緝缉資资訊讯開开聞闻廣广視视聽听舉举職职稱称勞劳獎奖懲惩類类"
    "種种緊紧範范圍围題题內内閱阅轉转議议決决鑒鉴鑑鉴貨货櫃柜艙舱樣样態态獸兽蟲虫屬属隊队"
    "邊边陸陆軟软數数庫库碼码號号維维執执線线圖图紙纸歸归購购買买賣卖價价費费預预撥拨婦妇"
    "為为億亿戰战貫贯徹彻時时佈布別别無无單单個个週周禮礼"
)
_TO_SIMPLIFIED: Final[Mapping[int, str]] = MappingProxyType(
    {
        ord(_TRADITIONAL_SIMPLIFIED[i]): _TRADITIONAL_SIMPLIFIED[i + 1]
        for i in range(0, len(_TRADITIONAL_SIMPLIFIED), 2)
    }
)


def simplified(text: str) -> str:
    """``text`` with the Traditional characters Yizhan knows turned into Simplified ones.

    For comparing names written in either script ("衛生檢疫處" and "卫生检疫处"); the result
    is a matching key, not text to show.
    """
    return text.translate(_TO_SIMPLIFIED)


def _key(text: str) -> str:
    """A comparison key: width- and case-folded, one script, without spaces."""
    folded = simplified(unicodedata.normalize("NFKC", text)).casefold()
    return "".join(folded.split())


# --- The subject ----------------------------------------------------------------------------

# Tag words (after _key): those that set the urgency, and those that set a flag.
_URGENCY_TAGS: Final[Mapping[str, Urgency]] = MappingProxyType(
    {"特急": "特急", "extraurgent": "特急", "mosturgent": "特急", "加急": "加急", "urgent": "加急"}
)
_FLAG_TAGS: Final[Mapping[str, str]] = MappingProxyType(
    {"重要": "important", "important": "important", "特殊": "special", "special": "special"}
)
_TAG: Final = re.compile(r"[\[【［]\s*(?P<word>[^\]】］]{1,20}?)\s*[\]】］]")
# Forward and reply prefixes, stacked as clients stack them ("Fwd: FW: 转发：").
_PREFIXES: Final = re.compile(
    r"^(?:\s*(?:re|fw|fwd|回复|回覆|答复|答覆|转发|轉發|转寄|轉寄)\s*(?:\[\d+\]|\(\d+\))?\s*[:：])+",
    re.IGNORECASE,
)

# Urgency values of the 緊急程度 line (after _key); None means "not urgent".
_URGENCY_VALUES: Final[Mapping[str, Urgency | None]] = MappingProxyType(
    {
        "特急": "特急",
        "特提": "特急",
        "extraurgent": "特急",
        "mosturgent": "特急",
        "加急": "加急",
        "平急": "加急",
        "急": "加急",
        "急件": "加急",
        "urgent": "加急",
        "express": "加急",
        "普通": None,
        "一般": None,
        "平件": None,
        "无": None,
        "none": None,
        "normal": None,
        "routine": None,
    }
)
_URGENCY_RANK: Final[Mapping[str | None, int]] = MappingProxyType({None: 0, "加急": 1, "特急": 2})


def _more_urgent(a: Urgency | None, b: Urgency | None) -> Urgency | None:
    return a if _URGENCY_RANK[a] >= _URGENCY_RANK[b] else b


def _read_subject(subject: str) -> tuple[str, Urgency | None, set[str]]:
    """The title, the urgency and the flags ("important", "special") a subject carries."""
    urgency: Urgency | None = None
    flags: set[str] = set()

    def take(found: re.Match[str]) -> str:
        nonlocal urgency
        word = _key(found["word"])
        if word in _URGENCY_TAGS:
            urgency = _more_urgent(urgency, _URGENCY_TAGS[word])
        elif word in _FLAG_TAGS:
            flags.add(_FLAG_TAGS[word])
        else:
            # A bracket Yizhan does not know ([草稿], [第2版]) is part of the title.
            return found.group()
        return " "

    title = _PREFIXES.sub("", subject.strip())
    title = _TAG.sub(take, title)
    # A tag may have stood before the prefix: "[特急] Fwd: 關於…".
    title = _PREFIXES.sub("", title.strip())
    return " ".join(title.split()), urgency, flags


# --- The header block -----------------------------------------------------------------------

#: Header keys (compared after width, case and script folding, and without spaces, "-" or "_")
#: and the :class:`Draft` field each fills. Bare "To:" and "Cc:" are left out on purpose: an
#: English memo opens with them, and its text must not be read as a list of units.
HEADER_KEYS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "主送": "to_units",
        "主送单位": "to_units",
        "tounits": "to_units",
        "抄送": "cc_units",
        "抄送单位": "cc_units",
        "ccunits": "cc_units",
        "范围": "scope",
        "发布范围": "scope",
        "scope": "scope",
        "文种": "doc_type",
        "type": "doc_type",
        "doctype": "doc_type",
        "紧急程度": "urgency",
        "urgency": "urgency",
        "期限": "deadline",
        "办理期限": "deadline",
        "deadline": "deadline",
        "类型": "leave_type",
        "休假类型": "leave_type",
        "假别": "leave_type",
        "leavetype": "leave_type",
        "起止": "period",
        "起止时间": "period",
        "起止日期": "period",
        "fromto": "period",
        "period": "period",
        # The change request form (申請表, 第十條) and account applications (mine rules 一(二)).
        "操作": "action",
        "事项": "action",
        "事項": "action",
        "action": "action",
        "人员": "person",
        "姓名": "person",
        "person": "person",
        "帐号": "account",
        "帳号": "account",
        "账号": "account",
        "賬号": "account",
        "account": "account",
        "单位": "unit",
        "调入单位": "unit",
        "unit": "unit",
        "角色": "role",
        "role": "role",
        "roles": "role",
        "保密协议": "nda",
        "nda": "nda",
        "负责人": "responsible",
        "負責人": "responsible",
        "responsible": "responsible",
        "邮箱": "email",
        "郵箱": "email",
        "email": "email",
        # Who takes over the waiting work of a person who leaves or moves (第十條).
        "接任": "successor",
        "接替": "successor",
        "接任人": "successor",
        "successor": "successor",
    }
)
#: The :data:`HEADER_KEYS` fields kept in ``Draft.extra``.
EXTRA_FIELDS: Final = frozenset(
    {"action", "person", "account", "unit", "role", "nda", "responsible", "email", "successor"}
)
_LIST_FIELDS: Final = frozenset({"to_units", "cc_units", "scope"})

# "key: value" with a short key; the colon may be full-width. A longer "key" is a sentence.
_HEADER_LINE: Final = re.compile(r"^\s*(?P<key>[^\s:：][^:：\n]{0,23}?)\s*[:：]\s*(?P<value>.*)$")
# What separates unit references in a 主送/抄送/範圍 value.
_LIST_SEPARATORS: Final = (",", "，", "、", ";", "；")
# Invisible characters a body may open with (Apple Mail's byte-order mark, editors' marks).
_LEADING_JUNK: Final = "\ufeff\u200b\u2060"


def _header_field(key: str) -> str | None:
    return HEADER_KEYS.get(re.sub(r"[-_]", "", _key(key)))


def _read_block(body: str) -> tuple[list[tuple[str, str]], str]:
    """The opening ``key: value`` lines of ``body`` (empty if it has none) and the rest."""
    lines = body.replace("\r\n", "\n").replace("\r", "\n").lstrip(_LEADING_JUNK).split("\n")
    start = 0
    while start < len(lines) and not lines[start].strip():
        start += 1
    first = _HEADER_LINE.match(lines[start]) if start < len(lines) else None
    # Only a known key opens the block: "尊敬的領導：" or "Dear all:" starts the text itself.
    if first is None or _header_field(first["key"]) is None:
        return [], "\n".join(lines[start:])
    pairs: list[tuple[str, str]] = []
    index = start
    while index < len(lines):
        line = lines[index]
        if not line.strip():
            index += 1
            break
        found = _HEADER_LINE.match(line)
        indented = line[:1] in " \t"
        known = found is not None and _header_field(found["key"]) is not None
        if found is not None and not known and not found["value"].strip():
            # "Dear all:" or "各處室：" after the last field, where the blank line was forgotten:
            # an unknown key with nothing after it opens the text, not a field.
            break
        # A line that opens with a known key is a new field, even when indented.
        if found is not None and (known or not indented):
            pairs.append((found["key"], found["value"].strip()))
        elif pairs and (indented or pairs[-1][1].endswith(_LIST_SEPARATORS)):
            # A continuation, as when a client wraps a long 主送 line: it is indented, or the
            # line before ends in a separator ("主送：辦公室、").
            key, value = pairs[-1]
            pairs[-1] = (key, f"{value} {line.strip()}")
        else:
            # A line that is not "key: value" ends the block even without the blank line, so
            # that a forgotten blank line does not swallow the first paragraph.
            break
        index += 1
    rest = lines[index:]
    while rest and not rest[0].strip():
        rest = rest[1:]
    return pairs, "\n".join(rest)


def split_units(text: str) -> tuple[str, ...]:
    """The unit references in a 主送/抄送/範圍 value, as written, without repeats.

    References are separated by commas (, ，), 、, semicolons (; ；) or line ends.
    """
    refs: list[str] = []
    for part in re.split(r"[,，、;；\n]", text):
        ref = part.strip().strip("。.").strip()
        if ref and ref not in refs:
            refs.append(ref)
    return tuple(refs)


def parse_draft(subject: str, body: str) -> Draft:
    """Read the title, tags and header lines of a new document; the rest is its ``body``.

    A repeated list key (two 主送 lines) adds to the list; a repeated single key keeps the
    last value.
    """
    title, urgency, flags = _read_subject(subject)
    pairs, rest = _read_block(body)
    lists: dict[str, list[str]] = {name: [] for name in _LIST_FIELDS}
    single: dict[str, str] = {}
    unknown: list[str] = []
    problems: list[str] = []
    if not title:
        problems.append("標題為空 / the subject (the title) is empty")
    for key, raw_value in pairs:
        name = _header_field(key)
        value = unicodedata.normalize("NFKC", raw_value).strip()
        if name is None:
            if key not in unknown:
                unknown.append(key)
        elif name in _LIST_FIELDS:
            lists[name].extend(r for r in split_units(value) if r not in lists[name])
        elif name == "urgency":
            folded = _key(value)
            if folded in _URGENCY_VALUES:
                urgency = _more_urgent(urgency, _URGENCY_VALUES[folded])
            else:
                problems.append(
                    f"緊急程度「{value}」無法識別，請寫 特急 或 加急 / "
                    f"urgency {value!r} not understood; write 特急 (extra urgent) or 加急 (urgent)"
                )
        elif value:
            single[name] = value
    return Draft(
        title=title,
        urgency=urgency,
        important="important" in flags,
        special="special" in flags,
        to_units=tuple(lists["to_units"]),
        cc_units=tuple(lists["cc_units"]),
        scope=tuple(lists["scope"]),
        doc_type=single.get("doc_type"),
        deadline=single.get("deadline"),
        leave_type=single.get("leave_type"),
        period=single.get("period"),
        extra={k: v for k, v in single.items() if k in EXTRA_FIELDS},
        body=rest,
        unknown_keys=tuple(unknown),
        problems=tuple(problems),
    )


# --- Units ----------------------------------------------------------------------------------

#: Words that mean every unit of the organisation (compared after folding, as names are).
ALL_UNITS_WORDS: Final = frozenset(
    _key(word)
    for word in (
        "全局",
        "全局各單位",
        "全局各部門",
        "局屬各單位",
        "各單位",
        "全體",
        "all",
        "all units",
        "everyone",
    )
)


def resolve_units(
    refs: Iterable[str], directory: Directory
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The unit ids that ``refs`` name, and the refs that name no unit, both in order.

    A ref is a unit id (any case) or a unit name in either script, full- or half-width; one
    of :data:`ALL_UNITS_WORDS` names every unit, in id order. A name that fits two units is
    unknown, so that the author is asked to write the id.
    """
    by_id = {uid.casefold(): uid for uid in directory.units}
    by_name: dict[str, list[str]] = {}
    for unit in directory.units.values():
        by_name.setdefault(_key(unit.name), []).append(unit.id)
    ids: list[str] = []
    unknown: list[str] = []
    for ref in refs:
        text = ref.strip()
        key = _key(text)
        if key in ALL_UNITS_WORDS:
            found = sorted(directory.units)
        elif text.casefold() in by_id:
            found = [by_id[text.casefold()]]
        elif len(by_name.get(key, [])) == 1:
            found = by_name[key]
        else:
            if text not in unknown:
                unknown.append(text)
            continue
        ids.extend(uid for uid in found if uid not in ids)
    return tuple(ids), tuple(unknown)
