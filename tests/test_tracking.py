"""Run tracking: what a recorded run holds, reading runs back, the ``runs`` command, failures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imdb_sentiment import tracking
from imdb_sentiment.cli import main
from imdb_sentiment.errors import UserError

METRICS = {
    "accuracy": 0.75, "f1": 0.8, "n_test": 8, "reviews_per_second": 12.5,
    "confusion_matrix": [[2, 1], [1, 4]], "model": "not a number",
}


def _log(runs_dir: Path, **overrides) -> str | None:
    arguments = dict(stage="evaluate", model="models/tiny", params={"max_length": 32, "nested": {"a": 1}},
                     metrics=METRICS, duration=3.5)
    arguments.update(overrides)
    strict = arguments.pop("strict", False)
    return tracking.log_run(runs_dir, tracking.RunEntry(**arguments), strict=strict)


def test_log_run_records_params_metrics_tags_and_artifacts(runs_dir, tmp_path):
    extra = tmp_path / "predictions.parquet"
    extra.write_bytes(b"not really parquet")
    run_id = _log(runs_dir, artifacts=[extra], tags={"split": "test"})

    [record] = tracking.list_runs(runs_dir)
    assert record.run_id == run_id
    assert (record.stage, record.model, record.status) == ("evaluate", "models/tiny", "FINISHED")
    assert record.params == {"max_length": "32", "nested.a": "1"}
    assert record.metrics["accuracy"] == 0.75
    assert record.metrics["reviews_per_second"] == 12.5
    # the confusion matrix becomes four counts; text is kept only in metrics.json
    assert [record.metrics[f"confusion_{k}"] for k in ("tn", "fp", "fn", "tp")] == [2, 1, 1, 4]
    assert "model" not in record.metrics
    assert record.duration == pytest.approx(3.5)
    assert record.tags["split"] == "test"
    assert record.tags["hardware.cpu_count"].isdigit()
    saved = json.loads(record.artifact("metrics.json").read_text())
    assert saved["model"] == "not a number"
    assert saved["confusion_matrix"] == [[2, 1], [1, 4]]
    assert record.artifact("confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"
    assert record.artifact("predictions.parquet").read_bytes() == b"not really parquet"


def test_nested_metrics_history_and_big_artifacts(runs_dir, tmp_path, monkeypatch):
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "weights.bin").write_bytes(b"x" * 64)
    (model_dir / "predictions.parquet").write_bytes(b"scores")
    monkeypatch.setattr(tracking, "COPY_LIMIT_BYTES", 10)
    history = [{"epoch": 1.0, "validation_accuracy": 0.6}, {"epoch": 2.0, "validation_accuracy": 0.7}]
    run_id = _log(runs_dir, stage="train", metrics={"test": METRICS, "train_seconds": 9.0},
                  history=history, artifacts=[model_dir])

    [record] = tracking.list_runs(runs_dir)
    assert record.metrics["test_accuracy"] == 0.75
    assert record.metrics["test_confusion_tp"] == 4
    assert record.metrics["train_seconds"] == 9.0
    # a folder above the copy limit is recorded by where it lies, not copied
    assert record.tags["location.model"] == str(model_dir.resolve())
    assert record.artifact("model") == model_dir.resolve()
    # files inside a folder recorded by location are still found (e.g. a model's predictions)
    assert record.artifact("predictions.parquet") == model_dir.resolve() / "predictions.parquet"
    client, _ = tracking.open_store(runs_dir)
    steps = client.get_metric_history(run_id, "epoch_validation_accuracy")
    assert sorted((m.step, m.value) for m in steps) == [(1, 0.6), (2, 0.7)]


def test_tracking_off_records_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert tracking.log_run(None, tracking.RunEntry(stage="x", model="m")) is None
    assert tracking.log_run("none", tracking.RunEntry(stage="x", model="m")) is None
    assert tracking.log_run(Path("off"), tracking.RunEntry(stage="x", model="m")) is None
    assert list(tmp_path.iterdir()) == []


def test_a_tracking_failure_is_a_warning_not_an_error(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the runs folder should be")
    assert _log(blocker / "runs") is None
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("warning: run not recorded")
    with pytest.raises(UserError, match="not writable"):
        _log(blocker / "runs", strict=True)


def test_without_mlflow_installed_the_warning_says_what_to_do(tmp_path, monkeypatch, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "mlflow", None)  # makes "import mlflow..." fail
    monkeypatch.setitem(sys.modules, "mlflow.tracking", None)
    tracking._store.cache_clear()
    assert _log(tmp_path / "runs") is None
    err = capsys.readouterr().err.strip()
    assert err.startswith("warning: run not recorded") and "--runs-dir none" in err


def test_list_runs_refuses_a_folder_without_a_store(tmp_path):
    with pytest.raises(UserError, match="no runs recorded"):
        tracking.list_runs(tmp_path)


def test_runs_command_prints_a_table_and_filters_by_stage(runs_dir, capsys):
    _log(runs_dir, stage="baseline", model="random-forest")
    _log(runs_dir, stage="evaluate", model="/some/where/tiny-classifier")
    assert main(["runs", "--runs-dir", str(runs_dir)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split()[:4] == ["run", "started", "stage", "model"]
    assert len(lines) == 4  # header, rule, two runs
    assert "baseline" in lines[2] and "random-forest" in lines[2] and "0.7500" in lines[2]
    assert "tiny-classifier" in lines[3]

    assert main(["runs", "--runs-dir", str(runs_dir), "--stage", "baseline"]) == 0
    out = capsys.readouterr().out
    assert "baseline" in out and "tiny-classifier" not in out


def test_runs_command_without_store_is_one_line_error(tmp_path, capsys):
    assert main(["runs", "--runs-dir", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: no runs recorded")


def test_a_new_store_is_created_quietly(tmp_path, capfd):
    """First use creates the database (migrations) without MLflow's or Alembic's INFO lines."""
    fresh = tmp_path / "fresh" / "runs"
    assert _log(fresh) is not None
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == ""
    assert (fresh / "mlflow.db").is_file()
    [record] = tracking.list_runs(fresh)
    assert record.artifact_dir is not None and record.artifact_dir.is_relative_to(fresh.resolve())


def test_a_moved_runs_folder_still_finds_its_artifacts(runs_dir, tmp_path):
    import shutil

    _log(runs_dir)
    moved = tmp_path / "moved-runs"
    shutil.copytree(runs_dir, moved)
    shutil.rmtree(runs_dir)
    [record] = tracking.list_runs(moved)
    assert record.artifact("metrics.json").is_relative_to(moved)



def test_a_run_entry_needs_a_stage_and_a_duration_of_zero_or_more():
    with pytest.raises(ValueError, match="stage"):
        tracking.RunEntry(stage="", model="m")
    with pytest.raises(ValueError, match="duration"):
        tracking.RunEntry(stage="train", model="m", duration=-1.0)
