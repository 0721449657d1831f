"""A prompted causal LM as a classifier: prompt settings, label words, one pass per review, bias."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, SHARED_DATA

from imdb_sentiment.classifier import LABELS, Classifier
from imdb_sentiment.cli import main
from imdb_sentiment.config import InferenceConfig
from imdb_sentiment.errors import UserError
from imdb_sentiment.hybrid import load_model
from imdb_sentiment.llm import (
    PROMPT_FILE,
    LLMClassifier,
    PromptSettings,
    best_bias,
    build_prompt,
    is_causal_lm_folder,
    is_gguf,
)

CHAT_TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
                 "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
CORPUS = ["This movie was positive and negative at once.", "A positive review of a great film.",
          "A negative review of a bad film.", "Sentiment: positive", "Sentiment: negative",
          "Review: the acting was wonderful, the plot was dull. Answer: positive"]
MODELS = Path(os.environ.get("IMDB_SENTIMENT_MODELS", Path.home() / ".cache" / "imdb-sentiment" / "models"))
SMOLLM2 = MODELS / "smollm2-135m-instruct"
"""SmolLM2-135M-Instruct as a Q4_1 GGUF (``../shared/models/fetch.sh smollm2-135m-instruct``)."""
BARE_WORDS = ["positive\nnegative\npositive"]
"""Lines that start with the label words, so they are also tokens without a leading space."""
REVIEWS = ["A great film.", "A bad film, dull and far too long.", "Wonderful acting.", "Negative.",
           "The plot was dull but the acting was great, a positive review."]


def build_tokenizer(*, bare_words: bool = False, chat: bool = True):
    """A small byte-level BPE tokenizer (as GPT-2, Qwen, Llama 3 use) trained on a few lines."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    core.train_from_iterator((CORPUS + (BARE_WORDS if bare_words else [])) * 20, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, eos_token="<|endoftext|>",
                                        pad_token="<|endoftext|>")
    if chat:
        tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def build_tiny_llm(folder: Path, *, architecture: str = "qwen2") -> Path:
    """A 2-layer random decoder with a real (trained) tokenizer, saved as a model folder: Qwen2
    (rotary positions, ``Qwen2ForCausalLM``) or GPT-2 (learned absolute positions, ``GPT2LMHeadModel``)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, Qwen2Config, Qwen2ForCausalLM

    tokenizer = build_tokenizer()
    torch.manual_seed(0)
    if architecture == "qwen2":
        config = Qwen2Config(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                             num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                             max_position_embeddings=1024, initializer_range=0.5,  # large weights: varied
                             tie_word_embeddings=False)
        model = Qwen2ForCausalLM(config)
    else:
        model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_embd=32, n_layer=2, n_head=2,
                                           n_positions=1024, initializer_range=0.5))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_llm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llm(tmp_path_factory.mktemp("tiny-llm"))


@pytest.fixture(scope="module")
def tiny_gpt2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llm(tmp_path_factory.mktemp("tiny-gpt2"), architecture="gpt2")


@pytest.fixture(scope="module")
def llm(tiny_llm: Path) -> LLMClassifier:
    classifier = load_model(tiny_llm, InferenceConfig(precision="fp32", device="cpu"))
    assert isinstance(classifier, LLMClassifier)
    return classifier


# --------------------------------------------------------------------------- settings


def test_default_settings_are_the_zero_shot_config_file() -> None:
    assert PromptSettings.from_file(ROOT / "configs" / "llm-zero-shot.toml") == PromptSettings()


def test_settings_round_trip_through_toml(tmp_path: Path) -> None:
    settings = PromptSettings(system='Say "yes" \\ or no\tplease — ünïcode', user="Text:\n{review}\nDone?",
                              verbalizers={"negative": "bad", "positive": "good"}, bias=-1.25,
                              max_review_tokens=64)
    assert PromptSettings.from_file(settings.save(tmp_path / "prompt.toml")) == settings


@pytest.mark.parametrize(("options", "message"), [
    ({"user": "Classify this review."}, "must contain {review} exactly once"),
    ({"user": "{review} and {review}"}, "must contain {review} exactly once"),
    ({"verbalizers": {"positive": "good"}}, "verbalizers must name exactly negative and positive"),
    ({"verbalizers": {"negative": "same", "positive": "same"}}, "must differ"),
    ({"max_review_tokens": 0}, "max review tokens must be positive"),
    ({"bias": float("nan")}, "bias must be a finite number"),
])
def test_bad_settings_are_one_line(options: dict, message: str) -> None:
    with pytest.raises(UserError, match=message.replace("{", r"\{").replace("}", r"\}")):
        PromptSettings(**options)


def test_a_settings_file_with_an_unknown_key_is_refused(tmp_path: Path) -> None:
    file = tmp_path / "prompt.toml"
    file.write_text('usr = "{review}"\n', encoding="utf-8")
    with pytest.raises(UserError, match=r"unknown key.*usr"):
        PromptSettings.from_file(file)


# --------------------------------------------------------------------------- label words


def test_label_words_take_the_form_that_follows_the_prompt() -> None:
    tokenizer = build_tokenizer(bare_words=True)
    space = [tokenizer.encode(f" {word}", add_special_tokens=False) for word in ("negative", "positive")]
    bare = [tokenizer.encode(word, add_special_tokens=False) for word in ("negative", "positive")]
    assert all(len(ids) == 1 for ids in space + bare) and space != bare  # both forms are one token
    # The chat prompt ends in a new line: the word without a space; a plain one ends "Sentiment:".
    assert build_prompt(tokenizer, PromptSettings()).label_ids == (bare[0][0], bare[1][0])
    plain = build_tokenizer(bare_words=True, chat=False)
    assert build_prompt(plain, PromptSettings()).label_ids == (space[0][0], space[1][0])


def test_a_label_word_that_is_one_token_only_with_a_space_uses_that_form() -> None:
    tokenizer = build_tokenizer()
    assert len(tokenizer.encode("positive", add_special_tokens=False)) > 1
    prompt = build_prompt(tokenizer, PromptSettings())
    assert prompt.chat and prompt.label_ids == (tokenizer.encode(" negative", add_special_tokens=False)[0],
                                                tokenizer.encode(" positive", add_special_tokens=False)[0])


def test_a_multi_token_label_word_is_one_line() -> None:
    settings = PromptSettings(verbalizers={"negative": "negative", "positive": "splendid"})
    with pytest.raises(UserError, match="verbalizer 'splendid' is not one token"):
        build_prompt(build_tokenizer(), settings)


# --------------------------------------------------------------------------- the classifier


def test_it_is_a_classifier_with_the_shared_outputs(llm: LLMClassifier) -> None:
    assert isinstance(llm, Classifier)
    details = llm.predict_details(REVIEWS)
    assert details.probabilities.shape == (len(REVIEWS), 2)
    np.testing.assert_allclose(details.probabilities.sum(axis=1), 1.0, atol=1e-6)
    assert details.tokens.shape == details.truncated.shape == details.windows.shape == (len(REVIEWS),)
    assert (details.windows == 1).all() and not details.truncated.any()
    np.testing.assert_array_equal(llm.predict_proba(REVIEWS), details.probabilities)
    predictions = llm.predict(REVIEWS)
    assert [p["label"] for p in predictions] == [LABELS[k] for k in details.probabilities.argmax(axis=1)]
    assert all(p["score"] == pytest.approx(details.probabilities[i].max()) for i, p in enumerate(predictions))
    assert llm.predict_details([]).probabilities.shape == (0, 2)
    with pytest.raises(UserError, match="not a single string"):
        llm.predict("one review")


@pytest.mark.parametrize("model_fixture", ["tiny_llm", "tiny_gpt2"])
def test_p_positive_is_the_softmax_over_the_label_words_next_token_logits(
        model_fixture: str, request: pytest.FixtureRequest) -> None:
    """Computed here from the whole rendered prompt, one review at a time (no padding), for rotary
    and for absolute positions (where the padding must not shift them)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tiny_llm = request.getfixturevalue(model_fixture)
    llm = load_model(tiny_llm, InferenceConfig(precision="fp32", device="cpu"))
    assert isinstance(llm, LLMClassifier)

    tokenizer = AutoTokenizer.from_pretrained(tiny_llm)
    model = AutoModelForCausalLM.from_pretrained(tiny_llm, dtype=torch.float32).eval()
    settings = PromptSettings()
    words = [tokenizer.encode(f" {settings.verbalizers[label]}", add_special_tokens=False)[0]
             for label in ("negative", "positive")]
    expected = []
    for review in REVIEWS:
        messages = [{"role": "system", "content": settings.system},
                    {"role": "user", "content": settings.user.replace("{review}", review)}]
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        ids = torch.tensor([tokenizer(text, add_special_tokens=False)["input_ids"]])
        with torch.inference_mode():
            logits = model(input_ids=ids).logits[0, -1, words]
        expected.append(torch.softmax(logits, dim=0)[1].item())
    got = llm.predict_proba(REVIEWS, batch_size=len(REVIEWS))[:, 1]  # one padded batch
    assert np.ptp(expected) > 1e-3  # the reviews differ, so a wrong position would show
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)


def test_a_long_review_keeps_its_head_and_tail_in_tokens(tiny_llm: Path) -> None:
    classifier = LLMClassifier.load(tiny_llm, InferenceConfig(precision="fp32", device="cpu", max_length=24))
    head, tail = "A great film. " * 3, " The plot was dull." * 6
    middle_a, middle_b = "bad " * 200, "wonderful acting " * 150
    changed_tail = tail.replace("dull", "great")
    details = classifier.predict_details([head + middle_a + tail, head + middle_b + tail, "A great film.",
                                          head + middle_a + changed_tail])
    assert details.truncated.tolist() == [True, True, False, True]
    assert details.tokens[0] > 200 and details.tokens[2] < 24
    positive = details.probabilities[:, 1]
    assert positive[0] == pytest.approx(positive[1], abs=1e-6)  # only the middle differs: cut away
    assert positive[3] != pytest.approx(positive[0], abs=1e-6)  # the kept tail differs
    assert classifier.info()["head_tokens"] + classifier.info()["tail_tokens"] == 24


def test_chunks_and_onnx_are_refused_in_one_line(tiny_llm: Path) -> None:
    with pytest.raises(UserError, match="one prompt per review"):
        LLMClassifier.load(tiny_llm, InferenceConfig(truncation="chunks"))
    with pytest.raises(UserError, match="onnx backend"):
        LLMClassifier.load(tiny_llm, InferenceConfig(backend="onnx"))
    with pytest.raises(UserError, match="exceed this model's 1024 positions"):
        LLMClassifier.load(tiny_llm, InferenceConfig(max_length=1000))


# --------------------------------------------------------------------------- calibration


def test_best_bias_maximizes_accuracy_and_stays_at_zero_when_zero_is_best() -> None:
    # Calling the review with log-odds -2 positive needs b in (2, 3): its middle is chosen.
    assert best_bias(np.array([-3.0, -2.0, -1.0, 1.0]), np.array([0, 1, 1, 1])) == 2.5
    assert best_bias(np.array([-3.0, -2.0, 1.0, 4.0]), np.array([0, 0, 0, 1])) == -2.5
    assert best_bias(np.array([-1.0, 3.0]), np.array([0, 1])) == 0.0  # any b in (-3, 1) is as good


def test_fit_bias_is_chosen_on_the_given_reviews_shifts_predictions_and_is_saved(tiny_llm: Path,
                                                                                 tmp_path: Path) -> None:
    import shutil

    folder = Path(shutil.copytree(tiny_llm, tmp_path / "model"))
    classifier = LLMClassifier.load(folder, InferenceConfig(precision="fp32", device="cpu"))
    texts = [f"{review} {i}" for i in range(4) for review in REVIEWS]
    log_odds = classifier.label_log_odds(texts)
    labels = (log_odds > np.median(log_odds)).astype(int)  # only a shift to the median gets all right
    before = classifier.predict_proba(texts)[:, 1]
    bias = classifier.fit_bias(texts, labels)
    assert np.sort(-log_odds)[len(texts) // 2 - 1] < bias < np.sort(-log_odds)[len(texts) // 2]
    after = classifier.predict_proba(texts)[:, 1]
    assert ((after > 0.5) == labels.astype(bool)).all()
    assert ((before > 0.5) != labels.astype(bool)).any()  # the shift changed some predictions
    classifier.save_settings(folder / PROMPT_FILE)
    reloaded = LLMClassifier.load(folder, InferenceConfig(precision="fp32", device="cpu"))
    assert reloaded.settings.bias == bias
    np.testing.assert_allclose(reloaded.predict_proba(texts)[:, 1], after, rtol=1e-5)
    with pytest.raises(UserError, match="0 \\(negative\\) or 1 \\(positive\\)"):
        classifier.fit_bias(texts[:2], [0, 2])
    with pytest.raises(UserError, match="one label each"):
        classifier.fit_bias(texts[:2], [0])


# --------------------------------------------------------------------------- recognition


def test_a_causal_lm_folder_is_recognised_from_its_config(tiny_llm: Path, tiny_gpt2: Path,
                                                          tiny_classifier: Path, tiny_encoder: Path,
                                                          tmp_path: Path) -> None:
    assert is_causal_lm_folder(tiny_llm) and is_causal_lm_folder(tiny_gpt2)
    assert not is_causal_lm_folder(tiny_classifier) and not is_causal_lm_folder(tiny_encoder)
    assert not isinstance(load_model(tiny_classifier, InferenceConfig(device="cpu")), LLMClassifier)
    with pytest.raises(UserError, match="not a sequence-classification model"):
        load_model(tiny_encoder, InferenceConfig(device="cpu"))
    bare = Path(__import__("shutil").copytree(tiny_llm, tmp_path / "no-architectures"))
    config = json.loads((bare / "config.json").read_text())
    del config["architectures"]
    (bare / "config.json").write_text(json.dumps(config))
    assert is_causal_lm_folder(bare)  # a decoder-only model type without architectures


def test_predict_command_runs_a_causal_lm_folder(tiny_llm: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["predict", "--model", str(tiny_llm), "--format", "json", "A great film.", "Dull."])
    out, err = capsys.readouterr()
    assert code == 0, err
    rows = json.loads(out)
    assert [row["text"] for row in rows] == ["A great film.", "Dull."]
    assert all(row["label"] in LABELS and 0.5 <= row["score"] <= 1 and row["truncated"] is False
               for row in rows)


def test_evaluate_command_scores_a_causal_lm_folder(tiny_llm: Path, tmp_path: Path, review_frame,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    data.mkdir()
    review_frame.to_parquet(data / "train.parquet")
    review_frame.to_parquet(data / "test.parquet")
    out = tmp_path / "eval"
    code = main(["evaluate", "--model", str(tiny_llm), "--data", str(data), "--output", str(out),
                 "--max-samples", "8", "--runs-dir", "none"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_test"] == 8 and 0 <= metrics["accuracy"] <= 1
    assert metrics["model"] == str(tiny_llm) and metrics["truncation"] == "head-tail"


def test_a_broken_chat_template_is_one_line() -> None:
    tokenizer = build_tokenizer()
    tokenizer.chat_template = "{{ raise_exception('no such role') }}"
    with pytest.raises(UserError, match="cannot render the tokenizer's chat template: no such role"):
        build_prompt(tokenizer, PromptSettings())


# --------------------------------------------------------------------------- GGUF


def fake_gguf_folder(folder: Path, *names: str) -> Path:
    """A folder of files named like GGUF models (their content is never read before the checks)."""
    folder.mkdir()
    for name in names or ("model.gguf",):
        (folder / name).write_bytes(b"GGUF")
    return folder


def test_a_gguf_file_or_a_folder_with_one_and_no_config_is_a_causal_lm(tiny_llm: Path,
                                                                       tmp_path: Path) -> None:
    folder = fake_gguf_folder(tmp_path / "gguf")
    assert is_gguf(folder) and is_causal_lm_folder(folder)
    assert is_gguf(folder / "model.gguf") and is_causal_lm_folder(folder / "model.gguf")
    assert not is_gguf(tiny_llm) and not is_gguf(tmp_path / "missing.gguf")
    (folder / "config.json").write_text("{}")  # a transformers folder that also holds a GGUF copy
    assert not is_gguf(folder)


def test_a_folder_with_several_gguf_files_asks_for_one(tmp_path: Path) -> None:
    folder = fake_gguf_folder(tmp_path / "gguf", "a.Q4_1.gguf", "a.Q8_0.gguf")
    with pytest.raises(UserError, match=r"holds 2 GGUF files \(a.Q4_1.gguf, a.Q8_0.gguf\); pass the path"):
        LLMClassifier.load(folder, InferenceConfig(device="cpu"))


def test_without_the_gguf_package_a_gguf_model_is_a_one_line_error(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]
                                                                   ) -> None:
    monkeypatch.setitem(sys.modules, "gguf", None)  # `import gguf` now raises ImportError
    folder = fake_gguf_folder(tmp_path / "gguf")
    with pytest.raises(UserError, match=r"needs the gguf package: pip install 'imdb-sentiment\[llm\]'"):
        load_model(folder / "model.gguf", InferenceConfig(device="cpu"))
    assert main(["predict", "--model", str(folder), "A great film."]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("pip install 'imdb-sentiment[llm]'") and "\n" not in err


def test_a_too_old_gguf_package_is_a_one_line_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.metadata

    pytest.importorskip("gguf", reason="the gguf package (the llm extra) is not installed")
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "0.9.1")
    with pytest.raises(UserError, match=r"needs gguf>=0.10 \(found 0.9.1\): pip install 'imdb-sentiment"):
        load_model(fake_gguf_folder(tmp_path / "gguf"), InferenceConfig(device="cpu"))


def test_a_damaged_gguf_file_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("gguf", reason="the gguf package (the llm extra) is not installed")
    folder = fake_gguf_folder(tmp_path / "gguf")
    assert main(["predict", "--model", str(folder), "A great film."]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: cannot load the GGUF model {folder / 'model.gguf'}: ") and "\n" not in err


@pytest.fixture(scope="module")
def short_reviews() -> tuple[list[str], np.ndarray]:
    """The 12 shortest negative and 12 shortest positive reviews of a seeded sample of the test split."""
    import pandas as pd

    from imdb_sentiment.data import subsample

    if not (SHARED_DATA / "test.parquet").is_file():
        pytest.skip(f"the IMDB test split is not at {SHARED_DATA}")
    frame = subsample(pd.read_parquet(SHARED_DATA / "test.parquet"), 2000, 0)
    frame = frame.assign(length=frame["text"].str.len()).sort_values(["length", "text"], kind="stable")
    chosen = pd.concat([frame[frame["label"] == label].head(12) for label in (0, 1)])
    return chosen["text"].tolist(), chosen["label"].to_numpy()


@pytest.mark.slow
def test_smollm2_from_its_gguf_folder_scores_short_reviews(short_reviews: tuple[list[str], np.ndarray]
                                                            ) -> None:
    pytest.importorskip("gguf", reason="the gguf package (the llm extra) is not installed")
    if not (SMOLLM2 / "model.gguf").is_file():
        pytest.skip(f"no SmolLM2 GGUF at {SMOLLM2} (../shared/models/fetch.sh smollm2-135m-instruct)")
    texts, labels = short_reviews
    classifier = load_model(SMOLLM2, InferenceConfig(device="cpu"))
    assert isinstance(classifier, LLMClassifier) and classifier.info()["precision"] == "fp32"
    assert classifier.info()["llm"]["chat_template"]  # SmolLM2's own chat template, read from the GGUF
    positive = classifier.predict_proba(texts)[:, 1]
    assert np.isfinite(positive).all() and ((positive > 0) & (positive < 1)).all()
    assert np.ptp(positive) > 0.1  # the reviews are told apart, not one constant answer
    # Measured: 18 of 24 right (0.75), the same to 1e-5 for every batch size; chance is 0.5.
    assert ((positive > 0.5) == labels).mean() > 0.6
    assert positive[labels == 1].mean() > positive[labels == 0].mean()
