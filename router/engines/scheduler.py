"""Iteration-level (continuous) batching for the transformers engine.

One `StepScheduler` per engine runs one batch in a background thread. Every step it (1)
drops the rows of cancelled requests, (2) admits waiting requests - up to ``max_rows`` rows
and ``max_prefill_tokens`` prompt tokens per step - by prefilling them on their own and
merging their KV cache into the running one (left padding, so rows of any length share one
cache), (3) runs one decoding step for every running row, and (4) removes finished rows and
frees their cache. A short request that arrives while a long one decodes starts at the next
step and leaves when it is done; a request whose client left stops at the next step.

Per row: its own sampling settings and ``torch.Generator`` (vectorised in
`router.engines.sampler`), stop sequences, logprobs, and the thinking budget
(`ThinkingBudgetProcessor`, fed the row's own tokens and prompt length). Caches the
scheduler cannot merge (layer types other than full and sliding-window attention) fall back
to admitting new requests only when the batch is empty (static batching).

Example::

    scheduler = StepScheduler(model, tokenizer, options)
    ticket = scheduler.submit(specs, on_deltas)   # on_deltas(list[RowDelta]) per step
    ticket.cancel()                                # frees the rows at the next step
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from router.config import ThinkingMarkers
from router.engines.hf_decoding import RowDelta, RowSpec, _Row, _token_logprob, cache_of
from router.engines.sampler import BatchSettings, sample
from router.engines.thinking import ThinkingBudgetProcessor

logger = logging.getLogger("thinkgate.engines.scheduler")

HISTORY = 4096
"""How many recent steps `StepScheduler.batch_history` remembers."""

Sink = Callable[[list[RowDelta]], None]


@dataclass(frozen=True)
class DecodingOptions:
    markers: ThinkingMarkers
    eos_ids: frozenset[int]
    skip_ids: frozenset[int]
    banned_when_not_thinking: tuple[int, ...]
    cache_kwarg: str = "past_key_values"
    max_rows: int = 16
    max_prefill_tokens: int = 4096


class Ticket:
    """One submitted request: its rows' deltas go to ``sink``; `cancel` stops it."""

    def __init__(
        self, specs: Sequence[RowSpec], sink: Sink, cancelled: threading.Event | None = None
    ) -> None:
        self.specs = list(specs)
        self.sink = sink
        self.cancelled = cancelled if cancelled is not None else threading.Event()
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.steps = 0
        """Decoding steps this request took part in (prefill included)."""

    def cancel(self) -> None:
        self.cancelled.set()


@dataclass
class _Running:
    row: _Row
    ticket: Ticket
    index: int
    """The row's index within its request (``RowDelta.row``)."""
    sequence: list[int]
    prompt_length: int
    generator: torch.Generator
    pending: int = -1
    """The last sampled token, not yet in the cache."""
    position: int = 0
    """The position of ``pending``."""


@dataclass
class _Batch:
    rows: list[_Running] = field(default_factory=list)
    cache: Any = None
    mask: torch.Tensor | None = None


_MERGEABLE_LAYERS = ("DynamicLayer", "DynamicSlidingWindowLayer")


def _mergeable(cache: Any) -> bool:
    layers = getattr(cache, "layers", None)
    if not layers:
        return False
    return all(
        type(layer).__name__ in ("DynamicLayer", "DynamicSlidingWindowLayer") for layer in layers
    )


def _pad_left(tensor: torch.Tensor, length: int) -> torch.Tensor:
    missing = length - tensor.shape[-2]
    if missing <= 0:
        return tensor
    shape = list(tensor.shape)
    shape[-2] = missing
    return torch.cat([tensor.new_zeros(shape), tensor], dim=-2)


def _stored(layer: Any, total: int) -> int:
    window = getattr(layer, "sliding_window", None)
    return total if window is None else min(total, window - 1)


class StepScheduler:
    """Continuous batching over one model; thread-safe `submit`."""

    def __init__(self, model: Any, tokenizer: Any, options: DecodingOptions) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.options = options
        self.processor = ThinkingBudgetProcessor(tokenizer, options.markers, budgets=[None])
        self._waiting: deque[Ticket] = deque()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._batch = _Batch()
        self._merge = True
        self.batch_history: deque[int] = deque(maxlen=HISTORY)
        """Requests in the running batch at each recent decoding step, oldest first."""

    # -- public ----------------------------------------------------------------------------

    def submit(
        self, specs: Sequence[RowSpec], sink: Sink, cancelled: threading.Event | None = None
    ) -> Ticket:
        """Queue a request; ``cancelled`` (an event the caller may set from any thread, e.g.
        when its client left) drops it at the next step."""
        ticket = Ticket(specs, sink, cancelled)
        with self._cond:
            self._waiting.append(ticket)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="thinkgate-step-scheduler", daemon=True
                )
                self._thread.start()
            self._cond.notify()
        return ticket

    @property
    def running_rows(self) -> int:
        return len(self._batch.rows)

    def wait_idle(self, timeout_s: float | None = None) -> bool:
        """Wait until no request is running or waiting (the loop thread has ended)."""
        with self._cond:
            thread = self._thread
        if thread is not None:
            thread.join(timeout_s)
        return thread is None or not thread.is_alive()

    # -- loop ------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._waiting and not self._batch.rows:
                    self._thread = None
                    return
                admitted = self._take_waiting()
            try:
                with torch.inference_mode():
                    self._step(admitted)
            except BaseException as exc:  # every request still here learns of the failure
                logger.exception("decoding step failed")
                self._fail_all(exc, admitted)

    def _take_waiting(self) -> list[Ticket]:
        taken: list[Ticket] = []
        rows = len(self._batch.rows)
        if rows and not self._merge:
            return taken
        tokens = 0
        while self._waiting:
            ticket = self._waiting[0]
            if ticket.cancelled.is_set():
                self._waiting.popleft()
                ticket.done.set()
                continue
            n, length = len(ticket.specs), len(ticket.specs[0].prompt_ids)
            if (rows or taken) and (
                rows + n > self.options.max_rows
                or tokens + n * length > self.options.max_prefill_tokens
            ):
                break
            taken.append(self._waiting.popleft())
            rows += n
            tokens += n * length
        return taken

    def _fail_all(self, exc: BaseException, admitted: list[Ticket]) -> None:
        tickets = {id(r.ticket): r.ticket for r in self._batch.rows}
        tickets.update({id(t): t for t in admitted})
        self._batch = _Batch()
        for ticket in tickets.values():
            ticket.error = exc
            ticket.done.set()
            ticket.sink([])

    def _step(self, admitted: list[Ticket]) -> None:
        self._drop(lambda r: r.ticket.cancelled.is_set())
        if admitted:
            self._prefill(admitted)
            self._drop(lambda r: r.row.finished)
        # Read the batch only now: `_drop` replaces an emptied batch with a new one, and a
        # step on the old one would feed finished rows another token.
        batch = self._batch
        if not batch.rows:
            return
        self.batch_history.append(len({id(r.ticket) for r in batch.rows}))
        device = self.model.device
        assert batch.mask is not None
        batch.mask = torch.cat([batch.mask, batch.mask.new_ones((len(batch.rows), 1))], dim=-1)
        step_ids = torch.tensor([[r.pending] for r in batch.rows], device=device)
        positions = torch.tensor([[r.position] for r in batch.rows], device=device)
        out = self.model(
            input_ids=step_ids,
            attention_mask=batch.mask,
            position_ids=positions,
            use_cache=True,
            **{self.options.cache_kwarg: batch.cache},
            logits_to_keep=1,
        )
        batch.cache = cache_of(out)
        self._advance(batch.rows, out.logits[:, -1, :].float())
        self._drop(lambda r: r.row.finished)

    # -- admission ---------------------------------------------------------------------------

    def _prefill(self, tickets: list[Ticket]) -> None:
        device = self.model.device
        new: list[_Running] = []
        for ticket in tickets:
            for index, spec in enumerate(ticket.specs):
                generator = torch.Generator(device=device)
                generator.manual_seed(spec.seed) if spec.seed is not None else generator.seed()
                row = _Row(spec, self.tokenizer, self.options.skip_ids, self.options.markers)
                new.append(
                    _Running(
                        row, ticket, index, list(spec.prompt_ids), len(spec.prompt_ids), generator
                    )
                )
        width = max(r.prompt_length for r in new)
        pad = self.tokenizer.pad_token_id
        ids = torch.full((len(new), width), pad, dtype=torch.long, device=device)
        mask = torch.zeros((len(new), width), dtype=torch.long, device=device)
        for i, r in enumerate(new):
            ids[i, width - r.prompt_length :] = torch.tensor(r.sequence, device=device)
            mask[i, width - r.prompt_length :] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        out = self.model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions,
            use_cache=True,
            **{self.options.cache_kwarg: None},
            logits_to_keep=1,
        )
        cache = cache_of(out)
        self._merge = _mergeable(cache)
        for r in new:
            r.position = r.prompt_length
        self._advance(new, out.logits[:, -1, :].float())
        self._join(new, cache, mask)

    def _join(self, new: list[_Running], cache: Any, mask: torch.Tensor) -> None:
        batch = self._batch
        if not batch.rows:
            batch.rows, batch.cache, batch.mask = new, cache, mask
            return
        if not (_mergeable(batch.cache) and _mergeable(cache)):
            raise RuntimeError("cannot merge KV caches of this model")
        assert batch.mask is not None
        total = max(batch.mask.shape[-1], mask.shape[-1])
        for old_layer, new_layer in zip(batch.cache.layers, cache.layers, strict=True):
            keep = _stored(old_layer, total)
            old_layer.keys = torch.cat(
                [_pad_left(old_layer.keys, keep), _pad_left(new_layer.keys, keep)], dim=0
            )
            old_layer.values = torch.cat(
                [_pad_left(old_layer.values, keep), _pad_left(new_layer.values, keep)], dim=0
            )
            if hasattr(old_layer, "cumulative_length"):
                old_layer.cumulative_length = total
        batch.mask = torch.cat(
            [
                torch.nn.functional.pad(batch.mask, (total - batch.mask.shape[-1], 0)),
                torch.nn.functional.pad(mask, (total - mask.shape[-1], 0)),
            ],
            dim=0,
        )
        batch.rows = batch.rows + new

    def _drop(self, gone: Callable[[_Running], bool]) -> None:
        """Remove rows (finished or cancelled) and their cache; trim shared left padding."""
        batch = self._batch
        keep = [i for i, r in enumerate(batch.rows) if not gone(r)]
        if len(keep) == len(batch.rows):
            return
        for r in batch.rows:
            if gone(r) and r.ticket.cancelled.is_set():
                r.ticket.done.set()
        if not keep:
            self._batch = _Batch()
            return
        index = torch.tensor(keep, device=self.model.device)
        batch.rows = [batch.rows[i] for i in keep]
        assert batch.mask is not None
        mask = batch.mask[index]
        if not _mergeable(batch.cache):  # another cache type: select rows, keep the padding
            batch.cache.batch_select_indices(index)
            batch.mask = mask
            return
        used = mask.any(dim=0).nonzero()
        start = int(used[0].item()) if used.numel() else 0
        total = mask.shape[-1] - start
        batch.mask = mask[:, start:]
        for layer in batch.cache.layers:
            stored = _stored(layer, total)
            layer.keys = layer.keys[index][..., layer.keys.shape[-2] - stored :, :]
            layer.values = layer.values[index][..., layer.values.shape[-2] - stored :, :]
            if hasattr(layer, "cumulative_length"):
                layer.cumulative_length = total

    # -- one token per row ---------------------------------------------------------------

    def _advance(self, rows: list[_Running], logits: torch.Tensor) -> None:
        """Sample each row's next token (forcing and bans applied), feed it to the row, and
        hand each request its deltas."""
        opts = self.options
        processor = self.processor
        want_logprobs = any(
            r.row.spec.params.logprobs or r.row.spec.params.top_logprobs for r in rows
        )
        raw = torch.log_softmax(logits, dim=-1) if want_logprobs else None
        masked = logits.clone()
        for i, r in enumerate(rows):
            spec = r.row.spec
            budget = spec.params.thinking_budget if spec.in_thinking else None
            forced = processor.forced_token(r.sequence, budget, r.prompt_length)
            if forced is not None:
                r.row.forced_close = True
                masked[i].fill_(float("-inf"))
                masked[i, forced] = 0.0
            elif opts.banned_when_not_thinking and not spec.in_thinking:
                masked[i, list(opts.banned_when_not_thinking)] = float("-inf")
            else:
                banned = processor.banned_token(r.sequence, r.prompt_length)
                if banned is not None:
                    masked[i, banned] = float("-inf")
        settings = BatchSettings.of([r.row.spec.params for r in rows], logits.device)
        tokens = sample(masked, settings, [r.generator for r in rows]).tolist()
        by_ticket: dict[int, list[RowDelta]] = {}
        for i, (r, token) in enumerate(zip(rows, tokens, strict=True)):
            delta = RowDelta(r.index)
            by_ticket.setdefault(id(r.ticket), []).append(delta)
            self._feed(r, int(token), delta, None if raw is None else raw[i])
        tickets = {id(r.ticket): r.ticket for r in rows}
        for key, deltas in by_ticket.items():
            ticket = tickets[key]
            ticket.steps += 1
            if not ticket.cancelled.is_set():
                ticket.sink(deltas)
            rows_of = [r for r in rows if r.ticket is ticket]
            if all(r.row.finished for r in rows_of) and self._all_finished(ticket):
                ticket.done.set()

    def _all_finished(self, ticket: Ticket) -> bool:
        return all(r.row.finished for r in self._batch.rows if r.ticket is ticket)

    def _feed(self, r: _Running, token: int, delta: RowDelta, raw: torch.Tensor | None) -> None:
        row, params = r.row, r.row.spec.params
        close_ids, open_ids = self.processor.close_ids, self.processor.open_ids
        row.generated.append(token)
        r.sequence.append(token)
        r.pending = token
        if len(row.generated) > 1:
            r.position += 1
        lp = None
        if raw is not None and (params.logprobs or params.top_logprobs > 0):
            lp = _token_logprob(self.tokenizer, token, raw, params.top_logprobs)
        if token in self.options.eos_ids:
            row.finish_reason = "stop"
            row.finish(delta, close_ids=close_ids, open_ids=open_ids)
            return
        row.absorb(row.detok.add(token), lp, delta)
        if not row.finished and len(row.generated) >= params.max_tokens:
            row.finish_reason = "length"
        if row.finished or len(row.generated) >= params.max_tokens:
            row.finish(delta, close_ids=close_ids, open_ids=open_ids)
