"""A prompted causal LM as a classifier: prompt settings, label words, one pass per review, bias."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, SHARED_DATA
from tiny_llm import REVIEWS, SMOLLM2, build_tokenizer

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
    with pytest.raises(UserError, match="neither a sequence-classification model nor a causal"):
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


DEMONSTRATIONS = [{"review": "A great film.", "label": "positive"},
                  {"review": "A bad film, dull.", "label": "negative"}]


@pytest.mark.parametrize("model_fixture", ["tiny_llm", "tiny_gpt2"])
@pytest.mark.parametrize("chat", [True, False])
def test_the_cached_prefix_gives_the_log_odds_of_whole_prompts(model_fixture: str, chat: bool,
                                                              request: pytest.FixtureRequest) -> None:
    """Demonstrations make a long fixed prefix; its cache, copied to each batch of left-padded reviews
    of unequal lengths, must give what a plain forward pass over each whole prompt gives."""
    import torch
    from transformers import AutoModelForCausalLM

    from imdb_sentiment.data import clean_text
    from imdb_sentiment.llm import TorchPromptRunner

    folder = request.getfixturevalue(model_fixture)
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    settings = PromptSettings(demonstrations=DEMONSTRATIONS)
    tokenizer = build_tokenizer(chat=chat)
    classifier = LLMClassifier(model, tokenizer, settings)
    assert classifier.runner._cache is not None  # the prefix is cached once
    assert classifier.info()["llm"]["shots"] == 2
    got = classifier.label_log_odds(REVIEWS, batch_size=3)
    prompt = classifier.prompt
    assert len(prompt.prefix) > 40  # the demonstrations are in the prefix
    expected = []
    for review in REVIEWS:
        ids = (list(prompt.prefix) + tokenizer(prompt.review_lead + clean_text(review, "basic"),
                                               add_special_tokens=False)["input_ids"] + list(prompt.suffix))
        with torch.inference_mode():
            logits = model(input_ids=torch.tensor([ids])).logits[0, -1]
        expected.append(float(logits[prompt.label_ids[1]] - logits[prompt.label_ids[0]]))
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    assert isinstance(classifier.runner, TorchPromptRunner)


def test_demonstrations_are_solved_turns_before_the_review() -> None:
    tokenizer = build_tokenizer()
    prompt = build_prompt(tokenizer, PromptSettings(demonstrations=DEMONSTRATIONS))
    text = tokenizer.decode(prompt.prefix)
    assert text.index("A great film.") < text.index("<|im_start|>assistant\npositive<|im_end|>") \
        < text.index("A bad film, dull.") < text.index("<|im_start|>assistant\nnegative<|im_end|>")
    assert text.rstrip().endswith("Review:")  # the review itself comes after the prefix
    plain = build_prompt(build_tokenizer(chat=False), PromptSettings(demonstrations=DEMONSTRATIONS))
    assert "A great film.\nSentiment: positive\n\n" in tokenizer.decode(plain.prefix)


def test_demonstrations_round_trip_through_toml(tmp_path: Path) -> None:
    settings = PromptSettings(demonstrations=[{"review": 'Said "wow"\nand left.', "label": "positive"}],
                              bias=-0.5)
    assert PromptSettings.from_file(settings.save(tmp_path / "prompt.toml")) == settings


@pytest.mark.parametrize(("demonstration", "message"), [
    ({"review": "fine"}, "exactly the keys"),
    ({"review": "", "label": "positive"}, "non-empty"),
    ({"review": "fine", "label": "neutral"}, "negative or positive"),
])
def test_bad_demonstrations_are_one_line(demonstration: dict, message: str) -> None:
    with pytest.raises(UserError, match=message):
        PromptSettings(demonstrations=[demonstration])


# --------------------------------------------------------------------------- the prompt command


@pytest.fixture(scope="module")
def small_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data folder of 60 train reviews (short and long, both labels) and 10 test reviews."""
    import pandas as pd

    folder = tmp_path_factory.mktemp("small-data")
    words = ["A great film.", "A bad film, dull.", "Wonderful acting.", "The plot was dull."]
    rows = [{"text": words[i % 4] + " positive" * (i % 7) * (1 + 30 * (i % 5 == 0)), "label": (i + 1) % 2,
             "movie": str(i % 12)} for i in range(60)]
    pd.DataFrame(rows).to_parquet(folder / "train.parquet")
    pd.DataFrame(rows[:10]).to_parquet(folder / "test.parquet")
    return folder


def test_draw_demonstrations_is_balanced_seeded_short_and_from_the_given_reviews() -> None:
    from imdb_sentiment.prompt_fitting import draw_demonstrations

    tokenizer = build_tokenizer()
    texts = [f"review {i} " + "great " * (i % 9) * 10 for i in range(40)]
    labels = [i % 2 for i in range(40)]
    drawn = draw_demonstrations(texts, labels, 4, seed=1, max_tokens=30, tokenizer=tokenizer)
    assert sorted(item["label"] for item in drawn) == ["negative", "negative", "positive", "positive"]
    assert all(len(tokenizer(item["review"])["input_ids"]) <= 30 for item in drawn)
    for item in drawn:
        row = texts.index(item["review"])
        assert ("positive" if labels[row] else "negative") == item["label"]
    assert drawn == draw_demonstrations(texts, labels, 4, seed=1, max_tokens=30, tokenizer=tokenizer)
    assert drawn != draw_demonstrations(texts, labels, 4, seed=2, max_tokens=30, tokenizer=tokenizer)
    odd = draw_demonstrations(texts, labels, 3, seed=1, max_tokens=30, tokenizer=tokenizer)
    assert len(odd) == 3 and len({item["label"] for item in odd}) == 2
    with pytest.raises(UserError, match="lower --shots or raise --shot-max-tokens"):
        draw_demonstrations(texts, labels, 40, seed=1, max_tokens=30, tokenizer=tokenizer)


def test_prompt_command_writes_a_prompted_folder_that_loads_as_a_model(
        tiny_llm: Path, small_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "prompted"
    code = main(["prompt", "--model", str(tiny_llm), "--data", str(small_data), "--output", str(out),
                 "--shots", "2", "--shot-max-tokens", "40", "--validation-size", "0.3",
                 "--group-column", "movie", "--validation-samples", "12"])
    assert code == 0, capsys.readouterr().err
    assert "2-shot" in capsys.readouterr().out
    record = json.loads((out / "prompted.json").read_text())
    assert record["model"] == str(tiny_llm.resolve())
    validation = record["validation"]
    assert validation["reviews"] == 12
    assert validation["accuracy"] >= validation["accuracy_without_bias"]  # fitted on these very reviews
    settings = PromptSettings.from_file(out / "prompt.toml")
    assert len(settings.demonstrations) == 2 and settings.bias == validation["bias"]
    classifier = load_model(out, InferenceConfig(device="cpu"))
    assert isinstance(classifier, LLMClassifier) and classifier.name == str(out)
    assert classifier.info()["llm"]["shots"] == 2 and classifier.info()["llm"]["base_model"] == str(tiny_llm)
    assert classifier.settings == settings
    # the demonstrations come from train, never from the validation movies
    import pandas as pd

    from imdb_sentiment.config import DataSpec

    spec = DataSpec(str(small_data), validation_size=0.3, group_column="movie")
    splits = spec.load(("train", "validation"))
    assert all(item["review"] in set(splits["train"]["text"]) for item in settings.demonstrations)
    assert not isinstance(splits["train"], pd.Series)
    assert main(["predict", "--model", str(out), "A great film."]) == 0


def test_prompt_without_calibration_keeps_a_zero_bias(tiny_llm: Path, small_data: Path,
                                                      tmp_path: Path) -> None:
    out = tmp_path / "zero"
    assert main(["prompt", "--model", str(tiny_llm), "--data", str(small_data), "--output", str(out),
                 "--no-calibrate", "--validation-samples", "8"]) == 0
    assert PromptSettings.from_file(out / "prompt.toml").bias == 0.0
    assert PromptSettings.from_file(out / "prompt.toml").demonstrations == []


@pytest.mark.parametrize(("arguments", "message"), [
    (["--shots", "80"], "lower --shots"),
    (["--shots", "-1"], "shots must be"),
    (["--validation-size", "0"], "needs a validation split"),
    (["--max-length", "1000"], "exceed this model's 1024 positions"),
])
def test_bad_prompt_options_are_one_line_errors(tiny_llm: Path, small_data: Path, tmp_path: Path,
                                                arguments: list[str], message: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["prompt", "--model", str(tiny_llm), "--data", str(small_data), "--output",
                 str(tmp_path / "out"), "--shot-max-tokens", "40", *arguments])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "out").exists()


def test_a_prompted_folder_whose_model_is_gone_is_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "prompted"
    folder.mkdir()
    (folder / "prompted.json").write_text(json.dumps({"model": str(tmp_path / "gone")}))
    with pytest.raises(UserError, match="which is not found"):
        load_model(folder)


def test_a_hub_id_whose_config_is_a_causal_lm_loads_as_a_prompted_classifier(
        tiny_llm: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Hub ids and local folders take the same path: the config (downloaded) decides, not a flag."""
    from transformers import AutoConfig

    import imdb_sentiment.modeling as modeling
    from imdb_sentiment.llm import is_causal_lm

    asked = []

    def config_from_the_hub(id_or_path: str, trust_remote_code: bool = False):
        asked.append(id_or_path)
        return AutoConfig.from_pretrained(tiny_llm)

    monkeypatch.setattr(modeling, "load_config", config_from_the_hub)
    loaded = []

    def load(cls: type, path: str, config: object = None, **options: object) -> str:
        loaded.append(path)
        return "prompted"

    monkeypatch.setattr(LLMClassifier, "load", classmethod(load))
    assert is_causal_lm("org/tiny-llm") and asked == ["org/tiny-llm"]
    assert load_model("org/tiny-llm") == "prompted" and loaded == ["org/tiny-llm"]


def test_a_model_that_is_neither_a_classifier_nor_a_causal_lm_is_one_line(
        tiny_encoder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["predict", "--model", str(tiny_encoder), "A great film."]) == 2
    err = capsys.readouterr().err.strip()
    assert "neither a sequence-classification model nor a causal language model" in err
    assert len(err.splitlines()) == 1
