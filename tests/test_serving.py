"""The HTTP service: endpoints, limits and error shapes, and micro-batching under concurrency."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from imdb_sentiment.classifier import Details
from imdb_sentiment.inference import SentimentClassifier
from imdb_sentiment.serving import MicroBatcher, create_app


@pytest.fixture(scope="module")
def classifier(tiny_classifier: Path) -> SentimentClassifier:
    return SentimentClassifier.load(tiny_classifier, device="cpu", precision="fp32")


@pytest.fixture(scope="module")
def client(classifier: SentimentClassifier):
    with TestClient(create_app(classifier, max_texts=4, max_chars=200)) as test_client:
        yield test_client


def _still_up(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    assert client.post("/predict", json={"texts": ["fine"]}).status_code == 200


# --------------------------------------------------------------------------- endpoints


def test_predict_matches_the_python_api(client: TestClient, classifier: SentimentClassifier) -> None:
    texts = ["A wonderful, moving film.", "Dull and far too long.", "ok"]
    response = client.post("/predict", json={"texts": texts})
    assert response.status_code == 200
    body = response.json()
    assert body["model"] == Path(classifier.name).name and body["truncation"] == "head-tail"
    expected = classifier.predict(texts)
    assert [p["label"] for p in body["predictions"]] == [p["label"] for p in expected]
    np.testing.assert_allclose([p["score"] for p in body["predictions"]],
                               [p["score"] for p in expected], atol=1e-5)
    assert [p["truncated"] for p in body["predictions"]] == [False] * 3


def test_long_review_is_flagged_as_truncated(tiny_classifier: Path) -> None:
    model = SentimentClassifier.load(tiny_classifier, max_length=16)
    with TestClient(create_app(model)) as client:
        body = client.post("/predict", json={"texts": ["word " * 40, "short"]}).json()
    assert [p["truncated"] for p in body["predictions"]] == [True, False]


def test_health_info_and_docs(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    info = client.get("/info").json()
    assert info["labels"] == ["NEGATIVE", "POSITIVE"]
    assert info["max_length"] == 512 and info["truncation"] == "head-tail"
    assert info["precision"] == "fp32" and info["version"]
    assert info["limits"]["max_texts"] == 4 and info["limits"]["max_chars"] == 200
    schema = client.get("/openapi.json").json()
    assert "/predict" in schema["paths"] and "/info" in schema["paths"]
    assert client.get("/docs").status_code == 200


def test_web_page_is_served(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'id="review"' in page.text and "predict" in page.text


@pytest.mark.parametrize(("body", "status", "message"), [
    ({"texts": ["a"] * 5}, 413, "too many texts: 5 > 4"),
    ({"texts": ["fine", "x" * 201]}, 413, "texts[1] is too long: 201 > 200"),
    ({"texts": []}, 422, "at least one"),
    ({"texts": ["fine", "  "]}, 422, "texts[1] is empty"),
    ({"texts": "just a string"}, 422, "texts"),
    ({"texts": ["fine", 3]}, 422, "texts[1]"),
    ({"texts": [None]}, 422, "texts[0]"),
    ({"reviews": ["fine"]}, 422, "texts"),
    ([1, 2], 422, "body"),
])
def test_bad_requests_get_a_clear_json_error(client: TestClient, body: object, status: int,
                                             message: str) -> None:
    response = client.post("/predict", json=body)
    assert response.status_code == status
    assert message in response.json()["error"]
    _still_up(client)


def test_malformed_json_oversized_body_and_unknown_routes(client: TestClient) -> None:
    broken = client.post("/predict", content=b'{"texts": [', headers={"content-type": "application/json"})
    assert broken.status_code == 422 and "error" in broken.json()
    huge = client.post("/predict", content=b"x" * 20_000, headers={"content-type": "application/json"})
    assert huge.status_code == 413 and "too large" in huge.json()["error"]
    assert client.get("/nope").json() == {"error": "Not Found"}
    assert client.get("/predict").status_code == 405
    _still_up(client)


def test_a_failing_model_call_is_a_500_and_the_server_stays_up(classifier: SentimentClassifier,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    app = create_app(classifier)
    real = app.state.batcher._run
    calls = {"n": 0}

    def flaky(texts: list[str]) -> Details:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("simulated failure")
        return real(texts)

    monkeypatch.setattr(app.state.batcher, "_run", flaky)
    with TestClient(app, raise_server_exceptions=False) as client:
        failed = client.post("/predict", json={"texts": ["fine"]})
        assert failed.status_code == 500 and failed.json()["error"].startswith("internal error")
        _still_up(client)


# --------------------------------------------------------------------------- micro-batching


def _fake_run(log: list[int], delay: float = 0.02):
    """A model whose answer encodes the text, so a mixed-up result is detectable."""

    def run(texts: list[str]) -> Details:
        log.append(len(texts))
        time.sleep(delay)
        positive = np.array([int(text.split()[-1]) / 1000 for text in texts], dtype=np.float32)
        probabilities = np.stack([1 - positive, positive], axis=1)
        count = len(texts)
        return Details(probabilities, np.ones(count, dtype=np.int64), np.zeros(count, dtype=bool),
                       np.ones(count, dtype=np.int64))

    return run


def test_micro_batcher_groups_concurrent_requests_within_bounds() -> None:
    calls: list[int] = []
    batcher = MicroBatcher(_fake_run(calls), max_batch=8, max_wait_ms=30)
    results: dict[int, np.ndarray] = {}
    start = threading.Barrier(24)

    def client(i: int) -> None:
        start.wait()
        texts = [f"review {i * 10 + k}" for k in range(1 + i % 3)]
        results[i] = batcher.submit(texts).result(timeout=30).probabilities[:, 1]

    threads = [threading.Thread(target=client, args=(i,)) for i in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    batcher.close()
    for i in range(24):
        expected = [(i * 10 + k) / 1000 for k in range(1 + i % 3)]
        np.testing.assert_allclose(results[i], expected, atol=1e-6)
    assert batcher.stats.requests == 24 and batcher.stats.texts == sum(1 + i % 3 for i in range(24))
    assert batcher.stats.model_calls == len(calls) < 24
    assert max(calls) <= 8


def test_concurrent_http_clients_share_model_calls(classifier: SentimentClassifier) -> None:
    texts = [f"Review number {i}: " + "a fine and moving film " * (i % 5) for i in range(20)]
    expected = {text: classifier.predict([text])[0] for text in texts}
    app = create_app(classifier, max_wait_ms=50)
    answers: dict[str, dict] = {}
    with TestClient(app) as client:
        start = threading.Barrier(len(texts))

        def ask(text: str) -> None:
            start.wait()
            answers[text] = client.post("/predict", json={"texts": [text]}).json()["predictions"][0]

        threads = [threading.Thread(target=ask, args=(text,)) for text in texts]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    for text in texts:
        assert answers[text]["label"] == expected[text]["label"]
        assert answers[text]["score"] == pytest.approx(expected[text]["score"], abs=1e-5)
    stats = app.state.batcher.stats
    assert stats.requests == len(texts) and stats.model_calls < len(texts)


def test_micro_batcher_reports_model_errors_to_each_request() -> None:
    def broken(texts: list[str]) -> Details:
        raise ValueError("boom")

    batcher = MicroBatcher(broken, max_wait_ms=1)
    with pytest.raises(ValueError, match="boom"):
        batcher.submit(["x"]).result(timeout=10)
    batcher.close()


# --------------------------------------------------------------------------- the serve command


def test_serve_command_refuses_bad_settings(tiny_classifier: Path, capsys: pytest.CaptureFixture[str]
                                            ) -> None:
    import socket

    from imdb_sentiment.cli import main

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        cases = [
            (["--port", str(port)], f"cannot listen on 127.0.0.1:{port}"),
            (["--port", "70000"], "--port must be in 1..65535"),
            (["--max-wait-ms", "-1"], "max wait must be in [0, 1000] ms"),
            (["--max-texts", "0"], "must be positive"),
            (["--truncation", "tail"], "truncation must be one of"),
        ]
        for extra, message in cases:
            assert main(["serve", "--model", str(tiny_classifier), "--log-level", "warning", *extra]) == 2
            err = capsys.readouterr().err
            assert message in err and err.count("\n") == 1, err


JSON = "application/json"


@pytest.mark.parametrize(("body", "content_type", "status", "message"), [
    (b'{"texts": ["caf\xe9"]}', JSON, 422, "the body is not valid UTF-8 (bad byte at offset 15)"),
    (b"[" * 100_000 + b"]" * 100_000, JSON, 422, "the body nests JSON arrays or objects too deeply"),
    (b"texts=fine", JSON, 422, "the body is not valid JSON: Expecting value at line 1 column 1"),
    (b'{"texts": ["fine"]', JSON, 422, "the body is not valid JSON: Expecting ',' delimiter"),
    (b'{"texts": ["fine"]}', "text/plain", 415,
     "the body must be JSON sent with the header Content-Type: application/json (got text/plain)"),
    (b'{"texts": ["fine"]}', None, 415, "(got no Content-Type)"),
    (b"", JSON, 422, "the body is empty"),
])
def test_a_body_that_is_not_json_gets_a_one_line_reason(classifier: SentimentClassifier, body: bytes,
                                                        content_type: str | None, status: int,
                                                        message: str) -> None:
    headers = {"content-type": content_type} if content_type else {}
    with TestClient(create_app(classifier)) as client:  # default limits: the deep body fits
        for route in ("/predict", "/explain"):
            response = client.post(route, content=body, headers=headers)
            assert response.status_code == status, response.text
            assert list(response.json()) == ["error"] and "\n" not in response.json()["error"]
            assert message in response.json()["error"], response.json()
        _still_up(client)


def test_json_with_a_charset_or_a_byte_order_mark_is_read(client: TestClient) -> None:
    for body in (b'{"texts": ["fine"]}', b'\xef\xbb\xbf{"texts": ["fine"]}'):
        response = client.post("/predict", content=body,
                               headers={"content-type": "application/json; charset=utf-8"})
        assert response.status_code == 200 and len(response.json()["predictions"]) == 1


def test_head_requests_answer_like_get(client: TestClient) -> None:
    for route in ("/health", "/"):
        response = client.head(route)
        assert response.status_code == 200 and response.content == b""
        assert response.headers["content-type"] == client.get(route).headers["content-type"]
