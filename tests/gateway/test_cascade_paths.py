"""Escalation and fallback through the running in-process gateway (real tiny models)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from openai import OpenAI

from router.gateway.app import build_local
from tests.configs import tiny_config
from tests.servers import metric_samples, running_gateway, serve_app

ASK = [{"role": "user", "content": "What is 2+2?"}]


def test_low_tau_escalates_and_escalate_false_does_not(
    tiny_qwen3_dir: Path, tiny_gemma3_dir: Path
) -> None:
    config = tiny_config(tiny_qwen3_dir, tiny_gemma3_dir, escalation={"tau": 0.0})
    with running_gateway(config) as url:
        client = OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)
        raw = client.chat.completions.with_raw_response.create(
            model="auto",
            messages=ASK,
            max_tokens=30,  # type: ignore[arg-type]
        )
        assert raw.headers["x-thinkgate-route"] == "escalated"
        assert raw.parse().model == "tiny-strong"
        assert 0.0 <= float(raw.headers["x-thinkgate-uncertainty"]) <= 1.0
        assert sum(metric_samples(url, "thinkgate_escalations_total", scorer="mean_logprob")) == 1.0

        raw = client.chat.completions.with_raw_response.create(
            model="auto",
            messages=ASK,  # type: ignore[arg-type]
            max_tokens=8,
            extra_body={"routing": {"escalate": False}},
        )
        assert raw.headers["x-thinkgate-route"] == "small"
        assert raw.parse().model == "tiny-small"
        assert "x-thinkgate-uncertainty" not in raw.headers
        assert sum(metric_samples(url, "thinkgate_escalations_total", scorer="mean_logprob")) == 1.0

        # streamed auto request: decided first, then sent
        chunks = list(
            client.chat.completions.create(
                model="auto",
                messages=ASK,
                max_tokens=30,
                stream=True,  # type: ignore[arg-type]
            )
        )
        assert chunks[0].model == "tiny-strong"


def test_unavailable_tier_falls_back_with_header(
    tiny_qwen3_dir: Path, tiny_gemma3_dir: Path
) -> None:
    long_prompt = [{"role": "user", "content": " ".join(["prove it"] * 30)}]
    config = tiny_config(tiny_qwen3_dir, tiny_gemma3_dir, routing={"threshold": 0.1})
    gateway = build_local(config)
    asyncio.run(gateway.small.start())  # the strong tier is never loaded: unavailable
    gateway.cascade.load()
    with serve_app(gateway.app) as url:
        assert httpx.get(f"{url}/ready").status_code == 503
        client = OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)
        raw = client.chat.completions.with_raw_response.create(
            model="auto",
            messages=long_prompt,
            max_tokens=8,  # type: ignore[arg-type]
        )
        assert raw.headers["x-thinkgate-fallback"] == "strong->small"
        assert raw.parse().model == "tiny-small"
        assert sum(metric_samples(url, "thinkgate_fallbacks_total")) == 1.0
        forced = httpx.post(
            f"{url}/v1/chat/completions",
            json={"model": "strong", "messages": ASK, "max_tokens": 4},
        )
        assert forced.status_code == 503 and "Retry-After" in forced.headers
        assert forced.json()["error"]["code"] == "tier_unavailable"
