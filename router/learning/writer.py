"""The decision-log writer: a bounded queue, flushed in batches by one thread.

`DecisionLogWriter.submit` never blocks and never raises: when the queue is full the
record is dropped and counted (``thinkgate_learning_records_dropped_total{reason=
"queue_full"}``). The thread takes up to ``batch_size`` records (waiting at most
``flush_interval_s`` for more), turns them into rows (`Prepare`: features are computed
here, off the event loop) and inserts them in one transaction. When the database is away
(a connection or schema error) the batch is dropped (counted as ``database_error``), the connection
pool dropped, and the thread waits ``retry_interval_s`` before the next batch: writing
resumes by itself when the database is back. When the database refuses the batch for
what is in it, the records are written one by one, so only a record that cannot be
written is lost (``bad_record``, logged with its request id). `close` writes what is
queued before it returns.

Example::

    writer = DecisionLogWriter(store, prepare, metrics, queue_size=10_000)
    writer.start()
    writer.submit(record)
    writer.close()
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy.exc import InterfaceError, OperationalError, ProgrammingError

from router.learning.metrics import LearningMetrics
from router.learning.records import DecisionRecord
from router.learning.store import LearningStore, redact

log = logging.getLogger("thinkgate.learning")

_DATABASE_FAULTS = (OperationalError, InterfaceError, ProgrammingError)
"""Faults of the database, not of a record: the batch is dropped, the pool reset (the
next connection re-migrates) and writing retried after ``retry_interval_s``."""

Prepare = Callable[[Sequence[DecisionRecord]], list[Mapping[str, Any]]]


class DecisionLogWriter:
    def __init__(
        self,
        store: LearningStore,
        prepare: Prepare,
        metrics: LearningMetrics,
        *,
        queue_size: int = 10_000,
        batch_size: int = 256,
        flush_interval_s: float = 0.5,
        retry_interval_s: float = 2.0,
    ) -> None:
        if queue_size < 1 or batch_size < 1:
            raise ValueError("queue_size and batch_size must be >= 1")
        self.store = store
        self.prepare = prepare
        self.metrics = metrics
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.retry_interval_s = retry_interval_s
        self._queue: queue.Queue[DecisionRecord] = queue.Queue(maxsize=queue_size)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._idle = threading.Condition()
        self._pending = 0
        self._failing = False

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="thinkgate-decision-log", daemon=True
            )
            self._thread.start()

    def submit(self, record: DecisionRecord) -> bool:
        """Queue a record; False (and counted) when the queue is full."""
        with self._idle:
            try:
                self._queue.put_nowait(record)
            except queue.Full:
                self.metrics.records_dropped.labels(reason="queue_full").inc()
                return False
            self._pending += 1
        self.metrics.queue_depth.set(self._queue.qsize())
        return True

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Wait until every queued record was written or dropped (tests, shutdown)."""
        deadline = time.monotonic() + timeout_s
        with self._idle:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(min(left, 0.05))
        return True

    def close(self, timeout_s: float = 30.0) -> None:
        """Write what is queued, then stop the thread."""
        self.flush(timeout_s)
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)
            self._thread = None

    # ----- the thread ------------------------------------------------------------------
    def _take_batch(self) -> list[DecisionRecord]:
        try:
            first = self._queue.get(timeout=0.1)
        except queue.Empty:
            return []
        batch = [first]
        deadline = time.monotonic() + self.flush_interval_s
        while len(batch) < self.batch_size:
            left = deadline - time.monotonic()
            try:
                batch.append(
                    self._queue.get(timeout=left) if left > 0 else self._queue.get_nowait()
                )
            except queue.Empty:
                break
        return batch

    def _run(self) -> None:
        while not (self._stop.is_set() and self._queue.empty()):
            batch = self._take_batch()
            if not batch:
                continue
            try:
                self._write(batch)
            finally:
                self.metrics.queue_depth.set(self._queue.qsize())
                with self._idle:
                    self._pending -= len(batch)
                    self._idle.notify_all()

    def _write(self, batch: list[DecisionRecord]) -> None:
        try:
            self.store.insert_decisions(self.prepare(batch))
        except _DATABASE_FAULTS as exc:  # the database is away (or its schema is)
            self._database_down(exc, len(batch))
            return
        except Exception as exc:  # the database (or `prepare`) refused something in it
            if len(batch) > 1:
                self._write_one_by_one(batch)
            else:
                self._drop_record(batch[0], exc)
            return
        self._written(len(batch))

    def _write_one_by_one(self, batch: list[DecisionRecord]) -> None:
        """Write each record on its own, so one bad record costs only itself."""
        for n, record in enumerate(batch):
            try:
                self.store.insert_decisions(self.prepare([record]))
            except _DATABASE_FAULTS as exc:
                self._database_down(exc, len(batch) - n)
                return
            except Exception as exc:
                self._drop_record(record, exc)
                continue
            self._written(1)

    def _drop_record(self, record: DecisionRecord, exc: BaseException) -> None:
        self.metrics.records_dropped.labels(reason="bad_record").inc()
        log.warning(
            "decision log: record %s dropped (%s: %s)",
            record.request_id,
            type(exc).__name__,
            exc,
        )

    def _database_down(self, exc: BaseException, lost: int) -> None:
        """Count, log once per outage, drop the pool, back off; writing resumes by itself."""
        self.metrics.records_dropped.labels(reason="database_error").inc(lost)
        if not self._failing:
            log.warning(
                "decision log: writing to %s failed (%s: %s); %d records dropped, "
                "retrying every %gs",
                redact(self.store.url),
                type(exc).__name__,
                exc,
                lost,
                self.retry_interval_s,
            )
        self._failing = True
        self.store.reset()
        self._stop.wait(self.retry_interval_s)

    def _written(self, n: int) -> None:
        if self._failing:
            log.warning("decision log: writing to %s again", redact(self.store.url))
            self._failing = False
        self.metrics.records_written.inc(n)
