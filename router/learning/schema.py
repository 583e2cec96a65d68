"""Tables of the learning database (SQLAlchemy Core), the same on SQLite and PostgreSQL.

- ``decisions``: the decision log, one row per answered request. Prompt and answer text
  only with ``learning.store_text``; the router's feature vector (float32 bytes) with its
  featurizer id always, so a team that keeps no text can still retrain.
  With thinking probes: ``thinking_stop`` (natural, budget, probe), ``probes`` (how many)
  and ``probe_trace`` (JSON: the cap, the stop point and per probe its thinking tokens,
  confidence, mass and whether it agreed with the one before; the answers themselves only
  with ``store_text``), so the stop rule can be tuned on a team's own traffic.
- ``labels``: one row per (request, source): ``judge`` (shadow answer judged against the
  served one) or ``feedback`` (``POST /v1/feedback``).
- ``artifacts``: promoted routers, budget models (their folder as a tar) and taus.
- ``active``: the active version of each kind; every gateway replica polls it.
- ``events``: promotions, in order (who, when, from which version, the comparison).
- ``schema_migrations``: applied migration steps (`router.learning.migrations`).

Client and model text goes in `ClientText` columns: PostgreSQL's ``text`` cannot hold NUL
(U+0000), which a client may send and a model may sample, so NUL is stored as U+FFFD on
both databases instead of failing the insert (and, before, the whole batch with it).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)
from sqlalchemy.engine import Dialect

metadata = MetaData()


class ClientText(TypeDecorator[str]):
    """``Text`` that stores NUL as U+FFFD (PostgreSQL refuses NUL in text)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else str(value).replace("\x00", "\ufffd")


ID = String(80)
NAME = String(200)

schema_migrations = Table(
    "schema_migrations",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("name", NAME, nullable=False),
    Column("applied_at", Float, nullable=False),
)

decisions = Table(
    "decisions",
    metadata,
    Column("request_id", ID, primary_key=True),
    Column("created_at", Float, nullable=False, index=True),
    Column("key_id", ID, nullable=False, index=True),
    Column("mode", String(16), nullable=False),
    Column("stream", Boolean, nullable=False),
    Column("route", String(16), nullable=False),
    Column("reason", String(16), nullable=False),
    Column("tier", String(16), nullable=False),
    Column("fallback_from", String(16)),
    Column("difficulty", Float),
    Column("threshold", Float),
    Column("router_version", ID),
    Column("featurizer_id", ID),
    Column("router_features", LargeBinary),
    Column("uncertainty", Float),
    Column("escalation_scorer", String(40)),
    Column("tau", Float),
    Column("tau_version", ID),
    Column("thinking_budget", Integer),
    Column("budget_version", ID),
    Column("budget_features", LargeBinary),
    Column("reasoning_tokens", Integer, nullable=False),
    Column("forced_close", Boolean, nullable=False),
    Column("finish_reason", String(16)),
    Column("prompt_tokens", Integer, nullable=False),
    Column("completion_tokens", Integer, nullable=False),
    Column("latency_s", Float, nullable=False),
    Column("router_s", Float),
    Column("answer_model", NAME, nullable=False),
    Column("prompt_text", ClientText),
    Column("answer_text", ClientText),
    Column("thinking_stop", String(16)),
    Column("probes", Integer),
    Column("probe_trace", ClientText),
)

labels = Table(
    "labels",
    metadata,
    Column("request_id", ID, primary_key=True),
    Column("source", String(16), primary_key=True),
    Column("created_at", Float, nullable=False, index=True),
    Column("key_id", ID),
    Column("strong_better", Float),
    Column("small_ok", Boolean),
    Column("score", Float),
    Column("judge_model", NAME),
    Column("judge_tokens", Integer),
    Column("shadow_tier", String(16)),
    Column("shadow_tokens", Integer),
    Column("has_reference", Boolean, nullable=False),
    Column("reference_text", ClientText),
    Column("comment_text", ClientText),
    Column("shadow_text", ClientText),
)

artifacts = Table(
    "artifacts",
    metadata,
    Column("version", ID, primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("metadata_json", Text, nullable=False),
    Column("payload", LargeBinary),
    Column("value", Float),
)

active = Table(
    "active",
    metadata,
    Column("kind", String(16), primary_key=True),
    Column("version", ID, nullable=False),
    Column("updated_at", Float, nullable=False),
)

events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("created_at", Float, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("version", ID, nullable=False),
    Column("previous", ID),
    Column("forced", Boolean, nullable=False),
    Column("detail_json", Text, nullable=False),
)

TEXT_COLUMNS = {
    "decisions": ("prompt_text", "answer_text"),
    "labels": ("reference_text", "comment_text", "shadow_text"),
}
"""Columns that hold client text; NULL unless ``learning.store_text``."""
