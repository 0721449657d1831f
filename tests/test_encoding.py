"""One tokenization for training, evaluation and prediction: the same review, the same tokens."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from imdb_sentiment.encoding import (
    PARALLEL_MIN_TEXTS,
    TextEncoder,
    TokenArrays,
    chunk_spans,
    cut_windows,
    encode,
    make_windows,
)
from imdb_sentiment.errors import UserError


@pytest.fixture(scope="module")
def reviews(shared_data: Path) -> list[str]:
    """Real test reviews, short and long (≈13 % exceed 510 tokens), cleaned as the tools do."""
    import pandas as pd

    from imdb_sentiment.data import clean_text

    frame = pd.read_parquet(shared_data / "test.parquet", columns=["text"])
    picked = frame["text"].iloc[::97].tolist()[: 2 * PARALLEL_MIN_TEXTS]
    return [clean_text(text) for text in picked] + ["", "ok"]


@pytest.fixture(scope="module")
def tokenizer(shared_model: Path):
    from imdb_sentiment.modeling import load_tokenizer

    return load_tokenizer(shared_model)


def reference_windows(bare: list[list[int]], budget: int, truncation: str, head: int, overlap: int,
                      prefix: list[int], suffix: list[int]) -> list[list[int]]:
    """The per-review list code the array version replaced, written out plainly."""
    out = []
    for ids in bare:
        if truncation == "chunks":
            pieces, start = [], 0
            while True:
                pieces.append(ids[start : start + budget])
                if start + budget >= len(ids):
                    break
                start += budget - overlap
        elif len(ids) <= budget:
            pieces = [ids]
        elif truncation == "head":
            pieces = [ids[:budget]]
        else:
            pieces = [ids[:head] + (ids[len(ids) - (budget - head):] if budget > head else [])]
        out += [prefix + piece + suffix for piece in pieces]
    return out


def test_bare_ids_equal_the_transformers_tokenizer(tokenizer, reviews, shared_model: Path) -> None:
    expected = tokenizer(reviews, add_special_tokens=False)["input_ids"]
    from_transformers = TextEncoder.from_transformers(tokenizer).tokenize(reviews)
    from_folder = TextEncoder.from_folder(shared_model).tokenize(reviews)
    assert [from_transformers.row(i) for i in range(len(reviews))] == expected
    assert np.array_equal(from_folder.ids, from_transformers.ids)
    assert np.array_equal(from_folder.offsets, from_transformers.offsets)


@pytest.mark.parametrize("threads", [2, 3, 8])
def test_parallel_tokenization_equals_the_serial_one(shared_model: Path, reviews, threads) -> None:
    serial = TextEncoder.from_folder(shared_model, threads=1)
    parallel = TextEncoder.from_folder(shared_model, threads=threads)
    calls: list[int] = []
    bare_ids = parallel.bare_ids
    parallel.bare_ids = lambda texts: calls.append(len(texts)) or bare_ids(texts)
    one, many = serial.tokenize(reviews), parallel.tokenize(reviews)
    assert len(calls) > 1 and sum(calls) == len(reviews)  # really split across threads
    assert np.array_equal(one.ids, many.ids) and np.array_equal(one.offsets, many.offsets)
    assert one.ids.dtype == np.int32 and one.offsets.dtype == np.int64


@pytest.mark.parametrize(("truncation", "max_length", "head_tokens", "overlap"), [
    ("head", 512, None, 0), ("head", 64, None, 0), ("head-tail", 512, None, 0), ("head-tail", 64, 10, 0),
    ("head-tail", 64, 0, 0), ("head-tail", 64, 62, 0), ("chunks", 512, None, 128), ("chunks", 40, None, 0),
    ("chunks", 40, None, 37),
])
def test_windows_equal_the_per_review_reference(tokenizer, reviews, truncation, max_length, head_tokens,
                                                overlap) -> None:
    encoder = TextEncoder.from_transformers(tokenizer)
    bare = tokenizer(reviews, add_special_tokens=False)["input_ids"]
    budget = max_length - encoder.special_count
    head = round(budget / 4) if head_tokens is None else min(head_tokens, budget)
    windows = make_windows(encoder, reviews, max_length, truncation, head_tokens, overlap)
    expected = reference_windows(bare, budget, truncation, head, overlap, encoder.prefix, encoder.suffix)
    assert windows.input_ids == expected
    assert windows.lengths.tolist() == [len(ids) for ids in expected]
    assert windows.tokens.tolist() == [len(ids) for ids in bare]
    lengths = np.array([len(ids) for ids in bare])
    assert windows.truncated.tolist() == ((lengths > budget) & (truncation != "chunks")).tolist()
    if truncation != "chunks":  # training's encode gives the very same inputs
        encoded = encode(tokenizer, reviews, max_length, truncation, head_tokens)
        assert encoded["input_ids"] == expected
        assert encoded["attention_mask"] == [[1] * len(ids) for ids in expected]


def test_padded_batches_are_gathered_from_the_arrays(shared_model: Path, reviews) -> None:
    encoder = TextEncoder.from_folder(shared_model)
    windows = make_windows(encoder, reviews[:40], 128, "head-tail", None, 0)
    rows = np.array([5, 0, 39, 17, 41 % 40])
    ids, mask = windows.batch(rows, encoder.pad_id)
    width = max(len(windows.input_ids[r]) for r in rows)
    assert ids.shape == mask.shape == (len(rows), width) and ids.dtype == np.int64
    for line, row in enumerate(rows):
        expected = windows.input_ids[row]
        assert ids[line, : len(expected)].tolist() == expected
        assert (ids[line, len(expected):] == encoder.pad_id).all()
        assert mask[line].tolist() == [1] * len(expected) + [0] * (width - len(expected))


def test_chunk_spans_cover_every_token_with_the_stated_overlap() -> None:
    assert chunk_spans(0, 10, 2) == [(0, 0)]
    assert chunk_spans(10, 10, 2) == [(0, 10)]
    assert chunk_spans(11, 10, 2) == [(0, 10), (8, 11)]
    assert chunk_spans(26, 10, 2) == [(0, 10), (8, 18), (16, 26)]
    with pytest.raises(UserError, match="overlap"):
        chunk_spans(5, 4, 4)


def test_token_arrays_concatenate_like_one_list() -> None:
    rows = [[1, 2, 3], [], [4], [5, 6]]
    parts = [TokenArrays.from_lists(rows[:2]), TokenArrays.from_lists([]), TokenArrays.from_lists(rows[2:])]
    joined = TokenArrays.concatenate(parts)
    assert [joined.row(i) for i in range(len(joined))] == rows
    assert joined.lengths.tolist() == [3, 0, 1, 2]


def test_training_refuses_chunks_and_unknown_truncations(tokenizer) -> None:
    with pytest.raises(UserError, match="training takes head or head-tail"):
        encode(tokenizer, ["word " * 600], 64, "chunks")
    with pytest.raises(UserError, match="truncation"):
        cut_windows(TokenArrays.from_lists([[1, 2]]), 4, "middle")


def test_one_definition_of_allowed_values() -> None:
    from imdb_sentiment import config, inference

    assert inference.TRUNCATIONS is config.TRUNCATIONS and "chunks" in config.TRUNCATIONS
    assert inference.PRECISIONS is config.PRECISIONS and inference.BACKENDS is config.BACKENDS
    assert set(config.TRAIN_TRUNCATIONS) < set(config.TRUNCATIONS)
    assert set(config.TRAIN_PRECISIONS) < set(config.PRECISIONS)
    with pytest.raises(UserError, match="truncation must be one of head-tail, head, chunks"):
        config.InferenceConfig(truncation="tail")
    with pytest.raises(UserError, match="batch size must be positive"):
        config.InferenceConfig(batch_size=0)


def test_evaluate_offers_what_predict_offers(tiny_classifier: Path, review_frame) -> None:
    from imdb_sentiment.config import EvaluationConfig
    from imdb_sentiment.evaluation import evaluate_model

    metrics = evaluate_model(tiny_classifier, review_frame, settings=EvaluationConfig(
        truncation="chunks", max_length=16, device="cpu", precision="fp32"))
    assert metrics["truncation"] == "chunks" and metrics["n_test"] == len(review_frame)
    assert metrics["batch_size"] == 32  # the CPU default, no longer a fixed 64
