"""Shared fixtures: a fresh database (SQLite or PostgreSQL, chosen by $YIZHAN_TEST_DB), a data
directory, a Context and the demo bureau.

``make test`` runs the suite twice: ``YIZHAN_TEST_DB=sqlite`` and ``YIZHAN_TEST_DB=postgresql``.
On PostgreSQL each test gets its own schema in the ``test`` database, dropped afterwards.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import tomllib
import uuid
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from sqlalchemy import create_engine, text

from yizhan.daemon.config import Config, parse_config
from yizhan.daemon.context import Context
from yizhan.mailstore.db import upgrade
from yizhan.mailstore.directory import import_directory
from yizhan.routing.directory import parse_org
from yizhan.signing.keyring import Keyring

PG_BASE = os.environ.get("YIZHAN_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
TEST_SECRET = "test-secret-0123456789abcdef"

# Hypothesis checks properties, not speed: its per-example deadline turns a busy CI machine into
# failures (a token test took 260 ms once while both suites ran side by side). Speed is measured
# in bench/, never in a timed test.
settings.register_profile("yizhan", deadline=None)
settings.load_profile("yizhan")


def backend() -> str:
    """The database backend this run of the suite uses."""
    return os.environ.get("YIZHAN_TEST_DB", "sqlite")


@contextlib.contextmanager
def fresh_database(tmp_path: Path, name: str = "yizhan") -> Iterator[str]:
    """An empty database for the backend under test, dropped afterwards; yields its URL."""
    if backend() == "postgresql":
        schema = f"t_{uuid.uuid4().hex[:12]}"
        admin = create_engine(PG_BASE, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        try:
            yield f"{PG_BASE}?options=-csearch_path%3D{schema}"
        finally:
            with admin.connect() as conn:
                conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
            admin.dispose()
    else:
        yield f"sqlite:///{tmp_path / 'var' / f'{name}.db'}"


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    """A URL of an empty database that lives as long as the test."""
    with fresh_database(tmp_path) as url:
        yield url


def short_dir() -> Path:
    """A directory with a short path: gpg-agent's socket paths must fit in 107 bytes."""
    return Path(tempfile.mkdtemp(prefix="yz", dir="/tmp"))


def make_config(tmp_path: Path, database_url: str, **sections: dict[str, Any]) -> Config:
    """A config for a test: data in tmp_path/var, the given database, overrides by section."""
    raw: dict[str, Any] = {
        "signing": {"gnupg_home": str(short_dir() / "gnupg")},
        "yizhan": {"data_dir": str(tmp_path / "var"), "secret": TEST_SECRET},
        "database": {"url": database_url},
        "smtp": {"listen": "127.0.0.1:0"},
        "admin": {"listen": "127.0.0.1:0"},
        # No Dovecot unless a test asks for one (tests/daemon/imap start their own).
        "imap": {"listen": ""},
        # The processor in a thread of the in-process daemon (tests/daemon/test_workers.py
        # and the tests that start `yizhan serve` run it in processes).
        "processing": {"workers": 0},
    }
    for name, values in sections.items():
        raw.setdefault(name, {}).update(values)
    return parse_config(raw)


@pytest.fixture
def config(tmp_path: Path, database_url: str) -> Config:
    """The test's configuration."""
    return make_config(tmp_path, database_url)


@pytest.fixture(scope="session")
def system_key_home() -> Iterator[Path]:
    """A GnuPG home holding Yizhan's system key, made once per run and copied per test."""
    base = short_dir()
    keyring = Keyring(base / "gnupg")
    keyring.ensure_system_key("oa.example")
    keyring.close()
    yield base / "gnupg"
    shutil.rmtree(base, ignore_errors=True)


def seed_keyring(config: Config, template: Path) -> None:
    """Give a test's instance the system key, as `yizhan init` would."""
    shutil.copytree(
        template,
        config.signing.gnupg_home,
        ignore=shutil.ignore_patterns("S.*", "*.lock", ".#*", "*.tmp"),
    )


@pytest.fixture
def ctx(config: Config, system_key_home: Path) -> Iterator[Context]:
    """A migrated, empty Yizhan with its system key."""
    seed_keyring(config, system_key_home)
    context = Context.open(config)
    upgrade(context.engine)
    context.raw.prepare()
    yield context
    context.close()
    shutil.rmtree(config.signing.gnupg_home.parent, ignore_errors=True)


def demo_org() -> dict[str, Any]:
    """The demo bureau's organisation file, parsed."""
    text_ = (resources.files("yizhan.demo") / "bureau.toml").read_text(encoding="utf-8")
    return tomllib.loads(text_)


@pytest.fixture
def bureau(ctx: Context) -> Context:
    """A Yizhan holding the demo bureau (accounts without passwords)."""
    with ctx.sessions.begin() as session:
        import_directory(session, parse_org(demo_org()), actor="test", now=ctx.clock())
    return ctx
