"""The decision-log writer: bounded queue, drops counted, resumes after a database outage."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry

from router.cascade import CascadeRequest, Decision
from router.engines.base import ChatMessage, Completion
from router.learning.metrics import LearningMetrics
from router.learning.records import ActiveVersions, DecisionRecord
from router.learning.store import LearningStore
from router.learning.writer import DecisionLogWriter
from router.sampling import SamplingParams
from tests.postgres import PostgresServer

VERSIONS = ActiveVersions(router="r", budget="b", tau="tau-0.9", tau_value=0.9)


def _record(n: int) -> DecisionRecord:
    request = CascadeRequest(
        [ChatMessage("user", f"q{n}")], SamplingParams(max_tokens=4), request_id=f"id-{n}"
    )
    return DecisionRecord.build(
        request,
        Decision(route="small", reason="router", tier="small", difficulty=0.1, threshold=0.5),
        key_id="key-test",
        created_at=time.time(),
        answer_model="m",
        prompt_tokens=3,
        completions=[Completion("a", completion_tokens=1)],
        latency_s=0.01,
        stream=False,
        versions=VERSIONS,
    )


def _writer(store: LearningStore, metrics: LearningMetrics, **kw: float) -> DecisionLogWriter:
    def prepare(batch):  # type: ignore[no-untyped-def]
        return [r.to_row(store_text=False) for r in batch]

    return DecisionLogWriter(store, prepare, metrics, flush_interval_s=0.02, **kw)  # type: ignore[arg-type]


def _value(metrics: LearningMetrics, reason: str) -> float:
    return metrics.records_dropped.labels(reason=reason)._value.get()


def test_full_queue_drops_and_counts(tmp_path) -> None:  # type: ignore[no-untyped-def]
    metrics = LearningMetrics(CollectorRegistry())
    store = LearningStore(f"sqlite:///{tmp_path / 'l.db'}")
    writer = _writer(store, metrics, queue_size=3)
    accepted = [writer.submit(_record(n)) for n in range(5)]  # thread not started yet
    assert accepted == [True, True, True, False, False]
    assert _value(metrics, "queue_full") == 2
    writer.start()
    writer.close()
    assert store.count_decisions() == 3


def test_database_outage_drops_counted_and_writing_resumes() -> None:
    metrics = LearningMetrics(CollectorRegistry())
    with PostgresServer() as pg:
        store = LearningStore(pg.url)
        writer = _writer(store, metrics, retry_interval_s=0.1)
        writer.start()
        for n in range(10):
            writer.submit(_record(n))
        assert writer.flush(30)
        assert store.count_decisions() == 10
        pg.stop("immediate")
        for n in range(10, 20):
            assert writer.submit(_record(n))  # never blocks, never raises
        assert writer.flush(60)
        lost = _value(metrics, "database_error")
        assert lost == 10
        pg.start()
        for n in range(20, 30):
            writer.submit(_record(n))
        assert writer.flush(60)
        writer.close()
        assert store.count_decisions() == 20
        assert metrics.records_written._value.get() == 20
        store.close()
