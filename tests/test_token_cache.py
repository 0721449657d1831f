"""The token cache: hits, a new entry for each key part, corrupt entries ignored; prefetching."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from imdb_sentiment import token_cache
from imdb_sentiment.batching import prefetch
from imdb_sentiment.encoding import TextEncoder, make_windows

TEXTS = [f"Review {i}: the acting was {'great' if i % 2 else 'dull'}<br /><br />and the plot {i * 7}."
         for i in range(token_cache.MIN_TEXTS)]


@pytest.fixture
def cache(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("IMDB_SENTIMENT_CACHE", str(tmp_path))
    monkeypatch.delenv(token_cache.SWITCH_ENV, raising=False)
    return tmp_path / "tokens"


@pytest.fixture
def counting(tiny_classifier: Path) -> tuple[TextEncoder, list[int]]:
    """An encoder that counts the texts it really tokenizes."""
    encoder = TextEncoder.from_folder(tiny_classifier)
    seen: list[int] = []
    bare_ids = encoder.bare_ids
    encoder.bare_ids = lambda texts: seen.append(len(texts)) or bare_ids(texts)
    return encoder, seen


def test_second_call_is_a_hit_with_the_same_tokens(cache: Path, counting) -> None:
    encoder, seen = counting
    first = token_cache.cached_tokens(encoder, TEXTS)
    assert sum(seen) == len(TEXTS) and len(list(cache.iterdir())) == 1
    seen.clear()
    second = token_cache.cached_tokens(encoder, TEXTS)
    assert seen == []  # nothing tokenized
    assert np.array_equal(first.ids, second.ids) and np.array_equal(first.offsets, second.offsets)
    fresh = encoder.tokenize(TEXTS)
    assert np.array_equal(fresh.ids, second.ids)


def test_each_key_part_gets_its_own_entry(cache: Path, counting, tiny_classifier: Path) -> None:
    encoder, _ = counting
    token_cache.cached_tokens(encoder, TEXTS)
    changed_text = [*TEXTS[:-1], TEXTS[-1] + "!"]
    token_cache.cached_tokens(encoder, changed_text)  # the data
    token_cache.cached_tokens(encoder, TEXTS[:-1] + TEXTS[-1:])  # same texts: a hit
    token_cache.cached_tokens(encoder, TEXTS[1:] + TEXTS[:1])  # the same texts in another order
    other = TextEncoder.from_folder(tiny_classifier)
    other.fingerprint = "another tokenizer"
    token_cache.cached_tokens(other, TEXTS)  # the tokenizer
    assert len(list(cache.iterdir())) == 4


def test_cleaning_and_cut_settings_share_or_split_entries(cache: Path, tiny_classifier: Path) -> None:
    """Cleaning changes the texts (a new entry); length and truncation cut after the cache
    (the same entry), with windows identical to uncached ones."""
    from imdb_sentiment.inference import SentimentClassifier

    basic = SentimentClassifier.load(tiny_classifier, device="cpu", precision="fp32")
    basic.windows(TEXTS, cache=True)
    assert len(list(cache.iterdir())) == 1
    basic.cleaning = "none"
    basic.windows(TEXTS, cache=True)
    assert len(list(cache.iterdir())) == 2
    for truncation, length in (("head", 32), ("head-tail", 24), ("chunks", 16)):
        basic.truncation, basic.max_length, basic.head_tokens, basic.chunk_overlap = truncation, length, 5, 3
        cached = basic.windows(TEXTS, cache=True)
        assert cached.input_ids == basic.windows(TEXTS).input_ids
    assert len(list(cache.iterdir())) == 2


@pytest.mark.parametrize("damage", ["ids", "offsets", "note", "missing"])
def test_a_corrupt_entry_is_ignored_and_rewritten(cache: Path, counting, damage: str) -> None:
    encoder, seen = counting
    expected = token_cache.cached_tokens(encoder, TEXTS)
    (entry,) = cache.iterdir()
    if damage == "ids":
        (entry / "ids.npy").write_bytes(b"\x93NUMPY garbage")
    elif damage == "offsets":  # a valid file with inconsistent content
        np.save(entry / "offsets.npy", np.arange(len(TEXTS) + 1, dtype=np.int64))
    elif damage == "note":
        (entry / "entry.json").write_text('{"format": 1, "texts": 3}', encoding="utf-8")
    else:
        (entry / "ids.npy").unlink()
    seen.clear()
    again = token_cache.cached_tokens(encoder, TEXTS)
    assert sum(seen) == len(TEXTS)  # tokenized again
    assert np.array_equal(again.ids, expected.ids) and np.array_equal(again.offsets, expected.offsets)
    seen.clear()
    token_cache.cached_tokens(encoder, TEXTS)
    assert seen == []  # the rewritten entry is good


def test_small_batches_and_a_switched_off_cache_write_nothing(cache: Path, counting, monkeypatch) -> None:
    encoder, _ = counting
    token_cache.cached_tokens(encoder, TEXTS[:10])
    monkeypatch.setenv(token_cache.SWITCH_ENV, "0")
    token_cache.cached_tokens(encoder, TEXTS)
    assert not cache.exists()


def test_an_unwritable_cache_still_returns_tokens(tmp_path: Path, counting, monkeypatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("IMDB_SENTIMENT_CACHE", str(blocker))
    encoder, _ = counting
    tokens = token_cache.cached_tokens(encoder, TEXTS)
    assert len(tokens) == len(TEXTS)


def test_windows_from_cached_tokens_equal_fresh_ones(cache: Path, counting) -> None:
    encoder, _ = counting
    tokens = token_cache.cached_tokens(encoder, TEXTS)
    tokens = token_cache.cached_tokens(encoder, TEXTS)  # read back from disk
    assert make_windows(encoder, TEXTS, 20, "head-tail", 4, 0, tokens).input_ids == \
        make_windows(encoder, TEXTS, 20, "head-tail", 4, 0).input_ids


# --------------------------------------------------------------------------- prefetching


def test_prefetch_keeps_order_and_runs_in_another_thread() -> None:
    threads: set[str] = set()

    def prepare(item: int) -> int:
        threads.add(threading.current_thread().name)
        return item * 2

    assert list(prefetch(range(50), prepare, depth=3)) == [i * 2 for i in range(50)]
    assert threads == {"prefetch"}


def test_prefetch_hands_errors_over_and_stops_when_abandoned() -> None:
    def prepare(item: int) -> int:
        if item == 3:
            raise ValueError("bad batch")
        return item

    with pytest.raises(ValueError, match="bad batch"):
        list(prefetch(range(10), prepare))
    produced: list[int] = []
    stream = prefetch(range(10_000), lambda item: produced.append(item) or item, depth=2)
    assert next(stream) == 0
    stream.close()
    assert len(produced) < 10


def test_torch_backend_prepares_cpu_tensors(tiny_classifier: Path) -> None:
    from imdb_sentiment.inference import SentimentClassifier

    classifier = SentimentClassifier.load(tiny_classifier, device="cpu", precision="fp32")
    windows = classifier.windows(TEXTS[:5])
    batch = classifier._batch(windows, np.arange(5))
    prepared = classifier.backend.prepare(batch)
    assert all(tensor.device.type == "cpu" for tensor in prepared.values())
    np.testing.assert_allclose(classifier.backend.run(prepared), classifier.backend(batch))
    assert classifier.batch_size == 32 and classifier.max_batch_tokens == 1024  # CPU defaults
