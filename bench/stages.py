"""Where a command's time goes between its 250 and its answer, from the daemon's own records.

``bench.e2e --stages`` prints, after a run, p50 and p99 of each stage of the commands it sent,
read from the database before the run's schema is dropped (wall-clock times the daemon wrote):

* waiting: from acceptance (``inbound.received_at``, the gateway's clock at DATA) to the start
  of processing (``processed_at``): the spool, the pickup, the queue before the worker;
* processing: from the start of processing to its answer queued (``outbound_messages.created_at``);
* delivery: from queued to handed to the relay (``deliveries.sent_at``): the commit, the
  courier's wake-up, the relay's SMTP.
"""

from __future__ import annotations

import datetime as dt
import itertools
import statistics
from collections.abc import Sequence

from sqlalchemy import String, cast, create_engine, literal, select

from yizhan.mailstore.models import Delivery, Inbound, OutboundMessage

STAGES = ("waiting", "processing", "delivery")


def stage_latencies(url: str, message_ids: set[str]) -> dict[str, list[float]]:
    """Each stage's durations in milliseconds, one a command of ``message_ids`` answered."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(
                    Inbound.id,
                    Inbound.message_id,
                    Inbound.received_at,
                    Inbound.processed_at,
                    OutboundMessage.source,
                    OutboundMessage.created_at,
                    Delivery.sent_at,
                )
                .join(Delivery, Delivery.message_pk == OutboundMessage.id)
                .join(
                    Inbound,
                    OutboundMessage.source.like(
                        literal("in:") + cast(Inbound.id, String) + literal(":%")
                    ),
                )
                .where(Inbound.processed_at.is_not(None), Delivery.sent_at.is_not(None))
            ).all()
    finally:
        engine.dispose()
    stages: dict[str, list[float]] = {name: [] for name in STAGES}
    for row in rows:
        if not row.source.startswith(f"in:{row.id}:") or row.message_id not in message_ids:
            continue
        marks = [_utc(row.received_at), _utc(row.processed_at), _utc(row.created_at)]
        marks.append(_utc(row.sent_at))
        for name, (start, end) in zip(STAGES, itertools.pairwise(marks), strict=True):
            stages[name].append((end - start).total_seconds() * 1000)
    return stages


def print_stages(database: str, stages: dict[str, list[float]]) -> None:
    print(f"stages of Yizhan {database} (ms)     p50     p99   commands")
    for name in STAGES:
        values = sorted(stages[name])
        print(f"  {name:<28}{_p(values, 0.5):>8.0f}{_p(values, 0.99):>8.0f}{len(values):>11}")


def _p(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    if q == 0.5:
        return statistics.median(values)
    return values[int(q * (len(values) - 1))]


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)
