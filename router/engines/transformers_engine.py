"""In-process engine over a Hugging Face causal LM (CPU or CUDA), continuously batched.

Loads from a local ``save_pretrained`` folder, a hub id, a ``.gguf`` file (or a folder plus
``gguf_file``), or ``embedded:gemma3-270m`` (`router.engines.embedded`); optionally puts a
PEFT adapter on top. Prompts go through the chat template (`router.engines.chat_template`);
decoding is iteration-level batching (`router.engines.scheduler`): ``generate_each`` and
``stream`` may be called from many threads at once, and every request joins the one running
batch at the next step and leaves it when done (a closed stream frees its rows at the next
step). Rows are `router.engines.hf_decoding` rows, sampled by `router.engines.sampler`, with
budget forcing by `router.engines.thinking.ThinkingBudgetProcessor`.

Semantics worth knowing:

- ``stop`` sequences apply to the answer (content), not to the thinking text; they are cut
  from the output. Prompts rendered with the fallback template also stop where a base
  model would start a new turn (`router.engines.chat_template.FALLBACK_STOP`).
- Log-probabilities are the raw model's (before temperature/top-k/top-p), over the answer
  span only.
- ``seed`` seeds choice ``i`` with ``seed + i``; the same seeded request gives the same
  output whatever else is batched with it (on the same device).
- With thinking off, a single-token open marker is banned, so no section opens.
- A request whose prompt plus ``max_tokens`` exceeds the context gets `ContextLengthError`
  before anything is generated; in ``generate_each`` that error is its outcome alone and
  its batch-mates are generated as usual.

Example::

    engine = TransformersEngine(EngineConfig(kind="transformers", model="path/to/model"))
    engine.load()
    [result] = engine.generate([GenerationRequest([ChatMessage("user", "Hi")],
                                                  SamplingParams(max_tokens=16))])
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from router._exceptions import (
    ConfigError,
    ContextLengthError,
    ThinkgateError,
)
from router.config import EngineConfig
from router.engines.base import (
    ChatMessage,
    Completion,
    GenerationRequest,
    GenerationResult,
    Outcome,
    StreamEvent,
    results_or_raise,
)
from router.engines.chat_template import FALLBACK_STOP, RenderedPrompt
from router.engines.embedded import is_embedded, resolve_embedded
from router.engines.hf_decoding import RowDelta, RowSpec, cache_kwarg_of, decode_rows
from router.engines.scheduler import DecodingOptions, StepScheduler, Ticket
from router.engines.tokenized import (
    eos_ids,
    marker_ids,
    render_messages,
    single_token_ids,
    stream_events,
)

logger = logging.getLogger("thinkgate.engines.transformers")

_HEALTH_PROBE = "Hello"
DEFAULT_MAX_BATCH_ROWS = 16


def _source(config: EngineConfig) -> tuple[str, str | None]:
    """(from_pretrained path or id, gguf file name or None)."""
    if is_embedded(config.model):
        return str(resolve_embedded(config.model)), None
    path = Path(config.model).expanduser()
    if config.model.endswith(".gguf") and config.gguf_file is None:
        if not path.is_file():
            raise ConfigError(f"engine.model: GGUF file {config.model!r} does not exist")
        return str(path.parent), path.name
    return (str(path) if path.exists() else config.model), config.gguf_file


class TransformersEngine:
    """A `router.engines.base.Engine` running a transformers causal LM in this process."""

    def __init__(self, config: EngineConfig) -> None:
        if config.kind != "transformers":
            raise ConfigError(f"TransformersEngine needs kind 'transformers', got {config.kind!r}")
        self.config = config
        self._name = config.display_name
        self._model: Any = None
        self._tokenizer: Any = None
        self._context_length = config.context_length or 0
        self._eos: frozenset[int] = frozenset()
        self._skip: frozenset[int] = frozenset()
        self._banned: tuple[int, ...] = ()
        self._cache_kwarg = "past_key_values"
        self._load_lock = threading.Lock()
        self._scheduler: StepScheduler | None = None
        self.max_batch_rows = DEFAULT_MAX_BATCH_ROWS
        """Most rows (choices) decoded together; set before `load`."""

    @property
    def model_name(self) -> str:
        return self._name

    @property
    def context_length(self) -> int:
        """The model's window (or the configured override); 0 until loaded if not configured."""
        return self._context_length

    @property
    def device(self) -> torch.device:
        self._require_loaded()
        device: torch.device = self._model.device
        return device

    @property
    def tokenizer(self) -> Any:
        self._require_loaded()
        return self._tokenizer

    def _require_loaded(self) -> None:
        if self._model is None:
            raise RuntimeError(f"engine {self._name!r} is not loaded; call load() first")

    # -- loading -------------------------------------------------------------------------

    def load(self) -> None:
        with self._load_lock:
            if self._model is None:
                self._load()

    def _load(self) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        started = time.monotonic()
        source, gguf_file = _source(self.config)
        device = self.config.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device == "cuda" and not torch.cuda.is_available():
            raise ConfigError("engine.device is 'cuda' but CUDA is not available")
        dtype_name = self.config.dtype
        if dtype_name == "auto":
            dtype_name = "bfloat16" if device == "cuda" else "float32"
        dtype = getattr(torch, dtype_name)
        logger.info("loading %s from %s (%s, %s)", self._name, source, device, dtype_name)
        extra = {"gguf_file": gguf_file} if gguf_file else {}
        try:
            tokenizer: Any = AutoTokenizer.from_pretrained(source, **extra)
            model: Any = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, **extra)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"engine.model: cannot load {self.config.model!r}: {exc}") from None
        if self.config.adapter_path:
            model, tokenizer = self._with_adapter(model, tokenizer)
        model = model.to(torch.device(device)).eval()
        tokenizer.padding_side = "left"
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self._model, self._tokenizer = model, tokenizer
        self._context_length = self.config.context_length or self._model_context(model)
        self._eos = eos_ids(model.generation_config.eos_token_id, tokenizer.eos_token_id)
        self._skip, self._banned = self._marker_tokens(tokenizer)
        self._cache_kwarg = cache_kwarg_of(model)
        self._scheduler = StepScheduler(
            model,
            tokenizer,
            DecodingOptions(
                markers=self.config.thinking,
                eos_ids=self._eos,
                skip_ids=self._skip,
                banned_when_not_thinking=self._banned,
                cache_kwarg=self._cache_kwarg,
                max_rows=self.max_batch_rows,
            ),
        )
        logger.info("loaded %s in %.1f s", self._name, time.monotonic() - started)

    def _with_adapter(self, model: Any, tokenizer: Any) -> tuple[Any, Any]:
        from peft import PeftModel
        from transformers import AutoTokenizer

        adapter = Path(str(self.config.adapter_path)).expanduser()
        if not adapter.exists():
            raise ConfigError(f"engine.adapter_path: {str(adapter)!r} does not exist")
        if (adapter / "tokenizer_config.json").exists():  # the adapter added tokens
            tokenizer = AutoTokenizer.from_pretrained(adapter)
            if len(tokenizer) != model.get_input_embeddings().weight.shape[0]:
                model.resize_token_embeddings(len(tokenizer))
        logger.info("applying adapter %s", adapter)
        return PeftModel.from_pretrained(model, adapter), tokenizer

    @staticmethod
    def _model_context(model: Any) -> int:
        config = model.config
        config = getattr(config, "text_config", None) or config
        value = getattr(config, "max_position_embeddings", None)
        return int(value) if isinstance(value, int) and value > 0 else 2048

    def _marker_tokens(self, tokenizer: Any) -> tuple[frozenset[int], tuple[int, ...]]:
        """(special ids to drop from text, ids banned while thinking is off)."""
        skip, opened, _ = marker_ids(tokenizer, self.config)
        return skip, tuple(opened) if len(opened) == 1 else ()

    # -- health and counting -------------------------------------------------------------

    def check_health(self) -> None:
        self._require_loaded()
        ids = self._tokenizer.encode(_HEALTH_PROBE, return_tensors="pt").to(self._model.device)
        with torch.inference_mode():
            logits = self._model(input_ids=ids, logits_to_keep=1).logits
        if not bool(torch.isfinite(logits).all()):
            raise RuntimeError(f"model {self._name!r} produced non-finite logits on a probe")

    def _render(
        self, messages: Sequence[ChatMessage], *, thinking: bool, continue_final: bool = False
    ) -> RenderedPrompt:
        self._require_loaded()
        return render_messages(
            self._tokenizer, self.config, messages, thinking=thinking, continue_final=continue_final
        )

    def count_prompt_tokens(self, messages: Sequence[ChatMessage], *, thinking: bool) -> int:
        return len(self._render(messages, thinking=thinking).ids)

    # -- generation ----------------------------------------------------------------------

    def _specs(self, request: GenerationRequest) -> tuple[RenderedPrompt, list[RowSpec]]:
        params = request.params
        prompt = self._render(
            request.messages,
            thinking=params.thinking,
            continue_final=request.continue_final_message,
        )
        if len(prompt.ids) + params.max_tokens > self._context_length:
            raise ContextLengthError(
                f"the prompt ({len(prompt.ids)} tokens) plus max_tokens ({params.max_tokens}) "
                f"exceeds the context length of {self._name} ({self._context_length} tokens)"
            )
        stop = params.stop + (FALLBACK_STOP if prompt.uses_fallback else ())
        specs = [
            RowSpec(
                prompt_ids=prompt.ids,
                params=params,
                seed=None if params.seed is None else params.seed + i,
                in_thinking=prompt.thinking,
                stop=stop,
            )
            for i in range(params.n)
        ]
        return prompt, specs

    @property
    def scheduler(self) -> StepScheduler:
        """The continuous-batching scheduler (`router.engines.scheduler`)."""
        self._require_loaded()
        assert self._scheduler is not None
        return self._scheduler

    def decode_static(self, specs: Sequence[RowSpec]) -> Iterator[list[RowDelta]]:
        """Decode ``specs`` as one static batch, outside the scheduler (the pre-continuous
        batching loop, kept as the baseline of ``bench/mixed_load.py``)."""
        self._require_loaded()
        return decode_rows(
            self._model,
            self._tokenizer,
            specs,
            markers=self.config.thinking,
            eos_ids=self._eos,
            skip_ids=self._skip,
            banned_when_not_thinking=self._banned,
            cache_kwarg=self._cache_kwarg,
        )

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        return results_or_raise(self.generate_each(requests))

    def generate_each(
        self, requests: Sequence[GenerationRequest], *, cancelled: threading.Event | None = None
    ) -> list[Outcome]:
        """Each request joins the running batch at the next step (thread-safe: concurrent
        callers share the batch) and leaves it when done, or at the next step after
        ``cancelled`` is set (then the results are not needed: an empty list comes back)."""
        scheduler = self.scheduler
        outcomes: list[Outcome | None] = [None] * len(requests)
        pending: list[tuple[int, RenderedPrompt, Ticket, list[Completion | None]]] = []
        for index, request in enumerate(requests):
            try:
                prompt, specs = self._specs(request)
            except ThinkgateError as exc:  # refused alone, before batching
                outcomes[index] = exc
                continue
            completions: list[Completion | None] = [None] * len(specs)

            def collect(
                deltas: list[RowDelta], into: list[Completion | None] = completions
            ) -> None:
                for delta in deltas:
                    if delta.completion is not None:
                        into[delta.row] = delta.completion

            ticket = scheduler.submit(specs, collect, cancelled)
            pending.append((index, prompt, ticket, completions))
        try:
            for index, prompt, ticket, completions in pending:
                ticket.done.wait()
                if ticket.error is not None:
                    raise ticket.error
                if ticket.cancelled.is_set():
                    return []
                if any(c is None for c in completions):
                    raise RuntimeError("decoding ended without finishing a row")
                choices = [c for c in completions if c is not None]
                outcomes[index] = GenerationResult(self._name, len(prompt.ids), choices)
        finally:
            for _, _, ticket, _ in pending:
                ticket.cancel()  # no-op for finished ones; frees the rest if we failed
        return [o for o in outcomes if o is not None]

    def stream(self, request: GenerationRequest) -> Iterator[StreamEvent]:
        self._require_loaded()
        prompt, specs = self._specs(request)
        return self._stream(prompt, specs)

    def _stream(self, prompt: RenderedPrompt, specs: list[RowSpec]) -> Iterator[StreamEvent]:
        steps: queue.SimpleQueue[list[RowDelta]] = queue.SimpleQueue()
        ticket = self.scheduler.submit(specs, steps.put)

        def step_deltas() -> Iterator[list[RowDelta]]:
            open_rows = len(specs)
            while open_rows:
                deltas = steps.get()
                if ticket.error is not None:
                    raise ticket.error
                open_rows -= sum(delta.completion is not None for delta in deltas)
                yield deltas

        try:
            yield from stream_events(step_deltas(), len(prompt.ids))
        finally:
            ticket.cancel()  # the consumer left (or finished): free the rows at the next step

    # -- scoring -------------------------------------------------------------------------

    def next_token_logprobs(
        self, messages: Sequence[ChatMessage], assistant_prefix: str, tokens: Sequence[str]
    ) -> dict[str, float]:
        prompt = self._render(messages, thinking=False)
        wanted = single_token_ids(self._tokenizer, tokens, self._name)
        prefix = self._tokenizer.encode(assistant_prefix, add_special_tokens=False)
        ids = prompt.ids + list(prefix)
        if len(ids) >= self._context_length:
            raise ContextLengthError(
                f"the prompt ({len(ids)} tokens) exceeds the context length of {self._name}",
                param="messages",
            )
        tensor = torch.tensor([ids], dtype=torch.long, device=self._model.device)
        with torch.inference_mode():
            logits = self._model(input_ids=tensor, logits_to_keep=1).logits[0, -1].float()
        logprobs = torch.log_softmax(logits, dim=-1)
        out = {token: float(logprobs[i].item()) for token, i in wanted.items()}
        return {t: (v if math.isfinite(v) else -math.inf) for t, v in out.items()}
