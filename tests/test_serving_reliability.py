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

from imdb_sentiment.classifier import Details
from imdb_sentiment.inference import SentimentClassifier
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


@pytest.fixture(scope="module")
def default_cpu_classifier(tiny_classifier: Path, onnx_cache: Path,
                           monkeypatch_module: pytest.MonkeyPatch) -> SentimentClassifier:
    """The tiny model as ``serve`` loads it by default on a CPU: the engine choice read from the
    engine cache (so its reason names the cache file), ONNX Runtime int8 on a cached export."""
    from imdb_sentiment import engines
    from imdb_sentiment.artifacts import write_json

    candidates = [engines.Engine("onnx", "int8"), engines.Engine("torch", "bf16")]
    monkeypatch_module.setattr(engines, "candidate_engines", lambda flags=None: candidates)
    flags = engines.cpu_flags()
    choice = engines.EngineChoice(candidates[0], "fastest on a probe of 4 reviews", {}, flags)
    write_json(engines.engine_cache_file(tiny_classifier, flags), choice.to_dict())
    return SentimentClassifier.load(tiny_classifier, device="cpu", backend="auto", precision="auto")


@pytest.fixture(scope="module")
def monkeypatch_module() -> pytest.MonkeyPatch:
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def test_no_response_names_a_path_on_the_server(default_cpu_classifier: SentimentClassifier,
                                                tiny_classifier: Path, onnx_cache: Path) -> None:
    """Every body the service sends, answers and errors alike, names the model by its folder name
    and names neither the model folder nor the cache (ONNX export, engine choice)."""
    from imdb_sentiment.exporters.onnx import cached_export

    assert str(onnx_cache) in default_cpu_classifier.info()["engine_reason"]  # what must not leave
    export, _ = cached_export(tiny_classifier)
    export_only = SentimentClassifier.load(export, device="cpu")  # an export folder: no gradients
    private = {str(tiny_classifier), str(tiny_classifier.resolve()), str(onnx_cache), str(export)}
    good = {"texts": ["A wonderful film.", "Dull."], "top": 3}
    bodies: list[str] = []
    for classifier in (default_cpu_classifier, export_only):
        with TestClient(create_app(classifier, max_texts=2, max_chars=50),
                        raise_server_exceptions=False) as client:
            answers = [
                client.get("/info"), client.get("/"), client.get("/health"), client.get("/nope"),
                client.get("/predict"), client.post("/predict", json=good),
                client.post("/explain", json=good), client.post("/explain", json={"texts": ["x" * 51]}),
                client.post("/predict", json={"texts": ["a", "b", "c"]}),
                client.post("/predict", json={"texts": [""]}), client.post("/predict", json={"texts": [3]}),
                client.post("/predict", content=b"x" * 100_000, headers={"content-type": "application/json"}),
                client.post("/predict", content=b"not json", headers={"content-type": "application/json"}),
                client.post("/predict", content=b'{"texts": ["a"]}', headers={"content-type": "text/plain"}),
            ]
        bodies += [answer.text for answer in answers]
        statuses = [answer.status_code for answer in answers]
        assert statuses[:6] == [200, 200, 200, 404, 405, 200], statuses
        assert all(400 <= status < 500 for status in statuses[7:]), statuses
        assert answers[5].json()["model"] == tiny_classifier.name
    with TestClient(create_app(default_cpu_classifier)) as client:
        assert client.post("/explain", json=good).json()["model"] == tiny_classifier.name
    refused = bodies[14 + 6].removeprefix('{"error":"')
    assert refused.startswith(f"{tiny_classifier.name} is an ONNX export without PyTorch weights"), refused
    leaks = [(path, body) for body in bodies for path in private if path in body]
    assert not leaks, leaks[0]


def test_paths_in_a_message_are_cut_to_their_last_part() -> None:
    from imdb_sentiment.serving import public_text

    message = ("cannot read /srv/models/x/config.json: see https://errors.pydantic.dev/2.1/v/string "
               "(cached in /home/me/.cache/imdb-sentiment/engines/ab12.json); POST /explain; "
               "send application/json; outputs/minilm-fast is damaged")
    assert public_text(message, ["outputs/minilm-fast"]) == (
        "cannot read config.json: see https://errors.pydantic.dev/2.1/v/string (cached in ab12.json); "
        "POST /explain; send application/json; minilm-fast is damaged")
