"""The CPU engine is chosen by measuring, once per model and machine, and says why."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from imdb_sentiment import engines
from imdb_sentiment.cli import main
from imdb_sentiment.engines import Engine, candidate_engines, choose_cpu_engine, engine_cache_file
from imdb_sentiment.inference import SentimentClassifier

BF16_CPU = ["avx2", "avx512f", "avx512_bf16"]


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("IMDB_SENTIMENT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_candidates_follow_the_cpu_flags() -> None:
    assert candidate_engines(["avx2"]) == [Engine("onnx", "int8")]
    assert candidate_engines(BF16_CPU) == [Engine("onnx", "int8"), Engine("torch", "bf16")]
    assert candidate_engines(["avx2", "amx_tile", "amx_bf16"])[-1] == Engine("torch", "bf16")


@pytest.mark.parametrize("timings, winner", [
    ({"onnx int8": 0.2, "torch bf16": 0.3}, Engine("onnx", "int8")),
    ({"onnx int8": 0.4, "torch bf16": 0.3}, Engine("torch", "bf16")),
])
def test_the_faster_engine_wins_and_is_cached(tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch,
                                              timings: dict[str, float], winner: Engine) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"weights")
    monkeypatch.setattr(engines, "cpu_flags", lambda: BF16_CPU)
    monkeypatch.setattr(engines, "probe_seconds", lambda classifier: timings[classifier.name])
    loads: list[str] = []

    def load(engine: Engine) -> SimpleNamespace:
        loads.append(engine.name)
        return SimpleNamespace(name=engine.name)

    choice = choose_cpu_engine(folder, load)
    assert choice.engine == winner and choice.seconds == timings
    assert "fastest" in choice.reason and "avx512_bf16" in choice.reason
    assert sorted(loads) == ["onnx int8", "torch bf16"]

    again = choose_cpu_engine(folder, lambda engine: pytest.fail("a cached choice needs no measurement"))
    assert again.engine == winner and "cached" in again.reason

    (folder / "model.safetensors").write_bytes(b"other weights")  # another model: measured again
    assert not engine_cache_file(folder, BF16_CPU).exists()


def test_a_damaged_cache_entry_is_measured_again(tmp_path: Path, cache: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    monkeypatch.setattr(engines, "cpu_flags", lambda: BF16_CPU)
    monkeypatch.setattr(engines, "probe_seconds", lambda classifier: 0.1)
    entry = engine_cache_file(folder, BF16_CPU)
    entry.parent.mkdir(parents=True)
    entry.write_text("{not json")
    choice = choose_cpu_engine(folder, lambda engine: SimpleNamespace(name=engine.name))
    assert "fastest" in choice.reason
    assert json.loads(entry.read_text())["engine"] in ({"backend": "onnx", "precision": "int8"},
                                                      {"backend": "torch", "precision": "bf16"})


def test_auto_load_measures_real_engines_on_a_bf16_cpu(tiny_classifier: Path, cache: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """torch bf16 runs on any x86 CPU (slowly without bf16 units), so this exercises the real probe."""
    monkeypatch.setattr(engines, "cpu_flags", lambda: BF16_CPU)
    classifier = SentimentClassifier.load(tiny_classifier, device="cpu", backend="auto")
    info = classifier.info()
    assert (info["backend"], info["precision"]) in (("onnx", "int8"), ("torch", "bf16"))
    assert "onnx int8" in info["engine_reason"] and "torch bf16" in info["engine_reason"]
    assert classifier.predict_proba(["a fine film"]).shape == (1, 2)

    monkeypatch.setattr(engines, "probe_seconds", lambda classifier: pytest.fail("should come from cache"))
    again = SentimentClassifier.load(tiny_classifier, device="cpu", backend="auto")
    assert (again.info()["backend"], again.info()["precision"]) == (info["backend"], info["precision"])
    assert "cached" in again.info()["engine_reason"]


def test_explicit_options_skip_the_measurement(tiny_classifier: Path, cache: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engines, "choose_cpu_engine", lambda *a, **k: pytest.fail("nothing to choose"))
    classifier = SentimentClassifier.load(tiny_classifier, device="cpu", backend="torch", precision="fp32")
    assert classifier.info()["engine_reason"].startswith("as requested")


def test_predict_explains_its_engine(tiny_classifier: Path, cache: Path,
                                     capsys: pytest.CaptureFixture) -> None:
    assert main(["predict", "-m", str(tiny_classifier), "--explain-engine"]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip().splitlines()[-1].startswith("engine: ")
