"""Bag-of-words baselines: they learn, save safely, reload identically, and run end to end."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, TransformerMixin

from imdb_sentiment.artifacts import read_json
from imdb_sentiment.baselines import (
    MODEL_FILE,
    MODELS,
    BaselineConfig,
    NBFeatures,
    build_baseline,
    evaluate_baseline,
    fit_baseline,
    load_baseline,
    run_baseline,
    save_baseline,
)
from imdb_sentiment.config import DataSpec
from imdb_sentiment.errors import UserError

POSITIVE = ["wonderful", "superb", "moving", "brilliant", "delightful", "charming"]
NEGATIVE = ["dreadful", "boring", "awful", "tedious", "clumsy", "terrible"]
NEUTRAL = ["film", "plot", "actor", "scene", "story", "director", "camera", "music", "ending", "cast"]


def make_reviews(n: int, seed: int) -> pd.DataFrame:
    """Alternating-label reviews: mostly neutral words plus two words of the label's sentiment."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        label = i % 2
        words = [*rng.choice(NEUTRAL, 8), *rng.choice(POSITIVE if label else NEGATIVE, 2)]
        rng.shuffle(words)
        rows.append({"id": f"{seed}-{i}", "text": f"The {' '.join(words)}. Seen on day {seed}-{i}.",
                     "label": label})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def train_frame() -> pd.DataFrame:
    return make_reviews(200, seed=1)


@pytest.fixture(scope="module")
def test_frame() -> pd.DataFrame:
    return make_reviews(100, seed=2)


@pytest.fixture(scope="module")
def fitted(train_frame: pd.DataFrame) -> dict[str, object]:
    return {name: fit_baseline(name, train_frame, seed=0) for name in MODELS}


@pytest.mark.parametrize("name", MODELS)
def test_baselines_learn_sentiment_words(fitted: dict, test_frame: pd.DataFrame, name: str) -> None:
    model = fitted[name]
    metrics = evaluate_baseline(model, test_frame)
    assert metrics["accuracy"] > 0.9 and metrics["n_test"] == 100
    proba = model.predict_proba(["a wonderful superb film", "a dreadful boring film"])
    assert proba.shape == (2, 2) and np.allclose(proba.sum(axis=1), 1.0)
    assert proba[0, 1] > proba[0, 0] and proba[1, 0] > proba[1, 1]
    assert model.predict(["a wonderful superb film"]).tolist() == [1]


@pytest.mark.parametrize("name", MODELS)
def test_save_load_round_trip_without_pickle(fitted: dict, test_frame: pd.DataFrame, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    model = fitted[name]
    folder = save_baseline(model, tmp_path / "model", name)
    assert (folder / MODEL_FILE).is_file() and read_json(folder / "model.json")["model"] == name

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("loading a baseline must not unpickle anything")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    loaded = load_baseline(folder)
    texts = test_frame["text"].tolist()
    assert np.array_equal(loaded.predict_proba(texts), model.predict_proba(texts))
    vectorizer, original = loaded.named_steps["vectorizer"], model.named_steps["vectorizer"]
    assert vectorizer.vocabulary_ == original.vocabulary_


class Untrusted(TransformerMixin, BaseEstimator):
    """A step whose type is on no trusted list: a stand-in for a tampered model file."""

    def fit(self, X: object, y: object = None) -> Untrusted:
        return self

    def transform(self, X: object) -> object:
        return X


def test_load_refuses_untrusted_types(train_frame: pd.DataFrame, tmp_path: Path) -> None:
    model = build_baseline("logreg")
    model.steps.insert(0, ("sneaky", Untrusted()))
    model.fit(train_frame["text"].tolist(), train_frame["label"].to_numpy())
    save_baseline(model, tmp_path)
    with pytest.raises(UserError, match=r"not trusted: .*Untrusted"):
        load_baseline(tmp_path)
    (tmp_path / MODEL_FILE).write_bytes(b"not a zip file")
    with pytest.raises(UserError, match="not a readable skops model"):
        load_baseline(tmp_path)
    with pytest.raises(UserError, match="no saved baseline"):
        load_baseline(tmp_path / "elsewhere")


def test_nb_ratio_points_to_the_class_a_word_belongs_to() -> None:
    from scipy import sparse

    counts = sparse.csr_matrix(np.array([[1, 0, 1], [1, 0, 1], [0, 1, 1], [0, 1, 1]]))
    features = NBFeatures().fit(counts, np.array([1, 1, 0, 0]))
    assert features.ratio_[0] > 0 > features.ratio_[1]
    assert features.ratio_[2] == pytest.approx(0.0)
    scaled = features.transform(counts).toarray()
    assert np.allclose(scaled, counts.toarray() * features.ratio_)


def test_nb_features_refuse_one_label_as_scikit_learn_estimators_do() -> None:
    from scipy import sparse

    with pytest.raises(ValueError, match="both negative") as refused:
        NBFeatures().fit(sparse.csr_matrix(np.eye(3)), np.array([1, 1, 1]))
    assert not isinstance(refused.value, UserError)


def test_an_estimator_refusal_is_one_line_with_exit_2(train_frame: pd.DataFrame, test_frame: pd.DataFrame,
                                                       tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from imdb_sentiment.cli import main

    def refuse(self: NBFeatures, X: object, y: object) -> NBFeatures:
        raise ValueError("unusable targets\nsecond line")

    data = tmp_path / "data"
    data.mkdir()
    train_frame.to_parquet(data / "train.parquet")
    test_frame.to_parquet(data / "test.parquet")
    monkeypatch.setattr(NBFeatures, "fit", refuse)
    code = main(["baseline", "--data", str(data), "--output", str(tmp_path / "out"), "--runs-dir", "none"])
    last = capsys.readouterr().err.splitlines()[-1]
    assert (code, last) == (2, "error: cannot fit nbsvm on the training reviews: unusable targets")
    assert not (tmp_path / "out").exists()


def test_bad_choices_are_user_errors(train_frame: pd.DataFrame) -> None:
    with pytest.raises(UserError, match="unknown baseline 'svm'"):
        build_baseline("svm")
    with pytest.raises(UserError, match="bad setting"):
        build_baseline("nbsvm", no_such_step__C=1.0)
    assert build_baseline("logreg", classifier__C=3.0).get_params()["classifier__C"] == 3.0
    with pytest.raises(UserError, match="unknown baseline 'svm'"):
        BaselineConfig("svm")  # the settings are checked when made, before any data loads
    with pytest.raises(UserError, match="bad setting"):
        BaselineConfig("nbsvm", {"no_such_step__C": 1.0})
    with pytest.raises(UserError, match="both negative and positive"):
        fit_baseline("nbsvm", train_frame[train_frame["label"] == 1])


def test_run_baseline_writes_metrics_and_model(train_frame: pd.DataFrame, test_frame: pd.DataFrame,
                                               tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    train_frame.to_parquet(data / "train.parquet")
    test_frame.to_parquet(data / "test.parquet")
    lines: list[str] = []
    metrics = run_baseline(DataSpec(str(data), seed=3), BaselineConfig("nbsvm"), tmp_path / "out",
                           progress=lines.append)
    saved = read_json(tmp_path / "out" / "metrics.json")
    assert saved == metrics
    for key in ("accuracy", "f1", "precision", "recall", "confusion_matrix", "n_test", "seconds",
                "validation_accuracy", "model", "train_seconds"):
        assert key in saved
    assert saved["n_test"] == 100 and saved["n_train"] + saved["n_validation"] == 200
    assert np.asarray(saved["confusion_matrix"]).sum() == 100
    assert saved["model"] == "nbsvm" and saved["params"]["classifier__C"] == 1.0
    # every data setting is recorded, so the run can be repeated from its metrics
    assert {key: saved[key] for key in ("data", "text_column", "label_column", "cleaning", "seed",
                                        "validation_size", "test_size", "group_column")} == {
        "data": str(data), "text_column": "text", "label_column": "label", "cleaning": "basic", "seed": 3,
        "validation_size": 0.1, "test_size": 0.2, "group_column": None}
    reloaded = load_baseline(tmp_path / "out" / "model")
    assert evaluate_baseline(reloaded, test_frame)["accuracy"] == saved["accuracy"]
    assert any("validation accuracy" in line for line in lines)
    assert any(line.startswith("training nbsvm") and "done in" in line for line in lines)
    with pytest.raises(UserError, match="not empty"):
        run_baseline(DataSpec(str(data)), BaselineConfig("nbsvm"), tmp_path / "out")


@pytest.mark.parametrize("name", MODELS)
def test_training_texts_without_a_vocabulary_are_user_errors(name: str) -> None:
    """Too few reviews, or texts whose every word is in one review only, leave a vectorizer nothing."""
    numbers = pd.DataFrame({"text": [str(1000 + i) for i in range(40)], "label": [i % 2 for i in range(40)]})
    stop_words = pd.DataFrame({"text": ["the and of", "it is a"] * 10, "label": [0, 1] * 10})
    cases = {"logreg": [make_reviews(2, seed=5), numbers], "nbsvm": [numbers], "random-forest": [stop_words]}
    for frame in cases[name]:
        with pytest.raises(UserError, match=f"{name} finds no vocabulary in the {len(frame)} training"):
            fit_baseline(name, frame)


def test_one_label_training_data_is_refused_by_name(train_frame: pd.DataFrame) -> None:
    with pytest.raises(UserError, match=r"both negative and positive reviews \(only positive ones\)"):
        fit_baseline("logreg", train_frame[train_frame["label"] == 1])
