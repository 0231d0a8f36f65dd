"""Reads the ``[content]`` table of the rules file into :class:`ContentRules`, checking every key.

The IT department edits these words, patterns, types and limits (``<data_dir>/rules.toml``);
``yizhan check`` reports what :func:`content_from_dict` refuses and what
:func:`content_warnings` finds doubtful. Pure: it takes the parsed table, never the file.

```toml
[content]
domains = ["bureau.example"]     # the organisation's mail domains besides the OA domain
tools = []                       # SHA-256 of programs the IT department publishes as tools
forbidden_words = []             # unlawful content (第十三條; mine rules 一(六))

[content.markings]               # classified markings (第十四條)
levels = ["絕密", "绝密", "機密", "机密", "秘密"]
tags = ["涉密"]
head_lines = 10

[content.types]
allowed = ["pdf", "docx", "zip", "png", …]

[content.sizes]                  # per kind: bytes, or "20M", "512K"
document = "20M"

[content.archives]
max_depth = 3

[content.scanner]                # clamd
socket = "/var/run/clamav/clamd.ctl"
```
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final, TypeVar

from yizhan.routing.content.kinds import KINDS, TYPES

__all__ = [
    "DEFAULT_CONTENT",
    "ArchiveLimits",
    "ContentRules",
    "ContentRulesError",
    "ForwardMarkers",
    "MarkingWords",
    "Materials",
    "ScannerSettings",
    "TypePolicy",
    "content_from_dict",
    "content_warnings",
    "parse_size",
]

KiB: Final = 1024
MiB: Final = 1024 * KiB
GiB: Final = 1024 * MiB

_T = TypeVar("_T")


class ContentRulesError(ValueError):
    """The ``[content]`` table cannot be used; ``problems`` lists each thing wrong with it."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True, kw_only=True)
class MarkingWords:
    """How classified markings (密級標誌, GB/T 9704) are written; see ``content.markings``."""

    #: The three levels (絕密, 機密, 秘密) in both scripts.
    levels: tuple[str, ...] = ("絕密", "绝密", "機密", "机密", "秘密")
    #: Words that mark classified material as a tag, though they are not a level.
    tags: tuple[str, ...] = ("涉密",)
    #: The star between a level and its period (秘密★1年).
    stars: tuple[str, ...] = ("★", "☆")
    #: Names of document properties that hold a classification.
    property_names: tuple[str, ...] = (
        "密級",
        "密级",
        "密級和保密期限",
        "密级和保密期限",
        "保密級別",
        "保密级别",
        "保密等級",
        "保密等级",
        "classification",
        "security classification",
    )
    #: Extra regular expressions: a match anywhere is a marking.
    patterns: tuple[str, ...] = ()
    #: How many non-empty lines at the top of a body or document are its head.
    head_lines: int = 10


@dataclass(frozen=True, kw_only=True)
class TypePolicy:
    """Which sniffed types are accepted, and what is done with files that cannot be read."""

    allowed: frozenset[str] = frozenset(
        t for t, info in TYPES.items() if info.kind in ("document", "image", "text", "media")
    ) | frozenset({"zip", "message"})
    #: Refuse a file whose content cannot be read (so cannot be checked for markings).
    refuse_unreadable: bool = True
    #: Refuse encrypted documents and archives (they cannot be checked or scanned).
    refuse_encrypted: bool = True
    #: Accept PDFs that carry JavaScript or launch actions.
    pdf_javascript: bool = False


@dataclass(frozen=True, kw_only=True)
class ArchiveLimits:
    """Limits on zip archives, so that a zip bomb is refused before it is expanded."""

    #: Archives inside archives: 1 allows a zip holding no zip.
    max_depth: int = 3
    max_members: int = 1000
    #: Declared uncompressed bytes of the whole tree.
    max_expanded: int = 200 * MiB
    #: Uncompressed/compressed ratio of one member.
    max_ratio: float = 100.0
    #: Members smaller than this are not counted for the ratio (tiny files compress well).
    ratio_floor: int = 1 * MiB
    #: The largest member that is read (documents inside are checked for markings).
    max_member: int = 50 * MiB


@dataclass(frozen=True, kw_only=True)
class ScannerSettings:
    """Where clamd listens: a unix socket, or ``host``:``port`` when host is set."""

    socket: str = "/var/run/clamav/clamd.ctl"
    host: str = ""
    port: int = 3310
    #: Seconds one scan may take before the scanner counts as unavailable.
    timeout: float = 60.0
    #: Off only for a demo without clamd: every attachment then goes unscanned.
    enabled: bool = True


@dataclass(frozen=True, kw_only=True)
class Materials:
    """What counts as internal material that never leaves the organisation (第十七條)."""

    #: The organisation's mail domains besides the OA domain; when empty, the domains of the
    #: directory's mailboxes that are not public mail services.
    domains: tuple[str, ...] = ()
    #: Modules whose mail is internal material (mail to or from their addresses).
    modules: tuple[str, ...] = ("ziliao",)
    #: Words in a subject, file name or document title that make it internal material.
    words: tuple[str, ...] = (
        "操作手冊",
        "操作手册",
        "使用手冊",
        "使用手册",
        "用戶手冊",
        "用户手册",
        "技術文檔",
        "技术文档",
        "技術資料",
        "技术资料",
        "內部資料",
        "内部资料",
        "辦公軟件",
        "办公软件",
        "OA系統",
        "OA系统",
    )


@dataclass(frozen=True, kw_only=True)
class ForwardMarkers:
    """How a forwarded document shows itself in a department letter (第二十二條)."""

    #: A subject that forwards: Fwd:, FW:, 轉發：, 关于转发….
    subject: str = (
        r"^\s*(?:(?:re|回復|回复|答復|答复)\s*[:：]\s*)*"
        r"(?:(?:fwd?|fw|轉發|转发|轉寄|转寄)\s*[:：]|[\[【(]\s*(?:轉發|转发)\s*[\]】)]"
        r"|(?:關於|关于)?\s*(?:轉發|转发))"
    )
    #: Lines mail clients put above a forwarded mail.
    lines: tuple[str, ...] = (
        r"^-{2,}\s*(?:forwarded message|original message|轉發郵件|转发邮件|轉發的郵件|转发的邮件"
        r"|轉寄郵件|转寄邮件|原始郵件|原始邮件)[^-]*-{2,}$",
        r"^begin forwarded message:$",
        r"^-{2,}\s*(?:轉發郵件信息|转发邮件信息|轉寄郵件資訊)\s*-{2,}$",
    )
    #: A document number (發文字號): 機關代字〔年份〕序號號.
    number: str = (
        r"[\u4e00-\u9fff]{1,12}\s*[〔\[［【(（]\s*(?:19|20)\d{2}\s*[〕\]］】)）]\s*(?:第\s*)?"
        r"\d{1,5}\s*[號号]"
    )


@dataclass(frozen=True, kw_only=True)
class ContentRules:
    """Everything the content rules are configured with."""

    markings: MarkingWords = field(default_factory=MarkingWords)
    types: TypePolicy = field(default_factory=TypePolicy)
    #: The largest attachment of each kind, in bytes.
    sizes: Mapping[str, int] = field(
        default_factory=lambda: MappingProxyType(
            {
                "document": 20 * MiB,
                "image": 10 * MiB,
                "archive": 20 * MiB,
                "text": 5 * MiB,
                "media": 25 * MiB,
                "message": 20 * MiB,
                "executable": 20 * MiB,
                "other": 10 * MiB,
            }
        )
    )
    archives: ArchiveLimits = field(default_factory=ArchiveLimits)
    scanner: ScannerSettings = field(default_factory=ScannerSettings)
    materials: Materials = field(default_factory=Materials)
    forwarded: ForwardMarkers = field(default_factory=ForwardMarkers)
    #: Words of unlawful content (第十三條; mine rules 一(六)); empty by default.
    forbidden_words: tuple[str, ...] = ()
    #: SHA-256 digests (lower-case hex) of the programs the IT department publishes as tools.
    tools: frozenset[str] = frozenset()


#: The rules in force when the rules file has no ``[content]`` table.
DEFAULT_CONTENT: Final = ContentRules()

_SIZE: Final = re.compile(r"^\s*(?P<n>\d+(?:\.\d+)?)\s*(?P<unit>[KMG]?)(?:i?B)?\s*$", re.I)
_DOMAIN: Final = re.compile(r"^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9-]+)+$")
_SHA256: Final = re.compile(r"^[0-9a-f]{64}$")

_TOP_KEYS: Final = {
    "domains",
    "tools",
    "forbidden_words",
    "markings",
    "types",
    "sizes",
    "archives",
    "scanner",
    "materials",
    "forwarded",
}


def parse_size(value: object) -> int:
    """Bytes from a whole number or a string such as "20M", "512 KiB", "1G"; ValueError if not."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a size")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"{value} is negative")
        return value
    if isinstance(value, str):
        match = _SIZE.match(value)
        if match:
            factor = {"": 1, "K": KiB, "M": MiB, "G": GiB}[match["unit"].upper()]
            return int(float(match["n"]) * factor)
    raise ValueError(f'{value!r} is not a size; write bytes or e.g. "20M", "512K"')


def content_from_dict(raw: Mapping[str, Any]) -> ContentRules:
    """The content rules from a parsed ``[content]`` table, defaults for what it leaves out.

    Raises :class:`ContentRulesError` listing every problem (unknown keys, wrong types,
    patterns that do not compile, unknown types and kinds, out-of-range limits).
    """
    p = _Problems()
    for key in raw:
        if key not in _TOP_KEYS:
            p.add(f"content: unknown key {key!r}; allowed: {', '.join(sorted(_TOP_KEYS))}")
    d = DEFAULT_CONTENT

    m = p.table(raw, "markings", _fields(MarkingWords))
    markings = MarkingWords(
        levels=p.words(m, "markings.levels", d.markings.levels),
        tags=p.words(m, "markings.tags", d.markings.tags, empty_ok=True),
        stars=p.words(m, "markings.stars", d.markings.stars),
        property_names=p.words(m, "markings.property_names", d.markings.property_names),
        patterns=p.patterns(m, "markings.patterns", d.markings.patterns),
        head_lines=p.integer(m, "markings.head_lines", d.markings.head_lines, low=1, high=200),
    )

    t = p.table(raw, "types", _fields(TypePolicy))
    allowed = p.words(t, "types.allowed", tuple(sorted(d.types.allowed)), empty_ok=True)
    for name in allowed:
        if name not in TYPES:
            p.add(f"content.types.allowed: unknown type {name!r}; known: {', '.join(TYPES)}")
    types = TypePolicy(
        allowed=frozenset(allowed),
        refuse_unreadable=p.boolean(t, "types.refuse_unreadable", d.types.refuse_unreadable),
        refuse_encrypted=p.boolean(t, "types.refuse_encrypted", d.types.refuse_encrypted),
        pdf_javascript=p.boolean(t, "types.pdf_javascript", d.types.pdf_javascript),
    )

    s = p.table(raw, "sizes", set(KINDS))
    sizes = dict(d.sizes)
    for kind, value in s.items():
        if kind in KINDS:
            sizes[kind] = p.size_value(f"sizes.{kind}", value, sizes[kind])

    a = p.table(raw, "archives", _fields(ArchiveLimits))
    archives = ArchiveLimits(
        max_depth=p.integer(a, "archives.max_depth", d.archives.max_depth, low=1, high=20),
        max_members=p.integer(a, "archives.max_members", d.archives.max_members, low=1),
        max_expanded=p.size(a, "archives.max_expanded", d.archives.max_expanded),
        max_ratio=p.number(a, "archives.max_ratio", d.archives.max_ratio, low=2.0),
        ratio_floor=p.size(a, "archives.ratio_floor", d.archives.ratio_floor),
        max_member=p.size(a, "archives.max_member", d.archives.max_member),
    )

    c = p.table(raw, "scanner", _fields(ScannerSettings))
    scanner = ScannerSettings(
        socket=p.string(c, "scanner.socket", d.scanner.socket),
        host=p.string(c, "scanner.host", d.scanner.host),
        port=p.integer(c, "scanner.port", d.scanner.port, low=1, high=65535),
        timeout=p.number(c, "scanner.timeout", d.scanner.timeout, low=1.0),
        enabled=p.boolean(c, "scanner.enabled", d.scanner.enabled),
    )
    if scanner.enabled and not scanner.host and not scanner.socket:
        p.add("content.scanner: give socket (a unix socket path) or host and port")

    mt = p.table(raw, "materials", _fields(Materials) - {"domains"})
    domains = tuple(
        x.lower().rstrip(".") for x in p.words(raw, "domains", d.materials.domains, empty_ok=True)
    )
    for domain in domains:
        if not _DOMAIN.match(domain):
            p.add(f"content.domains: {domain!r} is not a domain name such as bureau.example")
    materials = Materials(
        domains=domains,
        modules=p.words(mt, "materials.modules", d.materials.modules, empty_ok=True),
        words=p.words(mt, "materials.words", d.materials.words, empty_ok=True),
    )

    f = p.table(raw, "forwarded", _fields(ForwardMarkers))
    forwarded = ForwardMarkers(
        subject=p.pattern(f, "forwarded.subject", d.forwarded.subject),
        lines=p.patterns(f, "forwarded.lines", d.forwarded.lines),
        number=p.pattern(f, "forwarded.number", d.forwarded.number),
    )

    tools = tuple(t.lower() for t in p.words(raw, "tools", (), empty_ok=True))
    for digest in tools:
        if not _SHA256.match(digest):
            p.add(f"content.tools: {digest!r} is not a SHA-256 digest (64 hex digits)")

    rules = ContentRules(
        markings=markings,
        types=types,
        sizes=MappingProxyType(sizes),
        archives=archives,
        scanner=scanner,
        materials=materials,
        forwarded=forwarded,
        forbidden_words=p.words(raw, "forbidden_words", (), empty_ok=True),
        tools=frozenset(tools),
    )
    if p.problems:
        raise ContentRulesError(p.problems)
    return rules


def content_warnings(rules: ContentRules) -> list[str]:
    """Settings that are allowed but weaken a regulation, one line each (for ``yizhan check``)."""
    warnings = []
    if not rules.scanner.enabled:
        warnings.append(
            "content.scanner.enabled is false: attachments are not virus-scanned "
            "(第十一條; mine rules 一(八))"
        )
    executable = sorted(t for t in rules.types.allowed if TYPES[t].kind == "executable")
    if executable:
        warnings.append(
            f"content.types.allowed lets programs through ({', '.join(executable)}); "
            "publish tools by digest in content.tools instead"
        )
    if not rules.types.refuse_unreadable or not rules.types.refuse_encrypted:
        warnings.append(
            "content.types: unreadable or encrypted files are accepted, so their markings "
            "are not checked (第十四條)"
        )
    return warnings


# --- Reading values -------------------------------------------------------------------------------


def _fields(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


class _Problems:
    """Collects every problem of a table instead of stopping at the first."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def add(self, problem: str) -> None:
        self.problems.append(problem)

    def table(self, raw: Mapping[str, Any], name: str, keys: set[str]) -> Mapping[str, Any]:
        value = raw.get(name, {})
        if not isinstance(value, Mapping):
            self.add(f"content.{name} must be a table, e.g. [content.{name}]")
            return {}
        for key in value:
            if key not in keys:
                self.add(f"content.{name}: unknown key {key!r}; allowed: {', '.join(sorted(keys))}")
        return value

    def _get(
        self,
        raw: Mapping[str, Any],
        key: str,
        default: _T,
        convert: Callable[[Any], _T],
        expected: str,
    ) -> _T:
        name = key.rsplit(".", 1)[-1]
        if name not in raw:
            return default
        try:
            return convert(raw[name])
        except (TypeError, ValueError) as exc:
            detail = f" ({exc})" if str(exc) else ""
            self.add(f"content.{key} must be {expected}{detail}")
            return default

    def words(
        self,
        raw: Mapping[str, Any],
        key: str,
        default: tuple[str, ...],
        *,
        empty_ok: bool = False,
    ) -> tuple[str, ...]:
        def convert(value: Any) -> tuple[str, ...]:
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                raise TypeError("")
            if not value and not empty_ok:
                raise ValueError("it may not be empty")
            return tuple(dict.fromkeys(v.strip() for v in value if v.strip()))

        return self._get(raw, key, default, convert, "a list of non-empty strings")

    def pattern(self, raw: Mapping[str, Any], key: str, default: str) -> str:
        def convert(value: Any) -> str:
            if not isinstance(value, str):
                raise TypeError("")
            return _compiles(value)

        return self._get(raw, key, default, convert, "a regular expression")

    def patterns(
        self, raw: Mapping[str, Any], key: str, default: tuple[str, ...]
    ) -> tuple[str, ...]:
        def convert(value: Any) -> tuple[str, ...]:
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                raise TypeError("")
            return tuple(_compiles(v) for v in value)

        return self._get(raw, key, default, convert, "a list of regular expressions")

    def integer(
        self, raw: Mapping[str, Any], key: str, default: int, *, low: int, high: int | None = None
    ) -> int:
        def convert(value: Any) -> int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError("")
            if value < low or (high is not None and value > high):
                bound = f"from {low} to {high}" if high is not None else f"at least {low}"
                raise ValueError(f"{value} is out of range; allowed: {bound}")
            return value

        return self._get(raw, key, default, convert, "a whole number")

    def number(self, raw: Mapping[str, Any], key: str, default: float, *, low: float) -> float:
        def convert(value: Any) -> float:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError("")
            if value < low:
                raise ValueError(f"{value} is below {low}")
            return float(value)

        return self._get(raw, key, default, convert, "a number")

    def boolean(self, raw: Mapping[str, Any], key: str, default: bool) -> bool:
        def convert(value: Any) -> bool:
            if not isinstance(value, bool):
                raise TypeError("")
            return value

        return self._get(raw, key, default, convert, "true or false")

    def string(self, raw: Mapping[str, Any], key: str, default: str) -> str:
        def convert(value: Any) -> str:
            if not isinstance(value, str):
                raise TypeError("")
            return value

        return self._get(raw, key, default, convert, "a string")

    def size(self, raw: Mapping[str, Any], key: str, default: int) -> int:
        return self._get(raw, key, default, parse_size, 'a size such as 1048576 or "20M"')

    def size_value(self, key: str, value: Any, default: int) -> int:
        return self.size({key.rsplit(".", 1)[-1]: value}, key, default)


def _compiles(pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"{pattern!r} does not compile: {exc}") from exc
    return pattern
