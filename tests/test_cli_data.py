"""``data info`` and ``baseline`` on the command line, including every kind of bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from imdb_sentiment.cli import main

WORDS = {1: ["wonderful", "moving", "superb", "charming"], 0: ["dreadful", "boring", "awful", "clumsy"]}


def make_reviews(n: int, start: int = 0) -> pd.DataFrame:
    rows = []
    for i in range(start, start + n):
        label = i % 2
        text = f"Review {i}: a {WORDS[label][i % 4]} film, {WORDS[label][i % 3]}."
        rows.append({"id": f"r{i}", "text": text, "label": label})
    return pd.DataFrame(rows)


@pytest.fixture
def csv_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "csv"
    folder.mkdir()
    make_reviews(60).to_csv(folder / "train.csv", index=False)
    make_reviews(20, start=100).to_csv(folder / "test.csv", index=False)
    return folder


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, expected: str) -> None:
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err and expected in err


def test_data_info_table_and_json(capsys: pytest.CaptureFixture[str], csv_folder: Path) -> None:
    code, out, err = run_cli(capsys, "data", "info", "--data", str(csv_folder))
    assert code == 0 and err == ""
    assert "split files" in out and "skipped empty reviews: 0" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines()[2:5]}
    assert rows["train"][1] == "54" and rows["validation"][1] == "6" and rows["test"][1] == "20"
    code, out, _ = run_cli(capsys, "data", "info", "--data", str(csv_folder), "--json", "--seed", "7")
    summary = json.loads(out)
    assert code == 0 and summary["kind"] == "split files"
    assert summary["splits"]["test"] == {**summary["splits"]["test"], "reviews": 20, "positive": 10}


def test_data_info_counts_skipped_empty_reviews(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    frame = make_reviews(30).rename(columns={"text": "review", "label": "sentiment"})
    frame.loc[[2, 5], "review"] = ["", "  "]
    frame.to_json(tmp_path / "reviews.jsonl", orient="records", lines=True)
    code, out, err = run_cli(capsys, "data", "info", "--data", str(tmp_path / "reviews.jsonl"),
                             "--text-column", "review", "--label-column", "sentiment", "--json")
    assert code == 0
    assert err == f"warning: skipped 2 empty or whitespace-only review(s) in {tmp_path / 'reviews.jsonl'}\n"
    summary = json.loads(out)
    assert summary["skipped_empty"] == 2 and summary["test_carved"]
    assert sum(split["reviews"] for split in summary["splits"].values()) == 28


def test_baseline_command_end_to_end(capsys: pytest.CaptureFixture[str], csv_folder: Path,
                                     tmp_path: Path) -> None:
    out_dir = tmp_path / "run"
    args = ["baseline", "--data", str(csv_folder), "--model", "logreg", "--output", str(out_dir),
            "--runs-dir", "none", "--seed", "1"]
    code, out, err = run_cli(capsys, *args)
    assert code == 0, err
    metrics = json.loads((out_dir / "metrics.json").read_text())
    assert metrics["model"] == "logreg" and metrics["n_test"] == 20
    assert f"test accuracy {metrics['accuracy']:.4f}" in out
    assert "training logreg" in err and "evaluating on 20 test reviews" in err
    assert (out_dir / "model" / "model.skops").is_file()

    (out_dir / "notes.txt").write_text("keep me", encoding="utf-8")
    code, _, err = run_cli(capsys, *args)
    assert_one_line_error(code, err, "--overwrite")
    assert (out_dir / "notes.txt").read_text(encoding="utf-8") == "keep me"
    code, _, err = run_cli(capsys, *args, "--overwrite", "--model", "nbsvm")
    assert code == 0, err
    assert not (out_dir / "notes.txt").exists()
    assert json.loads((out_dir / "metrics.json").read_text())["model"] == "nbsvm"


def bad_inputs(tmp_path: Path) -> dict[str, tuple[list[str], str]]:
    """Name -> (extra arguments, expected part of the message); files written on the way."""
    cases: dict[str, tuple[list[str], str]] = {
        "missing path": (["--data", str(tmp_path / "nowhere" / "train.csv")], "data path not found"),
        "unknown hub id": (["--data", "nobody-here/no-such-dataset"], "pass a local path"),
    }
    make_reviews(20).rename(columns={"text": "review"}).to_csv(tmp_path / "columns.csv", index=False)
    cases["missing column"] = (["--data", str(tmp_path / "columns.csv")], "has no column 'text'")
    make_reviews(20).assign(label=lambda f: f.index % 3).to_csv(tmp_path / "labels.csv", index=False)
    cases["non-binary labels"] = (["--data", str(tmp_path / "labels.csv")], "must be binary")
    (tmp_path / "only-train").mkdir()
    make_reviews(20).to_parquet(tmp_path / "only-train" / "train.parquet")
    cases["missing split"] = (["--data", str(tmp_path / "only-train")], "has no test split")
    (tmp_path / "latin1.csv").write_bytes("text,label\ncaf\xe9 au lait,1\n".encode("latin-1"))
    cases["non-UTF-8 csv"] = (["--data", str(tmp_path / "latin1.csv")], "not valid UTF-8")
    (tmp_path / "latin1.jsonl").write_bytes(b'{"text": "na\xefve", "label": 0}\n')
    cases["non-UTF-8 jsonl"] = (["--data", str(tmp_path / "latin1.jsonl")], "not valid UTF-8")
    acl = tmp_path / "aclImdb"
    for split in ("train", "test"):
        for polarity in ("pos", "neg"):
            (acl / split / polarity).mkdir(parents=True)
            (acl / split / polarity / "0_8.txt").write_text("fine review", encoding="utf-8")
    (acl / "test" / "neg" / "1_2.txt").write_bytes(b"na\xefve and dull")
    cases["non-UTF-8 aclImdb"] = (["--data", str(acl)], "test/neg/1_2.txt is not valid UTF-8")
    cases["bad cleaning"] = (["--data", str(tmp_path / "columns.csv"), "--cleaning", "fancy"],
                             "cleaning must be one of")
    return cases


@pytest.mark.parametrize("command", ["data info", "baseline"])
def test_bad_inputs_are_one_line_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                        command: str) -> None:
    out_dir = tmp_path / "out"
    extra = ["--output", str(out_dir), "--runs-dir", "none"] if command == "baseline" else []
    for name, (args, expected) in bad_inputs(tmp_path).items():
        if name == "missing split" and command == "data info":
            continue  # info describes whatever splits there are
        code, _, err = run_cli(capsys, *command.split(), *args, *extra)
        assert_one_line_error(code, err, expected)
        assert not out_dir.exists(), f"{name}: output written"
        assert not list(tmp_path.glob(".out.tmp-*")), f"{name}: temporary output left behind"


def test_baseline_rejects_unknown_model(capsys: pytest.CaptureFixture[str], csv_folder: Path,
                                        tmp_path: Path) -> None:
    code, _, err = run_cli(capsys, "baseline", "--data", str(csv_folder), "--model", "svm",
                           "--output", str(tmp_path / "out"), "--runs-dir", "none")
    assert_one_line_error(code, err, "unknown baseline 'svm'")


def test_console_script_matches(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("imdb-sentiment")
    if not script.exists():
        pytest.skip("console script not installed")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    bad = subprocess.run([str(script), "data", "info", "--data", str(tmp_path / "missing.parquet")],
                         capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr == f"error: data path not found: {tmp_path / 'missing.parquet'}\n"
    folder = tmp_path / "data"
    folder.mkdir()
    make_reviews(40).to_parquet(folder / "train.parquet")
    make_reviews(10, start=50).to_parquet(folder / "test.parquet")
    good = subprocess.run([str(script), "data", "info", "--data", str(folder), "--json"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert good.returncode == 0, good.stderr
    assert json.loads(good.stdout)["splits"]["test"]["reviews"] == 10


@pytest.mark.slow
def test_data_info_on_real_imdb(capsys: pytest.CaptureFixture[str], shared_data: Path) -> None:
    code, out, _ = run_cli(capsys, "data", "info", "--data", str(shared_data), "--json")
    splits = json.loads(out)["splits"]
    assert code == 0 and splits["test"]["reviews"] == 25_000
    assert splits["test"]["positive"] == splits["test"]["negative"] == 12_500
    assert splits["train"]["reviews"] + splits["validation"]["reviews"] == 25_000



def assert_error_after_progress(code: int, err: str, expected: str) -> None:
    """Exit 2 with the error as the last stderr line, after progress and warning lines (no traceback)."""
    *before, last = err.splitlines()
    assert code == 2 and last.startswith("error: ") and expected in last, err
    assert all(line.endswith(" s") or line.startswith("warning: ") for line in before), err


def test_data_a_baseline_cannot_learn_from_is_one_line(capsys: pytest.CaptureFixture[str],
                                                        tmp_path: Path) -> None:
    make_reviews(5).to_csv(tmp_path / "five.csv", index=False)
    make_reviews(400).to_csv(tmp_path / "many.csv", index=False)
    numbers = pd.DataFrame({"text": [str(1000 + i) for i in range(60)], "label": [i % 2 for i in range(60)]})
    numbers.to_csv(tmp_path / "numbers.csv", index=False)
    cases = [
        (["--data", str(tmp_path / "five.csv"), "--model", "logreg"], "logreg finds no vocabulary"),
        (["--data", str(tmp_path / "many.csv"), "--model", "logreg", "--test-size", "0.99"],
         "logreg finds no vocabulary in the 2 training review(s)"),
        (["--data", str(tmp_path / "numbers.csv"), "--model", "nbsvm"], "nbsvm finds no vocabulary"),
    ]
    out_dir = tmp_path / "out"
    for args, expected in cases:
        code, _, err = run_cli(capsys, "baseline", *args, "--output", str(out_dir), "--runs-dir", "none")
        assert_error_after_progress(code, err, expected)
        assert not out_dir.exists()


SEEDED_COMMANDS = {
    "data info": ["--data", "d"],
    "baseline": ["--data", "d", "--output", "o", "--runs-dir", "runs"],
    "train": ["--model", "m", "--data", "d", "--output", "o", "--runs-dir", "runs"],
    "tune": ["--model", "m", "--data", "d", "--output", "o", "--runs-dir", "runs"],
    "evaluate": ["--model", "m", "--data", "d"],
    "adapt": ["--data", "d", "--output", "o", "--runs-dir", "runs"],
    "hybrid": ["--baseline", "b", "--transformer", "t", "--data", "d", "--output", "o", "--runs-dir", "runs"],
    "quickstart": ["--data", "d", "--output", "o", "--runs-dir", "runs"],
}


@pytest.mark.parametrize("command", sorted(SEEDED_COMMANDS))
def test_a_negative_seed_is_one_line_in_every_command(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch, command: str) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, *command.split(), *SEEDED_COMMANDS[command], "--seed", "-1")
    assert_one_line_error(code, err, "seed must be a whole number >= 0, got -1")
    assert out == "" and list(tmp_path.iterdir()) == []  # refused before anything was made


def test_splits_a_score_cannot_trust_are_warned(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    same = tmp_path / "same"
    same.mkdir()
    make_reviews(60).to_csv(same / "train.csv", index=False)
    make_reviews(20).to_csv(same / "test.csv", index=False)  # the test split repeats train
    positive = tmp_path / "positive"
    positive.mkdir()
    make_reviews(60).to_csv(positive / "train.csv", index=False)
    make_reviews(40, start=100).query("label == 1").to_csv(positive / "test.csv", index=False)
    cases = {same: f"20 of the 20 test reviews of {same} (100%) also appear in train or validation",
             positive: f"the test split of {positive} holds only positive reviews (20)"}
    for folder, expected in cases.items():
        code, _, err = run_cli(capsys, "data", "info", "--data", str(folder))
        assert code == 0 and err.startswith(f"warning: {expected}") and err.count("\n") == 1, err
        code, _, err = run_cli(capsys, "baseline", "--data", str(folder), "--model", "logreg",
                               "--output", str(tmp_path / f"{folder.name}-out"), "--runs-dir", "none")
        assert code == 0 and f"\nwarning: {expected}" in err, err


def test_one_label_training_data(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    folder = tmp_path / "positive"
    folder.mkdir()
    make_reviews(80).query("label == 1").to_csv(folder / "train.csv", index=False)
    make_reviews(20, start=100).to_csv(folder / "test.csv", index=False)
    code, _, err = run_cli(capsys, "data", "info", "--data", str(folder))
    assert code == 0 and err.startswith(f"warning: the train split of {folder} holds only positive reviews")
    code, _, err = run_cli(capsys, "baseline", "--data", str(folder), "--output", str(tmp_path / "out"),
                           "--runs-dir", "none")
    assert_error_after_progress(code, err, f"the train split of {folder} must include both negative and "
                                           "positive reviews (only positive ones)")
    assert not (tmp_path / "out").exists()
