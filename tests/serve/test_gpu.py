"""A tier on a GPU: the engine on CUDA, and the small tier as a Serve replica holding a GPU.

Skipped without CUDA (``pytest -m gpu`` on a GPU machine runs them).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.serve.conftest import TINY_DEPLOYMENT, serve_tiny_config, start_app
from tests.tiny_models import tiny_engine_config

torch = pytest.importorskip("torch")

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]


def test_engine_generates_a_batch_on_cuda(tiny_qwen3_dir: Path) -> None:
    from router.engines.base import ChatMessage, GenerationRequest
    from router.engines.factory import create_engine
    from router.sampling import SamplingParams

    config = tiny_engine_config(tiny_qwen3_dir).model_copy(update={"device": "cuda"})
    engine = create_engine(config)
    engine.load()
    requests = [
        GenerationRequest(
            [ChatMessage("user", f"q{i}")], SamplingParams(max_tokens=4, temperature=0)
        )
        for i in range(4)
    ]
    results = engine.generate(requests)
    assert engine.device.type == "cuda"  # type: ignore[attr-defined]
    assert [len(r.choices) for r in results] == [1, 1, 1, 1]
    engine.check_health()


@pytest.fixture(scope="module")
def gpu_base_url(ray_cluster: None, tiny_qwen3_dir: Path, tiny_gemma3_dir: Path) -> Iterator[str]:
    import ray

    if ray.cluster_resources().get("GPU", 0) < 1:
        pytest.skip("Ray sees no GPU")
    small_engine = tiny_engine_config(tiny_qwen3_dir, served_name="tiny-small").model_dump(
        mode="json"
    )
    config = serve_tiny_config(
        tiny_qwen3_dir,
        tiny_gemma3_dir,
        small={
            "engine": {**small_engine, "device": "cuda"},
            "deployment": {**TINY_DEPLOYMENT, "num_gpus": 1},
        },
    )
    yield start_app(config)
    from ray import serve

    serve.delete("thinkgate")


@pytest.mark.serve
def test_small_tier_serves_from_a_gpu_replica(gpu_base_url: str) -> None:
    import ray

    body = {"model": "small", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
    r = httpx.post(f"{gpu_base_url}/v1/chat/completions", json=body, timeout=120)
    assert r.status_code == 200 and r.json()["model"] == "tiny-small"
    # The replica holds the GPU (num_gpus=1) and its engine refuses to start without CUDA.
    assert ray.available_resources().get("GPU", 0) == ray.cluster_resources()["GPU"] - 1
