"""Keeps time for Yizhan: the scheduled jobs, one module per family, and their table.

The jobs are the rows of ``table.JOBS``; each body is a plain function ``run_<job>(ctx, now)``
that decides with ``now`` (the clock a test can set), does its work in database transactions
and returns how many mails it queued. Mail goes through the outbound queue with a ``source``
key per (job, subject, recipient), so nothing is queued twice.

Two kinds of due work, both safe with several daemons on one database (docs/architecture.md,
"Durability"):

* Rows with an indexed due time. A waiting step's ``next_reminder_at`` says when the reminder
  sweep next looks at it; the sweep claims due steps a batch at a time with ``SELECT … FOR
  UPDATE SKIP LOCKED`` on PostgreSQL, so two daemons take different steps. On SQLite every
  writing transaction begins IMMEDIATE, so the batch's transaction holds the database's write
  lock (a lease on the whole file) until it commits. A batch moves each step's
  ``next_reminder_at`` past ``now`` in the transaction that queues its mail, so a step is
  reminded once however many daemons sweep. Delegations past their end are found the same way.
* Periodic slots (a digest window, a day, a week). A slot job first inserts ``(job, slot)``
  into ``job_runs`` in the transaction that does the slot's work; the primary key lets one
  daemon in and makes the others skip, and a failed run leaves no row, so it is tried again.
  A job that goes through everyone (the digests, the password warnings) does its slot in
  transactions of ``[jobs] batch`` people instead, each moving the row's cursor on, so that
  it never holds SQLite's writer for long and a run cut short goes on where it stopped.

The reminder sweep, too, takes ``[jobs] batch`` steps (or mails) a transaction: with a
backlog of thousands, every other writer (a login, the gateway, the processor) gets its turn
between two batches, through the writers' queue of ``mailstore.db.WriterTurns``.

A daemon that was down catches up: rows that fell due meanwhile are due now, and each slot job
looks at its latest slot (within a grace period), so what was missed is done once, not once per
missed minute or window. Start-up runs :func:`run_due_jobs` for that; ``yizhan jobs run --now``
runs it by hand.

Bulletins (公告板, 第二十三條) lapse on their expiry date (taken off the board, the author told),
and at year end every bulletin of the year is archived, after a notice to each author from 7
days before (``routing.bulletins`` decides; the jobs below apply its decisions).
"""
