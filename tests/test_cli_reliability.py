"""The command line under user mistakes: usage errors, interrupts, overlapping and unwritable outputs,
damaged weights, unknown model ids. Every mistake is one line (or click's usage message) and exit 2."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from imdb_sentiment.cli import _exception_types, app, main

ROOT = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("onnx_cache")


def run(argv: list[object], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return code, out, err


# --------------------------------------------------------------------------- usage errors


def _commands() -> list[tuple[list[str], object]]:
    """Every leaf command of the app, found by walking typer's click tree (groups included)."""
    import typer.main

    found: list[tuple[list[str], object]] = []

    def walk(command: object, path: list[str]) -> None:
        children = getattr(command, "commands", None)
        if children:
            for name, child in children.items():
                walk(child, [*path, name])
        else:
            found.append((path, command))

    walk(typer.main.get_command(app), [])
    return found


COMMANDS = _commands()


def _is_number(param: object) -> bool:
    annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)  # typer >= 0.29
    click_type = getattr(getattr(param, "type", None), "name", "")  # click-based typer
    return annotation in (int, float) or click_type in ("integer", "float")


def _malformed(command: object) -> list[str]:
    """A number option given a word, or else a value option given no value."""
    options = [p for p in command.params if getattr(p, "opts", None) and p.opts[0].startswith("--")
               and not getattr(p, "is_flag", False) and type(p).__name__.endswith("Option")]
    numbers = [p for p in options if _is_number(p)]
    return [numbers[0].opts[0], "abc"] if numbers else [options[0].opts[0]]


def test_the_walk_finds_every_command() -> None:
    names = {" ".join(path) for path, _ in COMMANDS}
    assert {"predict", "evaluate", "train", "baseline", "serve", "export", "data info"} <= names
    assert len(names) == len(COMMANDS) >= 11


def _assert_usage_error(code: int, out: str, err: str, path: list[str]) -> None:
    assert code == 2, (path, out, err)
    assert "Traceback" not in out + err
    assert f"Usage: imdb-sentiment {' '.join(path)}".rstrip() in err, (path, err)
    assert "Error:" in err and f"Try 'imdb-sentiment {' '.join(path)}" in err.replace("  ", " ")


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_every_command_refuses_usage_mistakes(path: list[str], command: object,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    _assert_usage_error(*run([*path, "--no-such-option"], capsys), path)
    malformed = _malformed(command)
    code, out, err = run([*path, *malformed], capsys)
    if len(malformed) == 2:
        _assert_usage_error(code, out, err, path)
        assert "Invalid value" in err
    else:  # click names the option without the usage lines here
        assert code == 2 and "requires an argument" in err and "Traceback" not in out + err
    if any(getattr(param, "required", False) for param in command.params):
        code, out, err = run(path, capsys)  # commands without required options would run
        _assert_usage_error(code, out, err, path)
        assert "Missing" in err


def test_unknown_command_and_bare_group(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["no-such-command"], capsys)
    assert code == 2 and "No such command 'no-such-command'" in err and "Traceback" not in out + err
    code, out, err = run(["data"], capsys)  # a group without its command: its help
    assert code in (0, 2) and "info" in out + err and "Traceback" not in out + err


def test_bare_program_shows_help_without_a_traceback() -> None:
    """Plain ``imdb-sentiment``: the help, and click's exit code for a missing command: 2 since
    click 8.2 (and typer 0.29's own copy of it), 0 with older click."""
    command = str(Path(sys.executable).with_name("imdb-sentiment"))
    done = subprocess.run([command], capture_output=True, text=True, timeout=120)
    assert done.returncode in (0, 2)
    shown = done.stdout + done.stderr  # typer's rich help goes to stdout, click's plain one to stderr
    assert "Traceback" not in shown and "predict" in shown and "Usage:" in shown


def test_version_and_help_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["--version"], capsys)
    assert code == 0 and out.startswith("imdb-sentiment ")
    code, out, _ = run(["predict", "--help"], capsys)
    assert code == 0 and "--batch-size" in out


def test_flags_show_no_type_in_help(capsys: pytest.CaptureFixture[str]) -> None:
    for path, _ in COMMANDS:
        code, out, _ = run([*path, "--help"], capsys)
        assert code == 0 and "<bool>" not in out, path
    code, out, _ = run(["--help"], capsys)
    assert code == 0 and "<bool>" not in out and "--version" in out


def test_both_copies_of_click_are_recognised() -> None:
    """Whichever click the installed typer raises (its own copy or click itself) is handled."""
    kinds = _exception_types("ClickException")
    assert kinds
    try:
        from typer._click.exceptions import ClickException
    except ImportError:
        ClickException = None
    if ClickException is not None:
        assert ClickException in kinds
    try:
        import click
    except ImportError:
        return
    assert click.ClickException in kinds and click.exceptions.Abort in _exception_types("Abort")


# --------------------------------------------------------------------------- interrupts


@pytest.fixture
def reviews_csv(tmp_path: Path) -> Path:
    path = tmp_path / "reviews.csv"
    pd.DataFrame({"text": ["A lovely film.", "Dreadful."]}).to_csv(path, index=False)
    return path


def _interrupting(*_: object, **__: object) -> None:
    raise KeyboardInterrupt


def test_ctrl_c_in_predict_exits_130_and_writes_nothing(tiny_classifier: Path, reviews_csv: Path,
                                                        tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from imdb_sentiment.inference import SentimentClassifier

    monkeypatch.setattr(SentimentClassifier, "predict_details", _interrupting)
    out = tmp_path / "out.csv"
    code, _, err = run(["predict", "-m", tiny_classifier, "--backend", "torch", "-i", reviews_csv, "-o", out],
                       capsys)
    assert code == 130 and err.strip() == "interrupted"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reviews.csv"]


def test_ctrl_c_in_evaluate_exits_130_and_writes_nothing(tiny_classifier: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from imdb_sentiment import evaluation

    data = _split_folder(tmp_path / "data")
    monkeypatch.setattr(evaluation, "write_evaluation", _interrupting)  # in the middle of writing
    code, _, err = run(["evaluate", "-m", tiny_classifier, "--data", data, "-o", tmp_path / "eval",
                        "--max-samples", 4, "--runs-dir", "none"], capsys)
    assert code == 130 and err.strip().splitlines()[-1] == "interrupted"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_sigint_exits_130_with_one_line(tiny_classifier: Path) -> None:
    """A real Ctrl-C, delivered while ``predict`` waits for reviews on stdin."""
    # A terminal's Ctrl-C: a test run started in the background (`pytest &`) hands its children an
    # ignored SIGINT, so Python would not turn it into KeyboardInterrupt there.
    code = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
            "from imdb_sentiment.cli import main; print('ready', file=sys.stderr, flush=True); "
            f"sys.exit(main(['predict', '-m', {str(tiny_classifier)!r}]))")
    process = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert process.stderr.readline() == "ready\n"  # Python runs: the interrupt becomes an exception
    time.sleep(1)
    process.send_signal(signal.SIGINT)
    # stdin stays open until it exits: closing it (as communicate() does) could end the input
    # before a busy process (still loading the model) gets to the interrupt.
    process.wait(timeout=60)
    out, err = process.stdout.read(), process.stderr.read()
    process.stdin.close()
    assert process.returncode == 130, err
    assert err.strip() == "interrupted" and out == ""


# --------------------------------------------------------------------------- outputs that would lose data


def _split_folder(folder: Path) -> Path:
    folder.mkdir(parents=True)
    positive = [f"A wonderful film {i}, great acting." for i in range(12)]
    negative = [f"A dreadful film {i}, boring plot." for i in range(12)]
    frame = pd.DataFrame({"text": positive + negative, "label": [1] * 12 + [0] * 12})
    frame.to_csv(folder / "train.csv", index=False)
    frame.to_csv(folder / "test.csv", index=False)
    return folder


def _overlap_cases(data: Path, model: Path, runs: Path) -> dict[str, list[object]]:
    return {
        "baseline": ["baseline", "--data", data, "-o", data, "--runs-dir", "none"],
        "baseline inside": ["baseline", "--data", data, "-o", data / "out", "--runs-dir", "none"],
        "baseline contains": ["baseline", "--data", data / "train.csv", "-o", data, "--runs-dir", "none"],
        "evaluate": ["evaluate", "-m", model, "--data", data, "-o", model, "--runs-dir", "none"],
        "train": ["train", "-m", model, "--data", data, "-o", data, "--runs-dir", "none"],
        "tune": ["tune", "-m", model, "--data", data, "-o", model.parent, "--runs-dir", runs.parent / "tune"],
        "export": ["export", "-m", model, "-o", model],
        "quickstart": ["quickstart", "--data", data, "-m", model, "--pretrained", "none", "-o", data],
        "report": ["report", "--runs-dir", runs, "-o", runs],
    }


@pytest.mark.parametrize("case", list(_overlap_cases(Path(), Path(), Path())))
def test_an_output_overlapping_an_input_is_refused_before_work(case: str, tiny_classifier: Path,
                                                               tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    data = _split_folder(tmp_path / "data")
    model = tmp_path / "models" / "tiny"
    shutil.copytree(tiny_classifier, model)
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "keep.txt").write_text("run records", encoding="utf-8")

    def inputs() -> list[str]:
        return sorted(str(p.relative_to(tmp_path)) for folder in (data, model.parent, runs)
                      for p in folder.rglob("*"))

    before = inputs()
    started = time.perf_counter()
    code, _, err = run([*_overlap_cases(data, model, runs)[case], "--overwrite"], capsys)
    assert code == 2, err
    last = err.strip().splitlines()[-1]  # train and tune may print a note first
    assert last.startswith("error: output") and "input" in last and "Traceback" not in err
    assert inputs() == before  # nothing lost, nothing added
    assert time.perf_counter() - started < 20  # refused before loading data or models


def test_check_no_overlap_relations(tmp_path: Path) -> None:
    from imdb_sentiment.artifacts import check_no_overlap
    from imdb_sentiment.errors import UserError

    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "x.csv").write_text("text\n", encoding="utf-8")
    for output, word in ((folder, "is the input"), (folder / "sub", "inside"), (tmp_path, "contains")):
        with pytest.raises(UserError, match=word):
            check_no_overlap(output, [folder])
    check_no_overlap(tmp_path / "elsewhere", [folder, "org/hub-id", None])  # siblings and Hub ids are fine
    with pytest.raises(UserError, match="contains"):
        check_no_overlap(tmp_path, ["org/hub-id", folder / "x.csv"])


# --------------------------------------------------------------------------- unwritable outputs


@pytest.mark.skipif(not Path("/sys/kernel").is_dir(), reason="needs Linux /sys")
def test_an_unwritable_output_fails_before_the_work(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from imdb_sentiment import data as data_module

    data = _split_folder(tmp_path / "data")

    def never(*_: object, **__: object) -> None:
        raise AssertionError("the work started")

    monkeypatch.setattr(data_module, "load_splits", never)
    code, _, err = run(["baseline", "--data", data, "-o", "/sys/kernel/imdb-out", "--runs-dir", "none"],
                       capsys)
    assert code == 2 and err.startswith("error: cannot write /sys/kernel/imdb-out") and err.count("\n") == 1


def test_a_late_write_failure_is_one_line_and_leaves_nothing(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from imdb_sentiment import artifacts

    data = _split_folder(tmp_path / "data")
    real_replace = os.replace

    def full_disk(source: object, target: object) -> None:
        if str(target).endswith("run"):
            raise OSError(28, "No space left on device")
        real_replace(source, target)

    monkeypatch.setattr(artifacts.os, "replace", full_disk)
    code, _, err = run(["baseline", "--data", data, "-m", "logreg", "-o", tmp_path / "run",
                        "--runs-dir", "none"], capsys)
    assert code == 2 and "cannot write" in err and "No space left on device" in err
    assert "Traceback" not in err and sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_a_write_error_inside_the_output_is_one_line(tmp_path: Path) -> None:
    from imdb_sentiment.artifacts import atomic_output_dir
    from imdb_sentiment.errors import UserError

    with pytest.raises(UserError, match=r"cannot write .*out: Permission denied"), \
            atomic_output_dir(tmp_path / "out") as folder:
        raise PermissionError(13, "Permission denied", str(folder / "model.bin"))
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError), atomic_output_dir(tmp_path / "out"):
        raise ValueError("not a write problem: passed on as it is")


# --------------------------------------------------------------------------- damaged weights


DAMAGE = {
    "empty": lambda data: b"",
    "truncated": lambda data: data[: len(data) // 2],
    "random": lambda data: os.urandom(4096),
}


@pytest.fixture(params=list(DAMAGE))
def damaged_model(request: pytest.FixtureRequest, tiny_classifier: Path, tmp_path: Path) -> Path:
    folder = tmp_path / f"model-{request.param}"
    shutil.copytree(tiny_classifier, folder)
    weights = folder / "model.safetensors"
    weights.write_bytes(DAMAGE[request.param](weights.read_bytes()))
    return folder


def _one_line_naming_the_file(code: int, err: str, model: Path) -> None:
    assert code == 2, err
    line = err.strip().splitlines()[-1]
    assert line.startswith("error: damaged weights file") and str(model / "model.safetensors") in line
    assert "Traceback" not in err


def test_damaged_weights_are_one_line_for_predict_evaluate_and_serve(
        damaged_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMDB_SENTIMENT_CACHE", str(tmp_path / "cache"))
    for backend in ("torch", "onnx"):
        code, _, err = run(["predict", "-m", damaged_model, "--backend", backend, "A fine film."], capsys)
        _one_line_naming_the_file(code, err, damaged_model)
    assert not any((tmp_path / "cache").rglob("*.onnx"))
    data = _split_folder(tmp_path / "data")
    code, _, err = run(["evaluate", "-m", damaged_model, "--data", data, "-o", tmp_path / "eval",
                        "--runs-dir", "none"], capsys)
    _one_line_naming_the_file(code, err, damaged_model)
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code, _, err = run(["serve", "-m", damaged_model, "--port", port, "--backend", "torch"], capsys)
    _one_line_naming_the_file(code, err, damaged_model)


# --------------------------------------------------------------------------- model ids


def test_a_missing_model_path_fails_at_once(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """``outputs/nonexistent`` looks like a Hub id, but ``outputs`` is a local folder."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "outputs").mkdir()
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    started = time.perf_counter()
    code, _, err = run(["predict", "--model", "outputs/nonexistent", "A film."], capsys)
    assert code == 2 and err == "error: model path not found: outputs/nonexistent\n"
    assert time.perf_counter() - started < 10


def test_an_unreachable_hub_fails_at_once(capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HTTPS_PROXY", "https_proxy", "ALL_PROXY",
                 "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    started = time.perf_counter()
    code, _, err = run(["predict", "--model", "nobody-here/no-such-model", "A film."], capsys)
    assert code == 2 and "Hub cannot be reached" in err and err.count("\n") == 1
    assert "Retrying" not in err and time.perf_counter() - started < 10


# --------------------------------------------------------------------------- predict details


def test_non_utf8_bytes_in_an_argument_are_one_line(tiny_classifier: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    argument = os.fsdecode(b"caf\xe9 was great")  # what Python makes of these bytes in argv
    code, out, err = run(["predict", "-m", tiny_classifier, "fine", argument], capsys)
    assert code == 2 and out == ""
    assert err == "error: review 2 on the command line is not valid UTF-8 (bad byte at offset 3); " \
                  "pass UTF-8 text\n"


def test_input_without_output_prints_the_table(tiny_classifier: Path, reviews_csv: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    import io
    import json

    code, out, err = run(["predict", "-m", tiny_classifier, "-i", reviews_csv], capsys)
    assert code == 0, err
    table = pd.read_csv(io.StringIO(out))
    assert table["text"].tolist() == ["A lovely film.", "Dreadful."]
    assert set(table["label"]) <= {"POSITIVE", "NEGATIVE"}
    assert "-> stdout" in err and " 0.0 s" not in err  # short times keep their digits
    code, out, _ = run(["predict", "-m", tiny_classifier, "-i", reviews_csv, "--format", "jsonl"], capsys)
    records = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [r["text"] for r in records] == ["A lovely film.", "Dreadful."]
    assert [r["label"] for r in records] == table["label"].tolist()
    target = tmp_path / "results.txt"
    code, _, _ = run(["predict", "-m", tiny_classifier, "-i", reviews_csv, "-o", target, "--format", "json"],
                     capsys)
    assert code == 0 and [r["text"] for r in json.loads(target.read_text())] == table["text"].tolist()
    code, _, err = run(["predict", "-m", tiny_classifier, "-i", reviews_csv, "--format", "xml"], capsys)
    assert code == 2 and "--format must be one of" in err


def test_durations_keep_three_significant_digits() -> None:
    from imdb_sentiment.cli.predict_cmds import _duration

    assert [_duration(s) for s in (0.0042137, 0.153, 12.44, 95.2, 1234.0)] == \
        ["4.21 ms", "0.153 s", "12.4 s", "95.2 s", "1234 s"]


# --------------------------------------------------------------------------- errors without a message


def test_an_export_failure_without_a_message_is_one_line(tiny_classifier: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    def fail(*args: object, **kwargs: object) -> None:
        raise RuntimeError()

    monkeypatch.setattr(torch.onnx, "export", fail)
    code, _, err = run(["export", "-m", tiny_classifier, "-o", tmp_path / "onnx"], capsys)
    assert (code, err) == (2, "error: ONNX export failed: RuntimeError\n")
    assert not (tmp_path / "onnx").exists()


def test_refused_training_settings_without_a_message_are_one_line(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import transformers

    from imdb_sentiment.config import preset
    from imdb_sentiment.errors import UserError
    from imdb_sentiment.training import training_arguments

    def refuse(output_dir: str, **settings: object) -> None:
        raise ValueError("")

    monkeypatch.setattr(transformers, "TrainingArguments", refuse)
    with pytest.raises(UserError, match=r"^invalid training settings: ValueError$"):
        training_arguments(preset("fast"), tmp_path, device="cpu")
