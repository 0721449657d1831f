"""Review files in and out (``tables``): every row kept in its place, no input column overwritten,
outputs that replace nothing they should not, and one-line errors for files that do not fit."""

from __future__ import annotations

import io
import json
import os
import stat
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from imdb_sentiment import tables
from imdb_sentiment.classifier import Details
from imdb_sentiment.cli import main
from imdb_sentiment.data import normalize_labels, read_source
from imdb_sentiment.errors import UserError
from imdb_sentiment.scoring import predict_frame
from imdb_sentiment.tables import MAX_REVIEW_CHARS, read_lines, read_reviews, read_table, row_problem

pytestmark = pytest.mark.usefixtures("onnx_cache")

ROWS = ["A wonderful, moving film.", "", "Great cast,\tweak plot.", "Fine."]
"""Unquoted separators (a comma, a tab) and a blank line: each reader must keep four rows in order."""


def run(argv: list[object], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return code, out, err


class StubClassifier:
    """Answers ``predict_details`` without a network, recording the texts it was given."""

    def __init__(self, stars: bool = False, hybrid: bool = False) -> None:
        self.stars, self.hybrid, self.seen = stars, hybrid, []

    def predict_details(self, texts, batch_size=None, progress=None) -> Details:
        self.seen.extend(texts)
        count = len(texts)
        return Details(np.tile([[0.2, 0.8]], (count, 1)).astype(np.float32), np.full(count, 5),
                       np.zeros(count, dtype=bool), np.ones(count, dtype=int),
                       stars=np.full(count, 7.0) if self.stars else None,
                       decided_by=np.array(["screen"] * count) if self.hybrid else None)


# --------------------------------------------------------------------------- rows in = rows out


def _write_rows(source: str, folder: Path) -> Path | None:
    """``ROWS`` as a one-column file the way a person would write it (None for stdin)."""
    frame = pd.DataFrame({"text": ROWS})
    if source in ("csv", "tsv"):  # by hand, unquoted: a separator inside a review is part of it
        path = folder / f"reviews.{source}"
        path.write_text("text\n" + "\n".join(ROWS) + "\n", encoding="utf-8")
    elif source == "jsonl":
        path = folder / "reviews.jsonl"
        frame.to_json(path, orient="records", lines=True)
    elif source == "json":
        path = folder / "reviews.json"
        frame.to_json(path, orient="records")
    elif source == "parquet":
        path = folder / "reviews.parquet"
        frame.to_parquet(path, index=False)
    elif source == "txt":
        path = folder / "reviews.txt"
        path.write_text("\n".join(ROWS) + "\n", encoding="utf-8")
    else:
        return None
    return path


@pytest.mark.parametrize("source", ["csv", "tsv", "jsonl", "json", "parquet", "txt", "stdin"])
def test_every_reader_keeps_every_row_in_order(source: str, tiny_classifier: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write_rows(source, tmp_path)
    if path is None:
        raw = ("\n".join(ROWS) + "\n").encode("utf-8")
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(raw)))
        code, out, err = run(["predict", "-m", tiny_classifier, "--json"], capsys)
        records = [json.loads(line) for line in out.splitlines()]
    else:
        target = tmp_path / "scored.jsonl"
        code, _, err = run(["predict", "-m", tiny_classifier, "-i", path, "-o", target], capsys)
        records = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert code == 0, err
    assert [record["text"] for record in records] == ROWS
    assert [record["error"] for record in records] == [None, "empty text", None, None]
    assert [record["label"] is None for record in records] == [False, True, False, False]


def test_no_data_column_becomes_the_index(tiny_classifier: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    wide = tmp_path / "wide.csv"  # one field too many on the first line: pandas would index by id
    wide.write_text("id,text\nr1,A wonderful, moving film.\nr2,Fine.\n", encoding="utf-8")
    code, _, err = run(["predict", "-m", tiny_classifier, "-i", wide, "-o", tmp_path / "o.csv"], capsys)
    assert code == 2 and err.count("\n") == 1
    assert "line 2 has 3 ','-separated fields, the header 2" in err and not (tmp_path / "o.csv").exists()
    indexed = tmp_path / "indexed.parquet"  # a stored index is data too
    pd.DataFrame({"id": ["r1", "r2"], "text": ["Fine.", "Dull."]}).set_index("id").to_parquet(indexed)
    assert run(["predict", "-m", tiny_classifier, "-i", indexed, "-o", tmp_path / "o.csv"], capsys)[0] == 0
    scored = pd.read_csv(tmp_path / "o.csv")
    assert scored["id"].tolist() == ["r1", "r2"] and scored["text"].tolist() == ["Fine.", "Dull."]


def test_csv_blank_lines_and_short_lines(tmp_path: Path) -> None:
    single = tmp_path / "single.csv"
    single.write_text('text\nFine.\n\n"Quoted, with a\nnewline"\n\n', encoding="utf-8")
    assert read_reviews(single)["text"].tolist() == ["Fine.", "", "Quoted, with a\nnewline", ""]
    wide = tmp_path / "wide.csv"  # a blank line of a wider file holds no row; a short line misses values
    wide.write_text("id,text,rating\n\nr1,Fine.,7\nr2,Dull.\n", encoding="utf-8")
    frame = read_reviews(wide)
    assert frame["text"].tolist() == ["Fine.", "Dull."] and frame["rating"].isna().tolist() == [False, True]


def test_lone_carriage_returns_end_lines(tmp_path: Path) -> None:
    assert read_lines(b"one\rtwo\r\rthree\r", "x") == ["one", "two", "", "three"]
    assert read_lines(b"one\r\ntwo\nthree", "x") == ["one", "two", "three"]
    old_mac = tmp_path / "reviews.txt"
    old_mac.write_bytes(b"Fine.\rDull.\rGreat.\r")
    assert read_reviews(old_mac)["text"].tolist() == ["Fine.", "Dull.", "Great."]


# --------------------------------------------------------------------------- JSON


@pytest.mark.parametrize(("name", "content", "message"), [
    ("a.jsonl", '{"text": "a"}\n[1]\n', r"line 2 is not a JSON object \(an array\)$"),
    ("b.jsonl", '{"text": "a"}\n\n7\n', r"line 3 is not a JSON object \(a number\)$"),
    ("c.json", '[{"text": "a"}, "b"]', r"item 2 of the array is not a JSON object \(a string\)$"),
    ("d.jsonl", '{"text": "a"}\n{"text": "b"\n', r"line 2 is not valid JSON \(Expecting ',' delimiter"),
])
def test_json_records_that_are_no_objects_are_named(name: str, content: str, message: str,
                                                   tmp_path: Path) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(UserError, match=message):
        read_table(path, label_column=None)


def test_nested_values_are_written_as_json(tiny_classifier: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "nested.jsonl"
    source.write_text('{"text": "Fine.", "tags": ["a", "b"], "meta": {"k": 1}}\n'
                      '{"text": "Dull.", "tags": [], "meta": null}\n', encoding="utf-8")
    target = tmp_path / "scored.csv"
    assert run(["predict", "-m", tiny_classifier, "-i", source, "-o", target], capsys)[0] == 0
    scored = pd.read_csv(target, keep_default_na=False)
    assert scored["tags"].tolist() == ['["a", "b"]', "[]"] and scored["meta"].tolist() == ['{"k": 1}', ""]
    parquet = tmp_path / "lists.parquet"
    pd.DataFrame({"text": ["Fine."], "tags": [["a", "b"]]}).to_parquet(parquet)
    assert run(["predict", "-m", tiny_classifier, "-i", parquet, "-o", target, "--overwrite"], capsys)[0] == 0
    assert pd.read_csv(target)["tags"].tolist() == ['["a", "b"]']


# --------------------------------------------------------------------------- columns


def test_input_columns_are_never_overwritten(tiny_classifier: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "labelled.csv"
    pd.DataFrame({"text": ["Fine.", "Dull."], "label": [1, 0], "predicted_label": ["mine", "mine"]}
                 ).to_csv(source, index=False)
    target = tmp_path / "scored.csv"
    code, _, err = run(["predict", "-m", tiny_classifier, "-i", source, "-o", target], capsys)
    assert code == 0, err
    scored = pd.read_csv(target)
    assert list(scored.columns) == ["text", "label", "predicted_label", "predicted_label_2",
                                    "predicted_score", "predicted_truncated", "predicted_error"]
    assert scored["label"].tolist() == [1, 0] and scored["predicted_label"].tolist() == ["mine", "mine"]
    assert set(scored["predicted_label_2"]) <= {"POSITIVE", "NEGATIVE"}
    assert "predicted_label_2, predicted_score" in err


@pytest.mark.parametrize(("stub", "column"), [(StubClassifier(hybrid=True), "decided_by"),
                                              (StubClassifier(stars=True), "stars")])
def test_model_specific_columns_are_never_overwritten(stub: StubClassifier, column: str) -> None:
    frame = pd.DataFrame({"text": ["Fine.", " "], column: ["mine", "mine"]})
    out, names = predict_frame(stub, frame)
    assert out[column].tolist() == ["mine", "mine"]
    assert names == ["predicted_label", "predicted_score", "predicted_truncated", "predicted_error"]
    assert out[f"predicted_{column}"].notna().tolist() == [True, False]


def test_free_names() -> None:
    assert tables.free_names(["label", "score"], ["text"]) == ["label", "score"]
    assert tables.free_names(["label", "score"], ["score", "predicted_score", "predicted_score_2"]) == [
        "predicted_label", "predicted_score_3"]


# --------------------------------------------------------------------------- output targets


def test_fifos_and_device_nodes_are_written_not_replaced(tiny_classifier: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "reviews.csv"
    pd.DataFrame({"text": ["Fine.", "Dull."]}).to_csv(source, index=False)
    fifo = tmp_path / "results"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # a reader waits, so the writer does not block
    try:
        code, _, err = run(["predict", "-m", tiny_classifier, "-i", source, "-o", fifo, "--format", "csv",
                            "--overwrite"], capsys)
        assert code == 0, err
        assert stat.S_ISFIFO(fifo.stat().st_mode)
        assert os.read(reader, 1 << 16).decode("utf-8").startswith("text,label,score,truncated,error\n")
        code, _, err = run(["predict", "-m", tiny_classifier, "-i", source, "-o", fifo], capsys)
        assert code == 0, err  # named without a suffix: CSV, as on stdout
        assert os.read(reader, 1 << 16).decode("utf-8").startswith("text,label,score,truncated,error\n")
    finally:
        os.close(reader)
    null = tmp_path / "null"  # a node like /dev/null, where replacing it harms nothing
    try:
        os.mknod(null, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except (PermissionError, OSError):
        return  # making device nodes needs privileges
    code, _, err = run(["predict", "-m", tiny_classifier, "-i", source, "-o", null, "--format", "csv",
                        "--overwrite"], capsys)
    assert code == 0, err
    assert stat.S_ISCHR(null.stat().st_mode)
    code, _, err = run(["predict", "-m", tiny_classifier, "-i", source, "-o", null, "--overwrite"], capsys)
    assert code == 0, err  # a device named without a suffix takes CSV, as stdout does
    assert stat.S_ISCHR(null.stat().st_mode)


def test_output_and_input_paths_that_are_no_files(tiny_classifier: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "reviews.csv"
    pd.DataFrame({"text": ["Fine."]}).to_csv(source, index=False)
    folder = tmp_path / "folder"
    folder.mkdir()
    model = ["predict", "-m", tiny_classifier]
    cases = [
        (["-i", source, "-o", folder], f"output path {folder} is a folder"),
        (["-i", folder, "-o", tmp_path / "o.csv"], f"input path {folder} is a folder, not a file"),
        (["-i", source, "-o", f"{tmp_path / 'new.csv'}/"], "ends with '/', which names a folder"),
        (["-i", source, "-o", tmp_path / ("x" * 300 + ".csv")], "File name too long"),
        (["-i", tmp_path / ("x" * 300 + ".csv"), "-o", tmp_path / "o.csv"], "File name too long"),
    ]
    for extra, message in cases:
        code, _, err = run([*model, *extra], capsys)
        assert code == 2 and message in err and err.count("\n") == 1, (extra, err)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["folder", "reviews.csv"]


# --------------------------------------------------------------------------- formats


def test_format_and_json_work_for_every_source(tiny_classifier: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, err = run(["predict", "-m", tiny_classifier, "--format", "json", "Fine.", "Dull."], capsys)
    assert code == 0, err
    assert [record["text"] for record in json.loads(out)] == ["Fine.", "Dull."]
    source = tmp_path / "reviews.csv"
    pd.DataFrame({"id": ["r1", "r2"], "text": ["Fine.", "Dull."]}).to_csv(source, index=False)
    code, out, err = run(["predict", "-m", tiny_classifier, "-i", source, "--json"], capsys)
    assert code == 0, err
    assert [json.loads(line)["id"] for line in out.splitlines()] == ["r1", "r2"]
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"Fine.\nDull.\n")))
    code, out, err = run(["predict", "-m", tiny_classifier, "--format", "tsv"], capsys)
    assert code == 0, err
    assert pd.read_csv(io.StringIO(out), sep="\t")["text"].tolist() == ["Fine.", "Dull."]


# --------------------------------------------------------------------------- labels


def test_integral_float_labels_read_alike_from_every_format(tmp_path: Path) -> None:
    frame = pd.DataFrame({"text": ["Fine.", "Dull."], "label": [1.0, 0.0]})
    frame.to_csv(tmp_path / "labels.csv", index=False)  # written as "1.0" and "0.0"
    frame.to_parquet(tmp_path / "labels.parquet")
    for name in ("labels.csv", "labels.parquet"):
        frames, _ = read_source(tmp_path / name)
        assert frames["all"]["label"].tolist() == [1, 0], name
    assert normalize_labels(["1.0", " 0.0 ", 1.0, "1"]).tolist() == [1, 0, 1, 1]
    with pytest.raises(UserError, match=r"must be binary .*found '0\.5'"):
        normalize_labels(["1.0", "0.5"])
    with pytest.raises(UserError, match=r"found 0\.5"):
        normalize_labels([1.0, 0.5])


# --------------------------------------------------------------------------- limits


def test_a_review_past_the_limit_is_marked_before_tokenizing(monkeypatch: pytest.MonkeyPatch) -> None:
    assert row_problem("a" * (MAX_REVIEW_CHARS + 1)) == (
        f"text too long ({MAX_REVIEW_CHARS + 1:,} characters; the limit is {MAX_REVIEW_CHARS:,})")
    assert row_problem("a" * MAX_REVIEW_CHARS) is None
    monkeypatch.setattr(tables, "MAX_REVIEW_CHARS", 20)
    stub = StubClassifier()
    out, names = predict_frame(stub, pd.DataFrame({"text": ["Fine.", "x" * 21, "Dull."]}))
    assert stub.seen == ["Fine.", "Dull."]  # the long one never reached the tokenizer
    assert out[names[3]].tolist()[1] == "text too long (21 characters; the limit is 20)"
    assert out[names[0]].isna().tolist() == [False, True, False]


# --------------------------------------------------------------------------- explanations


def test_explain_counts_what_it_explained_and_names_columns_like_predict(
        tiny_classifier: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "reviews.csv"
    pd.DataFrame({"text": ["Fine.", "", "Dull.", " "], "label": [1, 0, 0, 1]}).to_csv(source, index=False)
    target = tmp_path / "explained.csv"
    code, _, err = run(["predict", "-m", tiny_classifier, "--explain", "--top", "2", "-i", source,
                        "-o", target], capsys)
    assert code == 0, err
    assert "explained 2 review(s)" in err and "warning: 2 row(s)" in err and "could not be explained" in err
    explained = pd.read_csv(target)
    assert list(explained.columns) == ["text", "label", "predicted_label", "predicted_score",
                                       "predicted_explanation", "predicted_error"]
    assert explained["label"].tolist() == [1, 0, 0, 1]
