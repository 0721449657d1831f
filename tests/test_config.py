"""Training settings: presets, explicit overrides, run files and their round trip."""

from __future__ import annotations

from pathlib import Path

import pytest

from imdb_sentiment.config import (
    PRESETS,
    RUN_KEYS,
    DataSpec,
    TrainConfig,
    TrainRun,
    preset,
    resolve_train_settings,
    to_toml,
    train_config_from_file,
)
from imdb_sentiment.errors import UserError

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def test_presets_follow_the_study_and_our_recipe():
    seed, tuned, fast = preset("seed"), preset("seed-tuned"), preset("fast")
    assert (seed.learning_rate, seed.batch_size, seed.epochs) == (2e-5, 16, 1)
    assert (tuned.learning_rate, tuned.batch_size, tuned.epochs) == (1e-5, 32, 3)
    assert (seed.truncation, seed.precision, seed.warmup, seed.weight_decay) == ("head", "fp32", 0, 0)
    assert (fast.learning_rate, fast.batch_size, fast.epochs) == (1e-4, 32, 3)
    assert (fast.warmup, fast.weight_decay, fast.truncation) == (0.1, 0.01, "head-tail")
    assert fast.precision == "auto" and fast.group_by_length and not seed.group_by_length


def test_preset_returns_a_copy():
    changed = preset("fast")
    changed.learning_rate = 1.0
    assert preset("fast").learning_rate == 1e-4


def test_unknown_preset_is_refused():
    with pytest.raises(UserError, match="unknown preset"):
        preset("turbo")


def test_explicit_values_override_and_none_keeps_the_preset():
    config = preset("seed").replace(learning_rate=3e-5, epochs=None, max_train_samples=100)
    assert config.learning_rate == 3e-5
    assert config.epochs == 1
    assert config.max_train_samples == 100


@pytest.mark.parametrize(("overrides", "message"), [
    ({"learning_rate": -1.0}, "learning_rate must be positive"),
    ({"warmup": 1.0}, "warmup"),
    ({"truncation": "middle"}, "truncation must be one of"),
    ({"precision": "fp8"}, "precision must be"),
    ({"max_length": 64, "head_tokens": 64}, "head_tokens"),
    ({"max_train_samples": 0}, "max_train_samples"),
    ({"batch_size": "32"}, "batch_size must be int"),
    ({"batch_size": 2.5}, "batch_size must be int"),
    ({"group_by_length": 1}, "group_by_length must be bool"),
    ({"learnign_rate": 1e-3}, "unknown training setting"),
    ({"seed": -1}, "seed must be a whole number >= 0, got -1"),
])
def test_bad_settings_are_refused(overrides, message):
    with pytest.raises(UserError, match=message):
        preset("fast").replace(**overrides)


def test_integers_are_accepted_where_floats_are_expected():
    assert preset("fast").replace(learning_rate=1, epochs=2).epochs == 2


def test_toml_round_trip_reproduces_the_settings(tmp_path):
    config = preset("fast").replace(epochs=2, max_length=256, head_tokens=64, max_train_samples=500,
                                    learning_rate=5e-5, group_by_length=False)
    run = {"model": "some/model", "data": "../shared/data/imdb", "preset": "fast", "cleaning": "none",
           "max_test_samples": None}
    file = tmp_path / "train_config.toml"
    file.write_text(to_toml(run, config), encoding="utf-8")
    loaded, loaded_run = train_config_from_file(file)
    assert loaded == config
    assert loaded_run == {"model": "some/model", "data": "../shared/data/imdb", "preset": "fast",
                          "cleaning": "none"}


def test_round_trip_keeps_settings_that_differ_from_the_base_preset(tmp_path):
    """Values equal to None (head_tokens: a quarter of the budget) survive as the default."""
    config = preset("seed").replace(head_tokens=None)
    file = tmp_path / "run.toml"
    file.write_text(to_toml({"preset": "seed"}, config), encoding="utf-8")
    assert train_config_from_file(file)[0] == config


def test_yaml_run_file_and_base_preset_override(tmp_path):
    file = tmp_path / "run.yaml"
    file.write_text("preset: seed\nmodel: m\ntrain:\n  epochs: 2\n", encoding="utf-8")
    config, run = train_config_from_file(file)
    assert (config.learning_rate, config.epochs) == (2e-5, 2)
    assert run["model"] == "m"
    config, _ = train_config_from_file(file, base_preset="fast")
    assert (config.learning_rate, config.epochs) == (1e-4, 2)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_shipped_config_files_match_the_presets(name):
    config, run = train_config_from_file(CONFIGS / f"{name}.toml")
    assert config == preset(name)
    assert run["preset"] == name
    assert set(run) <= set(RUN_KEYS)


def test_missing_or_broken_run_files_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        train_config_from_file(tmp_path / "nope.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[train\nepochs = ", encoding="utf-8")
    with pytest.raises(UserError, match="cannot parse"):
        train_config_from_file(broken)
    wrong = tmp_path / "wrong.toml"
    wrong.write_text("[train]\nepochs = \"many\"\n", encoding="utf-8")
    with pytest.raises(UserError, match="epochs"):
        train_config_from_file(wrong)


def test_default_config_is_valid():
    assert TrainConfig().to_dict()["truncation"] == "head-tail"


def test_a_run_file_with_a_negative_seed_is_refused(tmp_path):
    run_file = tmp_path / "run.toml"
    run_file.write_text("[train]\nseed = -1\n", encoding="utf-8")
    with pytest.raises(UserError, match="seed must be a whole number >= 0, got -1"):
        train_config_from_file(run_file)


@pytest.mark.parametrize(("settings", "message"), [
    ({"seed": -1}, "seed must be a whole number >= 0"),
    ({"seed": 1.5}, "seed must be a whole number >= 0"),
    ({"cleaning": "fancy"}, "cleaning must be one of basic, none, study"),
    ({"validation_size": 1.0}, "validation size must be a fraction"),
    ({"test_size": 0.0}, "test size must be a fraction"),
    ({"group_column": "director"}, "group column must be one of movie"),
])
def test_bad_data_settings_are_refused_before_any_data_is_read(settings, message):
    with pytest.raises(UserError, match=message):
        DataSpec("no/such/folder/anywhere", **settings)


def test_a_run_gets_its_data_settings_from_its_training_settings():
    spec = TrainConfig(seed=7, validation_size=0.2, group_column="movie").data_spec(
        "reviews.csv", cleaning="study", text_column="review", label_column="sentiment")
    assert spec == DataSpec("reviews.csv", text_column="review", label_column="sentiment", cleaning="study",
                            seed=7, validation_size=0.2, group_column="movie")


def test_a_data_spec_records_every_field_with_the_source_as_data():
    spec = DataSpec("reviews.csv", text_column="review", seed=7, group_column="movie")
    assert spec.record() == {"data": "reviews.csv", "text_column": "review", "label_column": "label",
                             "cleaning": "basic", "seed": 7, "validation_size": 0.1, "group_column": "movie",
                             "test_size": 0.2}


def test_run_settings_are_checked_when_made():
    with pytest.raises(UserError, match="preset must be one of"):
        TrainRun(preset="quick")
    with pytest.raises(UserError, match="max_test_samples must be a whole number"):
        TrainRun(max_test_samples="all")  # type: ignore[arg-type]


def test_train_and_tune_merge_settings_in_one_place(tmp_path):
    """Preset, then run file, then options; run keys from the options, else the file, else defaults."""
    file = tmp_path / "run.toml"
    file.write_text('preset = "seed"\nmodel = "from-file"\ncleaning = "none"\n[train]\nepochs = 2\n')
    config, run = resolve_train_settings(file, None, {"epochs": 4.0}, {"text_column": "review"})
    assert (config.epochs, config.learning_rate) == (4.0, 2e-5)  # the seed preset under the file
    assert (run["model"], run["cleaning"], run["text_column"], run["preset"]) == (
        "from-file", "none", "review", "seed")
    with pytest.raises(UserError, match="pass --model"):
        resolve_train_settings(None, None, {}, {})
    (tmp_path / "bad.toml").write_text('model = "m"\nlearning_rate = 1e-4\n')
    with pytest.raises(UserError, match="unknown key"):
        resolve_train_settings(tmp_path / "bad.toml", None, {}, {})
