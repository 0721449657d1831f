"""Metrics and test-split evaluation of sequence classifiers (``evaluate`` command and API)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import PRECISION_TOLERANCE

from imdb_sentiment.classifier import Classifier, Details
from imdb_sentiment.cli import main
from imdb_sentiment.config import DataSpec, EvaluationConfig
from imdb_sentiment.errors import UserError
from imdb_sentiment.evaluation import classification_metrics, evaluate_model
from imdb_sentiment.inference import SentimentClassifier


@pytest.fixture
def data_dir(tmp_path, review_frame):
    """A split-files folder: 60 train and 60 test reviews."""
    folder = tmp_path / "data"
    folder.mkdir()
    frame = review_frame.assign(id=[f"r{i}" for i in range(len(review_frame))])
    frame.to_parquet(folder / "train.parquet")
    frame.to_parquet(folder / "test.parquet")
    return folder


def run_cli(args, capsys):
    code = main([str(arg) for arg in args])
    return code, capsys.readouterr()


# --------------------------------------------------------------------------- metrics


def test_classification_metrics_match_a_hand_count():
    labels = [1, 1, 1, 0, 0, 0, 0, 1]
    predicted = [1, 1, 0, 0, 0, 1, 0, 1]  # tp 3, fn 1, fp 1, tn 3
    metrics = classification_metrics(labels, predicted, scores=[0.9, 0.8, 0.4, 0.1, 0.2, 0.6, 0.3, 0.7])
    assert metrics["accuracy"] == 6 / 8
    assert metrics["precision"] == metrics["recall"] == metrics["f1"] == 3 / 4
    assert metrics["confusion_matrix"] == [[3, 1], [1, 3]]
    assert metrics["n_test"] == 8
    assert 0.5 < metrics["roc_auc"] <= 1


# --------------------------------------------------------------------------- evaluate_model


def test_evaluate_writes_metrics_and_predictions(tiny_classifier, data_dir, tmp_path):
    out = tmp_path / "eval"
    metrics = evaluate_model(tiny_classifier, data_dir, out,
                             EvaluationConfig(max_samples=20, max_length=32, batch_size=8))
    saved = json.loads((out / "metrics.json").read_text())
    predictions = pd.read_parquet(out / "predictions.parquet")
    assert saved == json.loads(json.dumps(metrics))
    for key in ("accuracy", "f1", "precision", "recall", "confusion_matrix", "seconds", "reviews_per_second",
                "model", "max_length", "truncation"):
        assert key in saved
    assert (saved["n_test"], saved["max_length"], saved["truncation"]) == (20, 32, "head-tail")
    assert list(predictions.columns) == ["id", "label", "predicted", "score"]
    assert len(predictions) == 20 and predictions["id"].is_unique
    assert predictions["label"].value_counts().to_dict() == {0: 10, 1: 10}  # stratified subset
    assert ((predictions["score"] > 0.5).astype(int) == predictions["predicted"]).all()
    assert saved["accuracy"] == pytest.approx((predictions["label"] == predictions["predicted"]).mean())


def test_scores_are_the_models_positive_probability(tiny_classifier, data_dir, review_frame, precision):
    metrics_dir = data_dir.parent / f"eval-{precision}"
    metrics = evaluate_model(tiny_classifier, data_dir, metrics_dir,
                             EvaluationConfig(max_length=32, truncation="head", precision=precision,
                                              device="cpu"))
    assert metrics["dtype"] == precision
    predictions = pd.read_parquet(metrics_dir / "predictions.parquet")
    classifier = SentimentClassifier.load(tiny_classifier, device="cpu", precision=precision, max_length=32,
                                          truncation="head")
    by_id = dict(zip(review_frame.assign(id=[f"r{i}" for i in range(60)])["id"], review_frame["text"],
                     strict=True))
    expected = classifier.predict_proba([by_id[i] for i in predictions["id"]])[:, 1]
    np.testing.assert_allclose(predictions["score"], expected, atol=PRECISION_TOLERANCE[precision])


def test_label_order_comes_from_the_model_config(tmp_path, review_frame, precision):
    """Two models with identical weights, output labels swapped: positive scores must mirror."""
    from conftest import build_tiny_model

    normal = build_tiny_model(tmp_path / "normal", seed=3)
    swapped = build_tiny_model(tmp_path / "swapped", seed=3, id2label={0: "POSITIVE", 1: "NEGATIVE"})
    data = {"test": review_frame.assign(id=[str(i) for i in range(60)])}
    settings = EvaluationConfig(max_length=32, precision=precision, device="cpu")
    evaluate_model(normal, data, tmp_path / "a", settings)
    evaluate_model(swapped, data, tmp_path / "b", settings)
    a = pd.read_parquet(tmp_path / "a" / "predictions.parquet")
    b = pd.read_parquet(tmp_path / "b" / "predictions.parquet")
    np.testing.assert_allclose(a["score"], 1 - b["score"], atol=PRECISION_TOLERANCE[precision])


def test_truncation_defaults_come_from_the_training_run(tiny_classifier, tmp_path, review_frame):
    import shutil

    from imdb_sentiment.config import preset, to_toml

    model = tmp_path / "trained"
    shutil.copytree(tiny_classifier, model)
    config = preset("seed").replace(max_length=48)
    (model / "train_config.toml").write_text(to_toml({"model": "base"}, config))
    metrics = evaluate_model(model, {"test": review_frame}, settings=EvaluationConfig(max_samples=4))
    assert (metrics["max_length"], metrics["truncation"]) == (48, "head")
    metrics = evaluate_model(model, {"test": review_frame},
                             settings=EvaluationConfig(max_samples=4, max_length=24, truncation="head-tail"))
    assert (metrics["max_length"], metrics["truncation"]) == (24, "head-tail")


def test_existing_output_is_refused_before_any_work(tiny_classifier, data_dir, tmp_path):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(UserError, match="--overwrite"):
        evaluate_model(tiny_classifier, data_dir, out)
    assert (out / "keep.txt").read_text() == "mine"
    evaluate_model(tiny_classifier, data_dir, out, EvaluationConfig(max_samples=4, max_length=32),
                   overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json", "predictions.parquet"]


def test_a_data_spec_is_read_as_it_says_and_recorded(tiny_classifier, data_dir, tmp_path):
    import shutil

    renamed = tmp_path / "renamed"
    shutil.copytree(data_dir, renamed)
    for file in renamed.glob("*.parquet"):
        pd.read_parquet(file).rename(columns={"text": "review", "label": "sentiment"}).to_parquet(file)
    spec = DataSpec(str(renamed), text_column="review", label_column="sentiment", cleaning="none", seed=5,
                    validation_size=0)
    metrics = evaluate_model(tiny_classifier, spec, settings=EvaluationConfig(max_samples=6, max_length=32))
    assert metrics["n_test"] == 6
    assert {key: metrics[key] for key in ("data", "text_column", "label_column", "cleaning", "seed")} == {
        "data": str(renamed), "text_column": "review", "label_column": "sentiment", "cleaning": "none",
        "seed": 5}


def test_evaluation_settings_are_checked_when_made():
    with pytest.raises(UserError, match="truncation must be one of"):
        EvaluationConfig(truncation="middle")
    with pytest.raises(UserError, match="--max-samples must be positive"):
        EvaluationConfig(max_samples=0)
    with pytest.raises(UserError, match="batch size must be positive"):
        EvaluationConfig(batch_size=0)


# --------------------------------------------------------------------------- CLI


def test_cli_evaluate(tiny_classifier, data_dir, tmp_path, capsys):
    out = tmp_path / "cli-eval"
    code, captured = run_cli(["evaluate", "--model", tiny_classifier, "--data", data_dir, "--output", out,
                              "--max-samples", 10, "--max-length", 32, "--truncation", "head"], capsys)
    assert code == 0, captured.err
    assert "accuracy" in captured.out
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["n_test"], metrics["truncation"]) == (10, "head")


@pytest.mark.parametrize(("make_args", "message"), [
    (lambda m, e: ["--model", e], "neither a sequence-classification model"),
    (lambda m, e: ["--model", "distilbert-base-uncased-finetuned-sst-2-english"], "pass a local model"),
    (lambda m, e: ["--model", m.parent / "missing-model"], "model path not found"),
    (lambda m, e: ["--model", m, "--max-length", 1024], "beyond this model's 512 positions"),
    (lambda m, e: ["--model", m, "--truncation", "middle"], "truncation must be one of"),
    (lambda m, e: ["--model", m, "--max-samples", 0], "must be positive"),
])
def test_cli_evaluate_bad_input_is_one_line(make_args, message, tiny_classifier, tiny_encoder, data_dir,
                                            tmp_path, capsys):
    args = ["evaluate", *make_args(tiny_classifier, tiny_encoder), "--data", data_dir,
            "--output", tmp_path / "never"]
    code, captured = run_cli(args, capsys)
    assert code == 2
    assert captured.err.strip().count("\n") == 0 and message in captured.err
    assert not (tmp_path / "never").exists()


def test_cli_evaluate_refuses_unmappable_labels(tmp_path, data_dir, capsys):
    from conftest import build_tiny_model

    model = build_tiny_model(tmp_path / "emotions", id2label={0: "joy", 1: "anger"})
    code, captured = run_cli(["evaluate", "--model", model, "--data", data_dir, "--output", tmp_path / "o"],
                             capsys)
    assert code == 2 and "cannot map the model's labels (joy, anger)" in captured.err


def test_cli_evaluate_refuses_an_existing_output(tiny_classifier, data_dir, tmp_path, capsys):
    out = tmp_path / "full"
    out.mkdir()
    (out / "x").write_text("x")
    code, captured = run_cli(["evaluate", "--model", tiny_classifier, "--data", data_dir, "--output", out],
                             capsys)
    assert code == 2 and "--overwrite" in captured.err


# --------------------------------------------------------------------------- any classifier


class KeywordClassifier(Classifier):
    """A classifier that is neither a transformer nor a hybrid: "wonderful" means positive; reviews
    with "film 1" in them go on to a pretend transformer, as a hybrid's uncertain ones would."""

    name = "keywords"
    max_length, truncation, head_tokens, batch_size, device, precision = 16, "head", 16, 8, "cpu", "fp32"

    def predict_details(self, texts, batch_size=None, progress=None, *, cache=False) -> Details:
        positive = np.array([0.9 if "wonderful" in text else 0.2 for text in texts])
        count = len(texts)
        decided = np.array(["blend" if "film 1" in text else "screen" for text in texts])
        ones = np.ones(count, dtype=np.int64)
        return Details(np.column_stack([1 - positive, positive]).astype(np.float32), ones,
                       np.zeros(count, dtype=bool), ones, decided_by=decided)

    def info(self) -> dict:
        return {"model": self.name, "hybrid": {"mode": "cascade"}}

    def gradient_classifier(self) -> Classifier:
        raise UserError("no gradients here")


def test_any_classifier_is_evaluated_and_a_hybrids_share_comes_from_its_decisions(review_frame):
    metrics = evaluate_model(KeywordClassifier(), {"test": review_frame})
    assert metrics["accuracy"] == 1.0 and metrics["model"] == "keywords" and metrics["max_length"] == 16
    sent = review_frame["text"].str.contains("film 1").mean()  # "film 1", "film 10" ... "film 19"
    assert metrics["transformer_share"] == round(sent, 4) and metrics["hybrid"] == {"mode": "cascade"}
