"""Which deployments of this application have a running replica, polled from Serve.

A request through a handle to a deployment with no running replica waits in the handle's
queue until a replica starts (Serve does not fail it), so a tier that is down - every
replica dead and being replaced, or a model that cannot load - would hold each request
until the tier's ``timeout_s``. `ReplicaWatch` lets `deployments.tiers.ServeTier` answer at
once instead: ``auto`` requests fall back to the other tier, forced ones get 503 +
``Retry-After``. It polls ``serve.status()`` (the controller) every ``period_s`` in the
background of the gateway replica; when the controller cannot be read the answer is
"unknown" and requests go to the handle as usual.

Example::

    watch = ReplicaWatch(serve.get_replica_context().app_name)
    await watch.running("StrongTier")   # 0, 1, ... or None (unknown)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from ray import serve

log = logging.getLogger("thinkgate.deployments")

FIRST_POLL_WAIT_S = 2.0
"""How long a first question waits for the first poll (then: unknown)."""
RUNNING_STATES = frozenset({"RUNNING", "PENDING_MIGRATION"})
"""Replica states that take requests (as Serve's router counts them)."""


class ReplicaWatch:
    """Running-replica counts of the deployments of one Serve application."""

    def __init__(self, app_name: str, *, period_s: float = 1.0) -> None:
        if period_s <= 0:
            raise ValueError(f"period_s must be > 0, got {period_s}")
        self.app_name = app_name
        self.period_s = period_s
        self._counts: dict[str, int] = {}
        self._read_at = 0.0
        self._first = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def _read(self) -> dict[str, int]:
        app = serve.status().applications.get(self.app_name)
        if app is None:
            return {}
        return {
            name: sum(
                count
                for state, count in overview.replica_states.items()
                if str(getattr(state, "value", state)) in RUNNING_STATES
            )
            for name, overview in app.deployments.items()
        }

    async def _poll(self) -> None:
        while True:
            try:
                self._counts = await asyncio.to_thread(self._read)
                self._read_at = time.monotonic()
            except Exception as exc:  # the controller restarting: answers become "unknown"
                log.warning("cannot read Serve status (%s: %s)", type(exc).__name__, exc)
            self._first.set()
            await asyncio.sleep(self.period_s)

    async def running(self, deployment: str) -> int | None:
        """Running replicas of ``deployment``; None when not known (no fresh poll)."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._poll())
        if not self._first.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._first.wait(), FIRST_POLL_WAIT_S)
        if time.monotonic() - self._read_at > 3 * self.period_s + FIRST_POLL_WAIT_S:
            return None
        return self._counts.get(deployment)

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
