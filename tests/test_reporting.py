"""The comparison report: leaderboard, story, plots and documents, from recorded runs and studies."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from imdb_sentiment import reporting, tracking
from imdb_sentiment.cli import main
from imdb_sentiment.errors import UserError
from imdb_sentiment.tracking import RunEntry


def _predictions(folder: Path, name: str, flips: int) -> Path:
    """Per-review scores for 20 reviews, with ``flips`` of them scored on the wrong side."""
    labels = [0, 1] * 10
    scores = [0.9 if label else 0.1 for label in labels]
    for i in range(flips):
        scores[i] = 1 - scores[i]
    frame = pd.DataFrame({"id": [f"r{i}" for i in range(20)], "label": labels,
                          "predicted": [int(s >= 0.5) for s in scores], "score": scores})
    path = folder / name / "predictions.parquet"
    path.parent.mkdir(parents=True)
    frame.to_parquet(path)
    return path


def _metrics(accuracy: float, confusion: list[list[int]], **extra) -> dict:
    return {"accuracy": accuracy, "f1": accuracy - 0.01, "n_test": 20, "confusion_matrix": confusion,
            "roc_auc": accuracy, **extra}


def _study(runs_dir: Path) -> None:
    """A finished study with three completed trials that differ and one pruned trial."""
    import optuna

    storage = f"sqlite:///{runs_dir / 'optuna.db'}"
    study = optuna.create_study(study_name="search", storage=storage, direction="maximize")
    learning_rate = optuna.distributions.FloatDistribution(1e-5, 2e-4, log=True)
    batch_size = optuna.distributions.CategoricalDistribution([16, 32, 64])
    for value, lr, batch in ((0.80, 2e-5, 16), (0.86, 1e-4, 32), (0.83, 5e-5, 64)):
        study.add_trial(optuna.create_trial(
            value=value, params={"learning_rate": lr, "batch_size": batch},
            distributions={"learning_rate": learning_rate, "batch_size": batch_size},
            intermediate_values={1: value - 0.02, 2: value}))
    study.add_trial(optuna.create_trial(
        state=optuna.trial.TrialState.PRUNED, params={"learning_rate": 1e-5, "batch_size": 16},
        distributions={"learning_rate": learning_rate, "batch_size": batch_size},
        intermediate_values={1: 0.6}))


@pytest.fixture
def recorded(runs_dir, tmp_path) -> Path:
    """The study's story as recorded runs: baseline → pretrained → fine-tuned → tuning → tuned."""
    def log(runs_dir: Path, **fields) -> None:
        tracking.log_run(runs_dir, RunEntry(**fields))

    log(runs_dir, stage="baseline", model="random-forest", duration=30,
        metrics=_metrics(0.75, [[8, 2], [3, 7]], train_seconds=25.0, reviews_per_second=900.0, n_train=200),
        artifacts=[_predictions(tmp_path, "baseline", 5)], tags={"split": "test"})
    log(runs_dir, stage="pretrained", model="hub/sst2-classifier", duration=4,
        metrics=_metrics(0.85, [[9, 1], [2, 8]], reviews_per_second=40.0),
        artifacts=[_predictions(tmp_path, "pretrained", 3)], tags={"split": "test"})
    log(runs_dir, stage="train", model="models/encoder", duration=200,
        metrics={"test": _metrics(0.90, [[9, 1], [1, 9]], reviews_per_second=45.0),
                 "validation": {"accuracy": 0.88}, "train_seconds": 180.0, "n_train": 200},
        artifacts=[_predictions(tmp_path, "train", 2)])
    for accuracy in (0.80, 0.86, 0.83):
        log(runs_dir, stage="tune-trial", model="models/encoder", duration=50,
            metrics={"validation": {"accuracy": accuracy}, "train_seconds": 45.0},
            tags={"study": "search", "split": "validation", "trial_state": "complete"})
    log(runs_dir, stage="tuned", model="models/encoder", duration=300,
        metrics={"test": _metrics(0.95, [[10, 0], [1, 9]]), "train_seconds": 280.0},
        artifacts=[_predictions(tmp_path, "tuned", 1)], tags={"split": "test"})
    log(runs_dir, stage="train", model="models/broken", duration=1, status="FAILED",
        metrics={"test": _metrics(0.99, [[10, 0], [0, 10]])})
    _study(runs_dir)
    return runs_dir


def test_the_report_tells_the_story_in_markdown_html_and_plots(recorded, tmp_path):
    out = tmp_path / "report"
    result = reporting.write_report(recorded, out)
    expected = {"report.md", "report.html", "confusion_matrix.png", "roc_curves.png", "accuracy_vs_time.png",
                "optuna_history_search.png", "optuna_importances_search.png"}
    assert set(result.files) == expected
    for png in (p for p in expected if p.endswith(".png")):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"

    markdown = (out / "report.md").read_text()
    story = markdown.split("## The story")[1].split("##")[0]
    assert [line.split("**")[1] for line in story.strip().splitlines() if line[:1].isdigit()] == [
        "Baseline (bag of words)", "Pretrained classifier", "Fine-tuned", "Tuning trial (best)",
        "Tuned, retrained"]
    assert "accuracy 0.9500 on 20 test reviews" in story
    board = [line for line in markdown.split("## Leaderboard")[1].splitlines() if line.startswith("| ")]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in board[1:]]
    # one row per finished run, trials only as the study's best, the failed run left out
    assert [row[0] for row in rows] == ["Baseline (bag of words)", "Pretrained classifier", "Fine-tuned",
                                        "Tuning trial (best)", "Tuned, retrained"]
    assert [row[5] for row in rows] == ["0.7500", "0.8500", "0.9000", "0.8600", "0.9500"]
    assert [row[2] for row in rows] == ["200", "—", "200", "—", "—"]  # train reviews, where recorded
    assert "With the same 200 labelled reviews, the fine-tuned model reaches 0.9000" in markdown
    assert rows[3][3] == "validation" and rows[2][3] == "test"
    assert rows[0][8] == "25.0 s" and rows[2][8] == "3.0 min" and rows[1][8] == "—"
    assert rows[2][9] == "45.0"
    assert "models/broken" not in markdown and "broken" not in markdown
    # the confusion matrix is the best test run's (tuned), not the best validation trial's
    assert "9 positive and 10 negative reviews right" in markdown
    assert "Best: trial 1, validation accuracy 0.8600" in markdown
    assert "3 complete, 1 pruned" in markdown

    page = (out / "report.html").read_text()
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert sorted(sources) == sorted(p for p in expected if p.endswith(".png"))
    assert "<script" not in page and "http" not in page.split("<body>")[1]
    assert page.count("<tr>") == len(rows) + 1


def test_run_summaries_prefer_test_over_validation():
    record = tracking.RunRecord(
        run_id="abc", stage="train", model="m", status="FINISHED", start_time=0, duration=12.0,
        metrics={"validation_accuracy": 0.8, "test_accuracy": 0.9, "test_f1": 0.91, "test_n_test": 100,
                 "test_confusion_tn": 45, "test_confusion_fp": 5, "test_confusion_fn": 5,
                 "test_confusion_tp": 45})
    entry = reporting.summarize_run(record)
    assert (entry.split, entry.accuracy, entry.f1, entry.reviews) == ("test", 0.9, 0.91, 100)
    assert entry.confusion == [[45, 5], [5, 45]]
    assert entry.train_seconds == 12.0  # no train_seconds metric: the run's duration
    validation_only = tracking.RunRecord(run_id="d", stage="tune-trial", model="m", status="FINISHED",
                                         start_time=0, duration=1.0, metrics={"validation_accuracy": 0.7})
    assert reporting.summarize_run(validation_only).split == "validation"


def test_documents_escape_what_runs_contain():
    document = reporting.Document("Title")
    document.table(["model"], [["a|b <script>"]])
    document.para("`code` and **bold** & more")
    assert "a\\|b <script>" in document.markdown()
    page = document.html()
    assert "&lt;script&gt;" in page and "<script>" not in page
    assert "<code>code</code> and <strong>bold</strong> &amp; more" in page


def test_report_refusals_are_one_line(runs_dir, tmp_path, capsys):
    with pytest.raises(UserError, match="no runs recorded"):
        reporting.write_report(runs_dir, tmp_path / "empty")  # a store without runs
    assert main(["report", "--runs-dir", str(tmp_path / "nowhere"), "--output", str(tmp_path / "r")]) == 2
    assert capsys.readouterr().err.startswith("error: no runs recorded in")
    tracking.log_run(runs_dir, RunEntry(stage="baseline", model="random-forest", metrics={"accuracy": 0.8}))
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("keep me")
    assert main(["report", "--runs-dir", str(runs_dir), "--output", str(taken)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert (taken / "notes.txt").read_text() == "keep me"


def test_report_command_with_a_single_run(runs_dir, tmp_path, capsys):
    tracking.log_run(runs_dir, RunEntry(stage="baseline", model="random-forest",
                                        metrics={"accuracy": 0.8, "f1": 0.79, "n_test": 10}))
    assert main(["report", "--runs-dir", str(runs_dir), "--output", str(tmp_path / "r")]) == 0
    assert "report of 1 runs" in capsys.readouterr().out
    markdown = (tmp_path / "r" / "report.md").read_text()
    assert "| Baseline (bag of words) | `random-forest` | — | test | 10 | 0.8000 | 0.7900 |" in markdown
    assert "## ROC curves" not in markdown  # no per-review scores were recorded


def test_evaluations_of_pretrained_and_fine_tuned_models_are_told_apart(runs_dir, tmp_path):
    fine_tuned = tmp_path / "fine-tuned"
    fine_tuned.mkdir()
    (fine_tuned / "train_config.toml").write_text("[train]\n")
    for model in ("hub-org/sst2-model", str(fine_tuned)):
        tracking.log_run(runs_dir, RunEntry(stage="evaluate", model=model, metrics={"accuracy": 0.9}))
    stages = {Path(r.model).name: reporting.story_stage(r) for r in tracking.list_runs(runs_dir)}
    assert stages == {"sst2-model": "pretrained", "fine-tuned": "evaluate"}



def test_hybrids_join_the_story_and_the_time_plot(runs_dir, tmp_path):
    tracking.log_run(runs_dir, RunEntry(stage="train", model="minilm",
                                        metrics={"accuracy": 0.93, "n_test": 100, "train_seconds": 80.0}))
    # `evaluate` on a hybrid folder records the share of reviews its transformer scored.
    tracking.log_run(runs_dir, RunEntry(stage="evaluate", model="outputs/hybrid",
                                        metrics={"accuracy": 0.94, "n_test": 100, "transformer_share": 0.25,
                                                 "reviews_per_second": 40.0}))
    tracking.log_run(runs_dir, RunEntry(stage="hybrid", model="outputs/hybrid",
                                        metrics={"validation_accuracy": 0.935, "train_seconds": 115.0,
                                                 "validation_transformer_share": 0.3}))
    stages = sorted(reporting.story_stage(r) for r in tracking.list_runs(runs_dir))
    assert stages == ["hybrid", "hybrid", "train"]
    reporting.write_report(runs_dir, tmp_path / "report")
    markdown = (tmp_path / "report" / "report.md").read_text()
    story = markdown.split("## The story")[1].split("##")[0]
    assert "**Hybrid (screen + transformer)** — `hybrid`: accuracy 0.9400 on 100 test reviews" in story
    assert "sending 25% of reviews to the transformer" in story
    assert "## Accuracy against training and prediction time" in markdown
    assert (tmp_path / "report" / "accuracy_vs_time.png").stat().st_size > 1000


def test_the_time_plot_needs_only_prediction_speeds(runs_dir, tmp_path):
    tracking.log_run(runs_dir, RunEntry(
        stage="evaluate", model="hub-org/sst2-model",
        metrics={"accuracy": 0.88, "n_test": 100, "reviews_per_second": 30.0}))
    reporting.write_report(runs_dir, tmp_path / "report")
    assert (tmp_path / "report" / "accuracy_vs_time.png").is_file()


def test_the_report_shows_star_rating_errors_when_runs_have_them(runs_dir, tmp_path):
    from imdb_sentiment.tracking import log_run

    log_run(runs_dir, RunEntry(
        stage="baseline", model="ridge-rating", duration=3,
        metrics={"accuracy": 0.88, "mae": 1.61, "within_one_star": 0.39, "n_test": 100}))
    log_run(runs_dir, RunEntry(stage="baseline", model="nbsvm", duration=3,
                               metrics={"accuracy": 0.91, "n_test": 100}))
    markdown = (tmp_path / "report" / "report.md")
    reporting.write_report(runs_dir, tmp_path / "report")
    section = markdown.read_text().split("## Star ratings")[1].split("##")[0]
    rows = [line for line in section.splitlines() if line.startswith("| ")]
    assert len(rows) == 2 and "ridge-rating" in rows[1] and "1.610" in rows[1] and "0.390" in rows[1]
