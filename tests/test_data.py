"""The data layer: every source format, label spellings, cleaning, seeded leak-free splits."""

from __future__ import annotations

import io
import json
import tarfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from imdb_sentiment.data import (
    LoadReport,
    carve_split,
    clean_text,
    describe,
    load_dataset_dict,
    load_splits,
    normalize_labels,
    warn_about_splits,
)
from imdb_sentiment.errors import HubUnreachableError, UserError

WORDS = {1: ["wonderful", "moving", "superb"], 0: ["dreadful", "boring", "awful"]}


def make_reviews(n: int, start: int = 0) -> pd.DataFrame:
    """``n`` distinct, alternating-label reviews with ``<br />`` tags and IMDB-style ratings."""
    rows = []
    for i in range(start, start + n):
        label = i % 2
        word = WORDS[label][i % 3]
        rows.append({"id": f"r{i}", "text": f"Review {i}: a {word} film.<br /><br />Really {word}!",
                     "label": label, "rating": 8 if label else 2})
    return pd.DataFrame(rows)


def write_frame(frame: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".parquet":
        frame.to_parquet(path)
    elif path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        path.write_text("".join(json.dumps(row) + "\n" for row in frame.to_dict("records")), encoding="utf-8")
    return path


def write_acl(root: Path, frames: dict[str, pd.DataFrame]) -> Path:
    for split, frame in frames.items():
        for i, row in enumerate(frame.itertuples()):
            folder = root / split / ("pos" if row.label else "neg")
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{i}_{row.rating}.txt").write_text(row.text, encoding="utf-8")
    (root / "README").write_text("Large Movie Review Dataset", encoding="utf-8")
    return root


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".jsonl"])
def test_split_files_folder(tmp_path: Path, suffix: str) -> None:
    train, test = make_reviews(40), make_reviews(20, start=100)
    write_frame(train, tmp_path / f"train{suffix}")
    write_frame(test, tmp_path / f"test{suffix}")
    report = LoadReport(str(tmp_path), "")
    frames = load_splits(tmp_path, report=report)
    assert report.kind == "split files" and not report.test_carved
    assert list(frames) == ["train", "validation", "test"]
    assert len(frames["train"]) + len(frames["validation"]) == 40
    assert len(frames["validation"]) == 4  # 10 % of train, never taken from test
    assert frames["test"]["id"].tolist() == test["id"].tolist()
    assert frames["test"]["label"].tolist() == test["label"].tolist()
    assert frames["test"]["rating"].tolist() == test["rating"].tolist()
    assert "<br" not in " ".join(frames["test"]["text"])


def test_validation_file_is_used_as_given(tmp_path: Path) -> None:
    write_frame(make_reviews(30), tmp_path / "train.csv")
    write_frame(make_reviews(6, start=50), tmp_path / "validation.csv")
    write_frame(make_reviews(10, start=100), tmp_path / "test.csv")
    frames = load_splits(tmp_path)
    assert len(frames["train"]) == 30
    assert frames["validation"]["id"].tolist() == [f"r{i}" for i in range(50, 56)]


def test_acl_folder_and_tarball_give_the_same_splits(tmp_path: Path) -> None:
    root = write_acl(tmp_path / "aclImdb", {"train": make_reviews(20), "test": make_reviews(10, start=40)})
    archive = tmp_path / "aclImdb_v1.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root, arcname="aclImdb")
    from_folder = load_splits(root, validation_size=0)
    from_parent = load_splits(tmp_path, validation_size=0)  # the folder that holds aclImdb/
    report = LoadReport(str(archive), "")
    from_tar = load_splits(archive, validation_size=0, report=report)
    assert report.kind == "aclImdb archive"
    for frames in (from_parent, from_tar):
        for split in ("train", "test"):
            pd.testing.assert_frame_equal(frames[split], from_folder[split])
    test = from_folder["test"]
    assert len(test) == 10 and sorted(test["label"].unique()) == [0, 1]
    assert test["id"].str.match(r"^test/(pos|neg)/\d+$").all()
    assert (test.loc[test["label"] == 1, "rating"] == 8).all()
    assert (test.loc[test["label"] == 0, "rating"] == 2).all()


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_single_file_with_custom_columns(tmp_path: Path, suffix: str) -> None:
    frame = make_reviews(100).rename(columns={"text": "review", "label": "sentiment"})
    frame["sentiment"] = frame["sentiment"].map({0: "negative", 1: "positive"})
    path = write_frame(frame, tmp_path / f"reviews{suffix}")
    report = LoadReport(str(path), "")
    frames = load_splits(path, text_column="review", label_column="sentiment", report=report)
    assert report.kind == "file" and report.test_carved
    assert [len(frames[s]) for s in ("train", "validation", "test")] == [72, 8, 20]
    ids = [set(frames[s]["id"]) for s in ("train", "validation", "test")]
    assert set.union(*ids) == set(frame["id"]) and sum(map(len, ids)) == 100
    for split in frames.values():  # stratified: every split keeps the 50/50 balance
        assert split["label"].mean() == pytest.approx(0.5)


def test_label_spellings() -> None:
    spelled = [0, 1, "0", "1", "neg", "POS", "Negative", " positive ", True, False, 1.0, "NEG"]
    assert normalize_labels(spelled).tolist() == [0, 1, 0, 1, 0, 1, 0, 1, 1, 0, 1, 0]
    with pytest.raises(UserError, match="binary"):
        normalize_labels([0, 1, 2])
    with pytest.raises(UserError, match="'neutral'"):
        normalize_labels(["pos", "neutral"])


def test_same_seed_same_split_other_seed_other_split(review_frame: pd.DataFrame) -> None:
    first = carve_split(review_frame, 0.2, seed=1)
    again = carve_split(review_frame, 0.2, seed=1)
    other = carve_split(review_frame, 0.2, seed=2)
    for part, part_again in zip(first, again, strict=True):
        pd.testing.assert_frame_equal(part, part_again)
    assert set(first[1]["text"]) != set(other[1]["text"])


def test_carved_validation_never_shares_a_text_with_train(tmp_path: Path) -> None:
    frame = make_reviews(60)
    duplicated = pd.concat([frame, frame.iloc[:20].assign(id=lambda f: f["id"] + "-copy")])
    write_frame(duplicated, tmp_path / "train.parquet")
    write_frame(make_reviews(10, start=200), tmp_path / "test.parquet")
    for seed in range(5):
        frames = load_splits(tmp_path, validation_size=0.25, seed=seed)
        train, validation = frames["train"], frames["validation"]
        assert len(train) + len(validation) == 80
        assert not set(train["id"]) & set(validation["id"])
        assert not set(train["text"]) & set(validation["text"])


def test_cleanings() -> None:
    raw = "Great film!<br /><br />The acting, however, was NOT good.<BR>" + " word" * 200
    assert clean_text(raw, "none") == raw
    basic = clean_text(raw, "basic")
    assert "<br" not in basic.lower() and basic.startswith("Great film!  The acting")
    study = clean_text(raw, "study")
    assert study.startswith("great film acting good word")  # no punctuation, stop words, case
    assert len(study) <= 512 and "," not in study
    with pytest.raises(UserError, match="cleaning must be one of"):
        load_splits("unused", cleaning="fancy")  # type: ignore[arg-type]


def test_empty_reviews_are_skipped_and_counted(tmp_path: Path) -> None:
    train = make_reviews(20)
    train.loc[[3, 7], "text"] = ["", "   \n\t "]
    write_frame(train, tmp_path / "train.csv")
    write_frame(make_reviews(10, start=50), tmp_path / "test.csv")
    report = LoadReport(str(tmp_path), "")
    with pytest.warns(UserWarning, match="skipped 2 empty or whitespace-only review"):
        frames = load_splits(tmp_path, validation_size=0, report=report)
    assert report.skipped_empty == 2 and len(frames["train"]) == 18


def test_describe_counts_and_lengths() -> None:
    frame = pd.DataFrame({"text": ["ab cd", "abcdef", "ab cd"], "label": [1, 0, 1]})
    stats = describe({"train": frame})["train"]
    assert (stats["reviews"], stats["positive"], stats["negative"]) == (3, 2, 1)
    assert stats["mean_chars"] == pytest.approx(16 / 3) and stats["max_chars"] == 6
    assert stats["mean_words"] == pytest.approx(5 / 3) and stats["duplicate_texts"] == 1


def test_bad_sources(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="data path not found"):
        load_splits(tmp_path / "missing.csv")
    write_frame(make_reviews(10), tmp_path / "train.csv")
    with pytest.raises(UserError, match="no test split"):
        load_splits(tmp_path)
    (tmp_path / "bad.jsonl").write_bytes(b'{"text": "caf\xe9", "label": 1}\n')
    with pytest.raises(UserError, match="not valid UTF-8"):
        load_splits(tmp_path / "bad.jsonl")
    with pytest.raises(UserError, match="has no column 'review'"):
        load_splits(tmp_path / "train.csv", text_column="review")


def test_unknown_hub_id_offline_is_one_quick_error() -> None:
    started = time.perf_counter()
    with pytest.raises(HubUnreachableError, match="local path") as caught:
        load_splits("nobody-here/no-such-dataset")
    assert "\n" not in str(caught.value)
    assert time.perf_counter() - started < 30


def test_unreachable_hub_fails_fast_without_offline_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HTTPS_PROXY", "https_proxy", "ALL_PROXY",
                 "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    import datasets  # noqa: F401 - import cost is not what this test bounds; retries are
    started = time.perf_counter()
    with pytest.raises(HubUnreachableError, match="cannot be reached"):
        load_splits("stanfordnlp/imdb")
    assert time.perf_counter() - started < 5


def test_dataset_dict(tmp_path: Path) -> None:
    write_frame(make_reviews(30), tmp_path / "train.parquet")
    write_frame(make_reviews(10, start=50), tmp_path / "test.parquet")
    loaded = load_dataset_dict(tmp_path, seed=3)
    frames = load_splits(tmp_path, seed=3)
    assert set(loaded) == {"train", "validation", "test"}
    assert loaded["validation"]["id"] == frames["validation"]["id"].tolist()
    assert np.array_equal(np.asarray(loaded["train"]["label"]), frames["train"]["label"].to_numpy())


def test_json_array_and_bom_csv(tmp_path: Path) -> None:
    rows = make_reviews(4).to_dict("records")
    (tmp_path / "train.json").write_text(json.dumps(rows), encoding="utf-8")
    buffer = io.StringIO()
    make_reviews(4, start=10).to_csv(buffer, index=False)
    (tmp_path / "test.csv").write_bytes(b"\xef\xbb\xbf" + buffer.getvalue().encode("utf-8"))
    frames = load_splits(tmp_path, validation_size=0)
    assert frames["train"]["id"].tolist() == ["r0", "r1", "r2", "r3"]
    assert frames["test"]["id"].tolist() == ["r10", "r11", "r12", "r13"]


@pytest.mark.slow
def test_real_imdb_known_facts(shared_data: Path) -> None:
    report = LoadReport(str(shared_data), "")
    frames = load_splits(shared_data, report=report)
    test, train, validation = frames["test"], frames["train"], frames["validation"]
    assert len(test) == 25_000 and int(test["label"].sum()) == 12_500
    assert len(train) + len(validation) == 25_000 and report.skipped_empty == 0
    assert 2_400 <= len(validation) <= 2_600
    assert abs(validation["label"].mean() - 0.5) < 0.01
    assert train["text"].duplicated().sum() + validation["text"].duplicated().sum() == 96
    assert not set(train["text"]) & set(validation["text"])
    assert 1_250 < test["text"].str.len().mean() < 1_350
    assert test["rating"].between(1, 10).all()


def test_split_warnings_name_the_split_and_stay_quiet_on_a_few_repeats() -> None:
    train, test = make_reviews(100), make_reviews(40, start=200)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warn_about_splits({"train": train, "test": pd.concat([test, train.head(2)])}, "reviews")  # 5 %
    assert caught == []  # as on IMDB, whose test split repeats 0.5 % of train
    with pytest.warns(UserWarning) as caught:
        warn_about_splits({"train": train, "validation": train.head(10), "test": test[test["label"] == 0]},
                          "reviews")
    assert [str(item.message).split(":")[0] for item in caught] == [
        "the test split of reviews holds only negative reviews (20)",
        "10 of the 10 validation reviews of reviews (100%) also appear in train",
    ]
