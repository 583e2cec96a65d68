import pytest
from pydantic import ValidationError

from router._exceptions import InvalidRequestError
from router.protocol.chat import ChatCompletionRequest
from router.sampling import SamplingParams


@pytest.mark.parametrize(
    ("kwargs", "param", "text"),
    [
        ({"top_p": 1.5}, "top_p", "top_p must be in (0, 1], got 1.5"),
        ({"temperature": -1.0}, "temperature", "got -1.0"),
        ({"max_tokens": 0}, "max_tokens", "at least 1"),
        ({"n": 0}, "n", "n must be in"),
        ({"top_k": -2}, "top_k", ">= 0"),
        ({"stop": ("",)}, "stop", "empty"),
        ({"top_logprobs": 50}, "top_logprobs", "[0, 20]"),
    ],
)
def test_sampling_params_name_the_bad_value(kwargs: dict, param: str, text: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        SamplingParams(**kwargs)
    assert info.value.param == param
    assert text in info.value.message


def test_greedy_is_temperature_zero_or_too_small_to_divide_by() -> None:
    assert SamplingParams(temperature=0).greedy
    assert not SamplingParams().greedy
    # found by the OpenAPI fuzz: logits / 1.3e-69 overflowed and sampling failed (500)
    assert SamplingParams(temperature=1.3272549647930127e-69).greedy
    assert not SamplingParams(temperature=0.01).greedy


def test_a_tiny_temperature_samples_like_greedy() -> None:
    import torch

    from router.engines.sampler import BatchSettings, sample

    logits = torch.tensor([[0.5, 3.0, -1.0, 2.9]])
    params = SamplingParams(temperature=1e-69, seed=1)
    tokens = sample(logits, BatchSettings.of([params], logits.device), [torch.Generator()])
    assert tokens.tolist() == [1]


def test_request_accepts_content_parts_and_extensions() -> None:
    req = ChatCompletionRequest.model_validate(
        {
            "model": "auto",
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
                }
            ],
            "max_thinking_tokens": 64,
            "reasoning_effort": "low",
            "routing": {"mode": "strong", "escalate": False},
            "chat_template_kwargs": {"enable_thinking": False},
        }
    )
    assert req.messages[0].text() == "ab"
    assert req.routing is not None and req.routing.mode == "strong"


@pytest.mark.parametrize(
    "body",
    [
        {"model": "auto", "messages": []},
        {"model": "auto", "messages": [{"role": "robot", "content": "x"}]},
        {"model": "auto", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
        {"model": "auto", "messages": [{"role": "user", "content": "x"}], "max_tokens": "5"},
        {"model": "auto", "messages": [{"role": "user", "content": "x"}], "tools": []},
    ],
)
def test_request_rejects_what_it_cannot_honour(body: dict) -> None:
    with pytest.raises(ValidationError):
        ChatCompletionRequest.model_validate(body)
