"""Model loading, label mapping, token-exact truncation, precision and memory errors."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
import torch

from imdb_sentiment.encoding import check_max_length, encode, head_budget, truncate_ids
from imdb_sentiment.errors import HubUnreachableError, UserError
from imdb_sentiment.modeling import (
    label_order,
    load_classifier,
    load_tokenizer,
    out_of_memory_hint,
    resolve_precision,
)

LONG_REVIEW = " ".join(f"word{i} was a memorable scene" for i in range(60))


@pytest.fixture(scope="module")
def tokenizer(tiny_classifier):
    return load_tokenizer(tiny_classifier)


# --------------------------------------------------------------------------- labels


@pytest.mark.parametrize(("id2label", "expected"), [
    ({0: "NEGATIVE", 1: "POSITIVE"}, [0, 1]),
    ({0: "POSITIVE", 1: "NEGATIVE"}, [1, 0]),
    ({0: "neg", 1: "pos"}, [0, 1]),
    ({"0": "LABEL_0", "1": "LABEL_1"}, [0, 1]),
    ({0: "Positive ", 1: " negative"}, [1, 0]),
])
def test_label_spellings_map_to_negative_positive(id2label, expected):
    assert label_order(SimpleNamespace(id2label=id2label)) == expected


@pytest.mark.parametrize("id2label", [
    {0: "NEGATIVE", 1: "NEUTRAL", 2: "POSITIVE"},
    {0: "joy", 1: "anger"},
    {0: "NEGATIVE", 1: "neg"},
    {},
])
def test_unmappable_labels_are_refused(id2label):
    with pytest.raises(UserError, match="cannot map the model's labels"):
        label_order(SimpleNamespace(id2label=id2label))


# --------------------------------------------------------------------------- truncation


def test_head_truncation_keeps_the_first_tokens(tokenizer):
    bare = tokenizer(LONG_REVIEW, add_special_tokens=False)["input_ids"]
    encoded = encode(tokenizer, [LONG_REVIEW], max_length=32, truncation="head")
    expected = [tokenizer.cls_token_id, *bare[:30], tokenizer.sep_token_id]
    assert encoded["input_ids"] == [expected]
    assert encoded["attention_mask"] == [[1] * 32]
    assert encoded["token_type_ids"] == [[0] * 32]


def test_head_tail_truncation_keeps_first_and_last_tokens(tokenizer):
    bare = tokenizer(LONG_REVIEW, add_special_tokens=False)["input_ids"]
    assert len(bare) > 100
    explicit = encode(tokenizer, [LONG_REVIEW], max_length=32, truncation="head-tail", head_tokens=10)
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    assert explicit["input_ids"][0] == [cls, *bare[:10], *bare[-20:], sep]
    # default: a quarter of the 30-token budget (round(7.5) = 8) from the start, 22 from the end
    default = encode(tokenizer, [LONG_REVIEW], max_length=32, truncation="head-tail")
    assert default["input_ids"][0] == [cls, *bare[:8], *bare[-22:], sep]


def test_short_reviews_are_not_cut(tokenizer):
    text = "Short and sweet."
    full = tokenizer(text)["input_ids"]
    for truncation in ("head", "head-tail"):
        assert encode(tokenizer, [text], max_length=64, truncation=truncation)["input_ids"] == [full]


def test_head_budget_matches_the_reference_split():
    assert head_budget(510) == 128  # 128 + 382 at 512 positions
    assert head_budget(126) == 32
    assert head_budget(126, 200) == 126
    assert truncate_ids(list(range(10)), 4, "head-tail", 0) == [6, 7, 8, 9]


def test_unknown_truncation_is_refused():
    with pytest.raises(UserError, match="truncation"):
        truncate_ids(list(range(10)), 4, "middle")


def test_max_length_beyond_the_model_is_refused(tiny_classifier, tokenizer):
    model, _ = load_classifier(tiny_classifier)
    assert check_max_length(512, model.config, tokenizer) == 512
    with pytest.raises(UserError, match="beyond this model's 512 positions"):
        check_max_length(513, model.config, tokenizer)
    with pytest.raises(UserError, match="no room"):
        check_max_length(2, model.config, tokenizer)


# --------------------------------------------------------------------------- loading


def test_evaluation_needs_a_classification_head(tiny_encoder):
    with pytest.raises(UserError, match="neither a sequence-classification model"):
        load_classifier(tiny_encoder)


def test_fine_tuning_adds_a_labelled_head_to_an_encoder(tiny_encoder):
    model, _ = load_classifier(tiny_encoder, require_head=False)
    assert model.config.id2label == {0: "NEGATIVE", 1: "POSITIVE"}
    assert model.classifier.out_features == 2


def test_fine_tuning_replaces_a_head_with_foreign_labels(tmp_path):
    from conftest import build_tiny_model

    folder = build_tiny_model(tmp_path / "three", id2label={0: "sad", 1: "neutral", 2: "happy"})
    with pytest.raises(UserError, match="cannot map"):
        load_classifier(folder)
    model, _ = load_classifier(folder, require_head=False)
    assert model.classifier.out_features == 2
    assert label_order(model.config) == [0, 1]


def test_missing_paths_and_non_model_folders_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="model path not found"):
        load_classifier(tmp_path / "missing")
    with pytest.raises(UserError, match=r"no config\.json"):
        load_classifier(tmp_path)


def test_hub_id_offline_fails_fast_with_a_hint():
    started = time.perf_counter()
    with pytest.raises(HubUnreachableError, match="pass a local model folder"):
        load_classifier("distilbert-base-uncased-finetuned-sst-2-english")
    assert time.perf_counter() - started < 30


# --------------------------------------------------------------------------- precision and memory


def test_precision_resolution(monkeypatch):
    import imdb_sentiment.modeling as modeling

    assert resolve_precision("fp32", "cuda") == "fp32"
    assert resolve_precision("bf16", "cpu") == "bf16"
    monkeypatch.setattr(modeling, "cpu_supports_bf16", lambda: False)
    assert resolve_precision("auto", "cpu") == "fp32"
    monkeypatch.setattr(modeling, "cpu_supports_bf16", lambda: True)
    assert resolve_precision("auto", "cpu") == "bf16"
    with pytest.raises(UserError):
        resolve_precision("fp16", "cpu")


@pytest.mark.parametrize("error", [
    torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
    RuntimeError("MPS backend out of memory"),
    MemoryError(),
])
def test_out_of_memory_becomes_a_batch_size_hint(error):
    with pytest.raises(UserError, match=r"smaller --batch-size \(e.g. 16\)"), out_of_memory_hint(32):
        raise error


def test_other_runtime_errors_pass_through():
    with pytest.raises(RuntimeError, match="shape mismatch"), out_of_memory_hint(32):
        raise RuntimeError("shape mismatch")
