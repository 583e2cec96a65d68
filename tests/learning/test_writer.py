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


def _record(n: int, *, prompt: str | None = None, answer: str = "a") -> DecisionRecord:
    request = CascadeRequest(
        [ChatMessage("user", prompt or f"q{n}")],
        SamplingParams(max_tokens=4),
        request_id=f"id-{n}",
    )
    return DecisionRecord.build(
        request,
        Decision(route="small", reason="router", tier="small", difficulty=0.1, threshold=0.5),
        key_id="key-test",
        created_at=time.time(),
        answer_model="m",
        prompt_tokens=3,
        completions=[Completion(answer, completion_tokens=1)],
        latency_s=0.01,
        stream=False,
        versions=VERSIONS,
    )


def _writer(
    store: LearningStore, metrics: LearningMetrics, *, store_text: bool = False, **kw: float
) -> DecisionLogWriter:
    def prepare(batch):  # type: ignore[no-untyped-def]
        return [r.to_row(store_text=store_text) for r in batch]

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


def test_nul_in_client_or_model_text_is_stored_not_dropped(database_url: str) -> None:
    """PostgreSQL's text refuses NUL; a tiny model sampled one in CI and lost its batch."""
    metrics = LearningMetrics(CollectorRegistry())
    store = LearningStore(database_url)
    writer = _writer(store, metrics, store_text=True)
    writer.submit(_record(0, prompt="before\x00after", answer="\x00"))
    writer.submit(_record(1))
    writer.start()
    writer.close()
    rows = {r["request_id"]: r for r in store.decisions()}
    assert set(rows) == {"id-0", "id-1"}
    assert "before\ufffdafter" in rows["id-0"]["prompt_text"]
    assert rows["id-0"]["answer_text"] == "\ufffd"
    assert _value(metrics, "database_error") == _value(metrics, "bad_record") == 0
    store.close()


def test_a_record_the_database_refuses_costs_only_itself(database_url: str) -> None:
    metrics = LearningMetrics(CollectorRegistry())
    store = LearningStore(database_url)
    store.insert_decisions([_record(3).to_row(store_text=False)])  # id-3 is taken
    writer = _writer(store, metrics)
    for n in range(6):  # queued before the thread starts: one batch
        writer.submit(_record(n))
    writer.start()
    writer.close()
    assert sorted(r["request_id"] for r in store.decisions()) == [f"id-{n}" for n in range(6)]
    assert _value(metrics, "bad_record") == 1
    assert _value(metrics, "database_error") == 0
    assert metrics.records_written._value.get() == 5
    store.close()
