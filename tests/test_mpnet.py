"""MPNet end to end on a tiny random model with a real MPNet tokenizer: adapt, train, evaluate,
export (ONNX, int8), predict, serve, hybrid and label. MPNet differs from BERT in ways the code
must not assume away: no token_type_ids, ``<s>``/``</s>``/``<pad>`` specials, and position ids that
start after the padding index (two positions are never used)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from imdb_sentiment.cli import main

POSITIONS = 66
"""max_position_embeddings of the tiny model: 64 usable positions."""


def build_tiny_mpnet(folder: Path, *, classifier: bool, shared_model: Path) -> Path:
    """A 2-layer random MPNet; its tokenizer is MPNet's, on the shared uncased WordPiece vocabulary
    with MPNet's specials in front (as microsoft/mpnet-base lays them out)."""
    import torch
    from transformers import MPNetConfig, MPNetForSequenceClassification, MPNetModel, MPNetTokenizerFast

    words = (shared_model / "vocab.txt").read_text(encoding="utf-8").splitlines()
    vocab = {word: index for index, word in enumerate(["<s>", "<pad>", "</s>", "<unk>", *words, "<mask>"])}
    tokenizer = MPNetTokenizerFast(vocab=vocab)
    torch.manual_seed(0)
    config = MPNetConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=POSITIONS, pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        initializer_range=0.5,  # outputs that differ from review to review
        id2label={0: "NEGATIVE", 1: "POSITIVE"}, label2id={"NEGATIVE": 0, "POSITIVE": 1},
    )
    model = MPNetForSequenceClassification(config) if classifier else MPNetModel(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


REVIEWS = ["What a wonderful, moving film.", "Dreadful and boring from start to end.",
           "An awful plot, but the music is great " * 12]


@pytest.fixture(scope="module")
def mpnet(tmp_path_factory: pytest.TempPathFactory, shared_model: Path) -> Path:
    return build_tiny_mpnet(tmp_path_factory.mktemp("mpnet"), classifier=True, shared_model=shared_model)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("data")
    rows = [(f"a wonderful great film {i}", 1) for i in range(12)] + [(f"a dreadful boring film {i}", 0)
                                                                      for i in range(12)]
    train = pd.DataFrame(rows, columns=["text", "label"]).assign(movie=[f"tt{i % 4}" for i in range(24)])
    train.to_parquet(folder / "train.parquet")
    train.assign(text=train["text"] + " again").to_parquet(folder / "test.parquet")
    pd.DataFrame({"text": [f"an unlabeled film review {i}" for i in range(16)], "label": -1}).to_parquet(
        folder / "unsupervised.parquet")
    return folder


def run(*args: object) -> None:
    code = main([str(arg) for arg in args])
    assert code == 0, f"{args[0]} exited {code}"


def test_mpnet_uses_every_position_but_the_two_it_reserves(mpnet: Path) -> None:
    from transformers import AutoConfig

    from imdb_sentiment.encoding import max_model_length
    from imdb_sentiment.inference import SentimentClassifier

    assert max_model_length(AutoConfig.from_pretrained(mpnet), object()) == POSITIONS - 2
    classifier = SentimentClassifier.load(mpnet, backend="torch", precision="fp32")
    assert classifier.max_length == POSITIONS - 2
    details = classifier.predict_details(REVIEWS)  # the long review fills every position
    assert details.truncated.tolist() == [False, False, True]


def test_predictions_match_transformers_on_every_engine(mpnet: Path, tmp_path: Path, capsys) -> None:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from imdb_sentiment.inference import SentimentClassifier

    tokenizer = AutoTokenizer.from_pretrained(mpnet)
    assert "token_type_ids" not in tokenizer.model_input_names
    reference = AutoModelForSequenceClassification.from_pretrained(mpnet).eval()
    short = REVIEWS[:2]
    with torch.no_grad():
        expected = torch.softmax(reference(**tokenizer(short, padding=True, return_tensors="pt")).logits, -1)
    assert float(expected[:, 1].max() - expected[:, 1].min()) > 0.05  # the reviews get different scores
    torch_model = SentimentClassifier.load(mpnet, backend="torch", precision="fp32")
    assert np.allclose(torch_model.predict_proba(short), expected.numpy(), atol=1e-5)
    run("export", "--model", mpnet, "--output", tmp_path / "onnx")
    run("export", "--model", mpnet, "--output", tmp_path / "int8", "--quantize", "int8")
    onnx_model = SentimentClassifier.load(tmp_path / "onnx")
    assert np.allclose(onnx_model.predict_proba(REVIEWS), torch_model.predict_proba(REVIEWS), atol=1e-4)
    capsys.readouterr()
    run("predict", "--model", tmp_path / "int8", *short)
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split("\t")[0] for line in lines] == [
        "POSITIVE" if p > 0.5 else "NEGATIVE" for p in expected[:, 1].tolist()]
    assert np.allclose([float(line.split("\t")[1]) for line in lines], expected.max(dim=1).values, atol=0.05)


def test_the_service_answers_for_mpnet(mpnet: Path) -> None:
    from fastapi.testclient import TestClient

    from imdb_sentiment.inference import SentimentClassifier
    from imdb_sentiment.serving import create_app

    model = SentimentClassifier.load(mpnet, backend="torch", precision="fp32")
    with TestClient(create_app(model)) as client:
        response = client.post("/predict", json={"texts": REVIEWS})
    assert response.status_code == 200
    served = response.json()["predictions"]
    for item, expected in zip(served, model.predict(REVIEWS), strict=True):
        assert item["label"] == expected["label"]
        assert item["score"] == pytest.approx(expected["score"], abs=1e-5)
    assert [item["truncated"] for item in served] == [False, False, True]


def test_adapt_train_evaluate_hybrid_and_label_on_mpnet(tmp_path: Path, data: Path, shared_model: Path,
                                                        capsys) -> None:
    encoder = build_tiny_mpnet(tmp_path / "encoder", classifier=False, shared_model=shared_model)
    run("adapt", "--model", encoder, "--data", data, "--output", tmp_path / "adapted", "--max-steps", "2",
        "--max-length", "32", "--batch-size", "8", "--precision", "fp32", "--runs-dir", "none")
    assert json.loads((tmp_path / "adapted" / "config.json").read_text())["model_type"] == "mpnet"
    run("train", "--model", tmp_path / "adapted", "--data", data, "--output", tmp_path / "model",
        "--epochs", "1", "--max-length", "32", "--batch-size", "8", "--precision", "fp32",
        "--max-test-samples", "8", "--runs-dir", "none")
    trained = json.loads((tmp_path / "model" / "metrics.json").read_text())
    assert trained["n_test"] == 8 and trained["max_length"] == 32
    run("evaluate", "--model", tmp_path / "model", "--data", data, "--output", tmp_path / "evaluation",
        "--max-samples", "8", "--runs-dir", "none")
    evaluated = json.loads((tmp_path / "evaluation" / "metrics.json").read_text())
    assert evaluated["accuracy"] == pytest.approx(trained["accuracy"])
    run("baseline", "--data", data, "--model", "logreg", "--output", tmp_path / "baseline",
        "--runs-dir", "none")
    run("hybrid", "--baseline", tmp_path / "baseline", "--transformer", tmp_path / "model", "--data", data,
        "--output", tmp_path / "hybrid", "--backend", "torch", "--runs-dir", "none")
    capsys.readouterr()
    run("predict", "--model", tmp_path / "hybrid", "--backend", "torch", "a wonderful great film")
    assert capsys.readouterr().out.startswith("POSITIVE\t")
    run("label", "--model", tmp_path / "model", "--data", data, "--output", tmp_path / "labels.parquet",
        "--backend", "torch")
    labels = pd.read_parquet(tmp_path / "labels.parquet")
    assert len(labels) == 16 and labels["p_positive"].between(0, 1).all()
