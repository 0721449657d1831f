"""``adapt``: masked-word pre-training on review text lowers the masked-word loss; bad input errors."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from imdb_sentiment.adaptation import AdaptConfig, AdaptRun, adapt, adaptation_texts
from imdb_sentiment.cli import main
from imdb_sentiment.config import DataSpec
from imdb_sentiment.errors import UserError


@pytest.fixture(scope="module")
def review_folder(shared_data: Path, tmp_path_factory) -> Path:
    """A data folder with 200 labelled training reviews and 200 unlabeled ones (real text)."""
    from imdb_sentiment.data import subsample

    folder = tmp_path_factory.mktemp("adapt-data")
    columns = ["id", "text", "label", "rating"]
    subsample(pd.read_parquet(shared_data / "train.parquet", columns=columns), 200, 0).to_parquet(
        folder / "train.parquet")
    unlabeled = pd.read_parquet(shared_data / "unsupervised.parquet", columns=columns)
    unlabeled.sample(200, random_state=0).to_parquet(folder / "unsupervised.parquet")
    return folder


def test_texts_come_from_unlabeled_and_train_less_validation(review_folder: Path) -> None:
    config = AdaptConfig()
    texts, counts = adaptation_texts(review_folder, config=config)
    assert counts["unsupervised"] == 200
    assert 170 <= counts["train"] <= 190  # the validation carve (10 %) is left out
    assert len(texts) == sum(counts.values())
    assert not any("<br" in text for text in texts)


def test_masked_word_loss_falls_and_the_output_trains(tiny_encoder: Path, review_folder: Path,
                                                      tmp_path: Path, runs_dir: Path) -> None:
    config = AdaptConfig(learning_rate=3e-3, max_steps=24, batch_size=8, max_length=48, warmup=0.0,
                         eval_texts=24, save_steps=12)
    result = adapt(str(tiny_encoder), review_folder, tmp_path / "adapted", config, progress=False,
                   runs_dir=runs_dir)
    metrics = result.metrics
    assert metrics["steps"] == 24
    assert metrics["eval_loss"] < metrics["eval_loss_before"] - 0.5  # from ~ln(30522) = 10.3
    folder = tmp_path / "adapted"
    assert {"config.json", "model.safetensors", "tokenizer.json", "README.md", "metrics.json",
            "adapt_config.json"} <= {path.name for path in folder.iterdir()}
    card = (folder / "README.md").read_text()
    assert "200 unsupervised reviews" in card and "Test reviews were not used" in card
    assert not (tmp_path / ".adapted.work").exists()
    from imdb_sentiment.tracking import list_runs

    [record] = list_runs(runs_dir)
    assert record.stage == "adapt" and record.metric("eval_loss") == pytest.approx(metrics["eval_loss"])
    recorded = (metrics["data"], metrics["text_column"], metrics["cleaning"])
    assert recorded == (str(review_folder), "text", "basic")
    assert record.params["text_column"] == "text"

    from imdb_sentiment.modeling import load_classifier

    model, _ = load_classifier(folder, require_head=False)  # `train --model` takes the folder
    assert model.config.num_labels == 2


def test_adapt_errors(tiny_encoder: Path, review_folder: Path, tmp_path: Path, capsys) -> None:
    labelled_only = tmp_path / "labelled"
    labelled_only.mkdir()
    (labelled_only / "train.parquet").write_bytes((review_folder / "train.parquet").read_bytes())
    with pytest.raises(UserError, match=r"no unlabeled reviews.*--texts train"):
        adaptation_texts(labelled_only, config=AdaptConfig())
    with pytest.raises(UserError, match="adaptation text comes from"):
        AdaptRun(texts=("test",))
    with pytest.raises(UserError, match="disagree on seed"):  # the carve must be train's
        adaptation_texts(DataSpec(str(review_folder), seed=1), config=AdaptConfig())
    code = main(["adapt", "--model", str(tiny_encoder), "--data", str(labelled_only), "--output",
                 str(tmp_path / "out"), "--runs-dir", "none"])
    assert code == 2
    assert capsys.readouterr().err.strip().count("\n") == 0
    assert main(["adapt", "--model", str(tiny_encoder), "--data", str(review_folder), "--output",
                 str(tmp_path / "out"), "--texts", "test"]) == 2
    assert "not test" in capsys.readouterr().err
    assert main(["adapt", "--model", str(tiny_encoder), "--data", str(review_folder), "--output",
                 str(tmp_path / "out"), "--mask-rate", "1.5"]) == 2
    assert "masking rate" in capsys.readouterr().err
