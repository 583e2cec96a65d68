"""Property-based fuzzing of the running gateway from its own ``/openapi.json``.

Schemathesis generates requests for every documented operation, valid ones (positive mode)
and invalid ones (negative mode), sends them to the gateway over loopback (tiny models
answer the valid ones), and checks that no answer is a server error and that every answer
matches the documented schema for its status code — error bodies included.

Steering, so that the valid cases reach the models: the right API key replaces the
generated ``Authorization`` header in 90% of the cases (the rest keep what schemathesis
generated: nothing, or a random key -> 401), and half of the chat bodies get a served model
name (``model`` is a free string in the spec; random names are all 404s). The normal run
makes 100 cases; the ``slow`` run makes 1,000.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error, response_schema_conformance

from tests.security.conftest import SecuredGateway

KEY = "fuzz-key"


@pytest.fixture(scope="module")
def base_url(secured_gateway: SecuredGateway) -> Iterator[str]:
    # small generation caps keep the valid cases fast on a CPU
    tiers = {"max_tokens_limit": 24, "max_tokens_default": 4}
    with secured_gateway(env={"THINKGATE_API_KEYS": KEY}, tiers=tiers) as url:
        yield url


def fuzz(base_url: str, cases: int) -> Counter[str]:
    """Run ``cases`` generated cases; return how many got each (operation, status)."""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    strategy = st.one_of(
        schema.as_strategy(GenerationMode.POSITIVE), schema.as_strategy(GenerationMode.NEGATIVE)
    )
    seen: Counter[str] = Counter()

    @settings(
        max_examples=cases,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(
        case=strategy,
        # hypothesis favours the first entries; these lists are ordered for the mix above
        keyed=st.sampled_from([True] * 9 + [False]),
        model=st.sampled_from(["small", None, "auto", None, "strong", None]),
    )
    def one_case(case: Case, keyed: bool, model: str | None) -> None:
        if keyed:
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {KEY}"}
        if model is not None and isinstance(case.body, dict) and "model" in case.body:
            case.body["model"] = model
        response = case.call(base_url=base_url, timeout=120)
        seen[f"{case.method} {case.path} {response.status_code}"] += 1
        seen["total"] += 1
        case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])

    one_case()
    return seen


def _report(seen: Counter[str]) -> None:
    for name, count in sorted(seen.items()):
        print(f"  {count:6d}  {name}")


def test_openapi_fuzz_finds_no_server_error(base_url: str) -> None:
    started = time.monotonic()
    seen = fuzz(base_url, 100)
    print(f"\n100 cases in {time.monotonic() - started:.1f}s")
    _report(seen)
    assert seen["total"] >= 100
    assert not any(name.endswith((" 500", " 502", " 503")) for name in seen)
    assert any(name.startswith("POST /v1/chat/completions 200") for name in seen)
    assert any(name.startswith("POST /v1/chat/completions 400") for name in seen)


@pytest.mark.slow
def test_openapi_fuzz_thousand_cases(base_url: str) -> None:
    seen = fuzz(base_url, 1000)
    _report(seen)
    assert seen["total"] >= 1000
    assert not any(name.endswith((" 500", " 502", " 503")) for name in seen)
