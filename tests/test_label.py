"""``label``: a teacher's P(positive) per unlabeled review, written in parts and resumable."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from imdb_sentiment.artifacts import read_json
from imdb_sentiment.baselines import BaselineConfig, run_baseline
from imdb_sentiment.cli import main
from imdb_sentiment.config import DataSpec
from imdb_sentiment.labelling import BaselineTeacher, LabelJob, label, parts_dir, sidecar_path

POSITIVE = ["a wonderful film, great acting", "great story and wonderful music", "moving, great and warm"]
NEGATIVE = ["a dreadful film, awful acting", "boring plot and awful music", "dreadful, boring and cold"]


@pytest.fixture(scope="module")
def baseline_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("teacher")
    data = root / "data"
    data.mkdir()
    rows = [(f"{text} {i}", 1) for i in range(10) for text in POSITIVE]
    rows += [(f"{text} {i}", 0) for i in range(10) for text in NEGATIVE]
    frame = pd.DataFrame(rows, columns=["text", "label"])
    frame.to_parquet(data / "train.parquet")
    frame.assign(text=frame["text"] + " again").to_parquet(data / "test.parquet")
    run_baseline(DataSpec(str(data)), BaselineConfig("logreg"), root / "baseline")
    return root / "baseline"


@pytest.fixture
def unlabeled(tmp_path: Path) -> Path:
    """A folder whose unsupervised split holds 11 reviews with the IMDB columns."""
    folder = tmp_path / "imdb"
    folder.mkdir()
    texts = [f"{(POSITIVE + NEGATIVE)[i % 6]} number {i}<br />more" for i in range(11)]
    pd.DataFrame({"id": [f"unsup/{i}" for i in range(11)], "text": texts, "label": -1,
                  "movie": [f"tt{i % 3}" for i in range(11)]}).to_parquet(folder / "unsupervised.parquet")
    return folder


class CountingTeacher:
    """The baseline teacher, recording every review it scores; ``fail_after`` parts, it is killed."""

    def __init__(self, inner: BaselineTeacher, fail_after: int | None = None) -> None:
        self.inner, self.fail_after, self.seen, self.calls = inner, fail_after, [], 0

    def predict_proba(self, texts, batch_size=None, progress=None):
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt
        self.calls += 1
        self.seen.extend(texts)
        return self.inner.predict_proba(texts, batch_size, progress)

    def info(self):
        return self.inner.info()


def test_label_writes_every_row_in_order_with_the_teacher_recorded(baseline_dir: Path, unlabeled: Path,
                                                                   tmp_path: Path, capsys) -> None:
    out = tmp_path / "labels.parquet"
    code = main(["label", "--model", str(baseline_dir), "--data", str(unlabeled), "--output", str(out),
                 "--part-rows", "4"])
    assert code == 0, capsys.readouterr().err
    source = pd.read_parquet(unlabeled / "unsupervised.parquet")
    labelled = pd.read_parquet(out)
    assert list(labelled.columns) == [*source.columns, "p_positive"]
    pd.testing.assert_frame_equal(labelled[source.columns], source)
    teacher = BaselineTeacher.load(baseline_dir)
    assert np.allclose(labelled["p_positive"], teacher.predict_proba(source["text"].tolist())[:, 1])
    assert labelled["p_positive"].iloc[0] > 0.5 > labelled["p_positive"].iloc[3]  # positive, then negative
    record = read_json(sidecar_path(out))
    assert record["teacher"]["kind"] == "baseline" and record["job"]["split"] == "unsupervised"
    assert record["rows"] == 11
    assert not parts_dir(out).exists()
    assert "labelled 11 review(s)" in capsys.readouterr().err


def test_an_interrupted_run_continues_and_scores_no_review_twice(baseline_dir: Path, unlabeled: Path,
                                                                 tmp_path: Path) -> None:
    out = tmp_path / "labels.jsonl"
    job = LabelJob(model=str(baseline_dir), data=str(unlabeled), output=out, part_rows=4)
    teacher = BaselineTeacher.load(baseline_dir)
    killed = CountingTeacher(teacher, fail_after=1)
    with pytest.raises(KeyboardInterrupt):
        label(job, teacher=killed)
    assert not out.exists()
    assert len(list(parts_dir(out).glob("part-*.parquet"))) == 1
    resumed = CountingTeacher(teacher)
    summary = label(job, teacher=resumed)
    texts = pd.read_parquet(unlabeled / "unsupervised.parquet")["text"].tolist()
    assert killed.seen == texts[:4] and resumed.seen == texts[4:]  # each review scored exactly once
    assert (summary.resumed, summary.scored, summary.rows) == (4, 7, 11)
    labelled = pd.read_json(out, lines=True)
    assert labelled["text"].tolist() == texts
    assert np.allclose(labelled["p_positive"], teacher.predict_proba(texts)[:, 1])
    assert not parts_dir(out).exists()
    assert read_json(sidecar_path(out))["teacher"]["kind"] == "baseline"


def test_parts_of_another_sample_or_model_are_refused_in_one_line(baseline_dir: Path, unlabeled: Path,
                                                                  tmp_path: Path, capsys) -> None:
    out = tmp_path / "labels.parquet"
    job = LabelJob(model=str(baseline_dir), data=str(unlabeled), output=out, part_rows=4, max_samples=8)
    with pytest.raises(KeyboardInterrupt):
        label(job, teacher=CountingTeacher(BaselineTeacher.load(baseline_dir), fail_after=1))
    base = ["label", "--model", str(baseline_dir), "--data", str(unlabeled), "--output", str(out),
            "--part-rows", "4"]
    assert main([*base, "--max-samples", "9"]) == 2
    err = capsys.readouterr().err
    assert "another model, data or sample" in err and len(err.strip().splitlines()) == 1
    assert main([*base, "--max-samples", "8", "--seed", "7"]) == 2  # another sample of the same size
    capsys.readouterr()
    assert main([*base, "--max-samples", "8"]) == 0
    assert len(pd.read_parquet(out)) == 8


def test_a_finished_output_is_kept_unless_the_same_job_or_overwrite(baseline_dir: Path, unlabeled: Path,
                                                                    tmp_path: Path, tiny_classifier: Path,
                                                                    capsys) -> None:
    out = tmp_path / "labels.csv"
    base = ["label", "--data", str(unlabeled), "--output", str(out)]
    assert main([*base, "--model", str(baseline_dir)]) == 0
    first = out.read_bytes()
    assert main([*base, "--model", str(baseline_dir)]) == 0
    assert "already holds these labels" in capsys.readouterr().err
    assert main([*base, "--model", str(tiny_classifier), "--backend", "torch"]) == 2
    err = capsys.readouterr().err
    assert "holds other labels" in err and "--overwrite" in err
    assert out.read_bytes() == first
    assert main([*base, "--model", str(tiny_classifier), "--backend", "torch", "--overwrite"]) == 0
    assert read_json(sidecar_path(out))["teacher"]["backend"] == "torch"


def test_a_transformer_teaches_with_its_own_probabilities(unlabeled: Path, tmp_path: Path,
                                                          tiny_classifier: Path) -> None:
    from imdb_sentiment.inference import SentimentClassifier

    out = tmp_path / "labels.parquet"
    assert main(["label", "--model", str(tiny_classifier), "--backend", "torch", "--data", str(unlabeled),
                 "--output", str(out), "--max-samples", "5", "--seed", "3"]) == 0
    labelled = pd.read_parquet(out)
    source = pd.read_parquet(unlabeled / "unsupervised.parquet")
    assert len(labelled) == 5
    order = [source.index[source["id"] == row_id][0] for row_id in labelled["id"]]
    assert order == sorted(order)  # the sample keeps the input order
    expected = SentimentClassifier.load(tiny_classifier, backend="torch").predict_proba(
        labelled["text"].tolist())[:, 1]
    assert np.allclose(labelled["p_positive"], expected, atol=1e-5)
    assert read_json(sidecar_path(out))["teacher"]["model"] == str(tiny_classifier)


def test_rows_that_cannot_be_scored_are_kept_with_an_error(baseline_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "reviews.csv"
    pd.DataFrame({"text": ["a wonderful film", "   ", "an awful film"]}).to_csv(source, index=False)
    out = tmp_path / "labels.parquet"
    summary = label(LabelJob(model=str(baseline_dir), data=str(source), output=out))
    labelled = pd.read_parquet(out)
    assert summary.bad_rows == 1 and len(labelled) == 3
    assert np.isnan(labelled["p_positive"].iloc[1]) and labelled["error"].iloc[1] == "empty text"
    assert labelled["error"].isna().sum() == 2


@pytest.mark.parametrize(("options", "message"), [
    (["--max-samples", "0"], "--max-samples must be positive"),
    (["--part-rows", "0"], "--part-rows must be positive"),
    (["--split", "nosuch"], "has no nosuch split"),
    (["--output", "labels.txt"], "unsupported output type .txt"),
])
def test_bad_options_are_one_line_errors(options: list[str], message: str, baseline_dir: Path,
                                         unlabeled: Path, tmp_path: Path, capsys,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code = main(["label", "--model", str(baseline_dir), "--data", str(unlabeled), "--output",
                 "labels.parquet", *options])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_a_run_killed_after_its_last_part_finishes_without_the_teacher(
        baseline_dir: Path, unlabeled: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import imdb_sentiment.tables as tables

    out = tmp_path / "labels.parquet"
    job = LabelJob(model=str(baseline_dir), data=str(unlabeled), output=out, part_rows=5)
    write_table = tables.write_table

    def killed_at_the_output(frame, path, output_format=None):
        if Path(path) == out:
            raise KeyboardInterrupt
        write_table(frame, path, output_format)

    monkeypatch.setattr(tables, "write_table", killed_at_the_output)
    with pytest.raises(KeyboardInterrupt):
        label(job, teacher=CountingTeacher(BaselineTeacher.load(baseline_dir)))
    monkeypatch.setattr(tables, "write_table", write_table)
    unused = CountingTeacher(BaselineTeacher.load(baseline_dir), fail_after=0)  # any scoring would raise
    summary = label(job, teacher=unused)
    assert (summary.scored, summary.resumed) == (0, 11) and len(pd.read_parquet(out)) == 11
    assert read_json(sidecar_path(out))["teacher"]["kind"] == "baseline"
