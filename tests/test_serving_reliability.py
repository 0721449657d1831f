"""The service under bad input: one bad text or request never harms another, the body limit holds
while a body streams in, and responses do not reveal the server's paths."""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from imdb_sentiment.inference import Details, SentimentClassifier
from imdb_sentiment.serving import BodyLimit, MicroBatcher, create_app

LONE_SURROGATE = '{"texts": ["great \\ud83d movie"]}'


@pytest.fixture(scope="module")
def classifier(tiny_classifier: Path) -> SentimentClassifier:
    return SentimentClassifier.load(tiny_classifier, device="cpu", precision="fp32")


def test_a_lone_surrogate_is_a_422_naming_the_problem(classifier: SentimentClassifier,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    with TestClient(create_app(classifier), raise_server_exceptions=False) as client, \
            caplog.at_level(logging.INFO):
        response = client.post("/predict", content=LONE_SURROGATE.encode(),
                               headers={"content-type": "application/json"})
        assert response.status_code == 422
        assert response.json()["error"].startswith("texts[0] holds an invalid character at position 6")
        assert "surrogate" in response.json()["error"]
        assert client.post("/predict", json={"texts": ["great movie"]}).status_code == 200
    assert not [record for record in caplog.records if record.exc_info]  # no traceback logged


def test_one_poisoned_request_among_concurrent_good_ones(classifier: SentimentClassifier) -> None:
    """1 bad and 7 good requests at once: the good ones get their predictions, the bad one a 422."""
    app = create_app(classifier, max_wait_ms=200)  # a long wait puts all eight in one batch
    results: dict[int, int] = {}
    with TestClient(app) as client:
        def ask(i: int) -> None:
            body = LONE_SURROGATE.encode() if i == 0 else f'{{"texts": ["good film {i}"]}}'.encode()
            results[i] = client.post("/predict", content=body,
                                     headers={"content-type": "application/json"}).status_code

        threads = [threading.Thread(target=ask, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert results == {0: 422, **{i: 200 for i in range(1, 8)}}


def _encoding_model(texts: list[str]) -> Details:
    """Fails on "poison" as a tokenizer fails on a bad text; the answer encodes the text."""
    if any("poison" in text for text in texts):
        raise TypeError("cannot tokenize")
    positive = np.array([int(text.split()[-1]) / 1000 for text in texts], dtype=np.float32)
    count = len(texts)
    return Details(np.stack([1 - positive, positive], axis=1), np.ones(count, dtype=np.int64),
                   np.zeros(count, dtype=bool), np.ones(count, dtype=np.int64))


def test_a_failing_batch_is_retried_request_by_request() -> None:
    batcher = MicroBatcher(_encoding_model, max_wait_ms=300)
    gate = threading.Event()
    futures = {}

    def submit(i: int) -> None:
        gate.wait()
        futures[i] = batcher.submit(["poison 1"] if i == 3 else [f"text {i}", f"more {i + 100}"])

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    gate.set()
    for thread in threads:
        thread.join()
    with pytest.raises(TypeError, match="cannot tokenize"):
        futures[3].result(timeout=30)
    for i in (0, 1, 2, 4, 5):
        details = futures[i].result(timeout=30)
        np.testing.assert_allclose(details.probabilities[:, 1], [i / 1000, (i + 100) / 1000], rtol=1e-6)
    assert batcher.stats.isolated_batches >= 1
    batcher.close()


def _chunks(total: int, size: int, sent: list[int]):
    messages = [{"type": "http.request", "body": b"x" * size, "more_body": True}
                for _ in range(total // size)] + [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive() -> dict:
        sent.append(1)
        return messages[len(sent) - 1]

    return receive


def test_a_chunked_body_is_cut_off_at_the_limit() -> None:
    """No Content-Length: the limit applies while the body is read, not after 50 MB arrived."""
    reached: list[str] = []

    async def app(scope: dict, receive, send) -> None:
        reached.append("app")

    sent: list[int] = []
    replies: list[dict] = []

    async def send(message: dict) -> None:
        replies.append(message)

    scope = {"type": "http", "method": "POST", "path": "/predict", "headers": [], "query_string": b""}
    asyncio.run(BodyLimit(app, max_body=10_000)(scope, _chunks(50_000_000, 1000, sent), send))
    assert replies[0]["status"] == 413 and not reached
    assert len(sent) == 11  # read 11 KB of the 50 MB, then refused
    assert b"too large" in replies[1]["body"]


def test_a_chunked_body_within_the_limit_reaches_the_app(classifier: SentimentClassifier) -> None:
    with TestClient(create_app(classifier, max_texts=1, max_chars=10)) as client:
        small = client.post("/predict", content=iter([b'{"texts": ', b'["fine"]}']),
                            headers={"content-type": "application/json"})
        assert small.status_code == 200
        big = client.post("/predict", content=iter([b'{"texts": ["', b"x" * 5000, b'"]}']),
                          headers={"content-type": "application/json"})
        assert big.status_code == 413 and "too large" in big.json()["error"]
        assert client.post("/predict", json={"texts": ["fine"]}).status_code == 200


def test_responses_name_the_model_without_its_path(classifier: SentimentClassifier) -> None:
    folder = Path(classifier.name)
    assert folder.is_absolute()
    with TestClient(create_app(classifier)) as client:
        assert client.get("/info").json()["model"] == folder.name
        assert client.post("/predict", json={"texts": ["fine"]}).json()["model"] == folder.name
        assert str(folder.parent) not in client.get("/info").text
    with TestClient(create_app(classifier, show_paths=True)) as client:
        assert client.get("/info").json()["model"] == str(folder)
