"""What every part of a running Yizhan shares: config, database, raw store and clock."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from yizhan.daemon.config import Config
from yizhan.mailstore.db import make_engine, make_sessionmaker
from yizhan.mailstore.rawstore import RawStore
from yizhan.routing.passwords import LoginPolicy


def system_clock() -> dt.datetime:
    """Now, in UTC."""
    return dt.datetime.now(dt.UTC)


@dataclass(kw_only=True)
class Context:
    """The shared handles of one Yizhan process; built once, passed to each part."""

    config: Config
    engine: Engine
    sessions: sessionmaker[Session]
    raw: RawStore
    clock: Callable[[], dt.datetime] = field(default=system_clock)

    @classmethod
    def open(cls, config: Config, *, clock: Callable[[], dt.datetime] = system_clock) -> Context:
        """Connect to the database named by the config; does not migrate."""
        engine = make_engine(config.database_url)
        raw = RawStore(config.data_dir / "mail")
        return cls(
            config=config, engine=engine, sessions=make_sessionmaker(engine), raw=raw, clock=clock
        )

    @property
    def login_policy(self) -> LoginPolicy:
        """The account policy from the config."""
        a = self.config.accounts
        return LoginPolicy(
            min_length=a.min_password_length,
            max_failed=a.max_failed_logins,
            lockout=dt.timedelta(minutes=a.lockout_minutes),
            max_age=dt.timedelta(days=a.password_max_age_days),
        )

    def close(self) -> None:
        """Release database connections."""
        self.engine.dispose()
