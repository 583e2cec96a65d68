"""The decision log through the real gateway: one record per answer, text only when asked."""

from __future__ import annotations

from pathlib import Path

import pytest
from openai import OpenAI

from router.learning.store import LearningStore, every_column
from tests.learning.conftest import KEY_A, learning_config, learning_gateway

SECRET = "quokka-zebra-7781"
PROMPT = f"Please repeat the code word {SECRET} and nothing else"


def _ask(base_url: str, *, stream: bool = False, model: str = "auto") -> str:
    client = OpenAI(base_url=f"{base_url}/v1", api_key=KEY_A, max_retries=0)
    messages = [{"role": "user", "content": PROMPT}]
    if stream:
        chunks = list(
            client.chat.completions.create(
                model=model,
                messages=messages,
                max_tokens=8,
                stream=True,  # type: ignore[arg-type]
            )
        )
        return chunks[0].id
    reply = client.chat.completions.create(model=model, messages=messages, max_tokens=8)  # type: ignore[arg-type]
    return reply.id


@pytest.mark.parametrize("store_text", [False, True])
def test_every_answer_is_logged_and_text_only_when_configured(
    tiny_qwen3_dir: Path, tiny_gemma3_dir: Path, database_url: str, store_text: bool
) -> None:
    config = learning_config(tiny_qwen3_dir, tiny_gemma3_dir, database_url, store_text=store_text)
    with learning_gateway(config) as (base_url, gateway):
        ids = [
            _ask(base_url),
            _ask(base_url, stream=True),
            _ask(base_url, model="strong"),
        ]
        assert gateway.learning is not None
        assert gateway.learning.writer.flush(30)
    store = LearningStore(database_url)
    rows = {r["request_id"]: r for r in store.decisions()}
    assert set(ids) <= set(rows)
    small, streamed, strong = (rows[i] for i in ids)
    assert small["route"] == "small" and small["reason"] == "router" and not small["stream"]
    assert small["key_id"].startswith("key-") and small["difficulty"] is not None
    assert small["router_version"] == "length_baseline" and small["tau"] == 1.0
    assert streamed["stream"] and streamed["completion_tokens"] >= 1
    assert strong["mode"] == "strong" and strong["reason"] == "forced"
    assert strong["answer_model"] == "tiny-strong" and strong["prompt_tokens"] > 0
    assert strong["thinking_budget"] is not None
    texts = [v for _, _, v in every_column(store) if isinstance(v, str | bytes)]
    found = any(SECRET in (v if isinstance(v, str) else v.decode("latin-1")) for v in texts)
    assert found == store_text
    answers = [r["answer_text"] for r in rows.values()]
    assert (all(a is not None for a in answers)) == store_text
    store.close()
