"""Hyper-parameter search: search space, storage, resume, pruning, faults, workers, outputs.

Most tests drive the Optuna plumbing with ``FakeTrainer`` (per-epoch accuracies through the real
pruning callback, no model); one test tunes a tiny real model end to end through the CLI.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest

from imdb_sentiment import tracking, tuning
from imdb_sentiment.cli import main
from imdb_sentiment.config import TrainConfig, TrainRun, train_config_from_file
from imdb_sentiment.errors import UserError

ROOT = Path(__file__).resolve().parents[1]


class FakeTrainer:
    """Stands in for ``training.train``: reports per-epoch validation accuracy, trains nothing.

    Accuracy rises with the learning rate and with each epoch, and falls by ``decay`` per call,
    so later trials lose to the median when ``decay`` is set.
    """

    def __init__(self, decay: float = 0.0, fail_on: dict[int, BaseException] | None = None) -> None:
        self.decay = decay
        self.fail_on = fail_on or {}
        self.calls: list[dict[str, Any]] = []

    def __call__(self, model: str, data: dict, output: Any, config: TrainConfig,
                 settings: TrainRun | None = None, *, callbacks=None, progress: bool = False,
                 **kwargs: Any) -> SimpleNamespace:
        evaluate_test = (settings or TrainRun()).evaluate_test
        call = {"config": config, "splits": sorted(data), "evaluate_test": evaluate_test, "epochs": 0}
        self.calls.append(call)
        if len(self.calls) in self.fail_on:
            raise self.fail_on[len(self.calls)]
        control, history = SimpleNamespace(should_training_stop=False), []
        start = 0.7 + 0.05 * math.log10(config.learning_rate / 1e-5) - self.decay * len(self.calls)
        for epoch in range(1, int(config.epochs) + 1):
            call["epochs"] = epoch
            history.append({"epoch": float(epoch), "validation_accuracy": start + 0.01 * epoch})
            for callback in callbacks or []:
                callback.on_evaluate(None, SimpleNamespace(epoch=float(epoch)), control,
                                     metrics={"eval_accuracy": history[-1]["validation_accuracy"]})
            if control.should_training_stop:
                break
        call["accuracy"] = max(h["validation_accuracy"] for h in history)
        test = None
        if output is not None:
            Path(output).mkdir(parents=True, exist_ok=kwargs.get("overwrite", False))
            (Path(output) / "model.safetensors").write_bytes(b"weights")
            test = {"accuracy": 0.8, "f1": 0.8, "n_test": 10, "confusion_matrix": [[4, 1], [1, 4]]}
        return SimpleNamespace(validation_metrics={"accuracy": call["accuracy"]},
                               test_metrics=test, history=history, train_seconds=0.01 * epoch)


FRAMES = {
    "train": pd.DataFrame({"text": ["good", "bad"], "label": [1, 0]}),
    "validation": pd.DataFrame({"text": ["fine", "awful"], "label": [1, 0]}),
    "test": pd.DataFrame({"id": ["t1", "t2"], "text": ["great", "poor"], "label": [1, 0]}),
}


def _settings(tmp_path: Path, trials: int, **overrides: Any) -> tuning.TuneSettings:
    values: dict[str, Any] = dict(model="tiny", data="reviews", trials=trials,
                                  storage=f"sqlite:///{tmp_path / 'study.db'}", base=TrainConfig(seed=1))
    values.update(overrides)
    return tuning.TuneSettings(**values)


def _tune(settings: tuning.TuneSettings, trainer: FakeTrainer) -> tuning.TuneResult:
    return tuning.tune(settings, train_fn=trainer, load_frames=lambda: FRAMES, echo=lambda line: None)


def _states(result: tuning.TuneResult) -> dict[str, int]:
    return {state: count for state, count in result.counts.items() if count}


# --------------------------------------------------------------------------- search space


def test_the_search_space_file_is_the_default():
    assert tuning.load_search_space(ROOT / "configs" / "search_space.toml") == tuning.load_search_space()
    assert set(tuning.load_search_space()) == {"learning_rate", "batch_size", "epochs", "warmup",
                                               "weight_decay"}


def test_a_search_space_renders_to_toml_and_back(tmp_path):
    space = tuning.validate_search_space({"learning_rate": {"low": 1e-4, "high": 1e-3, "log": True},
                                          "epochs": {"type": "categorical", "choices": [1, 2]}})
    file = tmp_path / "space.toml"
    file.write_text(tuning.search_space_toml(space))
    assert tuning.load_search_space(file) == space


@pytest.mark.parametrize(("space", "message"), [
    ({"dropout": {"low": 0, "high": 1}}, "cannot search 'dropout'"),
    ({"learning_rate": {"low": 1e-3, "high": 1e-4}}, "low <= high"),
    ({"learning_rate": {"low": 0.0, "high": 1e-4, "log": True}}, "low > 0"),
    ({"batch_size": {"type": "float", "low": 8, "high": 64}}, "whole number"),
    ({"epochs": {"type": "categorical", "choices": []}}, "non-empty list"),
    ({"warmup": {"type": "normal", "low": 0, "high": 1}}, "use float, int or categorical"),
    ({}, "names no settings"),
])
def test_bad_search_spaces_are_one_line_errors(space, message):
    with pytest.raises(UserError, match=message):
        tuning.validate_search_space(space)


# --------------------------------------------------------------------------- storage


@pytest.mark.parametrize(("url", "message"), [
    ("redis://localhost/0", "unsupported storage URL scheme 'redis'"),
    ("postgres://user:secret@db/study", "write postgresql://"),
    ("optuna.db", "unsupported storage URL scheme"),
])
def test_unknown_storage_schemes_are_refused(url, message):
    with pytest.raises(UserError, match=message):
        tuning.open_storage(url)


def test_unreachable_database_is_one_line_without_the_password():
    with pytest.raises(UserError) as caught:
        tuning.open_storage("postgresql://tuner:s3cret@127.0.0.1:9/studies")
    assert "s3cret" not in str(caught.value)
    assert "127.0.0.1:9/studies" in str(caught.value)


def test_storage_in_an_unwritable_place_is_refused(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(UserError, match="not writable"):
        tuning.open_storage(f"sqlite:///{blocker / 'study.db'}")
    with pytest.raises(UserError, match="not writable"):
        tuning.default_storage(blocker / "runs")
    with pytest.raises(UserError, match="--runs-dir DIR or --storage URL"):
        tuning.default_storage(None)


# --------------------------------------------------------------------------- studies


def test_three_trials_then_two_more_make_five(tmp_path):
    trainer = FakeTrainer()
    first = _tune(_settings(tmp_path, 3, prune=False), trainer)
    assert (first.ran, _states(first)) == (3, {"COMPLETE": 3})
    second = _tune(_settings(tmp_path, 5, prune=False), trainer)
    assert (second.ran, _states(second)) == (2, {"COMPLETE": 5})
    # A finished study runs nothing more; the test split never reaches a trial.
    assert _tune(_settings(tmp_path, 5, prune=False), trainer).ran == 0
    assert len(trainer.calls) == 5
    assert all(c["splits"] == ["train", "validation"] and not c["evaluate_test"] for c in trainer.calls)
    best = max(trainer.calls, key=lambda c: c["accuracy"])
    assert second.best_value == pytest.approx(best["accuracy"])
    assert second.best_params["learning_rate"] == pytest.approx(best["config"].learning_rate)
    assert second.best_config.batch_size in (16, 32, 64)


def test_losing_trials_are_pruned_after_an_epoch(tmp_path, runs_dir):
    trainer = FakeTrainer(decay=0.1)
    space = dict(tuning.DEFAULT_SEARCH_SPACE, epochs={"type": "int", "low": 3, "high": 4})
    result = _tune(_settings(tmp_path, 5, search_space=space, runs_dir=runs_dir), trainer)
    assert _states(result) == {"COMPLETE": 2, "PRUNED": 3}
    pruned = trainer.calls[2:]
    assert all(call["epochs"] == 1 for call in pruned)  # stopped after the first epoch of 3 or 4
    trials = [r for r in tracking.list_runs(runs_dir) if r.stage == "tune-trial"]
    assert sorted(r.tags["trial_state"] for r in trials) == ["complete"] * 2 + ["pruned"] * 3
    assert all(r.metrics["validation_accuracy"] > 0 for r in trials)


def test_an_out_of_memory_trial_fails_and_the_study_goes_on(tmp_path):
    trainer = FakeTrainer(fail_on={2: RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")})
    result = _tune(_settings(tmp_path, 4, prune=False), trainer)
    assert _states(result) == {"COMPLETE": 3, "FAIL": 1}
    failed = [t for t in result.study.trials if t.state.name == "FAIL"]
    assert failed[0].user_attrs["out_of_memory"] is True
    assert "out of memory" in tuning.trial_line(failed[0])
    assert _states(_tune(_settings(tmp_path, 4, prune=False), trainer)) == {"COMPLETE": 4, "FAIL": 1}


def test_an_interrupted_study_keeps_its_trials_and_resumes(tmp_path):
    trainer = FakeTrainer(fail_on={2: KeyboardInterrupt()})
    with pytest.raises(KeyboardInterrupt):
        _tune(_settings(tmp_path, 3, prune=False), trainer)
    resumed = _tune(_settings(tmp_path, 3, prune=False), trainer)
    assert _states(resumed) == {"COMPLETE": 3, "FAIL": 1}
    assert resumed.ran == 2


def test_an_unexpected_error_stops_the_study_and_is_recorded(tmp_path):
    trainer = FakeTrainer(fail_on={1: ValueError("a bug")})
    with pytest.raises(ValueError, match="a bug"):
        _tune(_settings(tmp_path, 3, prune=False), trainer)
    assert len(trainer.calls) == 1
    result = _tune(_settings(tmp_path, 1, prune=False), trainer)
    assert _states(result) == {"COMPLETE": 1, "FAIL": 1}


def test_a_study_created_for_another_search_is_refused(tmp_path):
    _tune(_settings(tmp_path, 1), FakeTrainer())
    narrower = dict(tuning.DEFAULT_SEARCH_SPACE, epochs={"type": "int", "low": 1, "high": 2})
    with pytest.raises(UserError, match="another search space"):
        _tune(_settings(tmp_path, 2, search_space=narrower), FakeTrainer())
    with pytest.raises(UserError, match=r"other fixed settings \(max_length: 512 → 64\)"):
        _tune(_settings(tmp_path, 2, base=TrainConfig(seed=1, max_length=64)), FakeTrainer())
    with pytest.raises(UserError, match="other model"):
        _tune(_settings(tmp_path, 2, model="another-model"), FakeTrainer())


def test_outputs_best_config_for_train_and_final_run(tmp_path, runs_dir, monkeypatch):
    monkeypatch.setattr(tracking, "COPY_LIMIT_BYTES", 4)  # the fake model counts as big
    trainer = FakeTrainer()
    settings = _settings(tmp_path, 3, runs_dir=runs_dir, prune=False)
    out = tmp_path / "tuned"
    result = tuning.run_study(settings, out, final=True, train_fn=trainer, load_frames=lambda: FRAMES,
                              echo=lambda line: None)

    config, run = train_config_from_file(out / "best_config.toml")
    assert run["model"] == "tiny"
    for name, value in result.best_params.items():
        assert getattr(config, name) == pytest.approx(value)
    assert config == result.best_config
    trials = pd.read_csv(out / "trials.csv")
    assert list(trials["state"]) == ["COMPLETE"] * 3
    # --final: one more training with the best settings, on train, scored on test
    final_call = trainer.calls[-1]
    assert final_call["evaluate_test"] and "test" in final_call["splits"]
    assert final_call["config"] == result.best_config
    assert (out / "model").is_dir()
    [tuned] = [r for r in tracking.list_runs(runs_dir) if r.stage == "tuned"]
    assert tuned.metrics["test_accuracy"] == 0.8
    assert tuned.tags["location.model"] == str((out / "model").resolve())

    # Running the same command again may replace its own output; another folder's is refused.
    tuning.run_study(settings, out, final=True, train_fn=trainer, load_frames=lambda: FRAMES,
                     echo=lambda line: None)
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(UserError, match="not empty"):
        tuning.run_study(settings, other, train_fn=trainer, echo=lambda line: None)


WORKER = """
import sys, time
from pathlib import Path
sys.path.insert(0, {tests!r})
from test_tuning import FakeTrainer, FRAMES
from imdb_sentiment import tuning
from imdb_sentiment.config import TrainConfig

class SlowTrainer(FakeTrainer):  # long enough that the two workers' trials interleave
    def __call__(self, *args, **kwargs):
        time.sleep(0.5)
        return super().__call__(*args, **kwargs)

ready = Path({ready!r})
(ready / str(time.time_ns())).touch()
while len(list(ready.iterdir())) < 2:  # start together, whatever each one's import time
    time.sleep(0.05)
settings = tuning.TuneSettings(model="tiny", data="reviews", trials=6, study_name="shared",
                               storage={storage!r}, runs_dir=Path({runs!r}), base=TrainConfig(seed=1),
                               prune=False)
result = tuning.tune(settings, train_fn=SlowTrainer(), load_frames=lambda: FRAMES)
print("ran", result.ran)
"""


def run_workers(storage: str, runs_dir: Path, tmp_path: Path) -> list[int]:
    """Two ``WORKER`` processes on one study, started together; how many trials each ran."""
    ready = tmp_path / "ready"
    ready.mkdir()
    script = WORKER.format(tests=str(ROOT / "tests"), storage=storage, runs=str(runs_dir), ready=str(ready))
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    workers = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    outputs = [worker.communicate(timeout=240) for worker in workers]
    for worker, (_, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, err
    return [int(out.split("ran")[-1]) for out, _ in outputs]


def test_two_workers_share_one_sqlite_study(tmp_path, runs_dir):
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    ran = run_workers(storage, runs_dir, tmp_path)
    assert sum(ran) >= 6 and all(count >= 1 for count in ran)  # both did work

    import optuna

    study = optuna.load_study(study_name="shared", storage=storage)
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(complete) == sum(ran) == len(study.trials)
    assert len({t.user_attrs["worker"] for t in complete}) == 2
    recorded = [r for r in tracking.list_runs(runs_dir) if r.stage == "tune-trial"]
    assert len(recorded) == len(complete)


# --------------------------------------------------------------------------- command line


def test_tune_command_errors_are_one_line(tmp_path, capsys):
    cases = [
        (["--storage", "redis://x/0"], "unsupported storage URL scheme"),
        (["--runs-dir", "none"], "--runs-dir DIR or --storage URL"),
        (["--trials", "0", "--runs-dir", str(tmp_path / "runs")], "--trials must be positive"),
        (["--search-space", str(tmp_path / "missing.toml")], "search space file not found"),
    ]
    for extra, message in cases:
        code = main(["tune", "--model", "m", "--data", "d", "--output", str(tmp_path / "out"), *extra])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2, extra
        assert err[-1].startswith("error: ") and message in err[-1], err


@pytest.mark.slow
def test_tune_a_tiny_model_resume_final_and_report(tmp_path, shared_data, runs_dir, capsys):
    """The issue's end-to-end check: 3 trials, then 2 more with --final, then the report."""
    from conftest import build_tiny_model

    model = build_tiny_model(tmp_path / "tiny-encoder", classifier=False, max_positions=64)
    config = tmp_path / "run.toml"
    config.write_text('[train]\nprecision = "fp32"\neval_batch_size = 32\n'
                      '[search_space.learning_rate]\ntype = "float"\nlow = 1e-4\nhigh = 1e-3\nlog = true\n'
                      '[search_space.batch_size]\nchoices = [8, 16]\n'
                      '[search_space.epochs]\ntype = "int"\nlow = 1\nhigh = 2\n')
    common = ["tune", "--model", str(model), "--data", str(shared_data), "--runs-dir", str(runs_dir),
              "--config", str(config), "--max-train-samples", "40", "--max-eval-samples", "20",
              "--max-length", "32", "--output", str(tmp_path / "tuned")]
    assert main([*common, "--trials", "3"]) == 0
    assert main([*common, "--trials", "5", "--final", "--max-test-samples", "20"]) == 0
    out = capsys.readouterr().out
    assert "5 complete" in out or "pruned" in out
    assert "this run: 2 trials" in out and "final: test accuracy" in out

    import optuna

    study = optuna.load_study(study_name="imdb-sentiment", storage=f"sqlite:///{runs_dir / 'optuna.db'}")
    assert sum(t.state.name in ("COMPLETE", "PRUNED") for t in study.trials) == 5
    best, _ = train_config_from_file(tmp_path / "tuned" / "best_config.toml")
    assert (best.max_length, best.max_train_samples) == (32, 40)
    assert (tmp_path / "tuned" / "model" / "config.json").is_file()
    stages = [r.stage for r in tracking.list_runs(runs_dir)]
    assert stages.count("tune-trial") == 5 and stages.count("tuned") == 1

    assert main(["report", "--runs-dir", str(runs_dir), "--output", str(tmp_path / "report")]) == 0
    report = (tmp_path / "report" / "report.md").read_text()
    assert "## Leaderboard" in report and "Tuned, retrained" in report
    for picture in ("confusion_matrix.png", "roc_curves.png", "accuracy_vs_time.png",
                    "optuna_history_imdb-sentiment.png"):
        assert f"]({picture})" in report
        assert (tmp_path / "report" / picture).read_bytes()[:4] == b"\x89PNG"


def test_options_are_checked_before_the_runs_folder_is_made(tmp_path, capsys):
    runs = tmp_path / "runs"
    for extra, message in ((["--trials", "0"], "--trials must be positive"),
                           (["--timeout", "0"], "--timeout must be positive")):
        code = main(["tune", "--model", "m", "--data", "d", "--output", str(tmp_path / "out"),
                     "--runs-dir", str(runs), *extra])
        assert code == 2 and message in capsys.readouterr().err
        assert not runs.exists() and not (tmp_path / "out").exists()
    with pytest.raises(UserError, match="--trials must be positive"):
        _settings(tmp_path, 0)


def test_tune_and_train_carve_the_same_validation_split(tmp_path, runs_dir, monkeypatch, capsys):
    """A run file's group column, cleaning and columns reach the trials' split and the best config."""
    from imdb_sentiment import training

    data = tmp_path / "data"
    data.mkdir()
    rows = [{"review": f"Movie {i % 12}<br />was {'GREAT' if i % 2 else 'Awful'}, truly! ({i})",
             "sentiment": i % 2, "movie": f"tt{i % 12}"} for i in range(120)]
    pd.DataFrame(rows).to_parquet(data / "train.parquet")
    pd.DataFrame(rows[:20]).to_parquet(data / "test.parquet")
    run_file = tmp_path / "run.toml"
    run_file.write_text(f'model = "tiny"\ndata = "{data}"\ncleaning = "study"\ntext_column = "review"\n'
                        'label_column = "sentiment"\n[train]\ngroup_column = "movie"\nvalidation_size = 0.5\n'
                        'seed = 3\nmax_train_samples = 30\n', encoding="utf-8")
    seen: dict[str, pd.DataFrame] = {}

    def tune_trial(model, frames, output, config, settings=None, **kwargs):
        seen["tune"], seen["tune train"] = frames["validation"], frames["train"]
        return FakeTrainer()(model, frames, output, config, settings, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(training, "train", tune_trial)
        assert main(["tune", "--config", str(run_file), "--trials", "1", "--no-prune", "--runs-dir",
                     str(runs_dir), "--output", str(tmp_path / "tuned")]) == 0

    class Stop(Exception):
        pass

    def fit(model, frames, *args, **kwargs):
        seen["train"] = frames["validation"]
        raise Stop

    monkeypatch.setattr(training, "_fit", fit)
    with pytest.raises(Stop):
        main(["train", "--config", str(tmp_path / "tuned" / "best_config.toml"), "--no-test",
              "--runs-dir", "none", "--output", str(tmp_path / "trained")])
    assert seen["tune"]["text"].tolist() == seen["train"]["text"].tolist()
    assert len(seen["tune"]) == 30  # the quick run's size (of 60 carved), as train applies it
    assert all(text.startswith("movie") and "<br" not in text for text in seen["tune"]["text"])  # cleaned
    assert not set(seen["tune"]["movie"]) & set(seen["tune train"]["movie"])  # carved by movie
