"""Explanations: exact bag-of-words contributions, integrated gradients, the CLI and the service."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from imdb_sentiment.baselines import TOKEN_PATTERN, fit_baseline, save_baseline
from imdb_sentiment.cli import main
from imdb_sentiment.errors import UserError
from imdb_sentiment.explain import GradientExplainer, LinearExplainer, load_explainer
from imdb_sentiment.inference import SentimentClassifier


@pytest.fixture(scope="module")
def fine_tuned(shared_model: Path) -> Path:
    """The shared MiniLM fine-tuned on IMDB (next to the pretrained one)."""
    folder = shared_model.parent / "minilm-imdb-fast"
    if not folder.is_dir():
        pytest.skip(f"shared resource missing: {folder}")
    return folder


@pytest.fixture(scope="module")
def real_reviews(shared_data: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """400 training reviews and 20 fixed test reviews (cleaned), label-balanced."""
    from imdb_sentiment.data import clean_text, subsample

    columns = ["text", "label", "rating"]
    train = subsample(pd.read_parquet(shared_data / "train.parquet", columns=columns), 400, 0)
    test = subsample(pd.read_parquet(shared_data / "test.parquet", columns=columns), 20, 1)
    clean = lambda frame: frame.assign(text=[clean_text(t) for t in frame["text"]])  # noqa: E731
    return clean(train), clean(test)


@pytest.fixture(scope="module")
def nbsvm(real_reviews):
    return fit_baseline("nbsvm", real_reviews[0])


def _without(text: str, words: set[str]) -> str:
    """The review's tokens (as the bag-of-words models see them) minus ``words``."""
    return " ".join(token for token in re.findall(TOKEN_PATTERN, text.lower()) if token not in words)


def test_linear_contributions_add_up_to_the_decision_value(nbsvm, real_reviews) -> None:
    texts = real_reviews[1]["text"].tolist()
    explainer = LinearExplainer(nbsvm, "nbsvm")
    found = explainer.explain(texts)
    decision = nbsvm.decision_function(texts)
    for item, value in zip(found, decision, strict=True):
        total = sum(weight for _, weight in item.words) + explainer.intercept
        assert total == pytest.approx(value, abs=1e-6)
        weights = [abs(weight) for _, weight in item.words]
        assert weights == sorted(weights, reverse=True)
    expected = nbsvm.predict_proba(texts)[:, 1]
    assert [item.label == "POSITIVE" for item in found] == list(expected > 0.5)


def test_deleting_top_words_moves_the_bag_of_words_score_more_than_random_words(nbsvm, real_reviews) -> None:
    texts = [_without(text, set()) for text in real_reviews[1]["text"]]
    explainer = LinearExplainer(nbsvm, "nbsvm")
    rng = np.random.default_rng(0)
    top_moves, random_moves = [], []
    for text, item in zip(texts, explainer.explain(texts), strict=True):
        sign = 1 if item.label == "POSITIVE" else -1
        supporting = [word for word, weight in item.words if sign * weight > 0][:5]
        vocabulary = sorted(set(text.split()))
        chosen = set(rng.choice(vocabulary, size=len(supporting), replace=False))
        before = nbsvm.predict_proba([text])[0, 1]
        top_moves.append(abs(nbsvm.predict_proba([_without(text, set(supporting))])[0, 1] - before))
        random_moves.append(abs(nbsvm.predict_proba([_without(text, chosen)])[0, 1] - before))
    assert np.mean(top_moves) > 2 * np.mean(random_moves)


def test_integrated_gradients_add_up_to_the_margin_change(tiny_classifier: Path) -> None:
    classifier = SentimentClassifier.load(tiny_classifier, device="cpu", precision="fp32")
    explainer = GradientExplainer(classifier, steps=64)
    words, gap = explainer.attribute("a wonderful, unforgettable film with terrible dialogue")
    assert {"wonderful", "unforgettable", "terrible", ","} <= set(words)  # pieces merged into words
    assert gap < 1e-3 + 0.02 * sum(abs(weight) for weight in words.values())


def test_deleting_top_words_moves_the_transformer_score_more_than_random_words(real_reviews,
                                                                             fine_tuned: Path) -> None:
    classifier = SentimentClassifier.load(fine_tuned, device="cpu", precision="fp32", max_length=96,
                                          truncation="head")
    explainer = GradientExplainer(classifier, steps=8)
    texts = [" ".join(text.split()[:50]) for text in real_reviews[1]["text"][:6]]
    rng = np.random.default_rng(0)

    def margin(text: str) -> float:
        p = classifier.predict_proba([text])[0, 1]
        return float(np.log(p) - np.log1p(-p))

    top_moves, random_moves = [], []
    for text, item in zip(texts, explainer.explain(texts), strict=True):
        sign = 1 if item.label == "POSITIVE" else -1
        supporting = {word for word, weight in item.words if sign * weight > 0 and word.isalpha()}
        top = [word for word, _ in item.words if word in supporting][:3]
        words = sorted({word.lower() for word in re.findall(r"[A-Za-z]+", text)})
        chosen = list(rng.choice(words, size=len(top), replace=False))

        def drop(targets: list[str], text: str = text) -> str:
            return re.sub(r"\b(" + "|".join(map(re.escape, targets)) + r")\b", "", text, flags=re.IGNORECASE)

        before = margin(text)
        top_moves.append(sign * (before - margin(drop(top))))
        random_moves.append(sign * (before - margin(drop(chosen))))
    assert np.mean(top_moves) > np.mean(random_moves)
    assert np.mean(top_moves) > 0


def test_models_that_cannot_be_explained_get_one_line_errors(tmp_path: Path, tiny_classifier: Path) -> None:
    from imdb_sentiment.baselines import build_baseline

    save_baseline(build_baseline("random-forest"), tmp_path / "forest" / "model", "random-forest")
    with pytest.raises(UserError, match="no linear weights"):
        load_explainer(tmp_path / "forest")
    export = tmp_path / "export"
    export.mkdir()
    from imdb_sentiment.exporters.onnx import ONNX_META

    (export / ONNX_META).write_text("{}")
    with pytest.raises(UserError, match="ONNX export"):
        load_explainer(export)
    with pytest.raises(UserError, match="steps"):
        load_explainer(tiny_classifier, steps=0)


def test_predict_explain_prints_words_per_review(tiny_classifier: Path, capsys) -> None:
    code = main(["predict", "--model", str(tiny_classifier), "--explain", "--json", "--top", "4",
                 "A wonderful film with a great cast.", "   "])
    assert code == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines[0]["label"] in ("POSITIVE", "NEGATIVE") and 0.5 <= lines[0]["score"] <= 1
    pairs = lines[0]["explanation"]
    assert len(pairs) == 4 and all(isinstance(word, str) and isinstance(w, float) for word, w in pairs)
    assert [abs(w) for _, w in pairs] == sorted((abs(w) for _, w in pairs), reverse=True)
    assert lines[1]["error"] == "empty text" and lines[1]["explanation"] is None


def test_predict_explain_on_a_file_and_a_baseline(nbsvm, real_reviews, tmp_path: Path, capsys) -> None:
    save_baseline(nbsvm, tmp_path / "nbsvm" / "model", "nbsvm")
    source = tmp_path / "reviews.csv"
    real_reviews[1][["text"]].head(5).to_csv(source, index=False)
    out = tmp_path / "explained.jsonl"
    code = main(["predict", "--model", str(tmp_path / "nbsvm"), "--explain", "--input", str(source),
                 "--output", str(out), "--top", "3"])
    assert code == 0
    frame = pd.read_json(out, lines=True)
    assert list(frame.columns) == ["text", "label", "score", "explanation", "error"]
    assert all(len(json.loads(cell)) == 3 for cell in frame["explanation"])
    assert main(["predict", "--model", str(tmp_path / "nbsvm"), "--explain", "--top", "0", "x"]) == 2
    assert "--top must be positive" in capsys.readouterr().err


def test_service_explains_and_refuses_onnx(tiny_classifier: Path) -> None:
    from fastapi.testclient import TestClient

    from imdb_sentiment.serving import create_app

    classifier = SentimentClassifier.load(tiny_classifier, device="cpu", precision="fp32")
    with TestClient(create_app(classifier)) as client:
        answer = client.post("/explain", json={"texts": ["A wonderful film.", "Dull."], "top": 3})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["method"] == "integrated-gradients" and len(body["explanations"]) == 2
        assert len(body["explanations"][0]["words"]) == 3
        assert "stars" not in client.post("/predict", json={"texts": ["ok"]}).json()["predictions"][0]
        assert client.post("/explain", json={"texts": [""]}).status_code == 422
        assert client.post("/explain", json={"texts": ["a"] * 9}).status_code == 413


def test_an_onnx_classifier_explains_with_its_pytorch_weights(tiny_classifier: Path, onnx_cache: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The default CPU engine (ONNX Runtime int8) predicts; the folder's PyTorch weights, loaded on
    the first explanation and then kept, give the same word weights as the PyTorch classifier."""
    from imdb_sentiment import modeling

    texts = ["A wonderful, unforgettable film.", "Dull, with terrible dialogue."]
    SentimentClassifier.load(tiny_classifier, device="cpu", backend="onnx")  # the one-time export
    loads: list[str] = []
    real_load = modeling.load_classifier

    def counted(source, **options):
        loads.append(str(source))
        return real_load(source, **options)

    monkeypatch.setattr(modeling, "load_classifier", counted)
    fast = SentimentClassifier.load(tiny_classifier, device="cpu", backend="onnx")
    assert fast.backend.name == "onnx" and fast.precision == "int8" and loads == []
    found = GradientExplainer(fast).explain(texts)
    again = GradientExplainer(fast).explain(texts)
    assert loads == [str(tiny_classifier)]  # loaded once, when first needed
    monkeypatch.undo()
    plain = SentimentClassifier.load(tiny_classifier, device="cpu", backend="torch", precision="fp32")
    expected = GradientExplainer(plain).explain(texts)
    for item, repeat, reference in zip(found, again, expected, strict=True):
        assert [word for word, _ in item.words] == [word for word, _ in reference.words]
        np.testing.assert_allclose([w for _, w in item.words], [w for _, w in reference.words], rtol=1e-5)
        assert item.words == repeat.words
    predicted = fast.predict(texts)  # the labels and scores are the fast engine's
    assert [item.label for item in found] == [p["label"] for p in predicted]
    np.testing.assert_allclose([item.score for item in found], [p["score"] for p in predicted], atol=1e-6)
    int8 = load_explainer(tiny_classifier, precision="int8").explain(texts)  # PyTorch int8 too
    np.testing.assert_allclose([w for _, w in int8[0].words], [w for _, w in expected[0].words], rtol=1e-5)


def test_the_service_explains_on_the_default_cpu_engine(tiny_classifier: Path, onnx_cache: Path) -> None:
    from fastapi.testclient import TestClient

    from imdb_sentiment.serving import create_app

    fast = SentimentClassifier.load(tiny_classifier, device="cpu", backend="onnx")
    plain = SentimentClassifier.load(tiny_classifier, device="cpu", backend="torch", precision="fp32")
    with TestClient(create_app(fast)) as client:
        answer = client.post("/explain", json={"texts": ["A wonderful film."]})
        assert answer.status_code == 200, answer.text
        words = answer.json()["explanations"][0]["words"]
        predicted = client.post("/predict", json={"texts": ["A wonderful film."]}).json()["predictions"][0]
    assert answer.json()["explanations"][0]["label"] == predicted["label"]
    expected = GradientExplainer(plain).explain(["A wonderful film."])[0].top(None)
    assert [word for word, _ in words] == [word for word, _ in expected]
    np.testing.assert_allclose([w for _, w in words], [w for _, w in expected], rtol=1e-4)


def test_predict_explain_labels_come_from_the_engine_predict_uses(tiny_classifier: Path, onnx_cache: Path,
                                                                  capsys) -> None:
    review = "A wonderful film with a great cast."
    options = ["--model", str(tiny_classifier), "--backend", "onnx", "--json"]
    assert main(["predict", *options, review]) == 0
    predicted = json.loads(capsys.readouterr().out)
    assert main(["predict", *options, "--explain", "--top", "3", review]) == 0
    explained = json.loads(capsys.readouterr().out)
    assert explained["label"] == predicted["label"]
    assert explained["score"] == pytest.approx(predicted["score"], abs=1e-6)
    assert len(explained["explanation"]) == 3
