"""The quickstart job: hardware-sized defaults, Hub fallbacks, and one tiny end-to-end run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from imdb_sentiment import quickstart, tracking
from imdb_sentiment.cli import main
from imdb_sentiment.errors import UserError
from imdb_sentiment.hub import hub_accepts_connections
from imdb_sentiment.hybrid import load_model


def _plan(tmp_path: Path, device: str, **overrides) -> quickstart.QuickstartPlan:
    return quickstart.make_plan(data="d", model="m", pretrained="none", output=tmp_path / "out",
                                runs_dir=None, device=device, overrides=overrides)


def test_cpu_runs_a_subset_and_gpu_the_full_data(tmp_path):
    cpu = _plan(tmp_path, "cpu")
    assert (cpu.max_train_samples, cpu.max_test_samples, cpu.max_length, cpu.epochs) == (1000, 500, 128, 1)
    assert "1,000 train reviews" in cpu.describe() and "500 test reviews" in cpu.describe()
    gpu = _plan(tmp_path, "cuda")
    assert (gpu.max_train_samples, gpu.max_test_samples, gpu.max_length) == (None, None, 512)
    assert "all train reviews" in gpu.describe()
    assert cpu.runs_dir == tmp_path / "out" / "runs"  # --runs-dir none: kept with the output


def test_explicit_sizes_win_and_zero_means_all(tmp_path):
    plan = _plan(tmp_path, "cpu", max_train_samples=0, max_test_samples=300, epochs=2.0)
    assert (plan.max_train_samples, plan.max_test_samples, plan.epochs) == (None, 300, 2.0)
    with pytest.raises(UserError, match="--max-train-samples must be >= 0"):
        _plan(tmp_path, "cpu", max_train_samples=-5)


def test_the_hub_probe_counts_offline_mode_only_when_asked(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # behind a proxy the probe answers True
    assert hub_accepts_connections() is True
    assert hub_accepts_connections(honour_offline_mode=True) is False


def test_the_hub_default_classifier_is_skipped_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert hub_accepts_connections(honour_offline_mode=True) is False
    plan = quickstart.make_plan(data="d", model="m", pretrained="auto", output=tmp_path, runs_dir=None,
                                device="cpu")
    assert plan.pretrained is None and "unreachable" in plan.skipped
    given = quickstart.make_plan(data="d", model="m", pretrained="models/sst2", output=tmp_path,
                                 runs_dir=None, device="cpu")
    assert (given.pretrained, given.skipped) == ("models/sst2", "")


def test_a_foreign_output_folder_is_refused_before_any_work(tmp_path, capsys):
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "thesis.tex").write_text("keep")
    code = main(["quickstart", "--data", str(tmp_path / "no-data"), "--output", str(taken),
                 "--pretrained", "none"])
    assert code == 2
    assert "not empty" in capsys.readouterr().err
    assert [p.name for p in taken.iterdir()] == ["thesis.tex"]


@pytest.fixture
def small_data(tmp_path, shared_data) -> Path:
    """300 train and 200 test reviews of the real data, balanced, as a folder of split files."""
    folder = tmp_path / "imdb-small"
    folder.mkdir()
    for split, size in (("train", 300), ("test", 200)):
        frame = pd.read_parquet(shared_data / f"{split}.parquet")
        parts = [frame[frame["label"] == label].sample(size // 2, random_state=0) for label in (0, 1)]
        pd.concat(parts).to_parquet(folder / f"{split}.parquet")
    return folder


@pytest.fixture
def ready_model(tiny_classifier, tmp_path) -> Path:
    """A classifier "fine-tuned elsewhere": the tiny one with the metrics file ``train`` writes."""
    import shutil

    folder = tmp_path / "ready"
    shutil.copytree(tiny_classifier, folder)
    # Trained on all 270 train reviews of `small_data` (300 less the 10 % validation carve, seed 42).
    (folder / "metrics.json").write_text(json.dumps({"n_train": 270, "device": "cuda:0",
                                                                 "train_seconds": 60.0}))
    (folder / "train_config.toml").write_text("[train]\nseed = 42\nvalidation_size = 0.1\n")
    return folder


@pytest.mark.slow
def test_quickstart_end_to_end_with_tiny_models(small_data, tiny_encoder, tiny_classifier, ready_model,
                                                tmp_path, capsys):
    out, runs = tmp_path / "quick", tmp_path / "runs"
    code = main(["quickstart", "--data", str(small_data), "--model", str(tiny_encoder),
                 "--pretrained", str(tiny_classifier), "--ready-model", str(ready_model),
                 "--output", str(out), "--runs-dir", str(runs), "--max-train-samples", "40",
                 "--max-eval-samples", "20", "--max-test-samples", "30", "--max-length", "32"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "40 train reviews, 20 validation reviews, max_length 32" in captured.err
    assert "report ->" in captured.out

    records = tracking.list_runs(runs)
    assert [r.stage for r in records] == ["baseline", "pretrained", "train", "ready", "hybrid"]
    entries = [r.metric("test_n_test", "n_test") for r in records]
    assert entries == [30, 30, 30, 30, 30]  # every stage scored on the same test reviews
    ids = {tuple(pd.read_parquet(r.artifact("predictions.parquet"))["id"].sort_values()) for r in records}
    assert len(ids) == 1
    assert all(r.tags["quickstart"] == records[0].tags["quickstart"] for r in records)
    # The baseline and the fine-tuned model learn from the same 40 reviews; the ready model from its own.
    # The ready model held out the same validation reviews: the hybrid's screen learns from its 270.
    assert [r.metric("n_train") for r in records] == [40, None, 40, 270, 270]
    hybrid = records[-1]
    assert hybrid.params["transformer_source"] == "ready" and hybrid.params["refit_by"] == "movie"
    assert 0 <= hybrid.metric("transformer_share") <= 1
    assert hybrid.metric("train_seconds") > 60.0  # the ready model's training, the screen's and the fit
    decided = load_model(out / "hybrid", device="cpu").predict_details(["A fine film."]).decided_by
    assert decided is not None and decided[0] in ("screen", "transformer", "blend")  # a usable hybrid folder

    # One duration per stage: the one printed is the one recorded.
    for record, name in zip(records, ["baseline", "pretrained", "fine-tune", "ready model", "hybrid"],
                            strict=True):
        assert f"{name}: " in captured.err
        line = next(x for x in captured.err.splitlines() if x.startswith(f"{name}: "))
        assert line.endswith(f"(stage {record.duration:.1f} s)")

    report = (out / "report" / "report.md").read_text()
    for title in ("Baseline (bag of words)", "Pretrained classifier", "Fine-tuned", "Ready fine-tuned model",
                  "Hybrid (screen + transformer)"):
        assert title in report
    assert "train reviews" in report and "With the same 40 labelled reviews" in report
    assert "fine-tuned beforehand on 270 reviews (cuda:0, 60.0 s)" in report
    for picture in ("confusion_matrix.png", "roc_curves.png", "accuracy_vs_time.png"):
        assert (out / "report" / picture).is_file()
    assert (out / "baseline" / "model" / "model.skops").is_file()
    marker = json.loads((out / "quickstart.json").read_text())
    assert marker["status"] == "done"
    assert set(marker["seconds"]) == {"baseline", "pretrained", "fine-tune", "ready model", "hybrid"}

    # `runs` reads the same store the quickstart recorded into.
    assert main(["runs", "--runs-dir", str(runs)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert [line.split()[3] for line in table[2:]] == ["baseline", "pretrained", "train", "ready", "hybrid"]

    # The saved run file names the real data, so `train --config` repeats the run.
    run_file = out / "fine-tuned" / "train_config.toml"
    assert f'data = "{small_data}"' in run_file.read_text()
    assert "in-memory" not in (out / "fine-tuned" / "README.md").read_text()
    assert main(["train", "--config", str(run_file), "--output", str(tmp_path / "again")]) == 0
    again = json.loads((tmp_path / "again" / "metrics.json").read_text())
    first = json.loads((out / "fine-tuned" / "metrics.json").read_text())
    assert (again["n_train"], again["n_test"]) == (first["n_train"], first["n_test"])
    assert again["data"] == str(small_data)


def test_the_hybrid_stage_takes_the_ready_model_only_with_the_same_validation_reviews(tiny_classifier,
                                                                                        tmp_path):
    ready = tmp_path / "ready"
    shutil.copytree(tiny_classifier, ready)
    (ready / "metrics.json").write_text(json.dumps({"n_train": 900}))
    frames = {"full_train": pd.DataFrame({"text": ["x"] * 900}), "train": pd.DataFrame({"text": ["x"] * 40})}
    plan = quickstart.make_plan(data="d", model="m", pretrained="none", output=tmp_path / "q", runs_dir=None,
                                device="cpu", ready_model=str(ready))

    def chosen(seed: int, validation_size: float) -> tuple[str, int]:
        (ready / "train_config.toml").write_text(f"[train]\nseed = {seed}\n"
                                                 f"validation_size = {validation_size}\n")
        _folder, train, source = quickstart._hybrid_transformer(plan, frames)
        return source, len(train)

    assert chosen(42, 0.1) == ("ready", 900)  # it held out this job's validation reviews
    assert chosen(7, 0.1) == ("fine-tuned", 40)  # its validation reviews would be in its training data
    assert chosen(42, 0.2) == ("fine-tuned", 40)


def test_the_readme_names_the_report_where_quickstart_writes_it():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    script = (Path(__file__).resolve().parents[1] / "quickstart.sh").read_text(encoding="utf-8")
    assert "--output outputs/quickstart" in script
    assert "outputs/quickstart/report/report.html" in readme  # run_quickstart writes OUTPUT/report/
    assert "outputs/quickstart/report.html" not in readme
