"""Validation carved by group: no movie on both sides, seeded, recorded by the baseline run."""

from __future__ import annotations

import pandas as pd
import pytest

from imdb_sentiment.data import carve_split, load_splits
from imdb_sentiment.errors import UserError


def frame(n: int = 300) -> pd.DataFrame:
    texts = [f"{'fine' if i % 2 else 'poor'} film number {i}" for i in range(n)]
    return pd.DataFrame({"id": [f"train/{i}" for i in range(n)], "text": texts,
                         "label": [i % 2 for i in range(n)], "movie": [f"tt{i % 37:04d}" for i in range(n)]})


def test_carve_by_movie_keeps_each_movie_on_one_side() -> None:
    rest, carved = carve_split(frame(), 0.2, seed=3, group_column="movie")
    assert set(rest["movie"]).isdisjoint(carved["movie"])
    assert len(rest) + len(carved) == 300 and 0.1 < len(carved) / 300 <= 0.2
    _, again = carve_split(frame(), 0.2, seed=3, group_column="movie")
    assert again["id"].tolist() == carved["id"].tolist()
    other = carve_split(frame(), 0.2, seed=4, group_column="movie")[1]
    assert set(other["movie"]) != set(carved["movie"])
    random_rest, random_carved = carve_split(frame(), 0.2, seed=3)  # by review: movies straddle
    assert not set(random_rest["movie"]).isdisjoint(random_carved["movie"])


def test_bad_group_columns() -> None:
    with pytest.raises(UserError, match="group column must be one of"):
        carve_split(frame(), 0.2, seed=0, group_column="rating")
    with pytest.raises(UserError, match="no 'movie' column"):
        carve_split(frame().drop(columns="movie"), 0.2, seed=0, group_column="movie")
    with pytest.raises(UserError, match="too few movie groups"):
        carve_split(frame().assign(movie="tt1"), 0.2, seed=0, group_column="movie")


def test_load_splits_and_baseline_record_the_group_column(tmp_path) -> None:
    from imdb_sentiment.artifacts import read_json
    from imdb_sentiment.baselines import BaselineConfig, run_baseline
    from imdb_sentiment.config import DataSpec

    data = tmp_path / "data"
    data.mkdir()
    frame().to_parquet(data / "train.parquet")
    frame(60).assign(id=lambda f: "test/" + f["id"]).to_parquet(data / "test.parquet")
    splits = load_splits(data, group_column="movie", validation_size=0.2)
    assert set(splits["train"]["movie"]).isdisjoint(splits["validation"]["movie"])
    run_baseline(DataSpec(str(data), group_column="movie", validation_size=0.2), BaselineConfig("logreg"),
                 tmp_path / "out")
    metrics = read_json(tmp_path / "out" / "metrics.json")
    assert metrics["group_column"] == "movie" and metrics["n_validation"] == len(splits["validation"])


def test_train_carves_validation_by_movie_and_records_it() -> None:
    from imdb_sentiment.config import TrainConfig, to_toml
    from imdb_sentiment.training import _splits

    config = TrainConfig(group_column="movie", validation_size=0.2)
    frames, _ = _splits({"train": frame()}, config, evaluate_test=False, max_test_samples=None)
    assert set(frames["train"]["movie"]).isdisjoint(frames["validation"]["movie"])
    assert 'group_column = "movie"' in to_toml({}, config)
    assert "group_column" not in to_toml({}, TrainConfig())  # unset: files stay as they were
