"""The benchmark scripts: each one starts and explains itself, and they share one way to record results.

The measurements themselves take minutes to hours on the real model; here every script answers
``--help`` (without loading torch), the ones with a ``--smoke`` mode run it on a tiny random model,
and the helpers they share are checked directly.
"""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPTS = sorted(path for path in BENCHMARKS.glob("*.py")  # helper-only modules have no main guard
                 if path.name != "common.py" and "__main__" in path.read_text(encoding="utf-8"))

MAIN_OPTIONS: dict[str, tuple[str, ...]] = {
    "baselines": ("--data", "--models", "--seed", "--results", "--models-dir"),
    "cpu_ceiling": ("--model", "--data", "--samples", "--seconds", "--output"),
    "cpu_engines": ("--model", "--data", "--samples", "--repeats", "--output"),
    "cpu_inference": ("--model", "--samples", "--rounds", "--batch-size", "--skip", "--warm", "--output"),
    "encoder_speed": ("--model", "--data", "--samples", "--rounds", "--max-length", "--torch", "--output"),
    "explain_speed": ("--model", "--samples", "--steps", "--bow-train", "--bow-samples", "--output"),
    "gpu_finetune": ("--model", "--data", "--presets", "--output-dir", "--max-train-samples",
                     "--no-reference"),
    "gpu_inference": ("--model", "--samples", "--device", "--pipeline-batch", "--smoke", "--output"),
    "host_pipeline": ("--model", "--samples", "--threads", "--repeats", "--device-layout", "--output"),
    "hybrid": ("--transformer", "--baseline", "--cache", "--samples", "--speed-samples", "--save",
               "--output"),
    "int8_rows": ("--baseline", "--cache", "--transformer", "--output"),
    "llm_engines": ("--model", "--data", "--samples", "--engines", "--output"),
    "llm_interpretation": ("--model", "--data", "--samples", "--config", "--classifier", "--rating-model",
                           "--stream-samples", "--timing-samples", "--cache", "--output"),
    "llm_prompting": ("--model", "--data", "--samples", "--train", "--shots", "--validation-samples",
                      "--backend", "--speed-samples", "--compare", "--stop-after", "--output"),
    "predict_cli": ("--model", "--samples", "--repeats", "--max-length", "--output"),
    "predict_hybrid": ("--model", "--transformer", "--repeats", "--mode", "--output"),
    "rating_head": ("--data", "--max-train", "--alphas", "--cs", "--output"),
    "ray_scoring": ("--model", "--samples", "--files", "--backend", "--actors", "--repeats", "--output"),
    "score_cache": ("--model", "--data", "--cache", "--backend", "--validation-max", "--threads"),
    "serve_load": ("--model", "--requests", "--concurrency", "--mixed", "--rounds", "--output"),
}
"""The options each script's usage must name (a new script gets its line here)."""

SMOKE = {path.stem for path in SCRIPTS if "--smoke" in path.read_text(encoding="utf-8")}


@pytest.fixture
def benchmark_module() -> Iterator[Callable[[str], ModuleType]]:
    """Imports benchmark modules as the scripts see each other (their folder on the path), then
    forgets them, so their short names never shadow anything for other tests."""
    before = set(sys.modules)
    sys.path.insert(0, str(BENCHMARKS))
    try:
        yield importlib.import_module
    finally:
        sys.path.remove(str(BENCHMARKS))
        for name in set(sys.modules) - before:
            if (getattr(sys.modules[name], "__file__", None) or "").startswith(str(BENCHMARKS)):
                del sys.modules[name]


def test_every_script_has_its_options_listed() -> None:
    assert {path.stem for path in SCRIPTS} == set(MAIN_OPTIONS)


@pytest.mark.parametrize("script", [path.stem for path in SCRIPTS])
def test_help_names_the_main_options_without_loading_torch(script: str) -> None:
    done = subprocess.run([sys.executable, "-X", "importtime", str(BENCHMARKS / f"{script}.py"), "--help"],
                          capture_output=True, text=True, timeout=60, cwd=BENCHMARKS.parent)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith(f"usage: {script}.py"), done.stdout[:200]
    missing = [option for option in MAIN_OPTIONS[script] if option not in done.stdout]
    assert not missing, f"{script} --help does not name {missing}"
    heavy = set(re.findall(r"\|\s+(torch|transformers|sklearn|ray)$", done.stderr, re.MULTILINE))
    assert not heavy, f"{script} --help imports {sorted(heavy)}"


def test_scripts_use_the_shared_helpers() -> None:
    """The import path, the machine facts and the result files are set up in one place."""
    for path in SCRIPTS:
        source = path.read_text(encoding="utf-8")
        assert "from common import" in source, path.name
        for own_way in ("sys.path.insert", "/proc/cpuinfo", "getloadavg", "platform.processor",
                        "write_json(", "json.dump(", "os.cpu_count("):
            assert own_way not in source, f"{path.name} uses {own_way}"
        if "prediction_parser(" in source or re.search(r'"--(output|results)"', source):
            assert "write_result(" in source, f"{path.name} writes its results by itself"


def test_machine_facts_extend_the_run_tags(benchmark_module) -> None:
    from imdb_sentiment.engines import cpu_flags
    from imdb_sentiment.tracking import hardware_tags

    facts = benchmark_module("common").machine_facts()
    tags = hardware_tags()
    assert facts["cpu"] == tags["hardware.cpu"]
    assert facts["cpu_count"] == int(tags["hardware.cpu_count"])
    assert facts["python"] == tags["version.python"]
    assert facts["hardware"] == tags["hardware"]
    assert facts["cpu_flags"] == cpu_flags()
    assert len(facts["load_average"]) == 3 and all(value >= 0 for value in facts["load_average"])
    assert 1 <= facts["usable_cores"] <= facts["cpu_count"]


def test_write_result_adds_date_and_facts_atomically(benchmark_module, tmp_path: Path) -> None:
    common = benchmark_module("common")
    target = tmp_path / "deeper" / "bench.json"
    written = common.write_result(target, {"benchmark": "x", "machine": {"cores": 99, "cpu": "mine"},
                                           "value": 1.5})
    assert written == target
    document = json.loads(target.read_text(encoding="utf-8"))
    assert document["benchmark"] == "x" and document["value"] == 1.5
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", document["date"])
    # The script's own machine entries win over the facts; the other facts are added.
    assert document["machine"]["cores"] == 99 and document["machine"]["cpu"] == "mine"
    assert {"cpu_count", "python", "cpu_flags", "load_average"} <= set(document["machine"])
    assert [path.name for path in target.parent.iterdir()] == ["bench.json"]  # no temporary left

    common.write_result(target, {"date": "kept", "benchmark": "y"})
    assert json.loads(target.read_text(encoding="utf-8"))["date"] == "kept"


def test_a_bare_name_goes_to_the_results_folder(benchmark_module) -> None:
    common = benchmark_module("common")
    assert common.result_path("cpu_engines") == BENCHMARKS / "results" / "cpu_engines.json"
    assert common.result_path("/tmp/elsewhere.json") == Path("/tmp/elsewhere.json")
    assert common.result_path("other.json") == Path("other.json")


def test_a_smoke_run_never_replaces_the_measured_result(benchmark_module) -> None:
    gpu_inference = benchmark_module("gpu_inference")
    measured = str(BENCHMARKS / "results" / "gpu_inference.json")
    assert gpu_inference.parse_args(["--model", "m"]).output == measured
    smoke = gpu_inference.parse_args(["--model", "m", "--smoke"])
    assert smoke.output != measured and smoke.device == "cpu" and smoke.samples == 64
    assert gpu_inference.parse_args(["--model", "m", "--smoke", "--output", "x.json"]).output == "x.json"


SMOKE_RUN = """
import runpy, sys
from pathlib import Path

tests, benchmarks, model, script, *argv = sys.argv[1:]
sys.path[:0] = [tests, benchmarks]  # what `python benchmarks/NAME.py` puts first, and the fixtures
from conftest import build_tiny_model

build_tiny_model(Path(model))
sys.argv = [script, "--model", model, *argv]
runpy.run_path(script, run_name="__main__")
"""
"""Builds the tiny model in the process that runs the script: torch and transformers load once."""


@pytest.mark.parametrize("script", sorted(SMOKE))
def test_smoke_mode_runs_on_a_tiny_model(script: str, shared_model: Path, review_frame,
                                         tmp_path: Path) -> None:
    data, output = tmp_path / "test.parquet", tmp_path / "out.json"
    review_frame.to_parquet(data)
    done = subprocess.run(
        [sys.executable, "-c", SMOKE_RUN, str(Path(__file__).parent), str(BENCHMARKS),
         str(tmp_path / "model"), str(BENCHMARKS / f"{script}.py"),
         "--data", str(data), "--smoke", "--output", str(output)],
        capture_output=True, text=True, timeout=300, cwd=BENCHMARKS.parent)
    assert done.returncode == 0, done.stderr[-3000:]
    document = json.loads(output.read_text(encoding="utf-8"))
    assert document["benchmark"] == script and document["smoke"] is True
    assert document["rows"] and {"date", "machine"} <= set(document)
