"""Shadow answers (placeholder until the judge lands)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from router.learning.loop import LearningLoop
    from router.learning.records import DecisionRecord


class ShadowSampler:
    def __init__(self, loop: LearningLoop) -> None:
        self.loop = loop

    async def maybe_shadow(self, record: DecisionRecord) -> None:
        return None
