"""Loads yizhan.toml and checks every key against what is allowed.

The file is found at ``$YIZHAN_CONFIG``, else ``./yizhan.toml``, else the built-in defaults
apply. Relative paths are taken from the working directory, as the defaults (``./var``) are.
A bad key stops the program with a message that names the key and what it accepts.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import tomllib
import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from yizhan.daemon.config_ops import (
    OPS_SECTIONS,
    BackupConfig,
    JobsConfig,
    LogConfig,
    MetricsConfig,
    ProcessingConfig,
    RescanConfig,
    RetentionConfig,
    parse_backup,
    parse_jobs,
    parse_log,
    parse_metrics,
    parse_processing,
    parse_rescan,
    parse_retention,
)
from yizhan.daemon.config_values import ConfigError as ConfigError
from yizhan.daemon.config_values import _bool, _float, _int, _str, _str_list, _time
from yizhan.routing.calendar import WorkCalendar
from yizhan.routing.rules import DEFAULT_RULES, Rules, RulesError, rules_from_dict

#: Default local parts of the kind addresses (README, the table of addresses): pinyin first,
#: then the English alias.
DEFAULT_ADDRESSES: dict[str, tuple[str, ...]] = {
    "fawen": ("fawen", "outgoing"),
    "shouwen": ("shouwen", "incoming"),
    "qianbao": ("qianbao", "report"),
    "hanjian": ("hanjian", "letter"),
    "gonggao": ("gonggao", "bulletin"),
    "xiujia": ("xiujia", "leave"),
    "duban": ("duban", "supervise"),
    "xinxi": ("xinxi", "news"),
    "ziliao": ("ziliao", "materials"),
    "biangeng": ("biangeng", "change"),
    "baoxiu": ("baoxiu", "support"),
    "cmd": ("cmd",),
}

LANGUAGES = ("zh_CN", "zh_TW", "en")


@dataclass(frozen=True, kw_only=True)
class HostPort:
    """An address to listen on or to connect to."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True, kw_only=True)
class SmtpConfig:
    """The inbound SMTP listener."""

    listen: HostPort = HostPort(host="127.0.0.1", port=2525)
    hostname: str = "oa.example"
    max_message_size: int = 26_214_400
    trusted_relays: tuple[str, ...] = ()
    tls_cert: Path | None = None
    tls_key: Path | None = None
    max_connections: int = 200
    #: Yizhan's Postfix policy service (``gateway.policy``); None: not started.
    policy_listen: HostPort | None = None
    #: Connections one client address may hold at once (trusted relays are not limited).
    max_connections_per_client: int = 20
    #: RCPTs one transaction may name (RFC 5321 4.5.3.1.8: at least 100); more get 452.
    max_recipients: int = 100
    #: Replies to r+ addresses Yizhan never gave that one client address or account may send
    #: (within a day of each other) before its r+ recipients are refused (``routing.guessing``).
    reply_guess_limit: int = 5
    #: Seconds a connection may wait for its next command (NOOP included) before 421.
    idle_timeout: int = 300
    #: Seconds a connection that is neither authenticated nor from a trusted relay is kept:
    #: it can send nothing, so it only holds a slot.
    auth_timeout: int = 60


@dataclass(frozen=True, kw_only=True)
class RelayConfig:
    """Where outbound mail goes: a relay host, or local Maildirs when ``host`` is empty."""

    host: str = ""
    port: int = 25
    username: str = ""
    password: str = field(default="", repr=False)
    starttls: bool = False
    retry_days: float = 5.0
    first_retry_seconds: int = 60


@dataclass(frozen=True, kw_only=True)
class AccountsConfig:
    """Password and login policy (第十六條; mine rules 一(四))."""

    min_password_length: int = 8
    max_failed_logins: int = 5
    lockout_minutes: int = 15
    password_max_age_days: int = 90
    unused_days: int = 90


@dataclass(frozen=True, kw_only=True)
class CalendarConfig:
    """Working days and hours (第八條, 第二十條): days the admin adds to chinese-calendar's
    table, e.g. for a year the library does not know yet, and the working day's hours."""

    holidays: frozenset[dt.date] = frozenset()
    workdays: frozenset[dt.date] = frozenset()
    day_start: dt.time = dt.time(8, 30)
    day_end: dt.time = dt.time(17, 30)


@dataclass(frozen=True, kw_only=True)
class SigningConfig:
    """OpenPGP: where Yizhan's GnuPG home is, and which steps need a signed reply."""

    gnupg_home: Path
    require_signature: tuple[str, ...] = ("signoff", "seal")


@dataclass(frozen=True, kw_only=True)
class ToolsConfig:
    """The tools the IT department publishes at cmd@ (常用工具下載)."""

    #: The largest tool GET sends by mail, in bytes; a bigger one is fetched from IT in person.
    max_download: int = 20 * 1024 * 1024


@dataclass(frozen=True, kw_only=True)
class ImapConfig:
    """IMAP (issue 13): Yizhan's own Dovecot, or an existing one Yizhan files into."""

    #: Where Yizhan's own Dovecot listens; None: no Dovecot of its own.
    listen: HostPort | None = HostPort(host="127.0.0.1", port=1143)
    #: An existing Dovecot to file into as a master user instead; None: none.
    server: HostPort | None = None
    master_user: str = ""
    master_password_file: Path | None = None
    #: Dovecot's delay before answering a failed login, in seconds (0 for tests).
    auth_failure_delay: int = 2


@dataclass(frozen=True, kw_only=True)
class FetchConfig:
    """Fetch mode (issue 13): mail for Yizhan is read from a mailbox instead of routed to it."""

    server: HostPort | None = None
    account: str = ""
    password_file: Path | None = None
    folder: str = "INBOX"
    processed_folder: str = "Yizhan/Processed"
    #: The authserv-id of the Authentication-Results the server's MTA adds; "" trusts none.
    authserv_id: str = ""
    #: How often to look when the server has no IDLE, in seconds.
    poll_seconds: int = 60
    ssl: bool = False


@dataclass(frozen=True, kw_only=True)
class Config:
    """The whole, validated configuration."""

    source: Path | None
    data_dir: Path
    domain: str
    timezone: str
    secret: str = field(repr=False)
    language: str
    database_url: str
    smtp: SmtpConfig
    relay: RelayConfig
    admin_listen: HostPort
    accounts: AccountsConfig
    addresses: dict[str, tuple[str, ...]]
    signing: SigningConfig
    calendar: CalendarConfig = CalendarConfig()
    tools: ToolsConfig = field(default_factory=ToolsConfig)
    imap: ImapConfig = field(default_factory=ImapConfig)
    fetch: FetchConfig = field(default_factory=FetchConfig)
    #: Where mail links to the admin page (``[admin] public_url``), ending in "/".
    admin_public_url: str = "http://127.0.0.1:8080/"
    backup: BackupConfig = field(default_factory=BackupConfig)
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    log: LogConfig = field(default_factory=LogConfig)
    rescan: RescanConfig = field(default_factory=RescanConfig)
    processing: ProcessingConfig = field(default_factory=ProcessingConfig)
    jobs: JobsConfig = field(default_factory=JobsConfig)

    @property
    def tzinfo(self) -> zoneinfo.ZoneInfo:
        """The bureau's time zone."""
        return zoneinfo.ZoneInfo(self.timezone)

    def work_calendar(self) -> WorkCalendar:
        """The bureau's working days, in its time zone, with the admin's ``[calendar]``."""
        c = self.calendar
        return WorkCalendar(
            tz=self.tzinfo,
            extra_holidays=c.holidays,
            extra_workdays=c.workdays,
            day_start=c.day_start,
            day_end=c.day_end,
        )

    @property
    def maildir_root(self) -> Path:
        """Where mail is delivered when no relay host is configured."""
        return self.data_dir / "maildirs"

    @property
    def rules_file(self) -> Path:
        """The admin-edited workflow rules; the built-in rules apply when it does not exist."""
        return self.data_dir / "rules.toml"

    @property
    def secret_file(self) -> Path:
        """Where ``yizhan init`` keeps a generated secret when the config file has none."""
        return self.data_dir / "secret"


_SECTIONS: dict[str, set[str]] = {
    "yizhan": {"data_dir", "domain", "timezone", "secret", "language"},
    "database": {"url"},
    "smtp": {
        "listen",
        "hostname",
        "max_message_size",
        "trusted_relays",
        "tls_cert",
        "tls_key",
        "max_connections",
        "policy_listen",
        "max_connections_per_client",
        "max_recipients",
        "reply_guess_limit",
        "idle_timeout",
        "auth_timeout",
    },
    "relay": {
        "host",
        "port",
        "username",
        "password",
        "starttls",
        "retry_days",
        "first_retry_seconds",
    },
    "admin": {"listen", "public_url"},
    "accounts": {
        "min_password_length",
        "max_failed_logins",
        "lockout_minutes",
        "password_max_age_days",
        "unused_days",
    },
    "calendar": {"holidays", "workdays", "day_start", "day_end"},
    "addresses": set(DEFAULT_ADDRESSES),
    "signing": {"gnupg_home", "require_signature"},
    "tools": {"max_download"},
    "imap": {"listen", "server", "master_user", "master_password_file", "auth_failure_delay"},
    "fetch": {
        "server",
        "account",
        "password_file",
        "folder",
        "processed_folder",
        "authserv_id",
        "poll_seconds",
        "ssl",
    },
    **OPS_SECTIONS,
}


def config_path() -> Path | None:
    """The config file in force: ``$YIZHAN_CONFIG``, else ./yizhan.toml if it exists."""
    env = os.environ.get("YIZHAN_CONFIG")
    if env:
        return Path(env)
    local = Path("yizhan.toml")
    return local if local.exists() else None


def load_config(path: Path | None = None) -> Config:
    """Read and validate the configuration; raise :class:`ConfigError` on the first bad key."""
    path = path if path is not None else config_path()
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError("(file)", f"{path} does not exist") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError("(file)", f"{path} is not valid TOML: {exc}") from exc
    return parse_config(raw, source=path)


def parse_config(raw: dict[str, Any], *, source: Path | None = None) -> Config:
    """Validate a parsed TOML document and fill in the defaults."""
    for section, value in raw.items():
        if section not in _SECTIONS:
            raise ConfigError(section, f"unknown section; allowed: {', '.join(sorted(_SECTIONS))}")
        if not isinstance(value, dict):
            raise ConfigError(section, "must be a table, e.g. [" + section + "]")
        for key in value:
            if key not in _SECTIONS[section]:
                allowed = ", ".join(sorted(_SECTIONS[section]))
                raise ConfigError(f"{section}.{key}", f"unknown key; allowed: {allowed}")

    top = raw.get("yizhan", {})
    data_dir = Path(_str(top, "yizhan.data_dir", "./var"))
    domain = _str(top, "yizhan.domain", "oa.example").lower()
    if "." not in domain or " " in domain or "@" in domain:
        raise ConfigError("yizhan.domain", f"{domain!r} is not a domain name such as oa.example")
    tz = _str(top, "yizhan.timezone", "Asia/Shanghai")
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError("yizhan.timezone", f"{tz!r} is not an IANA time zone") from exc
    language = _str(top, "yizhan.language", "zh_CN")
    if language not in LANGUAGES:
        raise ConfigError("yizhan.language", f"{language!r}; allowed: {', '.join(LANGUAGES)}")
    secret = _str(top, "yizhan.secret", "")
    if not secret:
        secret = _read_secret_file(data_dir / "secret")
    elif len(secret) < 16:
        raise ConfigError("yizhan.secret", "must be at least 16 characters")

    db = raw.get("database", {})
    url = _str(db, "database.url", f"sqlite:///{data_dir / 'yizhan.db'}")
    try:
        parsed_url = make_url(url)
    except ArgumentError as exc:
        raise ConfigError("database.url", f"{url!r} is not an SQLAlchemy URL") from exc
    if parsed_url.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigError("database.url", "only sqlite:/// and postgresql+psycopg:// are supported")

    s = raw.get("smtp", {})
    smtp = SmtpConfig(
        listen=_listen(s, "smtp.listen", "127.0.0.1:2525"),
        hostname=_str(s, "smtp.hostname", domain),
        max_message_size=_int(s, "smtp.max_message_size", 26_214_400, low=1024),
        trusted_relays=tuple(_str_list(s, "smtp.trusted_relays")),
        tls_cert=_path_or_none(s, "smtp.tls_cert", data_dir / "tls" / "cert.pem"),
        tls_key=_path_or_none(s, "smtp.tls_key", data_dir / "tls" / "key.pem"),
        max_connections=_int(s, "smtp.max_connections", 200, low=1),
        policy_listen=(
            _listen(s, "smtp.policy_listen", "127.0.0.1:10040")
            if _str(s, "smtp.policy_listen", "")
            else None
        ),
        max_connections_per_client=_int(s, "smtp.max_connections_per_client", 20, low=1),
        max_recipients=_int(s, "smtp.max_recipients", 100, low=1),
        reply_guess_limit=_int(s, "smtp.reply_guess_limit", 5, low=1),
        idle_timeout=_int(s, "smtp.idle_timeout", 300, low=1),
        auth_timeout=_int(s, "smtp.auth_timeout", 60, low=1),
    )

    r = raw.get("relay", {})
    relay = RelayConfig(
        host=_str(r, "relay.host", ""),
        port=_int(r, "relay.port", 25, low=1, high=65535),
        username=_str(r, "relay.username", ""),
        password=_str(r, "relay.password", ""),
        starttls=_bool(r, "relay.starttls", False),
        retry_days=_float(r, "relay.retry_days", 5.0, low=0.0),
        first_retry_seconds=_int(r, "relay.first_retry_seconds", 60, low=1),
    )

    a = raw.get("accounts", {})
    accounts = AccountsConfig(
        min_password_length=_int(a, "accounts.min_password_length", 8, low=6),
        max_failed_logins=_int(a, "accounts.max_failed_logins", 5, low=1),
        lockout_minutes=_int(a, "accounts.lockout_minutes", 15, low=1),
        password_max_age_days=_int(a, "accounts.password_max_age_days", 90, low=1),
        unused_days=_int(a, "accounts.unused_days", 90, low=1),
    )

    c = raw.get("calendar", {})
    calendar = CalendarConfig(
        holidays=frozenset(_dates(c, "calendar.holidays")),
        workdays=frozenset(_dates(c, "calendar.workdays")),
        day_start=_time(c, "calendar.day_start", "08:30"),
        day_end=_time(c, "calendar.day_end", "17:30"),
    )
    both = calendar.holidays & calendar.workdays
    if both:
        days = ", ".join(sorted(d.isoformat() for d in both))
        raise ConfigError("calendar.workdays", f"also listed in calendar.holidays: {days}")
    if calendar.day_start >= calendar.day_end:
        raise ConfigError("calendar.day_end", "must come after calendar.day_start")

    addresses = dict(DEFAULT_ADDRESSES)
    seen: dict[str, str] = {}
    for kind, parts in raw.get("addresses", {}).items():
        key = f"addresses.{kind}"
        if isinstance(parts, str):
            parts = [parts]
        if not isinstance(parts, list) or not parts or not all(isinstance(p, str) for p in parts):
            raise ConfigError(key, "must be a local part or a list of local parts")
        addresses[kind] = tuple(p.lower() for p in parts)
    for kind, parts in addresses.items():
        for part in parts:
            if part in seen:
                raise ConfigError(f"addresses.{kind}", f"{part!r} is already used by {seen[part]}")
            seen[part] = kind

    g = raw.get("signing", {})
    signing = SigningConfig(
        gnupg_home=Path(_str(g, "signing.gnupg_home", str(data_dir / "gnupg"))),
        require_signature=tuple(
            _str_list(g, "signing.require_signature")
            if "require_signature" in g
            else ("signoff", "seal")
        ),
    )

    tools = ToolsConfig(
        max_download=_int(
            raw.get("tools", {}), "tools.max_download", ToolsConfig.max_download, low=1024
        )
    )

    admin = raw.get("admin", {})
    admin_listen = _listen(admin, "admin.listen", "127.0.0.1:8080")
    public_host = "127.0.0.1" if admin_listen.host in ("0.0.0.0", "::") else admin_listen.host
    public_url = _str(admin, "admin.public_url", f"http://{public_host}:{admin_listen.port}/")
    if not public_url.startswith(("http://", "https://")) or " " in public_url:
        raise ConfigError("admin.public_url", f"{public_url!r} must be an http:// or https:// URL")

    return Config(
        source=source,
        data_dir=data_dir,
        domain=domain,
        timezone=tz,
        secret=secret,
        language=language,
        database_url=url,
        smtp=smtp,
        relay=relay,
        admin_listen=admin_listen,
        admin_public_url=public_url.rstrip("/") + "/",
        accounts=accounts,
        addresses=addresses,
        signing=signing,
        calendar=calendar,
        tools=tools,
        imap=_imap(raw.get("imap", {})),
        fetch=_fetch(raw.get("fetch", {})),
        backup=parse_backup(raw.get("backup", {})),
        retention=parse_retention(raw.get("retention", {})),
        metrics=parse_metrics(raw.get("metrics", {})),
        log=parse_log(raw.get("log", {})),
        rescan=parse_rescan(raw.get("rescan", {})),
        processing=parse_processing(raw.get("processing", {})),
        jobs=parse_jobs(raw.get("jobs", {})),
    )


def _imap(table: dict[str, Any]) -> ImapConfig:
    listen = _str(table, "imap.listen", "127.0.0.1:1143")
    server = _str(table, "imap.server", "")
    master_user = _str(table, "imap.master_user", "")
    password_file = _str(table, "imap.master_password_file", "")
    if server and not (master_user and password_file):
        raise ConfigError(
            "imap.server", "needs imap.master_user and imap.master_password_file to file into it"
        )
    own = _listen(table, "imap.listen", "127.0.0.1:1143") if listen else None
    if own is not None and own.port == 0:
        raise ConfigError("imap.listen", 'needs a port, e.g. 127.0.0.1:1143 (or "" for none)')
    return ImapConfig(
        listen=own,
        server=_listen(table, "imap.server", "imap.example:143") if server else None,
        master_user=master_user,
        master_password_file=Path(password_file) if password_file else None,
        auth_failure_delay=_int(table, "imap.auth_failure_delay", 2, low=0, high=15),
    )


def _fetch(table: dict[str, Any]) -> FetchConfig:
    server = _str(table, "fetch.server", "")
    account = _str(table, "fetch.account", "")
    password_file = _str(table, "fetch.password_file", "")
    if server and not (account and password_file):
        raise ConfigError("fetch.server", "needs fetch.account and fetch.password_file")
    folder = _str(table, "fetch.folder", "INBOX")
    processed = _str(table, "fetch.processed_folder", "Yizhan/Processed")
    if not folder or not processed or folder == processed:
        raise ConfigError("fetch.processed_folder", "must be a folder other than fetch.folder")
    return FetchConfig(
        server=_listen(table, "fetch.server", "imap.example:143") if server else None,
        account=account,
        password_file=Path(password_file) if password_file else None,
        folder=folder,
        processed_folder=processed,
        authserv_id=_str(table, "fetch.authserv_id", ""),
        poll_seconds=_int(table, "fetch.poll_seconds", 60, low=1),
        ssl=_bool(table, "fetch.ssl", False),
    )


def load_rules(config: Config) -> Rules:
    """The workflow rules in force: the rules file over the built-in defaults."""
    path = config.rules_file
    if not path.exists():
        return DEFAULT_RULES
    return rules_from_text(path.read_text(encoding="utf-8"), path)


def rules_from_text(text: str, path: Path) -> Rules:
    """The workflow rules a rules file's ``text`` gives (``path`` names it in the errors)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("rules", f"{path} is not valid TOML: {exc}") from exc
    try:
        # The [content] table is the gateway's (daemon/screening/), not the workflows'.
        return rules_from_dict({k: v for k, v in data.items() if k != "content"})
    except RulesError as exc:
        raise ConfigError("rules", f"{path}: {exc}") from exc


def new_secret() -> str:
    """A fresh random instance secret for reply-token HMACs."""
    return secrets.token_urlsafe(32)


def _read_secret_file(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return ""


def _dates(table: dict[str, Any], key: str) -> list[dt.date]:
    # TOML dates (2027-10-08) and strings ("2027-10-08") are both taken.
    values = table.get(key.rsplit(".", 1)[1], [])
    if not isinstance(values, list):
        raise ConfigError(key, "must be a list of dates, e.g. [2027-10-08]")
    days = []
    for value in values:
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            days.append(value)
            continue
        try:
            days.append(dt.date.fromisoformat(str(value)))
        except ValueError as exc:
            raise ConfigError(key, f"{value!r} is not a date such as 2027-10-08") from exc
    return days


def _path_or_none(table: dict[str, Any], key: str, default: Path) -> Path | None:
    value = _str(table, key, str(default))
    return Path(value) if value else None


def _listen(table: dict[str, Any], key: str, default: str) -> HostPort:
    value = _str(table, key, default)
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ConfigError(key, f"{value!r} must be host:port (port 0-65535), e.g. {default}")
    return HostPort(host=host, port=int(port))
