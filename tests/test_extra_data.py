"""``--extra-data``: soft-labelled reviews join the training part only (sample weights for the
bag-of-words baselines, a distillation loss for fine-tuning); validation and test stay gold."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from imdb_sentiment.artifacts import read_json
from imdb_sentiment.baselines import BaselineConfig, NBFeatures, load_baseline, run_baseline, soft_label_rows
from imdb_sentiment.cli import main
from imdb_sentiment.config import DataSpec, TrainRun, preset
from imdb_sentiment.data import read_extra_reviews
from imdb_sentiment.errors import UserError
from imdb_sentiment.training import soft_target_loss, train

GOOD = ["wonderful", "great", "moving", "superb"]
BAD = ["dreadful", "boring", "awful", "dull"]


def _reviews(words: list[str], label: int, count: int, tag: str) -> list[tuple[str, int]]:
    return [(f"a {words[i % 4]} {words[(i + 1) % 4]} film {tag}{i}", label) for i in range(count)]


@pytest.fixture
def gold(tmp_path: Path) -> Path:
    """Split files: 24 train reviews, 16 test reviews (validation carved from train)."""
    folder = tmp_path / "gold"
    folder.mkdir()
    train = _reviews(GOOD, 1, 12, "t") + _reviews(BAD, 0, 12, "t")
    test = _reviews(GOOD, 1, 8, "x") + _reviews(BAD, 0, 8, "x")
    pd.DataFrame(train, columns=["text", "label"]).to_parquet(folder / "train.parquet")
    pd.DataFrame(test, columns=["text", "label"]).to_parquet(folder / "test.parquet")
    return folder


def _extra(path: Path, texts: list[str], p_positive: list[float]) -> Path:
    pd.DataFrame({"text": texts, "p_positive": p_positive, "movie": "tt1"}).to_parquet(path)
    return path


# --------------------------------------------------------------------------- soft labels by sample weight


def test_soft_label_rows_enter_each_extra_review_as_both_classes() -> None:
    features = sparse.csr_matrix(np.eye(3))
    rows, targets, weights = soft_label_rows(features, np.array([1]), np.array([0.25, 1.0]))
    # gold (weight 1), extra 1 as positive (0.25) and as negative (0.75), extra 2 only as a positive
    assert targets.tolist() == [1, 1, 1, 0] and weights.tolist() == [1.0, 0.25, 1.0, 0.75]
    assert (rows.toarray() == np.eye(3)[[0, 1, 2, 1]]).all()


def test_nb_features_honour_sample_weights() -> None:
    counts = sparse.csr_matrix(np.array([[1, 0, 0], [0, 1, 0], [1, 0, 1], [0, 1, 1]]))
    labels = np.array([1, 0, 1, 0])
    weighted = NBFeatures().fit(counts, labels, sample_weight=np.array([2.0, 1.0, 1.0, 1.0]))
    repeated = NBFeatures().fit(sparse.vstack([counts[:1], counts]), np.array([1, *labels]))
    assert np.allclose(weighted.ratio_, repeated.ratio_)
    # a review labelled 0.5 adds as much to both classes: its own word says nothing either way
    soft_rows, soft_targets, soft_weights = soft_label_rows(
        sparse.vstack([counts[:2], sparse.csr_matrix([[0, 0, 1]])]), labels[:2], np.array([0.5]))
    half = NBFeatures().fit(soft_rows, soft_targets, sample_weight=soft_weights)
    assert half.ratio_[2] == pytest.approx(0.0) and half.ratio_[0] > 0 > half.ratio_[1]


@pytest.mark.parametrize("model", ["nbsvm", "logreg", "random-forest"])
def test_flipped_extra_labels_change_the_fitted_baseline(model: str, gold: Path, tmp_path: Path) -> None:
    probes = [f"a {word} film" for word in GOOD + BAD]
    texts = [text for text, _ in _reviews(GOOD, 1, 40, "e") + _reviews(BAD, 0, 40, "e")]
    right = _extra(tmp_path / "right.parquet", texts, [1.0] * 40 + [0.0] * 40)
    flipped = _extra(tmp_path / "flipped.parquet", texts, [0.0] * 40 + [1.0] * 40)
    scores = {}
    for name, extra in (("right", right), ("flipped", flipped)):
        metrics = run_baseline(DataSpec(str(gold)), BaselineConfig(model), tmp_path / name,
                               extra_data=[extra])
        assert metrics["n_extra"] == 80 and metrics["n_train"] < 24  # gold train only, validation carved
        fitted = load_baseline(tmp_path / name / "model")
        scores[name] = fitted.predict_proba(probes)[:, 1]
    # 80 flipped reviews outweigh 21 gold ones: good words now read as negative, and bad as positive
    assert (scores["right"][:4] > 0.5).all() and (scores["right"][4:] < 0.5).all()
    assert (scores["flipped"][:4] < scores["right"][:4]).all()
    assert (scores["flipped"][4:] > scores["right"][4:]).all()


def test_extra_reviews_found_in_validation_or_test_are_dropped_and_counted(gold: Path, tmp_path: Path,
                                                                           capsys) -> None:
    test_texts = pd.read_parquet(gold / "test.parquet")["text"].tolist()[:3]
    fresh = [text for text, _ in _reviews(GOOD, 1, 5, "e")]
    # <br /> is cleaned away as in the gold splits, so a raw copy of a test review is caught too
    leaked = [test_texts[0].replace(" film", "<br /> film"), *test_texts[1:]]
    extra = _extra(tmp_path / "extra.parquet", leaked + fresh, [0.9] * 8)
    code = main(["baseline", "--data", str(gold), "--model", "logreg", "--output", str(tmp_path / "out"),
                 "--extra-data", str(extra), "--runs-dir", "none"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    metrics = read_json(tmp_path / "out" / "metrics.json")
    assert metrics["n_extra"] == 5 and metrics["extra_dropped_in_evaluation"] == 3
    assert metrics["extra_data"] == [str(extra)]
    assert "dropped 3 whose text is in the validation or test split" in captured.err
    assert "5 extra training reviews (3 dropped" in captured.out
    frames = DataSpec(str(gold)).load(require=("train", "test"))
    validation = frames["validation"]["text"].tolist()[:2]
    extra_validation = _extra(tmp_path / "validation.parquet", validation, [0.5, 0.5])
    assert read_extra_reviews([extra_validation], frames).dropped_in_evaluation == 2


def test_hard_labels_serve_as_extra_data_and_bad_targets_are_one_line_errors(gold: Path,
                                                                             tmp_path: Path, capsys) -> None:
    hard = tmp_path / "hard.csv"
    pd.DataFrame({"text": ["a superb film", "an awful film"],
                  "label": ["pos", "neg"]}).to_csv(hard, index=False)
    extra = read_extra_reviews([hard], {})
    assert extra.frame["p_positive"].tolist() == [1.0, 0.0]
    out_of_range = _extra(tmp_path / "bad.parquet", ["a film"], [1.5])
    with pytest.raises(UserError, match="between 0 and 1"):
        read_extra_reviews([out_of_range], {})
    unlabeled = tmp_path / "none.csv"
    pd.DataFrame({"text": ["a film"]}).to_csv(unlabeled, index=False)
    base = ["baseline", "--data", str(gold), "--output", str(tmp_path / "out"), "--runs-dir", "none"]
    for extra_file, message in ((unlabeled, "neither a 'p_positive' column"),
                                (tmp_path / "missing.parquet", "input file not found")):
        assert main([*base, "--extra-data", str(extra_file)]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1
    rating = pd.DataFrame({"text": ["a fine film", "a poor film"] * 4, "label": [1, 0] * 4,
                           "rating": [9, 2] * 4})
    rating_data = tmp_path / "rated.csv"
    rating.to_csv(rating_data, index=False)
    with pytest.raises(UserError, match="not star ratings"):
        run_baseline(DataSpec(str(rating_data)), BaselineConfig("ridge-rating"), tmp_path / "r",
                     extra_data=[hard])


def test_unscored_extra_rows_are_dropped_and_counted(tmp_path: Path) -> None:
    labels = tmp_path / "labels.parquet"
    pd.DataFrame({"text": ["a fine film", "   ", "a poor film"],
                  "p_positive": [0.8, np.nan, np.nan]}).to_parquet(labels)
    extra = read_extra_reviews([labels], {})
    assert extra.frame["text"].tolist() == ["a fine film"] and extra.dropped_unscored == 2


# --------------------------------------------------------------------------- distillation


def test_soft_target_loss_is_cross_entropy_against_the_teacher() -> None:
    import torch
    import torch.nn.functional as F

    logits = torch.tensor([[0.3, -1.2], [2.0, 0.5], [0.0, 0.0]], requires_grad=True)
    gold = torch.tensor([1, 0, 1])
    one_hot = F.one_hot(gold, 2).float()
    assert torch.allclose(soft_target_loss({"logits": logits}, one_hot), F.cross_entropy(logits, gold))
    assert torch.allclose(soft_target_loss({"logits": logits}, gold), F.cross_entropy(logits, gold))
    teacher = torch.tensor([[0.5, 0.5], [0.2, 0.8], [0.5, 0.5]])
    loss = soft_target_loss({"logits": logits}, teacher)
    loss.backward()
    # the gradient of cross entropy against a distribution: (softmax - target) / batch
    expected = (torch.softmax(logits.detach(), dim=-1) - teacher) / 3
    assert torch.allclose(logits.grad, expected, atol=1e-6)
    # Trainer counts two label values per review: the loss is still the mean over reviews
    assert torch.allclose(soft_target_loss({"logits": logits}, teacher, num_items_in_batch=6), loss)
    # with gradient accumulation each batch is divided by the reviews of the whole step
    assert torch.allclose(soft_target_loss({"logits": logits}, teacher, num_items_in_batch=12), loss / 2)


TINY = preset("fast").replace(max_length=24, batch_size=16, eval_batch_size=16, epochs=2, warmup=0.0,
                              precision="fp32", learning_rate=3e-3, validation_size=0.25)


def _gold_frames() -> dict[str, pd.DataFrame]:
    rows = _reviews(GOOD, 1, 8, "t") + _reviews(BAD, 0, 8, "t")
    tests = _reviews(GOOD, 1, 8, "x") + _reviews(BAD, 0, 8, "x")
    frame = pd.DataFrame(rows, columns=["text", "label"])
    return {"train": frame, "validation": frame.iloc[::4].reset_index(drop=True),
            "test": pd.DataFrame(tests, columns=["text", "label"])}


def test_training_learns_the_teachers_soft_labels(tiny_classifier: Path, tmp_path: Path) -> None:
    from imdb_sentiment.inference import SentimentClassifier

    frames = _gold_frames()
    texts = [f"a film numbered {i}" for i in range(64)]
    probes = [f"a film numbered {i}" for i in range(100, 108)]  # reviews like the extra ones, unseen
    mean_positive = {}
    for teacher, p in (("positive", 0.95), ("negative", 0.05)):
        extra = _extra(tmp_path / f"{teacher}.parquet", [*texts, frames["test"]["text"].iat[0]], [p] * 65)
        result = train(str(tiny_classifier), frames, tmp_path / teacher, TINY, TrainRun(), progress=False,
                       extra_data=[extra])
        assert result.extra["n_extra"] == 64 and result.extra["extra_dropped_in_evaluation"] == 1
        metrics = json.loads((tmp_path / teacher / "metrics.json").read_text())
        assert metrics["n_extra"] == 64 and metrics["n_train"] == 16 and metrics["n_test"] == 16
        student = SentimentClassifier.load(tmp_path / teacher, backend="torch", precision="fp32")
        mean_positive[teacher] = float(student.predict_proba(probes)[:, 1].mean())
    # 64 reviews the teacher calls positive (negative) pull the student that way on reviews like them
    assert mean_positive["positive"] > 0.5 > mean_positive["negative"]


def test_train_refuses_extra_data_for_a_rating_target_in_one_line(tiny_classifier: Path, tmp_path: Path,
                                                                  capsys) -> None:
    extra = _extra(tmp_path / "extra.parquet", ["a film"], [0.5])
    with pytest.raises(UserError, match="not star ratings"):
        train(str(tiny_classifier), _gold_frames(), None, TINY.replace(target="rating"), TrainRun(),
              progress=False, extra_data=[extra])


def test_train_command_takes_extra_data_and_says_what_it_dropped(tiny_classifier: Path, gold: Path,
                                                                 tmp_path: Path, capsys) -> None:
    test_text = pd.read_parquet(gold / "test.parquet")["text"].iat[0]
    extra = _extra(tmp_path / "extra.parquet", ["a superb film", "an awful film", test_text], [0.9, 0.1, 0.5])
    code = main(["train", "--model", str(tiny_classifier), "--data", str(gold),
                 "--output", str(tmp_path / "m"), "--extra-data", str(extra), "--epochs", "1",
                 "--max-length", "24", "--batch-size", "8",
                 "--precision", "fp32", "--no-test", "--runs-dir", "none"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "2 extra training reviews (1 dropped: in validation or test)" in captured.out
    metrics = read_json(tmp_path / "m" / "metrics.json")
    assert (metrics["n_extra"], metrics["extra_dropped_in_evaluation"]) == (2, 1)


def test_the_hybrids_screen_copies_learn_the_screens_extra_reviews(gold: Path, tmp_path: Path) -> None:
    """Scored out of fold on validation, the screen is refit: a distilled screen's copies must be
    distilled too, or the cascade threshold is chosen for another screen."""
    from imdb_sentiment.baselines import refit_screen
    from imdb_sentiment.config import DataSpec as Spec
    from imdb_sentiment.hybrid import HybridConfig, out_of_fold_screen, screen_extra_reviews

    texts = [text for text, _ in _reviews(GOOD, 1, 40, "e") + _reviews(BAD, 0, 40, "e")]
    flipped = _extra(tmp_path / "flipped.parquet", texts, [0.0] * 40 + [1.0] * 40)
    run_baseline(DataSpec(str(gold)), BaselineConfig("nbsvm"), tmp_path / "distilled", extra_data=[flipped])
    run_baseline(DataSpec(str(gold)), BaselineConfig("nbsvm"), tmp_path / "plain")
    frames = Spec(str(gold)).load(require=("train", "validation"))
    heard: list[str] = []
    extra = screen_extra_reviews(tmp_path / "distilled" / "model", frames, HybridConfig(), heard.append)
    assert extra is not None and len(extra) == 80 and "80 extra" in heard[0]
    assert screen_extra_reviews(tmp_path / "plain" / "model", frames, HybridConfig(), heard.append) is None
    screen = load_baseline(tmp_path / "distilled" / "model")
    with_extra = out_of_fold_screen(screen, frames["train"], frames["validation"], None, extra=extra)
    without = out_of_fold_screen(screen, frames["train"], frames["validation"], None)
    copy = refit_screen(screen, frames["train"]["text"].tolist(), frames["train"]["label"].to_numpy(), extra)
    assert with_extra == pytest.approx(copy.predict_proba(frames["validation"]["text"].tolist())[:, 1])
    assert not np.allclose(with_extra, without)  # the flipped teacher moves the copies
    flipped.unlink()
    with pytest.raises(UserError, match="gone"):
        screen_extra_reviews(tmp_path / "distilled" / "model", frames, HybridConfig(), heard.append)
