"""``POST /v1/feedback``: a key labels its own requests, idempotently; bad input is a 4xx."""

from __future__ import annotations

from pathlib import Path

import httpx

from router.learning.store import LearningStore
from tests.learning.conftest import KEY_A, KEY_B, learning_config, learning_gateway


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_feedback_labels_own_requests_only(
    tiny_qwen3_dir: Path, tiny_gemma3_dir: Path, database_url: str
) -> None:
    config = learning_config(tiny_qwen3_dir, tiny_gemma3_dir, database_url)
    with learning_gateway(config) as (base_url, _gateway):
        client = httpx.Client(base_url=base_url, timeout=60)
        chat = client.post(
            "/v1/chat/completions",
            headers=_auth(KEY_A),
            json={
                "model": "auto",
                "messages": [{"role": "user", "content": "hi"}],
                "max_tokens": 4,
            },
        )
        request_id = chat.json()["id"]
        # at once, before the writer's flush: the service waits for the record
        first = client.post(
            "/v1/feedback",
            headers=_auth(KEY_A),
            json={"request_id": request_id, "thumbs": "up", "comment": "secret-comment-91"},
        )
        assert first.status_code == 200, first.text
        assert first.json() == {
            "request_id": request_id,
            "score": 1.0,
            "small_ok": True,
            "replaced": False,
        }
        again = client.post(
            "/v1/feedback", headers=_auth(KEY_A), json={"request_id": request_id, "score": 0.25}
        )
        assert again.status_code == 200 and again.json()["replaced"] is True
        assert again.json()["small_ok"] is False

        other = client.post(
            "/v1/feedback", headers=_auth(KEY_B), json={"request_id": request_id, "score": 1}
        )
        assert other.status_code == 404
        assert other.json()["error"]["param"] == "request_id"
        unknown = client.post(
            "/v1/feedback", headers=_auth(KEY_A), json={"request_id": "chatcmpl-nope", "score": 1}
        )
        assert unknown.status_code == 404
        assert client.post("/v1/feedback", json={"request_id": request_id}).status_code == 401

        bad = {
            "score": {"request_id": request_id},
            "thumbs": {"request_id": request_id, "score": 1, "thumbs": "up"},
            "request_id": {"score": 1},
            "colour": {"request_id": request_id, "score": 1, "colour": "red"},
        }
        bad_score = {"request_id": request_id, "score": 1.5}
        for param, body in [*bad.items(), ("score", bad_score)]:
            response = client.post("/v1/feedback", headers=_auth(KEY_A), json=body)
            assert 400 <= response.status_code < 500, (param, response.text)
            assert response.json()["error"]["param"] == param, response.text
        thumbs = client.post(
            "/v1/feedback", headers=_auth(KEY_A), json={"request_id": request_id, "thumbs": "meh"}
        )
        assert thumbs.status_code == 400 and thumbs.json()["error"]["param"] == "thumbs"

        status = client.get("/v1/learning/status", headers=_auth(KEY_A))
        assert status.status_code == 200
        assert status.json()["active"]["router"] == "length_baseline"
    store = LearningStore(database_url)
    [label] = store.labels(request_id)
    assert label["source"] == "feedback" and label["score"] == 0.25
    assert label["key_id"].startswith("key-") and label["comment_text"] is None
    store.close()


def test_feedback_takes_the_x_request_id_of_the_answer(
    tiny_qwen3_dir: Path, tiny_gemma3_dir: Path, tmp_path: Path
) -> None:
    """One id per request: the response's one ``x-request-id`` (the client's, else a new
    one) is the completion's ``id`` without ``chatcmpl-``, and labels that answer."""
    config = learning_config(tiny_qwen3_dir, tiny_gemma3_dir, f"sqlite:///{tmp_path / 'l.db'}")
    body = {"model": "small", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    with learning_gateway(config) as (base_url, _gateway):
        client = httpx.Client(base_url=base_url, timeout=60)
        for sent in ({}, {"x-request-id": "client-id-7"}):
            chat = client.post("/v1/chat/completions", headers={**_auth(KEY_A), **sent}, json=body)
            [request_id] = chat.headers.get_list("x-request-id")
            assert request_id == sent.get("x-request-id", request_id)
            assert chat.json()["id"] == f"chatcmpl-{request_id}"
            label = client.post(
                "/v1/feedback", headers=_auth(KEY_A), json={"request_id": request_id, "score": 1}
            )
            assert label.status_code == 200, label.text
            assert label.json()["request_id"] == chat.json()["id"]
            other = client.post(
                "/v1/feedback", headers=_auth(KEY_B), json={"request_id": request_id, "score": 1}
            )
            assert other.status_code == 404
