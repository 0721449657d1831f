"""``imdb-sentiment predict``: texts, stdin, every file format, per-row errors, atomic output."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from imdb_sentiment.cli import main
from imdb_sentiment.inference import SentimentClassifier

REVIEWS = ["A wonderful, moving film.", "Dull, and far too long.", "Fine.", "Great cast, weak plot."]


pytestmark = pytest.mark.usefixtures("onnx_cache")


@pytest.fixture(scope="module")
def classifier(tiny_classifier: Path, onnx_cache: Path) -> SentimentClassifier:
    """What the command line runs by default on this CPU, for exact comparisons."""
    return SentimentClassifier.load(tiny_classifier, device="cpu", backend="auto")


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def _frame() -> pd.DataFrame:
    return pd.DataFrame({"id": [f"r{i}" for i in range(len(REVIEWS))], "text": REVIEWS,
                         "rating": [9, 2, 6, 5]})


def _write(frame: pd.DataFrame, path: Path) -> Path:
    suffix = path.suffix
    if suffix in (".csv", ".tsv"):
        frame.to_csv(path, index=False, sep="\t" if suffix == ".tsv" else ",")
    elif suffix == ".jsonl":
        frame.to_json(path, orient="records", lines=True)
    elif suffix == ".json":
        frame.to_json(path, orient="records")
    else:
        frame.to_parquet(path, index=False)
    return path


def _read(path: Path) -> pd.DataFrame:
    suffix = path.suffix
    if suffix in (".csv", ".tsv"):
        return pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",", keep_default_na=False,
                           na_values={"score": [""]})
    if suffix == ".jsonl":
        return pd.read_json(path, lines=True)
    if suffix == ".json":
        return pd.read_json(path, orient="records")
    return pd.read_parquet(path)


# --------------------------------------------------------------------------- texts and stdin


def test_texts_on_the_command_line(tiny_classifier: Path, classifier: SentimentClassifier,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["predict", "--model", str(tiny_classifier), *REVIEWS], capsys)
    assert code == 0
    lines = out.strip().split("\n")
    expected = classifier.predict(REVIEWS)
    assert [line.split("\t")[0] for line in lines] == [p["label"] for p in expected]
    np.testing.assert_allclose([float(line.split("\t")[1]) for line in lines],
                               [p["score"] for p in expected], atol=1e-4)


def test_json_lines_from_stdin(tiny_classifier: Path, classifier: SentimentClassifier,
                               capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    raw = ("\n".join([REVIEWS[0], "", REVIEWS[1]]) + "\n").encode("utf-8")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(raw)))
    code, out, err = run(["predict", "--model", str(tiny_classifier), "--json"], capsys)
    assert code == 0
    records = [json.loads(line) for line in out.strip().split("\n")]
    assert [r["text"] for r in records] == [REVIEWS[0], "", REVIEWS[1]]
    expected = classifier.predict([REVIEWS[0], REVIEWS[1]])
    assert [records[0]["label"], records[2]["label"]] == [p["label"] for p in expected]
    assert records[1]["error"] == "empty text" and records[1]["label"] is None
    assert "warning: 1 line(s) could not be scored" in err


# --------------------------------------------------------------------------- files


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".json", ".parquet"])
def test_every_table_format_keeps_columns_and_adds_predictions(
        suffix: str, tiny_classifier: Path, classifier: SentimentClassifier, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    source = _write(_frame(), tmp_path / f"reviews{suffix}")
    target = tmp_path / f"scored{suffix}"
    code, _, err = run(["predict", "--model", str(tiny_classifier), "--input", str(source),
                        "--output", str(target)], capsys)
    assert code == 0, err
    scored = _read(target)
    assert list(scored.columns) == ["id", "text", "rating", "label", "score", "truncated", "error"]
    assert scored["id"].tolist() == _frame()["id"].tolist()
    assert scored["text"].tolist() == REVIEWS
    expected = classifier.predict(REVIEWS)
    assert scored["label"].tolist() == [p["label"] for p in expected]
    np.testing.assert_allclose(scored["score"].astype(float), [p["score"] for p in expected], atol=1e-4)
    assert "reviews/s" in err and str(target) in err


def test_plain_text_input_one_review_per_line(tiny_classifier: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "reviews.txt"
    source.write_text("\n".join(REVIEWS) + "\n", encoding="utf-8")
    target = tmp_path / "scored.parquet"
    code, _, err = run(["predict", "-m", str(tiny_classifier), "-i", str(source), "-o", str(target),
                        "--text-column", "review", "--progress"], capsys)
    assert code == 0
    assert f"{len(REVIEWS)}/{len(REVIEWS)}" in err and "review/s" in err  # the bar ends full, with a rate
    scored = pd.read_parquet(target)
    assert scored["review"].tolist() == REVIEWS and scored["error"].isna().all()


def test_bad_rows_are_marked_and_do_not_stop_the_file(tiny_classifier: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "mixed.jsonl"
    rows = [{"text": REVIEWS[0]}, {"text": ""}, {"text": 42}, {"text": None}, {"text": REVIEWS[1]}]
    source.write_text("\n".join(json.dumps(row) for row in rows) + "\n", encoding="utf-8")
    target = tmp_path / "scored.jsonl"
    code, _, err = run(["predict", "-m", str(tiny_classifier), "-i", str(source), "-o", str(target)], capsys)
    assert code == 0
    scored = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert [row["error"] for row in scored] == [None, "empty text", "not text (int)", "missing text", None]
    assert [row["label"] is None for row in scored] == [False, True, True, True, False]
    assert "warning: 3 row(s)" in err
    parquet = tmp_path / "scored.parquet"  # a number among texts must not break parquet output
    assert run(["predict", "-m", str(tiny_classifier), "-i", str(source), "-o", str(parquet)], capsys)[0] == 0
    assert pd.read_parquet(parquet)["error"].notna().sum() == 3


def test_existing_label_column_is_not_overwritten(tiny_classifier: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    source = _write(_frame().assign(label=[1, 0, 1, 0]), tmp_path / "labelled.csv")
    target = tmp_path / "scored.csv"
    code, _, err = run(["predict", "-m", str(tiny_classifier), "-i", str(source), "-o", str(target)], capsys)
    assert code == 0 and "predicted_label" in err
    scored = pd.read_csv(target)
    assert scored["label"].tolist() == [1, 0, 1, 0]
    assert set(scored["predicted_label"]) <= {"POSITIVE", "NEGATIVE"}


def test_chunks_strategy_from_the_command_line(tiny_classifier: Path, capsys: pytest.CaptureFixture[str]
                                               ) -> None:
    long_review = "A long and winding but rewarding film. " * 200
    code, out, _ = run(["predict", "-m", str(tiny_classifier), "--json", "--truncation", "head-tail",
                        "--batch-size", "2", long_review], capsys)
    assert code == 0 and json.loads(out)["truncated"] is True
    code, out, _ = run(["predict", "-m", str(tiny_classifier), "--json", "--truncation", "chunks",
                        "--max-length", "128", "--precision", "fp32", "--device", "cpu", long_review], capsys)
    assert code == 0 and json.loads(out)["truncated"] is False


# --------------------------------------------------------------------------- mistakes


@pytest.mark.parametrize(("extra", "message"), [
    (["--truncation", "middle"], "truncation must be one of"),
    (["--precision", "fp8"], "precision must be one of"),
    (["--backend", "tensorrt"], "backend must be one of"),
    (["--max-length", "100000"], "beyond this model's"),
    (["--batch-size", "0"], "batch size must be positive"),
    (["--output", "x.csv", "fine"], "--output needs --input"),
    (["--json", "--format", "csv"], "--json is --format jsonl"),
])
def test_bad_options_are_one_line_errors(extra: list[str], message: str, tiny_classifier: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["predict", "-m", str(tiny_classifier), *extra]
    code, _, err = run(argv if argv[-1] == "fine" else [*argv, "fine"], capsys)
    assert code == 2
    assert message in err and err.count("\n") == 1


def test_file_mistakes_are_one_line_errors_and_leave_files_alone(
        tiny_classifier: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = _write(_frame(), tmp_path / "reviews.csv")
    existing = tmp_path / "existing.csv"
    existing.write_text("keep me\n", encoding="utf-8")
    model = ["predict", "-m", str(tiny_classifier)]
    cases = [
        (["-i", str(source), "-o", str(existing)], "exists; pass --overwrite"),
        (["-i", str(source), "-o", str(source)], "must differ from --input"),
        (["-i", str(source), "-o", str(tmp_path / "out.xlsx")], "unsupported output type"),
        (["-i", str(tmp_path / "missing.csv"), "-o", str(tmp_path / "o.csv")], "input file not found"),
        (["-i", str(source), "-o", str(tmp_path / "o.csv"), "--text-column", "review"], "no column 'review'"),
        (["-i", str(source), "-o", str(tmp_path / "o.csv"), "some text"], "not both"),
    ]
    for extra, message in cases:
        code, _, err = run([*model, *extra], capsys)
        assert code == 2 and message in err and err.count("\n") == 1, (extra, err)
    assert existing.read_text(encoding="utf-8") == "keep me\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["existing.csv", "reviews.csv"]  # no leftovers
    code, _, _ = run([*model, "-i", str(source), "-o", str(existing), "--overwrite"], capsys)
    assert code == 0 and len(pd.read_csv(existing)) == len(REVIEWS)


def test_no_input_at_all(tiny_classifier: Path, capsys: pytest.CaptureFixture[str],
                         monkeypatch: pytest.MonkeyPatch) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stdin", Terminal())
    code, _, err = run(["predict", "-m", str(tiny_classifier)], capsys)
    assert code == 2 and "pipe reviews on stdin" in err


def test_installed_command_end_to_end(tiny_classifier: Path, tmp_path: Path) -> None:
    """The console script as a user runs it: results on stdout, one-line errors, exit codes."""
    command = str(Path(sys.executable).with_name("imdb-sentiment"))
    done = subprocess.run([command, "predict", "--model", str(tiny_classifier), "--progress", "Lovely."],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.split("\t")[0] in {"POSITIVE", "NEGATIVE"}
    missing = subprocess.run([command, "predict", "--model", str(tmp_path / "none"), "Lovely."],
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "not found" in missing.stderr


def test_help_does_not_import_torch() -> None:
    """Start-up time: the command line loads torch/transformers only when a model is needed."""
    code = ("import sys; from imdb_sentiment.cli import main; main(['predict', '--help']); "
            "main(['serve', '--help']); main(['export', '--help']); "
            "heavy = ('torch', 'transformers', 'onnxruntime', 'fastapi'); "
            "print(sorted(m for m in heavy if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "--input" in done.stdout and "--max-wait-ms" in done.stdout and "--quantize" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "[]"
