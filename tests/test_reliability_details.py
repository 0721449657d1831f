"""Smaller reliability points: line numbers in JSON errors, option hints that exist, data checked
before the model loads, no progress bars in logs, a warning for one-class data."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import pytest

from imdb_sentiment.cli import main
from imdb_sentiment.errors import UserError
from imdb_sentiment.evaluation import classification_metrics
from imdb_sentiment.tables import read_table


def run(argv: list[object], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_lines_errors_give_the_line_number(tmp_path: Path) -> None:
    path = tmp_path / "reviews.jsonl"
    path.write_text('{"text": "a", "label": 1}\n\n{"text": "b", "label": 0\n{"text": "c"}\n',
                    encoding="utf-8")
    with pytest.raises(UserError, match=r"line 3 is not valid JSON \(Expecting ',' delimiter"):
        read_table(path)
    path.write_text('{"text": "a", "label": 1}\n["not", "an", "object"]\n', encoding="utf-8")
    with pytest.raises(UserError, match="line 2 is not a JSON object"):
        read_table(path)
    array = tmp_path / "reviews.json"
    array.write_text('[\n {"text": "a", "label": 1},\n {"text": "b" "label": 0}\n]\n', encoding="utf-8")
    with pytest.raises(UserError, match="invalid JSON at line 3, column 15: Expecting ',' delimiter"):
        read_table(array)


def test_predict_missing_column_names_only_its_own_option(tiny_classifier: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "reviews.csv"
    pd.DataFrame({"review": ["fine"]}).to_csv(path, index=False)
    code, _, err = run(["predict", "-m", tiny_classifier, "-i", path, "-o", tmp_path / "o.csv"], capsys)
    assert code == 2 and "use --text-column" in err and "--label-column" not in err
    with pytest.raises(UserError, match=r"use --label-column$"):
        read_table(path, text_column="review")


def test_evaluate_checks_the_data_before_loading_the_model(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from imdb_sentiment import evaluation

    def never(*_: object, **__: object) -> None:
        raise AssertionError("the model was loaded first")

    monkeypatch.setattr(evaluation, "_load_classifier", never)
    started = time.perf_counter()
    code, _, err = run(["evaluate", "-m", tmp_path / "model", "--data", tmp_path / "missing",
                        "-o", tmp_path / "out", "--runs-dir", "none"], capsys)
    assert code == 2 and err == f"error: data path not found: {tmp_path / 'missing'}\n"
    assert time.perf_counter() - started < 10


def test_evaluate_has_no_progress_bar_when_stderr_is_no_terminal(
        tiny_classifier: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    data.mkdir()
    frame = pd.DataFrame({"text": ["A wonderful film.", "A dreadful film."] * 4, "label": [1, 0] * 4})
    frame.to_csv(data / "test.csv", index=False)
    code, out, err = run(["evaluate", "-m", tiny_classifier, "--data", data, "-o", tmp_path / "out",
                          "--runs-dir", "none", "--max-length", 32], capsys)
    assert code == 0, err
    assert "evaluating" not in err and "\r" not in err and "accuracy" in out


def test_one_class_data_warns_that_f1_is_undefined(tiny_classifier: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.warns(UserWarning, match="all negative: F1, precision and recall"):
        metrics = classification_metrics([0, 0, 0], [0, 1, 0])
    assert metrics["f1"] == 0.0
    data = tmp_path / "data"
    data.mkdir()
    pd.DataFrame({"text": [f"A dreadful film {i}." for i in range(6)], "label": [0] * 6}).to_csv(
        data / "test.csv", index=False)
    code, _, err = run(["evaluate", "-m", tiny_classifier, "--data", data, "-o", tmp_path / "out",
                        "--runs-dir", "none", "--max-samples", 4, "--max-length", 32], capsys)
    assert code == 0 and "warning: the scored reviews are all negative" in err
