"""Training in two processes with ``torchrun`` (DDP over gloo on the CPU): one writer, one test score."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from imdb_sentiment import distributed

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = ["--max-length", "32", "--batch-size", "8", "--eval-batch-size", "16", "--epochs", "1",
            "--precision", "fp32", "--learning-rate", "1e-3", "--warmup", "0"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """200 short reviews: 160 to train (16 of them carved off for validation), 40 to test."""
    folder = tmp_path_factory.mktemp("ddp-data")
    for split, n in (("train", 160), ("test", 40)):
        texts = [f"A wonderful, moving film {split}{i}." if i % 2 else f"A dull, boring film {split}{i}."
                 for i in range(n)]
        frame = pd.DataFrame({"text": texts, "label": [i % 2 for i in range(n)]})
        frame.to_parquet(folder / f"{split}.parquet")
    return folder


def _torchrun(model: Path, data: Path, output: Path, runs: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "imdb_sentiment", "train", "--model", str(model), "--data", str(data),
               "--output", str(output), "--runs-dir", str(runs), *SETTINGS]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=240, check=False)


@pytest.mark.slow
def test_torchrun_two_processes_write_one_model_one_record_and_one_test_score(
        tiny_encoder, data_dir, tmp_path):
    from imdb_sentiment.cli import main
    from imdb_sentiment.config import EvaluationConfig
    from imdb_sentiment.evaluation import evaluate_model
    from imdb_sentiment.tracking import list_runs

    ddp, ddp_runs = tmp_path / "ddp" / "model", tmp_path / "ddp" / "runs"
    done = _torchrun(tiny_encoder, data_dir, ddp, ddp_runs)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("test accuracy") == 1  # one summary, from the main process
    single = tmp_path / "single" / "model"
    assert main(["train", "--model", str(tiny_encoder), "--data", str(data_dir), "--output", str(single),
                 "--runs-dir", "none", *SETTINGS]) == 0

    # Same layout as a single-process run, and nothing left beside it (work folder, partial outputs).
    assert sorted(p.name for p in ddp.iterdir()) == sorted(p.name for p in single.iterdir())
    assert sorted(p.name for p in ddp.parent.iterdir()) == ["model", "runs"]
    [record] = list_runs(ddp_runs)
    assert record.stage == "train"

    metrics = pd.read_json(ddp / "metrics.json", typ="series")
    assert metrics["processes"] == 2 and metrics["n_train"] == 144 and metrics["n_test"] == 40
    assert metrics["config"]["batch_size"] == 8  # the global batch: 4 reviews per process and step
    again = evaluate_model(ddp, str(data_dir), settings=EvaluationConfig(precision="fp32"))
    assert again["n_test"] == 40
    assert again["accuracy"] == pytest.approx(metrics["accuracy"])
    saved = pd.read_parquet(ddp / "predictions.parquet")
    assert len(saved) == 40


def test_without_a_launcher_there_is_one_main_process(monkeypatch):
    for name in ("WORLD_SIZE", "RANK"):
        monkeypatch.delenv(name, raising=False)
    assert (distributed.world_size(), distributed.rank(), distributed.is_main()) == (1, 0, True)
    distributed.start("cpu")  # no process group to join
    distributed.barrier()
    with distributed.main_first() as main:
        assert main


def test_the_global_batch_must_split_over_the_processes(monkeypatch, tmp_path):
    from imdb_sentiment.config import preset
    from imdb_sentiment.errors import UserError
    from imdb_sentiment.training import training_arguments

    monkeypatch.setenv("WORLD_SIZE", "3")
    with pytest.raises(UserError, match="does not split evenly over 3 processes"):
        training_arguments(preset("fast").replace(batch_size=16), tmp_path, device="cpu")
