"""Writers of a SQLite database take turns in the order they came (mailstore/db.py,
WriterTurns): the gateway's short commit, waiting behind the processor, is served as soon as
the processor's transaction ends, not after the processor's next ones (issue 16)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from sqlalchemy import text

from yizhan.mailstore.db import make_engine


def test_a_waiting_writer_goes_before_the_next_turn_of_a_busy_one(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'turns.db'}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE turns (id INTEGER PRIMARY KEY, who TEXT)"))
    busy_started = threading.Event()

    def busy() -> None:
        # The processor: transaction after transaction, each holding the lock a while.
        for _ in range(15):
            with engine.begin() as connection:
                connection.execute(text("INSERT INTO turns (who) VALUES ('busy')"))
                busy_started.set()
                time.sleep(0.04)

    worker = threading.Thread(target=busy)
    worker.start()
    busy_started.wait(5)
    asked = time.monotonic()
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO turns (who) VALUES ('quick')"))
    waited = time.monotonic() - asked
    worker.join()
    with engine.connect() as connection:
        order = [who for (who,) in connection.execute(text("SELECT who FROM turns ORDER BY id"))]
    engine.dispose()
    # It waited for the transaction under way (and perhaps the one just starting), not for
    # the other thirteen.
    assert order.index("quick") <= 2, order
    assert waited < 0.5
