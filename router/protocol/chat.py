"""``POST /v1/chat/completions``: request, response and stream-chunk models.

Fields follow the order of the OpenAI reference; thinkgate's extensions are marked
"(extension)" in their descriptions. Unknown fields are rejected with a 400 that names
them: nothing a client sends is silently dropped.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, field_validator

from router.sampling import MAX_N, MAX_STOP_SEQUENCES, MAX_TOP_LOGPROBS

Role = Literal["system", "developer", "user", "assistant"]


class TextContentPart(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["text"] = Field(description="Only `text` parts are supported.")
    text: str = Field(description="The text of this part.")


class ChatMessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role = Field(description="Author of the message.")
    content: str | list[TextContentPart] | None = Field(
        description="Text, or a list of text content parts."
    )
    name: str | None = Field(None, max_length=64, description="Optional author name.")
    reasoning_content: str | None = Field(
        None, description="(extension) Reasoning of an earlier assistant turn; not re-sent."
    )

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    include_usage: StrictBool = Field(False, description="Send a final chunk with usage.")


class RoutingOptions(BaseModel):
    """(extension) Per-request routing controls."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["auto", "small", "strong"] = Field(
        "auto", description="Force a tier, or let the cascade decide."
    )
    escalate: StrictBool | None = Field(
        None, description="Allow escalation from the small tier (default: config)."
    )


class ChatTemplateKwargs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enable_thinking: StrictBool | None = Field(
        None, description="(extension) false turns thinking off for this request."
    )


FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]


class ChatCompletionRequest(BaseModel):
    """An OpenAI chat completion request plus thinkgate's extensions."""

    model_config = ConfigDict(extra="forbid")

    messages: list[ChatMessageIn] = Field(min_length=1, description="The conversation so far.")
    model: str = Field(
        description="`auto` (the cascade), `small`, `strong`, or a configured model name."
    )
    frequency_penalty: FiniteFloat | None = Field(
        None, ge=-2.0, le=2.0, description="Only 0 is supported; other values are rejected."
    )
    logprobs: StrictBool = Field(False, description="Return log-probabilities of the answer.")
    top_logprobs: StrictInt | None = Field(
        None, ge=0, le=MAX_TOP_LOGPROBS, description="Alternatives per position; needs logprobs."
    )
    max_tokens: StrictInt | None = Field(
        None,
        ge=1,
        description="Most tokens to generate, thinking included (at most the tier's "
        "configured max_tokens_limit).",
    )
    max_completion_tokens: StrictInt | None = Field(
        None, ge=1, description="Alias of max_tokens (newer OpenAI name)."
    )
    n: StrictInt = Field(1, ge=1, le=MAX_N, description="Number of choices.")
    presence_penalty: FiniteFloat | None = Field(
        None, ge=-2.0, le=2.0, description="Only 0 is supported; other values are rejected."
    )
    seed: StrictInt | None = Field(None, description="Seed for reproducible sampling.")
    stop: str | Annotated[list[str], Field(max_length=MAX_STOP_SEQUENCES)] | None = Field(
        None, description="A stop sequence, or a list of them."
    )
    stream: StrictBool = Field(False, description="Stream chunks as server-sent events.")
    stream_options: StreamOptions | None = Field(None, description="Streaming options.")
    temperature: FiniteFloat | None = Field(None, ge=0.0, le=2.0, description="0 = greedy.")
    top_p: FiniteFloat | None = Field(None, gt=0.0, le=1.0, description="Nucleus sampling.")
    user: str | None = Field(None, max_length=256, description="End-user id (not logged).")
    # --- extensions ---
    top_k: StrictInt | None = Field(None, ge=0, description="(extension) Top-k sampling; 0 = off.")
    max_thinking_tokens: StrictInt | None = Field(
        None, ge=0, description="(extension) Cap on the strong model's thinking tokens."
    )
    reasoning_effort: Literal["none", "low", "medium", "high"] | None = Field(
        None, description="(extension) Budget cap by effort; `none` turns thinking off."
    )
    thinking_probe: StrictBool | None = Field(
        None,
        description="(extension) `false` opts out of thinking probes (answer probes that "
        "end the thinking once its answer settled); default: the deployment's setting.",
    )
    routing: RoutingOptions | None = Field(None, description="(extension) Routing controls.")
    chat_template_kwargs: ChatTemplateKwargs | None = Field(
        None, description="(extension) Template switches, e.g. enable_thinking."
    )
    continue_final_message: StrictBool = Field(
        False,
        description="(extension, as vLLM) Continue the last assistant message instead of "
        "starting a new turn; needs add_generation_prompt=false.",
    )
    add_generation_prompt: StrictBool = Field(
        True, description="(extension, as vLLM) Open a new assistant turn."
    )

    @field_validator("stop")
    @classmethod
    def _stop_list(cls, value: str | list[str] | None) -> str | list[str] | None:
        return value


class ChatMessageOut(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None = Field(description="The answer.")
    reasoning_content: str | None = Field(
        None, description="(extension) The model's thinking, when it thought."
    )


class TopLogprobOut(BaseModel):
    token: str
    logprob: float
    bytes: list[int] | None = None


class TokenLogprobOut(BaseModel):
    token: str
    logprob: float
    bytes: list[int] | None = None
    top_logprobs: list[TopLogprobOut] = Field(default_factory=list)


class ChoiceLogprobs(BaseModel):
    content: list[TokenLogprobOut] | None = None


class ChatChoice(BaseModel):
    index: int
    message: ChatMessageOut
    logprobs: ChoiceLogprobs | None = None
    finish_reason: Literal["stop", "length"] | None


class CompletionTokensDetails(BaseModel):
    reasoning_tokens: int = 0


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    completion_tokens_details: CompletionTokensDetails = Field(
        default_factory=CompletionTokensDetails
    )


class RoutingTrace(BaseModel):
    """(extension) What the cascade decided and why."""

    route: Literal["small", "strong", "escalated"] = Field(description="Path taken.")
    reason: Literal["router", "forced", "fallback"] = Field(description="Why this tier.")
    difficulty: float | None = Field(None, description="Router score p_strong.")
    threshold: float | None = Field(None, description="Threshold the score was compared to.")
    uncertainty: float | None = Field(None, description="Small-model uncertainty, if checked.")
    escalation_scorer: str | None = Field(None, description="Scorer used for escalation.")
    thinking_budget: int | None = Field(None, description="Thinking budget given the strong tier.")
    thinking_stop: Literal["natural", "budget", "probe"] | None = Field(
        None,
        description="Why the strong tier's thinking ended: by itself, at the budget, or "
        "because the answer probes agreed.",
    )
    probes: int | None = Field(None, description="Answer probes run while thinking.")
    fallback_from: str | None = Field(None, description="Tier that was unavailable.")


class ChatCompletionResponse(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage
    routing: RoutingTrace | None = Field(None, description="(extension) Routing trace.")


class DeltaMessage(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None
    reasoning_content: str | None = None


class ChunkChoice(BaseModel):
    index: int
    delta: DeltaMessage
    logprobs: ChoiceLogprobs | None = None
    finish_reason: Literal["stop", "length"] | None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None
    routing: RoutingTrace | None = None
