"""Fine-tuning: saved artifacts, label names, callbacks, resume, atomic output, CLI and bad inputs."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from imdb_sentiment.cli import main
from imdb_sentiment.config import DataSpec, TrainRun, preset, resolve_train_settings, train_config_from_file
from imdb_sentiment.errors import UserError
from imdb_sentiment.training import TrainResult, epoch_history, train, training_arguments, work_dir_for

# Tiny runs: 32 tokens, 8 reviews a step, no warm-up so the very first steps already move the weights.
TINY = preset("fast").replace(max_length=32, batch_size=8, eval_batch_size=16, epochs=1, warmup=0.0,
                              precision="fp32", learning_rate=1e-3)


@pytest.fixture(scope="module")
def splits():
    """In-memory train / validation / test frames: 16 + 8 + 8 reviews (2 training steps a epoch)."""
    def frame(prefix: str, n: int) -> pd.DataFrame:
        texts = [f"A wonderful, moving film {prefix}{i}." if i % 2 else f"A dull, boring film {prefix}{i}."
                 for i in range(n)]
        return pd.DataFrame({"id": [f"{prefix}{i}" for i in range(n)], "text": texts,
                             "label": [i % 2 for i in range(n)]})

    return {"train": frame("t", 16), "validation": frame("v", 8), "test": frame("x", 8)}


@pytest.fixture(scope="module")
def trained(tiny_encoder, splits, tmp_path_factory):
    """One saved run of the tiny encoder (shared by the artifact checks)."""
    output = tmp_path_factory.mktemp("runs") / "model"
    result = train(str(tiny_encoder), splits, output, TINY, TrainRun(preset="fast"), progress=False)
    return result, output


def run_cli(args, capsys):
    code = main([str(arg) for arg in args])
    return code, capsys.readouterr()


# --------------------------------------------------------------------------- a saved run


def test_saved_run_has_model_metrics_run_file_and_card(trained, splits):
    result, output = trained
    assert isinstance(result, TrainResult) and result.output_dir == output
    names = {path.name for path in output.iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer.json", "metrics.json", "predictions.parquet",
            "train_config.toml", "README.md"} <= names
    assert not work_dir_for(output).exists()  # checkpoints are cleaned up after success
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["n_test"] == len(splits["test"])
    assert metrics["accuracy"] == result.test_metrics["accuracy"]
    assert metrics["validation_accuracy"] == result.validation_metrics["accuracy"]
    assert metrics["train_seconds"] > 0 and metrics["config"]["max_length"] == 32
    assert [row["epoch"] for row in result.history] == [1.0]
    assert 0 <= result.history[0]["validation_accuracy"] <= 1 and "loss" in result.history[0]


def test_saved_model_loads_in_a_transformers_pipeline(trained):
    from transformers import pipeline

    _, output = trained
    classify = pipeline("text-classification", model=str(output), device="cpu")
    outputs = classify(["What a wonderful film.", "Dreadful."])
    assert {out["label"] for out in outputs} <= {"NEGATIVE", "POSITIVE"}
    assert all(0.5 <= out["score"] <= 1 for out in outputs)
    config = json.loads((output / "config.json").read_text())
    assert config["id2label"] == {"0": "NEGATIVE", "1": "POSITIVE"}


def test_saved_predictions_match_a_fresh_evaluation(trained, splits):
    from imdb_sentiment.config import EvaluationConfig
    from imdb_sentiment.evaluation import evaluate_model

    result, output = trained
    saved = pd.read_parquet(output / "predictions.parquet")
    # truncation read from train_config.toml
    again = evaluate_model(output, splits, settings=EvaluationConfig(precision="fp32"))
    assert (again["max_length"], again["truncation"]) == (32, "head-tail")
    assert again["accuracy"] == pytest.approx(result.test_metrics["accuracy"])
    assert saved["score"].between(0, 1).all()


def test_run_file_reproduces_the_settings(trained, tiny_encoder):
    _, output = trained
    config, run = train_config_from_file(output / "train_config.toml")
    assert config == TINY
    assert run["model"] == str(tiny_encoder) and run["preset"] == "fast"
    resolved, cli_run = resolve_train_settings(output / "train_config.toml", None, {}, {})
    assert resolved == TINY and cli_run["model"] == str(tiny_encoder)


def test_model_card_has_front_matter_metrics_and_usage(trained):
    import yaml

    result, output = trained
    card = (output / "README.md").read_text()
    front = yaml.safe_load(card.split("---")[1])
    assert front["pipeline_tag"] == "text-classification" and front["library_name"] == "transformers"
    accuracy = front["model-index"][0]["results"][0]["metrics"][0]
    assert accuracy == {"type": "accuracy", "value": round(result.test_metrics["accuracy"], 4)}
    assert 'pipeline("text-classification"' in card and "imdb-sentiment evaluate" in card
    assert "| learning_rate | 0.001 |" in card


# --------------------------------------------------------------------------- API behaviour


def test_callbacks_see_eval_accuracy_and_no_output_saves_nothing(tiny_encoder, splits, tmp_path,
                                                                 monkeypatch):
    from transformers import TrainerCallback

    class Recorder(TrainerCallback):
        def __init__(self) -> None:
            self.seen: list[float] = []

        def on_evaluate(self, args, state, control, metrics=None, **kwargs):
            self.seen.append(metrics["eval_accuracy"])

    monkeypatch.chdir(tmp_path)
    recorder = Recorder()
    result = train(str(tiny_encoder), splits, None, TINY.replace(epochs=2), TrainRun(evaluate_test=False),
                   callbacks=[recorder], progress=False)
    assert result.output_dir is None and result.test_metrics is None
    assert recorder.seen == [row["validation_accuracy"] for row in result.history]
    assert len(recorder.seen) == 2
    assert result.validation_metrics["accuracy"] == max(recorder.seen)
    assert list(tmp_path.iterdir()) == []


def test_interrupted_run_leaves_no_model_and_resumes_from_its_checkpoint(tiny_encoder, splits, tmp_path):
    from transformers import TrainerCallback

    class Interrupted(Exception):
        pass

    class StopAfterFirstSave(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            raise Interrupted

    class StepRecorder(TrainerCallback):
        def __init__(self) -> None:
            self.steps: list[int] = []

        def on_step_end(self, args, state, control, **kwargs):
            self.steps.append(state.global_step)

    output = tmp_path / "model"
    config = TINY.replace(epochs=2)
    with pytest.raises(Interrupted):
        train(str(tiny_encoder), splits, output, config, callbacks=[StopAfterFirstSave()], progress=False)
    assert not output.exists()
    assert [p.name for p in work_dir_for(output).glob("checkpoint-*")] == ["checkpoint-2"]

    with pytest.raises(UserError, match="other settings"):
        train(str(tiny_encoder), splits, output, config.replace(learning_rate=5e-4), TrainRun(resume=True),
              progress=False)
    recorder = StepRecorder()
    result = train(str(tiny_encoder), splits, output, config, TrainRun(resume=True), callbacks=[recorder],
                   progress=False)
    assert recorder.steps == [3, 4]  # epoch 1 was not repeated
    assert [row["epoch"] for row in result.history] == [1.0, 2.0]
    assert (output / "model.safetensors").is_file() and not work_dir_for(output).exists()


def test_a_data_spec_is_read_and_recorded_with_its_settings(tiny_encoder, splits, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for split in ("train", "test"):  # no validation split: train carves it as the config says
        splits[split].rename(columns={"text": "review"}).to_parquet(data / f"{split}.parquet")
    spec = TINY.data_spec(data, text_column="review", cleaning="none")
    with pytest.raises(UserError, match="disagree on seed"):
        train(str(tiny_encoder), DataSpec(str(data), text_column="review", seed=7), None, TINY,
              progress=False)
    result = train(str(tiny_encoder), spec, tmp_path / "model", TINY, progress=False)
    metrics = json.loads((tmp_path / "model" / "metrics.json").read_text())
    assert {key: metrics[key] for key in ("data", "text_column", "cleaning", "seed", "validation_size")} == {
        "data": str(data), "text_column": "review", "cleaning": "none", "seed": TINY.seed,
        "validation_size": TINY.validation_size}
    assert result.extra["n_train"] + result.extra["n_validation"] == len(splits["train"])
    _, run = train_config_from_file(tmp_path / "model" / "train_config.toml")
    assert (run["data"], run["text_column"], run["cleaning"]) == (str(data), "review", "none")


def test_failure_before_training_leaves_nothing_behind(tiny_encoder, splits, tmp_path):
    output = tmp_path / "model"
    with pytest.raises(UserError, match="beyond this model's 512 positions"):
        train(str(tiny_encoder), splits, output, TINY.replace(max_length=1024), progress=False)
    assert list(tmp_path.iterdir()) == []


def test_out_of_memory_suggests_a_smaller_batch(tiny_encoder, splits, tmp_path, monkeypatch):
    import torch
    from transformers import Trainer

    def out_of_memory(self, *args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 3.00 GiB")

    monkeypatch.setattr(Trainer, "train", out_of_memory)
    with pytest.raises(UserError, match=r"batch size 8; try a smaller --batch-size \(e.g. 4\)"):
        train(str(tiny_encoder), splits, tmp_path / "model", TINY, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_a_classifier_with_other_label_names_is_saved_as_negative_positive(tmp_path):
    from conftest import build_tiny_model

    from imdb_sentiment.modeling import load_classifier
    from imdb_sentiment.training import _name_labels

    folder = build_tiny_model(tmp_path / "swapped", id2label={0: "pos", 1: "neg"})
    model, _ = load_classifier(folder, require_head=False)
    assert _name_labels(model) == [1, 0]  # our negative is output 1
    assert model.config.id2label == {0: "POSITIVE", 1: "NEGATIVE"}


def test_training_arguments_for_a_cpu_run(tmp_path):
    args = training_arguments(preset("fast"), tmp_path, device="cpu")
    assert args.eval_strategy == "epoch" and args.save_strategy == "epoch"
    assert args.load_best_model_at_end and args.metric_for_best_model == "accuracy"
    assert args.warmup_steps == 0.1 and args.weight_decay == 0.01 and args.learning_rate == 1e-4
    assert getattr(args, "train_sampling_strategy", "group_by_length") == "group_by_length"
    assert args.dataloader_num_workers == 0 and not args.torch_compile and args.optim == "adamw_torch"
    seed_args = training_arguments(preset("seed"), tmp_path, device="cpu")
    assert not seed_args.bf16 and getattr(seed_args, "train_sampling_strategy", "random") == "random"


def test_epoch_history_joins_losses_and_validation_scores():
    log = [{"loss": 0.7, "epoch": 1.0, "step": 5}, {"eval_accuracy": 0.6, "eval_loss": 0.65, "epoch": 1.0},
           {"loss": 0.5, "epoch": 2.0}, {"eval_accuracy": 0.8, "eval_loss": 0.45, "epoch": 2.0},
           {"train_runtime": 3.0, "epoch": 2.0}]
    assert epoch_history(log) == [
        {"epoch": 1.0, "validation_accuracy": 0.6, "validation_loss": 0.65, "loss": 0.7},
        {"epoch": 2.0, "validation_accuracy": 0.8, "validation_loss": 0.45, "loss": 0.5},
    ]


# --------------------------------------------------------------------------- CLI


@pytest.fixture
def data_dir(tmp_path, splits):
    folder = tmp_path / "data"
    folder.mkdir()
    for split, frame in splits.items():
        frame.to_parquet(folder / f"{split}.parquet")
    return folder


def test_cli_train_saves_then_reports_an_unreachable_hub(tiny_encoder, data_dir, tmp_path, capsys,
                                                         monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    output = tmp_path / "model"
    code, captured = run_cli(["train", "--model", tiny_encoder, "--data", data_dir, "--output", output,
                              "--max-length", 32, "--batch-size", 8, "--epochs", 1, "--precision", "fp32",
                              "--push-to-hub", "someone/imdb-model"], capsys)
    assert code == 2
    assert captured.err.strip().splitlines()[-1].startswith(f"error: model saved in {output}, but pushing")
    assert "test accuracy" in captured.out
    assert (output / "model.safetensors").is_file()
    config, run = train_config_from_file(output / "train_config.toml")
    assert (config.max_length, config.batch_size, config.learning_rate) == (32, 8, 1e-4)
    assert run["data"] == str(data_dir)


@pytest.mark.parametrize(("extra", "message"), [
    (["--model", "distilbert-base-uncased-finetuned-sst-2-english"], "pass a local model folder"),
    (["--model", "./no/such/model"], "model path not found"),
    (["--model", "{encoder}", "--max-length", 4096], "beyond this model's 512 positions"),
    (["--model", "{encoder}", "--preset", "turbo"], "unknown preset"),
    (["--model", "{encoder}", "--learning-rate", -1], "learning_rate must be positive"),
    (["--model", "{encoder}", "--config", "{bad_config}"], "unknown key(s)"),
    (["--data", "{data}"], "pass --model"),
])
def test_cli_train_bad_input_is_one_line(extra, message, tiny_encoder, data_dir, tmp_path, capsys):
    bad_config = tmp_path / "bad.toml"
    bad_config.write_text('modle = "typo"\n')
    values = {"encoder": tiny_encoder, "bad_config": bad_config, "data": data_dir}
    args = [str(arg).format(**values) for arg in extra]
    if "--data" not in args:
        args += ["--data", str(data_dir)]
    code, captured = run_cli(["train", *args, "--output", tmp_path / "out"], capsys)
    assert code == 2
    assert captured.err.strip().splitlines()[-1].startswith("error:")
    assert message in captured.err and "Traceback" not in captured.err
    assert not (tmp_path / "out").exists()


def test_cli_train_refuses_an_existing_output(tiny_encoder, data_dir, tmp_path, capsys):
    output = tmp_path / "out"
    output.mkdir()
    (output / "precious.bin").write_text("keep")
    code, captured = run_cli(["train", "--model", tiny_encoder, "--data", data_dir, "--output", output],
                             capsys)
    assert code == 2 and "--overwrite" in captured.err
    assert [p.name for p in output.iterdir()] == ["precious.bin"]


def test_quick_runs_validate_and_test_on_subsets_of_the_same_size(tmp_path):
    config, run = resolve_train_settings(None, "seed", {"max_train_samples": 300}, {"model": "m"})
    assert (config.max_eval_samples, run["max_test_samples"]) == (300, 300)
    config, run = resolve_train_settings(None, None, {"max_train_samples": 300, "max_eval_samples": 50},
                                         {"model": "m", "max_test_samples": 25_000})
    assert (config.max_eval_samples, run["max_test_samples"]) == (50, 25_000)
    assert run["preset"] == "fast" and run["data"] == "stanfordnlp/imdb"


def test_explicit_options_beat_the_config_file(tmp_path):
    file = tmp_path / "run.toml"
    file.write_text('preset = "seed"\nmodel = "from-file"\n[train]\nepochs = 2\nlearning_rate = 3e-5\n')
    config, run = resolve_train_settings(file, None, {"learning_rate": 1e-4}, {"model": None})
    assert (config.epochs, config.learning_rate, config.batch_size) == (2, 1e-4, 16)
    assert run["model"] == "from-file" and run["preset"] == "seed"


# --------------------------------------------------------------------------- real model


def shortest(frame: pd.DataFrame, n: int) -> pd.DataFrame:
    """The ``n`` shortest reviews, half of each label, shuffled: 64 tokens then see most of each one."""
    ranked = frame.assign(chars=frame["text"].str.len()).sort_values("chars", kind="stable")
    picked = ranked.groupby("label").head(n // 2).drop(columns="chars")
    return picked.sample(frac=1.0, random_state=0).reset_index(drop=True)


@pytest.mark.slow
def test_minilm_learns_sentiment_from_a_few_hundred_reviews(shared_model, shared_data):
    """320 short training reviews x 64 tokens, one epoch: clearly above chance on held-out reviews."""
    from imdb_sentiment.data import load_splits

    splits = load_splits(shared_data)
    data = {"train": shortest(splits["train"], 320), "validation": shortest(splits["validation"], 64),
            "test": shortest(splits["test"], 200)}
    # A high learning rate so that 20 steps suffice (about 0.85 here).
    config = preset("fast").replace(max_length=64, epochs=1, batch_size=16, learning_rate=2e-4,
                                    precision="fp32")
    result = train(str(shared_model), data, None, config, progress=False)
    assert result.test_metrics["n_test"] == 200
    # Chance is 0.5 on this balanced set; 0.65 is more than 4 standard errors above it.
    assert result.test_metrics["accuracy"] >= 0.65


def test_progress_bar_shows_steps_epochs_and_validation(tiny_encoder, splits, capsys):
    train(str(tiny_encoder), splits, None, TINY.replace(epochs=2), TrainRun(evaluate_test=False),
          progress=True)
    err = capsys.readouterr().err
    assert "fine-tuning" in err and "4/4" in err  # 16 reviews, batch 8, 2 epochs
    assert "epoch 2.00/2" in err
    assert err.count("validation accuracy") == 2
    assert "{'loss'" not in err and "'eval_accuracy'" not in err  # no raw log dicts


def test_cli_training_is_quiet_when_stderr_is_not_a_terminal(tiny_encoder, data_dir, tmp_path, capsys):
    code, captured = run_cli(["train", "--model", tiny_encoder, "--data", data_dir, "--output",
                              tmp_path / "m", "--max-length", 32, "--batch-size", 8, "--epochs", 1,
                              "--precision", "fp32", "--no-test"], capsys)
    assert code == 0, captured.err
    assert "fine-tuning" not in captured.err and "it/s" not in captured.err
