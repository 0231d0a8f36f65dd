"""Alembic environment: runs migrations on the engine handed over by ``db.upgrade``."""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import Engine

from yizhan.mailstore.models import Base

engine: Engine = context.config.attributes["engine"]
with engine.connect() as connection:
    sqlite = connection.dialect.name == "sqlite"
    raw: Any = connection.connection.driver_connection
    if sqlite:
        # SQLite's batch mode rebuilds a table (copy, drop, rename); with foreign keys on, the
        # drop fails as soon as another table's rows point into it. The pragma only takes
        # effect outside a transaction, so it is set on the bare connection; the keys are
        # checked once the migrations are done, and switched back on for the pool.
        raw.execute("PRAGMA foreign_keys=OFF")
    try:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=sqlite,
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
            if sqlite:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(f"a migration left rows with dangling keys: {broken[:5]}")
        connection.commit()
    finally:
        if sqlite:
            raw.execute("PRAGMA foreign_keys=ON")
