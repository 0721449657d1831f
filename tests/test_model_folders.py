"""Model folders are checked before they load: tokenizer files, labels that every back end reads
the same way, and a one-line error (before any export starts) for a folder that is not a model."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from imdb_sentiment.cli import main
from imdb_sentiment.errors import UserError
from imdb_sentiment.exporters.onnx import export_onnx
from imdb_sentiment.inference import SentimentClassifier
from imdb_sentiment.modeling import load_classifier

REVIEWS = ["A wonderful, moving film.", "Dull, and far too long.", "ok"]
NO_TOKENIZER = "has no tokenizer files"
NO_WORDS = "knows no words"

pytestmark = pytest.mark.usefixtures("onnx_cache")


def run(argv: list[object], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _one_line_error(code: int, err: str, *parts: str) -> None:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for part in parts:
        assert part in lines[0], err


def _without_tokenizer(source: Path, target: Path) -> Path:
    """``source`` with only its config and weights (``model.safetensors`` or ``model.onnx``)."""
    target.mkdir()
    for file in source.iterdir():
        if file.name in ("config.json", "onnx_export.json", "model.safetensors", "model.onnx"):
            shutil.copy2(file, target / file.name)
    return target


def _with_empty_tokenizer(source: Path, target: Path) -> Path:
    """``source`` with the tokenizer transformers builds when the vocabulary files are missing saved
    in place of its own: files are there, but its tokenizer knows only special tokens."""
    from transformers import AutoTokenizer

    empty = AutoTokenizer.from_pretrained(_without_tokenizer(source, target))
    assert len(empty) == len(empty.all_special_tokens)  # what the check must catch
    empty.save_pretrained(target)
    return target


@pytest.fixture(scope="module")
def exported(tiny_classifier: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("export") / "onnx"
    export_onnx(tiny_classifier, folder)
    return folder


# --------------------------------------------------------------------------- tokenizer files


def test_a_folder_without_tokenizer_files_is_refused_everywhere(
        tiny_classifier: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bare = _without_tokenizer(tiny_classifier, tmp_path / "bare")
    for backend in ("torch", "onnx", "auto"):
        with pytest.raises(UserError, match=NO_TOKENIZER):
            SentimentClassifier.load(bare, backend=backend, device="cpu")
    with pytest.raises(UserError, match=NO_TOKENIZER):  # what `train --model` loads
        load_classifier(bare, require_head=False)
    code, _, err = run(["predict", "--model", bare, "A fine film."], capsys)
    _one_line_error(code, err, NO_TOKENIZER, "tokenizer.json", "vocab.txt", "tokenizer_config.json")
    code, _, err = run(["export", "--model", bare, "--output", tmp_path / "onnx"], capsys)
    _one_line_error(code, err, NO_TOKENIZER)
    assert not (tmp_path / "onnx").exists()
    data = tmp_path / "data"
    data.mkdir()
    pd.DataFrame({"text": REVIEWS * 4, "label": [1, 0, 1] * 4}).to_csv(data / "test.csv", index=False)
    code, _, err = run(["evaluate", "--model", bare, "--data", data, "--output", tmp_path / "eval",
                        "--runs-dir", "none"], capsys)
    _one_line_error(code, err, NO_TOKENIZER)
    assert not (tmp_path / "eval").exists()


def test_an_export_folder_without_tokenizer_files_is_refused(exported: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    bare = _without_tokenizer(exported, tmp_path / "bare")
    with pytest.raises(UserError, match=NO_TOKENIZER):
        SentimentClassifier.load(bare)
    code, _, err = run(["predict", "--model", bare, "A fine film."], capsys)
    _one_line_error(code, err, NO_TOKENIZER)


def test_a_tokenizer_that_knows_no_words_is_refused(tiny_classifier: Path, exported: Path,
                                                     tmp_path: Path) -> None:
    """Files present but no vocabulary: every word would become [UNK] and score at chance."""
    for source, name in ((tiny_classifier, "torch"), (exported, "onnx")):
        folder = _with_empty_tokenizer(source, tmp_path / name)
        with pytest.raises(UserError, match=NO_WORDS):
            SentimentClassifier.load(folder, backend="torch" if name == "torch" else None, device="cpu")


def test_a_hub_model_without_a_tokenizer_is_refused(tiny_classifier: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A Hub id downloads a folder, which can lack tokenizer files just as a local one can."""
    import huggingface_hub.constants

    repo = tmp_path / "hub" / "models--acme--tiny-sentiment"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0" * 40, encoding="utf-8")
    (repo / "snapshots").mkdir()
    _without_tokenizer(tiny_classifier, repo / "snapshots" / ("0" * 40))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserError, match=NO_WORDS):
        SentimentClassifier.load("acme/tiny-sentiment", backend="torch", device="cpu")


def test_a_real_tokenizer_still_loads(tiny_classifier: Path) -> None:
    model = SentimentClassifier.load(tiny_classifier, backend="torch", device="cpu")
    tokens = model.predict_details(["a wonderful moving film"]).tokens
    assert tokens[0] == 4  # four words, four word pieces: not one unknown id for everything


# --------------------------------------------------------------------------- default labels


@pytest.fixture(scope="module")
def default_labels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny classifier labelled LABEL_0/LABEL_1 (transformers' default) whose head favours output 1."""
    import torch
    from conftest import build_tiny_model
    from transformers import AutoModelForSequenceClassification

    folder = build_tiny_model(tmp_path_factory.mktemp("default-labels"),
                              id2label={0: "LABEL_0", 1: "LABEL_1"})
    model = AutoModelForSequenceClassification.from_pretrained(folder)
    with torch.no_grad():
        model.classifier.bias.copy_(torch.tensor([-2.0, 2.0]))
    model.save_pretrained(folder)
    assert "id2label" not in json.loads((folder / "config.json").read_text())  # default labels are not saved
    return folder


def test_default_labels_read_the_same_on_every_back_end(default_labels: Path, tmp_path: Path) -> None:
    reference = SentimentClassifier.load(default_labels, backend="torch", precision="fp32", device="cpu")
    expected = reference.predict_proba(REVIEWS)
    assert (expected[:, 1] > 0.9).all()  # LABEL_1 is positive
    onnx_fp32 = SentimentClassifier.load(default_labels, backend="onnx", precision="fp32", device="cpu")
    np.testing.assert_allclose(onnx_fp32.predict_proba(REVIEWS), expected, atol=1e-5)
    for backend, precision in (("onnx", "auto"), ("auto", "auto"), ("auto", "int8")):
        loaded = SentimentClassifier.load(default_labels, backend=backend, precision=precision, device="cpu")
        np.testing.assert_allclose(loaded.predict_proba(REVIEWS), expected, atol=0.05)
    export_onnx(default_labels, tmp_path / "onnx")
    config = json.loads((tmp_path / "onnx" / "config.json").read_text())
    assert config["id2label"] == {"0": "LABEL_0", "1": "LABEL_1"}
    np.testing.assert_allclose(SentimentClassifier.load(tmp_path / "onnx").predict_proba(REVIEWS), expected,
                               atol=1e-5)
    # An export written without the labels (as before they were kept) reads them as transformers does.
    del config["id2label"], config["label2id"]
    (tmp_path / "onnx" / "config.json").write_text(json.dumps(config))
    np.testing.assert_allclose(SentimentClassifier.load(tmp_path / "onnx").predict_proba(REVIEWS), expected,
                               atol=1e-5)


def test_default_labels_on_the_command_line(default_labels: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    for extra in ([], ["--backend", "onnx"], ["--backend", "torch"]):
        code, out, err = run(["predict", "--model", default_labels, *extra, *REVIEWS], capsys)
        assert code == 0, err
        assert [line.split("\t")[0] for line in out.strip().splitlines()] == ["POSITIVE"] * len(REVIEWS)
    code, _, err = run(["export", "--model", default_labels, "--output", tmp_path / "onnx"], capsys)
    assert code == 0, err
    code, out, err = run(["predict", "--model", tmp_path / "onnx", *REVIEWS], capsys)
    assert code == 0, err
    assert [line.split("\t")[0] for line in out.strip().splitlines()] == ["POSITIVE"] * len(REVIEWS)


# --------------------------------------------------------------------------- folders that are no model


@pytest.fixture
def baseline_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "baseline"
    (folder / "model").mkdir(parents=True)
    (folder / "model" / "model.skops").write_bytes(b"not loaded by these checks")
    (folder / "metrics.json").write_text("{}", encoding="utf-8")
    return folder


@pytest.fixture
def fresh_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("IMDB_SENTIMENT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _no_export_started(caplog: pytest.LogCaptureFixture, cache: Path) -> None:
    assert not [record for record in caplog.records if "preparing" in record.getMessage()]
    assert not any(cache.rglob("*.onnx"))


def test_a_baseline_folder_is_named_before_any_export(baseline_folder: Path, fresh_cache: Path,
                                                      capsys: pytest.CaptureFixture[str],
                                                      caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        for folder in (baseline_folder, baseline_folder / "model"):
            code, _, err = run(["predict", "--model", folder, "A fine film."], capsys)
            _one_line_error(code, err, "no config.json", "baseline", "predict --explain")
    _no_export_started(caplog, fresh_cache)


@pytest.mark.parametrize("damage", ["no weights", "no tokenizer", "no head", "foreign labels"])
def test_an_unusable_folder_fails_before_any_export(damage: str, tiny_classifier: Path, tiny_encoder: Path,
                                                    tmp_path: Path, fresh_cache: Path,
                                                    capsys: pytest.CaptureFixture[str],
                                                    caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "model"
    shutil.copytree(tiny_encoder if damage == "no head" else tiny_classifier, folder)
    if damage == "no weights":
        (folder / "model.safetensors").unlink()
    elif damage == "no tokenizer":
        for file in folder.glob("tokenizer*"):
            file.unlink()
    elif damage == "foreign labels":
        config = json.loads((folder / "config.json").read_text())
        config["id2label"] = {"0": "sad", "1": "happy"}
        (folder / "config.json").write_text(json.dumps(config))
    expected = {"no weights": "no model weights", "no tokenizer": NO_TOKENIZER,
                "no head": "neither a sequence-classification model", "foreign labels": "cannot map"}[damage]
    with caplog.at_level(logging.INFO):
        code, _, err = run(["predict", "--model", folder, "A fine film."], capsys)
    _one_line_error(code, err, expected)
    _no_export_started(caplog, fresh_cache)
