"""The Python prediction API: round trips, input order, long-review strategies, settings."""

from __future__ import annotations

import dataclasses
import itertools
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import PRECISION_TOLERANCE

from imdb_sentiment.config import InferenceConfig
from imdb_sentiment.errors import UserError
from imdb_sentiment.inference import (
    InputSettings,
    SentimentClassifier,
    TextEncoder,
    batch_slices,
    chunk_spans,
    make_windows,
)
from imdb_sentiment.tables import read_lines, row_problem

REVIEWS = [
    "A wonderful film with a moving story.",
    "Awful.",
    "The plot drags, the acting is wooden and the ending makes no sense at all. " * 3,
    "ok",
    "I laughed, I cried, and I would watch it again tomorrow with my whole family. " * 9,
    "Meh",
    "Not great, not terrible, just a film that exists and fills two hours of an evening.",
]


@pytest.fixture(scope="module")
def classifier(tiny_classifier: Path) -> SentimentClassifier:
    return SentimentClassifier.load(tiny_classifier, device="cpu", precision="fp32")


@pytest.fixture(scope="module")
def encoder(tiny_classifier: Path) -> TextEncoder:
    return TextEncoder.from_folder(tiny_classifier)


class RecordingBackend:
    """Stands in for the network: logits from the ids, and a log of every batch it saw."""

    name = "stub"
    precision = "fp32"

    def __init__(self) -> None:
        self.input_names = ["input_ids", "attention_mask"]
        self.batches: list[dict[str, np.ndarray]] = []

    def __call__(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        self.batches.append(batch)
        real = batch["attention_mask"].sum(axis=1).astype(np.float32)
        first_text_id = batch["input_ids"][:, 1].astype(np.float32)
        return np.stack([np.zeros_like(real), np.sin(real + first_text_id)], axis=1)


def stub_classifier(encoder: TextEncoder, **options) -> tuple[SentimentClassifier, RecordingBackend]:
    backend = RecordingBackend()
    config = SimpleNamespace(id2label={0: "NEGATIVE", 1: "POSITIVE"}, max_position_embeddings=512)
    return SentimentClassifier(backend, encoder, config, InputSettings(**options)), backend


# --------------------------------------------------------------------------- round trips


def test_predict_round_trip(classifier: SentimentClassifier) -> None:
    predictions = classifier.predict(REVIEWS)
    probabilities = classifier.predict_proba(REVIEWS)
    assert len(predictions) == len(REVIEWS) == len(probabilities)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    for prediction, row in zip(predictions, probabilities, strict=True):
        assert set(prediction) == {"label", "score"}
        expected = "POSITIVE" if row[1] > row[0] else "NEGATIVE"
        assert prediction["label"] == expected
        assert prediction["score"] == pytest.approx(row.max(), abs=1e-6)
    assert classifier.predict([]) == []
    assert classifier.predict_proba([]).shape == (0, 2)


def test_results_keep_input_order_under_length_sorting(tiny_classifier: Path, precision: str) -> None:
    classifier = SentimentClassifier.load(tiny_classifier, device="cpu", precision=precision)
    assert classifier.precision == precision
    batched = classifier.predict_proba(REVIEWS, batch_size=3)
    one_by_one = np.vstack([classifier.predict_proba([text]) for text in REVIEWS])
    np.testing.assert_allclose(batched, one_by_one, atol=PRECISION_TOLERANCE[precision])
    if precision == "fp32":  # bf16 rounds the tiny model's near-equal scores together
        # The tiny random model still separates these texts, so a shuffled answer would be caught.
        assert len({round(float(p), 6) for p in one_by_one[:, 1]}) == len(REVIEWS)


def test_batches_are_sorted_longest_first_and_pad_little(encoder: TextEncoder) -> None:
    stub, backend = stub_classifier(encoder, batch_size=2)
    probabilities = stub.predict_proba(REVIEWS)
    widths = [batch["input_ids"].shape[1] for batch in backend.batches]
    assert widths == sorted(widths, reverse=True)
    assert sum(batch["input_ids"].shape[0] for batch in backend.batches) == len(REVIEWS)
    single = np.vstack([stub.predict_proba([text]) for text in REVIEWS])
    np.testing.assert_allclose(probabilities, single, atol=1e-6)


def test_token_budget_batches(encoder: TextEncoder) -> None:
    assert batch_slices(np.array([500, 300, 120, 100, 90, 10]), 32, 1000) == [slice(0, 2), slice(2, 6)]
    assert batch_slices(np.array([500, 300, 120, 100, 90, 10]), 3, 1000) == [
        slice(0, 2), slice(2, 5), slice(5, 6)]
    assert batch_slices(np.array([900, 800]), 32, 512) == [slice(0, 1), slice(1, 2)]  # alone if too long
    assert batch_slices(np.array([5] * 10), 4, None) == [slice(0, 4), slice(4, 8), slice(8, 10)]
    stub, backend = stub_classifier(encoder, batch_size=32, max_batch_tokens=64)
    stub.predict_proba(REVIEWS)
    assert all(b["input_ids"].size <= 64 or b["input_ids"].shape[0] == 1 for b in backend.batches)
    assert stub.info()["max_batch_tokens"] == 64


def test_progress_counts_reviews(classifier: SentimentClassifier, tiny_classifier: Path) -> None:
    seen: list[int] = []
    classifier.predict_proba(REVIEWS, batch_size=2, progress=seen.append)
    assert sum(seen) == len(REVIEWS)
    chunked = SentimentClassifier.load(tiny_classifier, truncation="chunks", max_length=32)
    seen.clear()
    chunked.predict_proba(REVIEWS, batch_size=3, progress=seen.append)
    assert sum(seen) == len(REVIEWS)


def test_markup_is_cleaned_as_in_training(classifier: SentimentClassifier) -> None:
    with_markup = classifier.predict_proba(["Great film.<br /><br />Loved it."])
    without = classifier.predict_proba(["Great film.  Loved it."])
    np.testing.assert_allclose(with_markup, without, atol=1e-6)
    assert classifier.info()["cleaning"] == "basic"


# --------------------------------------------------------------------------- long reviews


@pytest.mark.parametrize(("n_tokens", "window", "overlap"),
                         [(0, 10, 2), (10, 10, 2), (11, 10, 2), (100, 10, 0), (1000, 510, 128), (37, 8, 7)])
def test_chunk_spans_cover_every_token_with_the_stated_overlap(n_tokens: int, window: int,
                                                               overlap: int) -> None:
    spans = chunk_spans(n_tokens, window, overlap)
    assert spans[0][0] == 0 and spans[-1][1] == n_tokens
    assert all(0 < end - start <= window or n_tokens == 0 for start, end in spans)
    for (_, end), (next_start, _) in itertools.pairwise(spans):
        assert end - next_start == overlap
    covered = set().union(*(range(start, end) for start, end in spans))
    assert covered == set(range(n_tokens))


def test_chunk_overlap_must_be_smaller_than_the_window() -> None:
    with pytest.raises(UserError, match="overlap"):
        chunk_spans(100, 10, 10)


def test_chunk_windows_are_token_exact(encoder: TextEncoder) -> None:
    text = REVIEWS[4]
    bare = encoder.bare_ids([text])[0]
    windows = make_windows(encoder, [text, "short one"], max_length=40, truncation="chunks",
                           head_tokens=None, overlap=8)
    budget = 40 - encoder.special_count
    mine = [ids for ids, owner in zip(windows.input_ids, windows.owners, strict=True) if owner == 0]
    assert len(mine) > 1 and windows.owners.tolist().count(1) == 1
    rebuilt: list[int] = []
    for index, ids in enumerate(mine):
        assert ids[: len(encoder.prefix)] == encoder.prefix and ids[-len(encoder.suffix):] == encoder.suffix
        body = ids[len(encoder.prefix) : len(ids) - len(encoder.suffix)]
        assert len(body) <= budget
        if index:
            assert body[:8] == rebuilt[-8:]  # exactly the stated overlap is repeated
            body = body[8:]
        rebuilt += body
    assert rebuilt == bare
    assert not windows.truncated.any()
    assert windows.tokens[0] == len(bare)


def test_head_tail_keeps_first_and_last_tokens(encoder: TextEncoder) -> None:
    text = REVIEWS[4]
    bare = encoder.bare_ids([text])[0]
    windows = make_windows(encoder, [text], max_length=64, truncation="head-tail", head_tokens=16,
                           overlap=0)
    budget = 64 - encoder.special_count
    assert windows.input_ids[0] == encoder.prefix + bare[:16] + bare[-(budget - 16):] + encoder.suffix
    assert len(windows.input_ids[0]) == 64
    assert windows.truncated.tolist() == [True]
    head = make_windows(encoder, [text], max_length=64, truncation="head", head_tokens=None, overlap=0)
    assert head.input_ids[0] == encoder.prefix + bare[:budget] + encoder.suffix


def test_chunks_average_window_logits(encoder: TextEncoder) -> None:
    stub, _ = stub_classifier(encoder, max_length=24, truncation="chunks", chunk_overlap=4)
    text = REVIEWS[2]
    details = stub.predict_details([text])
    windows = make_windows(encoder, [text], 24, "chunks", None, 4)
    logits = np.vstack([RecordingBackend()({"input_ids": np.array([ids]),
                                            "attention_mask": np.ones((1, len(ids)), dtype=np.int64)})
                        for ids in windows.input_ids])
    mean = logits.mean(axis=0)
    expected = np.exp(mean) / np.exp(mean).sum()
    assert details.windows.tolist() == [len(windows.input_ids)] and len(windows.input_ids) > 2
    np.testing.assert_allclose(details.probabilities[0], expected, atol=1e-6)


def test_every_strategy_handles_a_review_longer_than_the_model(tiny_classifier: Path) -> None:
    long_review = "An epic, sprawling and utterly gripping story. " * 300  # ~2,700 tokens
    for truncation in ("head-tail", "head", "chunks"):
        model = SentimentClassifier.load(tiny_classifier, truncation=truncation)
        details = model.predict_details([long_review, "fine"])
        assert details.tokens[0] > 2000
        assert details.truncated.tolist() == [truncation != "chunks", False]
        assert model.info()["truncation"] == truncation
        assert np.isfinite(details.probabilities).all()


def test_info_records_how_long_reviews_are_handled(tiny_classifier: Path) -> None:
    info = SentimentClassifier.load(tiny_classifier, max_length=128).info()
    assert info["truncation"] == "head-tail" and info["max_length"] == 128
    assert info["head_tokens"] == round((128 - 2) / 4)  # a quarter of the budget, as in training
    assert info["labels"] == ["NEGATIVE", "POSITIVE"] and info["backend"] == "torch"
    chunked = SentimentClassifier.load(tiny_classifier, truncation="chunks", chunk_overlap=50).info()
    assert chunked["chunk_overlap"] == 50 and chunked["head_tokens"] is None


# --------------------------------------------------------------------------- settings and loading


def test_settings_follow_the_training_record(tiny_classifier: Path, tmp_path: Path) -> None:
    folder = tmp_path / "model"
    shutil.copytree(tiny_classifier, folder)
    (folder / "train_config.toml").write_text(
        'cleaning = "none"\n\n[train]\nmax_length = 96\ntruncation = "head"\n', encoding="utf-8")
    trained = SentimentClassifier.load(folder)
    assert (trained.max_length, trained.truncation, trained.cleaning) == (96, "head", "none")
    explicit = SentimentClassifier.load(folder, max_length=200, truncation="chunks")
    assert (explicit.max_length, explicit.truncation) == (200, "chunks")


def test_tokenizer_json_encoder_matches_transformers(classifier: SentimentClassifier,
                                                     encoder: TextEncoder) -> None:
    reference = classifier.encoder
    assert (encoder.prefix, encoder.suffix, encoder.pad_id) == (reference.prefix, reference.suffix,
                                                               reference.pad_id)
    assert encoder.bare_ids(REVIEWS) == reference.bare_ids(REVIEWS)


def test_int8_precision_stays_close_to_fp32(tiny_classifier: Path, classifier: SentimentClassifier) -> None:
    quantized = SentimentClassifier.load(tiny_classifier, precision="int8", device="cpu")
    assert quantized.info()["precision"] == "int8"
    np.testing.assert_allclose(quantized.predict_proba(REVIEWS), classifier.predict_proba(REVIEWS),
                               atol=0.02)


@pytest.mark.parametrize(("options", "message"), [
    ({"truncation": "middle"}, "truncation must be one of"),
    ({"precision": "fp8"}, "precision must be one of"),
    ({"max_length": 4096}, "beyond this model's 512 positions"),
    ({"max_length": 2}, "leaves no room"),
    ({"batch_size": 0}, "batch size must be positive"),
    ({"max_batch_tokens": 0}, "max batch tokens must be positive"),
    ({"truncation": "chunks", "max_length": 64, "chunk_overlap": 62}, "chunk overlap"),
    ({"head_tokens": 600}, "head tokens"),
    ({"device": "tpu"}, "unknown device"),
])
def test_bad_settings_are_user_errors(tiny_classifier: Path, options: dict, message: str) -> None:
    with pytest.raises(UserError, match=message):
        SentimentClassifier.load(tiny_classifier, **options)


def test_bad_inputs_are_user_errors(classifier: SentimentClassifier, tiny_encoder: Path,
                                    tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not a string"):
        classifier.predict(["fine", 42])  # type: ignore[list-item]
    with pytest.raises(UserError, match="list of texts"):
        classifier.predict("one review")
    with pytest.raises(UserError, match="neither a sequence-classification model"):
        SentimentClassifier.load(tiny_encoder)
    with pytest.raises(UserError, match="not found"):
        SentimentClassifier.load(tmp_path / "missing")


def test_row_problems_and_line_reading() -> None:
    assert row_problem("a review") is None
    assert row_problem("   ") == "empty text"
    assert row_problem(None) == "missing text"
    assert row_problem(float("nan")) == "missing text"
    assert row_problem(7) == "not text (int)"
    assert read_lines(b"one\r\ntwo\n\nthree\n", "x") == ["one", "two", "", "three"]
    with pytest.raises(UserError, match="not valid UTF-8"):
        read_lines(b"\xff\xfe bad", "x")


def test_settings_travel_as_one_inference_config(tiny_classifier: Path) -> None:
    config = InferenceConfig(max_length=24, truncation="head", device="cpu", precision="fp32",
                             backend="torch")
    loaded = SentimentClassifier.load(tiny_classifier, config=config)
    assert (loaded.max_length, loaded.truncation, loaded.precision) == (24, "head", "fp32")
    over = SentimentClassifier.load(tiny_classifier, config=config, max_length=32)  # a keyword beats it
    assert (over.max_length, over.truncation) == (32, "head")
    assert config.with_options(batch_size=4, max_length=None) == dataclasses.replace(config, batch_size=4)
    with pytest.raises(UserError, match="batch size must be positive"):
        config.with_options(batch_size=0)
