"""ONNX export (fp32 and int8) and loading the exported folder with ONNX Runtime."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from imdb_sentiment.cli import main
from imdb_sentiment.errors import UserError
from imdb_sentiment.exporters.onnx import export_onnx
from imdb_sentiment.inference import SentimentClassifier

REVIEWS = [
    "A wonderful film with a moving story.",
    "Awful.",
    "The plot drags and the acting is wooden. " * 30,
    "ok",
]


@pytest.fixture(scope="module")
def exported(tiny_classifier: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("onnx") / "fp32"
    export_onnx(tiny_classifier, folder)
    return folder


@pytest.fixture(scope="module")
def exported_int8(tiny_classifier: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("onnx-int8") / "int8"
    code = main(["export", "--model", str(tiny_classifier), "--output", str(folder), "--quantize", "int8"])
    assert code == 0
    return folder


def test_fp32_export_matches_pytorch(exported: Path, tiny_classifier: Path) -> None:
    record = json.loads((exported / "onnx_export.json").read_text(encoding="utf-8"))
    assert record["precision"] == "fp32" and record["max_abs_logit_difference"] < 1e-4
    assert record["fused_operators"]["Attention"] == 2  # one fused attention per layer
    assert {"model.onnx", "config.json", "tokenizer.json", "tokenizer_config.json"} <= {
        p.name for p in exported.iterdir()}
    onnx_model = SentimentClassifier.load(exported)
    torch_model = SentimentClassifier.load(tiny_classifier, precision="fp32", device="cpu")
    info = onnx_model.info()
    assert info["backend"] == "onnx" and info["precision"] == "fp32"
    assert info["model"] == str(tiny_classifier)
    np.testing.assert_allclose(onnx_model.predict_proba(REVIEWS, batch_size=3),
                               torch_model.predict_proba(REVIEWS), atol=1e-5)


def test_int8_export_is_smaller_and_close(exported: Path, exported_int8: Path) -> None:
    record = json.loads((exported_int8 / "onnx_export.json").read_text(encoding="utf-8"))
    assert record["precision"] == "int8"
    assert (exported_int8 / "model.onnx").stat().st_size < (exported / "model.onnx").stat().st_size
    quantized = SentimentClassifier.load(exported_int8)
    assert quantized.info()["precision"] == "int8"
    np.testing.assert_allclose(quantized.predict_proba(REVIEWS),
                               SentimentClassifier.load(exported).predict_proba(REVIEWS), atol=0.02)


def test_int8_scores_a_review_the_same_whatever_its_batch(exported_int8: Path) -> None:
    """Dynamic quantization scales activations by the whole input: batched, a review's score would
    change with its neighbours and their padding."""
    model = SentimentClassifier.load(exported_int8)
    texts = ["ok", "A long, winding review of a film that was " + "rather dull and slow, " * 30,
             "Great!", "Not my kind of movie, but the acting was fine and the music lovely."]
    together = model.predict_proba(texts, batch_size=4)
    alone = np.concatenate([model.predict_proba([text]) for text in texts])
    reordered = model.predict_proba(texts[::-1], batch_size=2)[::-1]
    assert np.array_equal(together, alone) and np.array_equal(together, reordered)


def test_exported_folder_supports_every_strategy(exported: Path) -> None:
    long_review = "A sprawling, gripping and beautifully shot epic. " * 200
    for truncation in ("head-tail", "head", "chunks"):
        model = SentimentClassifier.load(exported, truncation=truncation, max_length=128)
        details = model.predict_details([long_review, "fine"])
        assert details.truncated.tolist() == [truncation != "chunks", False]
        assert model.info()["truncation"] == truncation


def test_onnx_prediction_needs_neither_torch_nor_transformers(exported: Path) -> None:
    code = (
        "import sys; from imdb_sentiment.inference import SentimentClassifier as C; "
        f"m = C.load({str(exported)!r}); p = m.predict(['A lovely film.']); "
        "print(p[0]['label'], 'torch' in sys.modules, 'transformers' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    label, torch_loaded, transformers_loaded = done.stdout.split()
    assert label in {"POSITIVE", "NEGATIVE"}
    assert (torch_loaded, transformers_loaded) == ("False", "False")


def test_export_mistakes_are_user_errors(tiny_classifier: Path, tiny_encoder: Path, exported: Path,
                                         tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(UserError, match="--quantize must be one of"):
        export_onnx(tiny_classifier, tmp_path / "a", quantize="int4")
    with pytest.raises(UserError, match="neither a sequence-classification model"):
        export_onnx(tiny_encoder, tmp_path / "b")
    with pytest.raises(UserError, match="not empty"):
        export_onnx(tiny_classifier, exported)
    with pytest.raises(UserError, match="fp32 weights"):
        SentimentClassifier.load(exported, precision="int8")
    assert main(["export", "--model", str(tmp_path / "missing"), "--output", str(tmp_path / "c")]) == 2
    assert "model path not found" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


# --------------------------------------------------------------------------- backend choice and cache


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("IMDB_SENTIMENT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_auto_backend_exports_once_and_reuses_the_cache(tiny_classifier: Path, cache: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import imdb_sentiment.exporters.onnx as exporter

    first = SentimentClassifier.load(tiny_classifier, backend="auto", device="cpu", precision="int8")
    assert (first.info()["backend"], first.info()["precision"]) == ("onnx", "int8")
    assert first.name == str(tiny_classifier)
    assert len(list((cache / "onnx").iterdir())) == 1

    def no_second_export(*args: object, **kwargs: object) -> None:
        raise AssertionError("the cached export should have been reused")

    monkeypatch.setattr(exporter, "export_onnx", no_second_export)
    again = SentimentClassifier.load(tiny_classifier, backend="auto", device="cpu", precision="int8")
    np.testing.assert_array_equal(again.predict_proba(REVIEWS), first.predict_proba(REVIEWS))
    exact = SentimentClassifier.load(tiny_classifier, backend="auto", precision="fp32", device="cpu")
    assert exact.info()["backend"] == "torch"  # an explicit fp32 request runs the reference path


def test_onnx_backend_fp32_matches_pytorch(tiny_classifier: Path, cache: Path) -> None:
    onnx_model = SentimentClassifier.load(tiny_classifier, backend="onnx", precision="fp32")
    assert (onnx_model.info()["backend"], onnx_model.info()["precision"]) == ("onnx", "fp32")
    reference = SentimentClassifier.load(tiny_classifier, backend="torch", precision="fp32", device="cpu")
    np.testing.assert_allclose(onnx_model.predict_proba(REVIEWS), reference.predict_proba(REVIEWS), atol=1e-5)


def test_backend_mistakes_are_user_errors(tiny_classifier: Path, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UserError, match="backend must be one of"):
        SentimentClassifier.load(tiny_classifier, backend="tensorrt")
    with pytest.raises(UserError, match="int8 or fp32"):
        SentimentClassifier.load(tiny_classifier, backend="onnx", precision="bf16")
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("", encoding="utf-8")
    monkeypatch.setenv("IMDB_SENTIMENT_CACHE", str(blocker))
    with pytest.raises(UserError, match="cannot write the ONNX cache"):
        SentimentClassifier.load(tiny_classifier, backend="onnx")


def test_cached_prediction_starts_without_torch(tiny_classifier: Path, cache: Path) -> None:
    """After the first run, the command line's default path never imports torch or transformers."""
    SentimentClassifier.load(tiny_classifier, backend="onnx")  # fills the cache
    code = ("import sys; from imdb_sentiment.cli import main; "
            f"code = main(['predict', '--model', {str(tiny_classifier)!r}, '--backend', 'onnx', "
            "'A lovely film.']); "
            "print(code, 'torch' in sys.modules, 'transformers' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    label_line, status = done.stdout.strip().splitlines()
    assert label_line.split("\t")[0] in {"POSITIVE", "NEGATIVE"}
    assert status == "0 False False"
