"""Which engine (back end and precision) runs a model: the rules for the ``backend`` and
``precision`` options, and on a CPU with both left at ``auto``, the fastest: measured once, cached,
explained.

CPU flags alone pick wrongly: on a Zen 4 core with AVX512-BF16, ONNX Runtime int8 beats PyTorch
bf16 autocast, while on AMX cores bf16 may win. So the candidates this CPU can run are timed on a
short probe (a few seconds, the real prediction path, tokenization included), and the winner is
kept in ``$IMDB_SENTIMENT_CACHE/engines``, keyed by CPU model, flags, library versions, the
candidates and the model's files, so later runs start at once. A GGUF language model is chosen the
same way among its own candidates (:func:`llm_candidate_engines`): llama.cpp on the file's quantized
weights, and PyTorch on the de-quantized ones.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import json
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import __version__
from .config import LLAMA_CPP
from .errors import UserError

ENGINE_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "amx_int8",
                "amx_bf16")
"""The CPU flags that decide which engine is fast; they go into the cache key and the explanation."""

PROBE_WORDS = (400, 240, 150, 90)
"""Words per probe review: a mix of long and short inputs like IMDB's (mean ~300 tokens, 13 % cut)."""
PROBE_REPEATS = 3
LLM_PROBE_WORDS = (240, 90)
"""A language model reads each review in a prompt, hundreds of times slower than an encoder: a
shorter probe, timed once (its engines differ by far more than the noise)."""
LLM_PROBE_REPEATS = 1
LLAMA_CPP_PACKAGE = "llama_cpp"
"""The module ``llama-cpp-python`` installs."""


@dataclass(frozen=True)
class Engine:
    backend: str
    """``onnx`` (ONNX Runtime on a cached export), ``torch`` or ``llama.cpp`` (a GGUF file)."""
    precision: str
    """``int8``, ``fp32``, ``bf16``, or ``gguf`` for llama.cpp (the file's own quantized weights)."""

    @property
    def name(self) -> str:
        return f"{self.backend} {self.precision}"


@dataclass
class EngineChoice:
    engine: Engine
    reason: str
    seconds: dict[str, float] = field(default_factory=dict)
    """Best probe time per candidate engine name (empty when nothing was measured)."""
    cpu_flags: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EngineChoice:
        return cls(Engine(**data["engine"]), str(data["reason"]), dict(data.get("seconds", {})),
                   list(data.get("cpu_flags", [])))


# --------------------------------------------------------------------------- rules


def measures_engine(backend: str, device: str | None, precision: str) -> bool:
    """``auto`` everything on a CPU: the engine is chosen by measuring (:func:`choose_cpu_engine`)."""
    if backend != "auto" or precision != "auto" or device not in (None, "cpu"):
        return False
    return device == "cpu" or not may_have_accelerator()  # GPUs run PyTorch (bf16 where supported)


def wants_onnx(backend: str, device: str | None, precision: str) -> bool:
    """Whether to run a PyTorch model folder through a cached ONNX Runtime export."""
    if backend == "onnx":
        if precision == "bf16":
            raise UserError("ONNX Runtime runs int8 or fp32 here; use --precision int8, fp32 or auto")
        return True
    if backend != "auto" or precision != "int8":
        return False
    if device not in (None, "cpu") or (device is None and may_have_accelerator()):
        return False
    try:
        return all(importlib.util.find_spec(name) for name in ("onnxruntime", "onnx"))
    except (ImportError, ValueError):
        return False


def check_encoder_backend(backend: str) -> None:
    """A fine-tuned classifier runs on PyTorch or ONNX Runtime; llama.cpp runs GGUF language models only."""
    if backend == LLAMA_CPP:
        raise UserError("the llama.cpp backend runs GGUF language models only; "
                        "for a fine-tuned classifier use --backend auto, torch or onnx")


def check_llama_cpp_request(gguf: bool, device: str | None, precision: str) -> None:
    """``--backend llama.cpp`` takes a GGUF model on the CPU, with the file's own weights (precision
    ``auto``); anything else is a one-line error."""
    if not gguf:
        raise UserError("the llama.cpp backend runs GGUF models (a .gguf file, or a folder holding one); "
                        "use --backend torch for this model folder")
    if device not in (None, "cpu"):
        raise UserError(f"the llama.cpp backend runs on the CPU here, not on {device}; "
                        "use --device cpu, or --backend torch")
    if precision != "auto":
        raise UserError(f"llama.cpp runs the GGUF file's own (quantized) weights; --precision {precision} "
                        "does not apply: use --precision auto, or --backend torch")


def llama_cpp_available() -> bool:
    """Whether ``llama-cpp-python`` is installed (found without importing it)."""
    try:
        return importlib.util.find_spec(LLAMA_CPP_PACKAGE) is not None
    except (ImportError, ValueError):
        return False


def may_have_accelerator() -> bool:
    """A cheap look for a GPU (no torch import): NVIDIA driver files or an Apple-silicon Mac."""
    if platform.system() == "Darwin" and platform.machine() == "arm64":
        return True
    return Path("/proc/driver/nvidia").exists() or Path("/dev/nvidia0").exists()


# --------------------------------------------------------------------------- measuring on a CPU


def cpu_flags() -> list[str]:
    """The engine-relevant flags of this CPU (empty where ``/proc/cpuinfo`` is not readable)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="ignore")
    except OSError:
        return []
    present = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            present.update(line.partition(":")[2].split())
            break
    return [flag for flag in ENGINE_FLAGS if flag in present]


@functools.cache
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="ignore").splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def candidate_engines(flags: list[str] | None = None) -> list[Engine]:
    """Engines worth timing here: ONNX Runtime int8 (when installed) and, on CPUs with bf16 units,
    PyTorch bf16; PyTorch fp32 only when neither is available (it was the slowest everywhere)."""
    flags = cpu_flags() if flags is None else flags
    engines = []
    if all(importlib.util.find_spec(name) for name in ("onnxruntime", "onnx")):
        engines.append(Engine("onnx", "int8"))
    if {"avx512_bf16", "amx_bf16"} & set(flags):
        engines.append(Engine("torch", "bf16"))
    return engines or [Engine("torch", "fp32")]


LLAMA_CPP_ENGINE = Engine(LLAMA_CPP, "gguf")


def llm_candidate_engines(flags: list[str] | None = None) -> list[Engine]:
    """Engines worth timing for a GGUF language model here: llama.cpp (when installed), PyTorch fp32
    and, on CPUs with bf16 units, PyTorch bf16. Which one wins depends on the model's size and
    quantization as much as on the CPU (see benchmarks/llm_engines.py), so each is measured."""
    flags = cpu_flags() if flags is None else flags
    engines = [LLAMA_CPP_ENGINE] if llama_cpp_available() else []
    engines.append(Engine("torch", "fp32"))
    if {"avx512_bf16", "amx_bf16"} & set(flags):
        engines.append(Engine("torch", "bf16"))
    return engines


def engine_cache_file(folder: Path, flags: list[str], candidates: Sequence[Engine] | None = None) -> Path:
    """Where the choice for this model on this kind of CPU is kept (among ``candidates``, by default
    :func:`candidate_engines`: another set of candidates is measured again)."""
    from .artifacts import cache_root, folder_fingerprint

    candidates = candidate_engines(flags) if candidates is None else candidates
    versions = [_version("torch"), _version("onnxruntime")]
    if any(engine.backend == LLAMA_CPP for engine in candidates):
        versions.append(_version("llama-cpp-python"))
    key = folder_fingerprint(folder, cpu_model(), ",".join(flags), __version__, *versions,
                             ",".join(engine.name for engine in candidates))
    return cache_root() / "engines" / f"{key}.json"


Loader = Callable[[Engine], Any]
"""Loads a classifier for one engine (anything with ``predict_proba(texts)``)."""


def choose_cpu_engine(folder: Path, load: Loader, *, measure: bool = True,
                      candidates: Sequence[Engine] | None = None,
                      probe: Callable[[Any], float] | None = None) -> EngineChoice:
    """The fastest of ``candidates`` (default :func:`candidate_engines`, the fine-tuned classifiers'
    engines) for the model in ``folder`` on this CPU, timed by ``probe`` (default
    :func:`probe_seconds`), from the cache or timed now; unmeasured, the first candidate."""
    flags = cpu_flags()
    candidates = list(candidate_engines(flags) if candidates is None else candidates)
    if not candidates:
        raise ValueError("choose_cpu_engine needs at least one candidate engine")
    if len(candidates) == 1:
        only = candidates[0]
        return EngineChoice(only, f"{only.name} is the only fast engine available on this CPU "
                                  f"({', '.join(flags) or 'no vector flags read'})", {}, flags)
    cache_file = engine_cache_file(folder, flags, candidates)
    cached = _read_choice(cache_file)
    if cached is not None and cached.engine in candidates:
        cached.reason += f" (measured earlier; cached in {cache_file})"
        return cached
    if not measure:
        first = candidates[0]
        return EngineChoice(first, f"{first.name} by default (not measured)", {}, flags)
    probe = probe_seconds if probe is None else probe
    seconds = {engine.name: probe(load(engine)) for engine in candidates}
    best = min(candidates, key=lambda engine: seconds[engine.name])
    ranked = sorted(seconds.items(), key=lambda item: item[1])
    timings = ", ".join(f"{name} {value:.3f} s" for name, value in ranked)
    choice = EngineChoice(best, f"fastest on a probe of {len(PROBE_WORDS)} reviews on this CPU "
                                f"({', '.join(flags) or 'no vector flags read'}): {timings}", seconds, flags)
    _write_choice(cache_file, choice)
    return choice


def choose_llm_engine(folder: Path, load: Loader, *, measure: bool = True) -> EngineChoice:
    """The fastest engine for the GGUF language model in ``folder`` on this CPU, among
    :func:`llm_candidate_engines`, timed by :func:`llm_probe_seconds` (as :func:`choose_cpu_engine`)."""
    return choose_cpu_engine(folder, load, measure=measure, candidates=llm_candidate_engines(),
                             probe=llm_probe_seconds)


def probe_seconds(classifier: Any, words: Sequence[int] = PROBE_WORDS, repeats: int = PROBE_REPEATS) -> float:
    """Best of a few timed passes over the probe reviews, after one warm-up pass."""
    texts = [" ".join(["the film was quietly moving and well acted"] * (count // 8)) for count in words]
    classifier.predict_proba(texts)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        classifier.predict_proba(texts)
        best = min(best, time.perf_counter() - started)
    return best


def llm_probe_seconds(classifier: Any) -> float:
    """:func:`probe_seconds` on the language models' shorter probe."""
    return probe_seconds(classifier, LLM_PROBE_WORDS, LLM_PROBE_REPEATS)


def _read_choice(path: Path) -> EngineChoice | None:
    if not path.is_file():
        return None
    try:
        return EngineChoice.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        return None  # a damaged cache entry is measured again


def _write_choice(path: Path, choice: EngineChoice) -> None:
    from .artifacts import write_json

    try:
        write_json(path, choice.to_dict())
    except OSError as error:  # the choice still applies to this run
        import logging

        logging.getLogger("imdb_sentiment").warning("cannot cache the engine choice in %s: %s", path, error)


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "-"

