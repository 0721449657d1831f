"""Star ratings: the rating head (train --target rating), its outputs everywhere, the ridge baseline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from imdb_sentiment.cli import main
from imdb_sentiment.config import TrainConfig
from imdb_sentiment.errors import UserError
from imdb_sentiment.ratings import STAR_CLASSES, rating_metrics, to_stars


def test_stars_are_the_median_of_the_star_distribution() -> None:
    logits = np.log(np.array([[0.6, 0.1, 0.1, 0.0, 0.0, 0.0, 0.0, 0.2],
                              [0.3, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.7],
                              [0.0, 0.0, 0.0, 0.4, 0.2, 0.0, 0.0, 0.4]]) + 1e-12)
    assert list(to_stars(logits, STAR_CLASSES)) == [1, 10, 7]
    expected = {"mae": 1.0, "within_one_star": pytest.approx(2 / 3, 1e-3)}
    assert rating_metrics([1, 10, 8], [2, 10, 10]) == expected


@pytest.fixture(scope="module")
def rated_reviews(shared_data: Path) -> dict[str, pd.DataFrame]:
    from imdb_sentiment.data import clean_text, subsample

    columns = ["id", "text", "label", "rating"]
    frames = {}
    for split, size in (("train", 120), ("test", 40)):
        frame = subsample(pd.read_parquet(shared_data / f"{split}.parquet", columns=columns), size, 0)
        frames[split] = frame.assign(text=[" ".join(clean_text(t).split()[:60]) for t in frame["text"]])
    return frames


def test_train_target_rating_gives_stars_everywhere(tiny_encoder: Path, rated_reviews, tmp_path: Path,
                                                    capsys) -> None:
    from fastapi.testclient import TestClient

    from imdb_sentiment.inference import SentimentClassifier
    from imdb_sentiment.serving import create_app
    from imdb_sentiment.training import train

    config = TrainConfig(epochs=1, batch_size=16, max_length=64, target="rating", precision="fp32")
    result = train(str(tiny_encoder), rated_reviews, tmp_path / "rated", config, progress=False)
    metrics = json.loads((tmp_path / "rated" / "metrics.json").read_text())
    assert 0 <= metrics["mae"] <= 9 and 0 <= metrics["within_one_star"] <= 1
    assert metrics["accuracy"] == result.test_metrics["accuracy"]
    classifier = SentimentClassifier.load(tmp_path / "rated", device="cpu", precision="fp32")
    details = classifier.predict_details(rated_reviews["test"]["text"].tolist())
    assert set(details.stars) <= set(STAR_CLASSES)
    errors = np.abs(details.stars - rated_reviews["test"]["rating"].to_numpy())
    assert metrics["mae"] == pytest.approx(errors.mean(), abs=1e-3)
    with TestClient(create_app(classifier)) as client:
        prediction = client.post("/predict", json={"texts": ["Great film."]}).json()["predictions"][0]
    assert prediction["stars"] in STAR_CLASSES
    assert main(["predict", "--model", str(tmp_path / "rated"), "--json", "Great film."]) == 0
    assert json.loads(capsys.readouterr().out)["stars"] in STAR_CLASSES


def test_target_rating_without_ratings_is_one_line_error(tiny_encoder: Path, review_frame, tmp_path: Path,
                                                         capsys) -> None:
    from imdb_sentiment.training import train

    data = {"train": review_frame, "test": review_frame}
    with pytest.raises(UserError, match="needs a 'rating' column"):
        train(str(tiny_encoder), data, tmp_path / "x", TrainConfig(target="rating"), progress=False)
    file = tmp_path / "reviews.csv"
    review_frame.to_csv(file, index=False)
    code = main(["train", "--model", str(tiny_encoder), "--data", str(file), "--output", str(tmp_path / "y"),
                 "--target", "rating", "--runs-dir", "none"])
    assert code == 2 and "needs a 'rating' column" in capsys.readouterr().err
    with pytest.raises(UserError, match="target must be one of"):
        TrainConfig(target="stars")


def test_ridge_rating_baseline(rated_reviews, tmp_path: Path) -> None:
    from imdb_sentiment.baselines import evaluate_baseline, fit_baseline, load_baseline, save_baseline

    train = rated_reviews["train"]
    with pytest.raises(UserError, match="rating"):
        from imdb_sentiment.baselines import BaselineConfig, run_baseline
        from imdb_sentiment.config import DataSpec

        train.drop(columns="rating").to_csv(tmp_path / "plain.csv", index=False)
        run_baseline(DataSpec(str(tmp_path / "plain.csv")), BaselineConfig("ridge-rating"), tmp_path / "out")
    model = fit_baseline("ridge-rating", train.assign(label=train["rating"]))
    save_baseline(model, tmp_path / "ridge", "ridge-rating")
    metrics = evaluate_baseline(load_baseline(tmp_path / "ridge"), rated_reviews["test"])
    assert {"accuracy", "mae", "within_one_star", "roc_auc"} <= set(metrics)
    assert metrics["mae"] < 4.0


def test_the_rating_loss_averages_over_every_accumulated_review() -> None:
    """With gradient accumulation, Trainer passes the label values of all the step's batches (two
    per review): k batches of b reviews must each weigh 1/(k*b) per review, as one large batch."""
    import torch

    from imdb_sentiment.ratings import rating_loss

    torch.manual_seed(0)
    logits = torch.randn(4, 2 + len(STAR_CLASSES))
    labels = torch.tensor([[0, 1], [1, 5], [1, 7], [0, 0]])
    mean = rating_loss({"logits": logits}, labels)
    whole = rating_loss({"logits": logits}, labels, num_items_in_batch=torch.tensor(8))
    assert float(whole) == pytest.approx(float(mean))
    accumulated = rating_loss({"logits": logits}, labels, num_items_in_batch=torch.tensor(8 * 3))
    assert float(accumulated) == pytest.approx(float(mean) / 3)
