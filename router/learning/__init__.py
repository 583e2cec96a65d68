"""thinkgate learns from its own traffic: decision log, labels, retraining, promotion.

- `store.LearningStore`: the database (SQLAlchemy; SQLite by default, PostgreSQL when
  replicated), schema migrated at start (`migrations`).
- `writer.DecisionLogWriter`: bounded queue, batched writes in a thread, drops counted.
- `loop.LearningLoop`: what the gateway calls; `shadow` answers and the `judge`;
  `feedback` (``POST /v1/feedback``); `reload.VersionPoller` (hot reload of promoted
  versions); `promotion` (``thinkgate promote``); `log_data` (``--from-log``).

Nothing here is imported by the gateway unless the learning loop is on.
"""

__all__ = ["loop", "store", "writer"]
