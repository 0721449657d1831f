"""The CPU engine is chosen by measuring, once per model and machine, and says why."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from imdb_sentiment import engines
from imdb_sentiment.cli import main
from imdb_sentiment.config import InferenceConfig
from imdb_sentiment.engines import (
    Engine,
    candidate_engines,
    check_llama_cpp_request,
    choose_cpu_engine,
    choose_llm_engine,
    engine_cache_file,
    llm_candidate_engines,
)
from imdb_sentiment.errors import UserError
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


# --------------------------------------------------------------------------- GGUF language models


def test_gguf_candidates_follow_llama_cpp_and_the_cpu_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engines, "llama_cpp_available", lambda: True)
    assert llm_candidate_engines(["avx2"]) == [Engine("llama.cpp", "gguf"), Engine("torch", "fp32")]
    assert llm_candidate_engines(BF16_CPU) == [Engine("llama.cpp", "gguf"), Engine("torch", "fp32"),
                                               Engine("torch", "bf16")]
    monkeypatch.setattr(engines, "llama_cpp_available", lambda: False)
    assert llm_candidate_engines(["avx2", "amx_tile", "amx_bf16"]) == [Engine("torch", "fp32"),
                                                                       Engine("torch", "bf16")]
    assert llm_candidate_engines(["avx2"]) == [Engine("torch", "fp32")]


@pytest.mark.parametrize("timings, winner", [
    ({"llama.cpp gguf": 0.1, "torch fp32": 0.5, "torch bf16": 0.3}, Engine("llama.cpp", "gguf")),
    ({"llama.cpp gguf": 0.6, "torch fp32": 0.5, "torch bf16": 0.3}, Engine("torch", "bf16")),
])
def test_a_gguf_model_runs_on_the_fastest_of_its_own_candidates(
        tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch, timings: dict[str, float],
        winner: Engine) -> None:
    folder = tmp_path / "gguf"
    folder.mkdir()
    (folder / "model.gguf").write_bytes(b"GGUF")
    monkeypatch.setattr(engines, "cpu_flags", lambda: BF16_CPU)
    monkeypatch.setattr(engines, "llama_cpp_available", lambda: True)
    monkeypatch.setattr(engines, "probe_seconds", lambda runner: timings[runner.name])
    candidates = llm_candidate_engines(BF16_CPU)
    loads: list[str] = []

    def load(engine: Engine) -> SimpleNamespace:
        loads.append(engine.name)
        return SimpleNamespace(name=engine.name)

    choice = choose_cpu_engine(folder, load, candidates=candidates)
    assert choice.engine == winner and choice.seconds == timings
    assert sorted(loads) == sorted(timings) and "llama.cpp gguf" in choice.reason
    again = choose_cpu_engine(folder, lambda engine: pytest.fail("a cached choice needs no measurement"),
                              candidates=candidates)
    assert again.engine == winner and "cached" in again.reason

    # Other candidates (llama.cpp gone, or the encoders' set) are another question: measured again.
    without = [engine for engine in candidates if engine.backend != "llama.cpp"]
    assert engine_cache_file(folder, BF16_CPU, without) != engine_cache_file(folder, BF16_CPU, candidates)
    fallback = choose_cpu_engine(folder, load, candidates=without)
    assert fallback.engine in without and "cached" not in fallback.reason


def test_a_gguf_model_is_timed_on_the_language_models_short_probe(tmp_path: Path, cache: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "model.gguf").write_bytes(b"GGUF")
    monkeypatch.setattr(engines, "cpu_flags", lambda: BF16_CPU)
    monkeypatch.setattr(engines, "llama_cpp_available", lambda: True)
    passes: dict[str, list[int]] = {}

    def load(engine: Engine) -> SimpleNamespace:
        passes[engine.name] = []
        return SimpleNamespace(predict_proba=lambda texts: passes[engine.name].append(len(texts)))

    choice = choose_llm_engine(tmp_path, load)
    assert sorted(choice.seconds) == sorted(passes) == ["llama.cpp gguf", "torch bf16", "torch fp32"]
    # One warm-up pass, then the timed ones, each over the short probe's reviews.
    assert all(counts == [len(engines.LLM_PROBE_WORDS)] * (1 + engines.LLM_PROBE_REPEATS)
               for counts in passes.values())
    assert len(engines.LLM_PROBE_WORDS) < len(engines.PROBE_WORDS)
    again = choose_llm_engine(tmp_path, lambda engine: pytest.fail("a cached choice needs no measurement"))
    assert again.engine == choice.engine and "cached" in again.reason


def test_a_cached_engine_that_is_no_longer_a_candidate_is_measured_again(
        tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "gguf"
    folder.mkdir()
    (folder / "model.gguf").write_bytes(b"GGUF")
    monkeypatch.setattr(engines, "cpu_flags", lambda: BF16_CPU)
    monkeypatch.setattr(engines, "probe_seconds", lambda runner: {"torch fp32": 0.2}.get(runner.name, 0.1))
    candidates = [Engine("torch", "fp32"), Engine("torch", "bf16")]
    stale = engines.EngineChoice(Engine("onnx", "int8"), "fastest", {}, BF16_CPU)
    entry = engine_cache_file(folder, BF16_CPU, candidates)
    entry.parent.mkdir(parents=True)
    entry.write_text(json.dumps(stale.to_dict()))
    choice = choose_cpu_engine(folder, lambda engine: SimpleNamespace(name=engine.name),
                               candidates=candidates)
    assert choice.engine == Engine("torch", "bf16") and "fastest" in choice.reason


def test_unmeasured_a_gguf_model_takes_llama_cpp_first(tmp_path: Path, cache: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engines, "cpu_flags", lambda: BF16_CPU)
    monkeypatch.setattr(engines, "llama_cpp_available", lambda: True)
    (tmp_path / "model.gguf").write_bytes(b"GGUF")
    choice = choose_cpu_engine(tmp_path, lambda engine: pytest.fail("not measured"), measure=False,
                               candidates=llm_candidate_engines(BF16_CPU))
    assert choice.engine == Engine("llama.cpp", "gguf") and "not measured" in choice.reason


def test_the_llama_cpp_backend_is_a_backend_choice() -> None:
    assert InferenceConfig(backend="llama.cpp").backend == "llama.cpp"
    with pytest.raises(UserError, match=r"backend must be one of torch, onnx, llama\.cpp, auto"):
        InferenceConfig(backend="llamacpp")


@pytest.mark.parametrize("gguf, device, precision, message", [
    (False, "cpu", "auto", "runs GGUF models"),
    (True, "cuda", "auto", "runs on the CPU here, not on cuda"),
    (True, None, "bf16", "--precision bf16 does not apply"),
])
def test_llama_cpp_takes_a_gguf_model_on_the_cpu_with_its_own_weights(gguf: bool, device: str | None,
                                                                      precision: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        check_llama_cpp_request(gguf, device, precision)
    check_llama_cpp_request(True, device="cpu", precision="auto")
    check_llama_cpp_request(True, device=None, precision="auto")


def test_a_fine_tuned_classifier_refuses_the_llama_cpp_backend(tiny_classifier: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(UserError, match=r"llama\.cpp backend runs GGUF language models only"):
        SentimentClassifier.load(tiny_classifier, device="cpu", backend="llama.cpp")
    assert main(["predict", "-m", str(tiny_classifier), "--backend", "llama.cpp", "--explain-engine"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: the llama.cpp backend runs GGUF language models only") and "\n" not in err
