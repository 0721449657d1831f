"""The hybrid classifier: choices made on validation, the folder format, every entry point, bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_baselines import NEGATIVE, NEUTRAL, POSITIVE

from imdb_sentiment.artifacts import read_json
from imdb_sentiment.baselines import BaselineConfig, build_baseline, run_baseline, save_baseline
from imdb_sentiment.classifier import Classifier
from imdb_sentiment.config import DataSpec, InferenceConfig
from imdb_sentiment.errors import UserError
from imdb_sentiment.hybrid import (
    HYBRID_FILE,
    HybridClassifier,
    HybridConfig,
    Stacker,
    build_hybrid,
    choose,
    combine,
    load_model,
)
from imdb_sentiment.inference import SentimentClassifier


def reviews(n: int, seed: int, split: str) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        label = i % 2
        words = [*rng.choice(NEUTRAL, 6), *rng.choice(POSITIVE if label else NEGATIVE, 2)]
        rows.append({"id": f"{split}/{i}", "text": " ".join(words) + f" (review {i}).", "label": label,
                     "movie": f"tt{seed}{i % 15:03d}"})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("hybrid-data")
    reviews(160, 1, "train").to_parquet(folder / "train.parquet")
    reviews(40, 2, "test").to_parquet(folder / "test.parquet")
    return folder


@pytest.fixture(scope="module")
def baseline_dir(data_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("baseline") / "nbsvm"
    run_baseline(DataSpec(str(data_dir), validation_size=0.25), BaselineConfig("nbsvm"), out)
    return out


@pytest.fixture(scope="module")
def hybrid_dir(data_dir, baseline_dir, tiny_classifier, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("hybrid") / "hybrid"
    build_hybrid(baseline_dir, tiny_classifier, data_dir, out,
                 HybridConfig(validation_size=0.25, backend="torch", device="cpu"))
    return out


# --------------------------------------------------------------------------- choices


def test_combine_says_who_decided() -> None:
    screen = np.array([0.95, 0.55, 0.02, 0.45])
    transformer = np.array([np.nan, 0.9, np.nan, 0.1])
    positive, decided = combine(screen, transformer, "cascade", 0.3, "transformer", Stacker())
    assert decided.tolist() == ["screen", "transformer", "screen", "transformer"]
    assert positive.tolist() == [0.95, 0.9, 0.02, 0.1]
    positive, decided = combine(screen, np.array([0.9, 0.9, 0.1, 0.1]), "ensemble", 0.3, "blend",
                                Stacker(1.0, 1.0, 0.0))
    assert set(decided) == {"blend"}
    assert positive[1] > 0.9  # both lean positive: the blend is surer than either
    assert positive[3] < 0.1


def test_choose_keeps_validation_accuracy_and_saves_transformer_work() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 4000)
    sign = np.where(labels == 1, 1.0, -1.0)
    # Two noisy views of the label with independent errors; the screen is weaker but often sure.
    screen = 1 / (1 + np.exp(-(sign * 1.5 + rng.normal(0, 1.5, 4000)) * 1.5))
    transformer = 1 / (1 + np.exp(-(sign * 2.0 + rng.normal(0, 1.5, 4000))))
    choice = choose(screen, transformer, labels)
    accuracy = choice.accuracy
    assert accuracy["screen"] < accuracy["transformer"] < accuracy["ensemble"]
    assert choice.fallback == "blend"
    assert 0.3 < choice.stacker.weight < 0.7
    assert accuracy["cascade"] >= accuracy["transformer"]
    assert 0 < choice.transformer_share < 1
    chosen = [point for point in choice.curve if point["threshold"] >= choice.threshold]
    assert all(point["accuracy"] >= accuracy["transformer"] for point in chosen)
    shares = [point["transformer_share"] for point in choice.curve]
    assert shares == sorted(shares) and shares[-1] == 1.0
    looser = choose(screen, transformer, labels, max_drop=2.0)
    assert looser.threshold <= choice.threshold and looser.transformer_share <= choice.transformer_share


def test_choose_refuses_one_label() -> None:
    with pytest.raises(UserError, match="both negative and positive"):
        choose(np.array([0.2, 0.8]), np.array([0.3, 0.7]), np.array([1, 1]))


# --------------------------------------------------------------------------- folder and entry points


def test_hybrid_folder_holds_its_choices(hybrid_dir: Path, baseline_dir: Path) -> None:
    settings = read_json(hybrid_dir / HYBRID_FILE)
    metrics = read_json(hybrid_dir / "metrics.json")
    assert settings["format"] == "imdb-sentiment-hybrid" and settings["mode"] == "auto"
    assert (hybrid_dir / "baseline" / "model.skops").is_file()
    assert Path(settings["transformer"]).is_absolute()
    assert (hybrid_dir / "validation_curve.png").stat().st_size > 1000
    assert (hybrid_dir / "README.md").read_text().startswith("# imdb-sentiment hybrid")
    assert metrics["stage"] == "hybrid" and metrics["n_validation"] == 40
    assert metrics["threshold"] == metrics["chosen_threshold"] == settings["threshold"]
    assert set(metrics["validation_accuracy"]) == {"screen", "transformer", "ensemble", "cascade"}
    assert not list(hybrid_dir.glob("**/*.pkl"))


def test_a_hybrid_holds_its_transformer_and_takes_one_inference_config(hybrid_dir: Path) -> None:
    config = InferenceConfig(max_length=24, device="cpu", backend="torch", precision="fp32")
    model = load_model(hybrid_dir, config, mode="ensemble")
    assert not isinstance(model, SentimentClassifier) and isinstance(model.transformer, SentimentClassifier)
    assert model.max_length == model.transformer.max_length == 24 and model.precision == "fp32"
    model.transformer.batch_size = 8  # its settings are the transformer's own, not copies
    assert model.batch_size == 8 and model.info()["batch_size"] == 8
    assert model.predict(["a wonderful moving film"])[0]["label"] in model.labels


def test_load_predict_and_override(hybrid_dir: Path) -> None:
    model = load_model(hybrid_dir, device="cpu", backend="torch")
    assert isinstance(model, HybridClassifier) and isinstance(model, Classifier)
    assert model.mode == "cascade"  # auto on a CPU
    texts = ["wonderful superb brilliant moving film", "awful", "dreadful boring tedious awful plot"]
    everything = model.override(mode="cascade", threshold=0.0).predict_details(texts)
    assert everything.decided_by.tolist().count("screen") >= 2  # a clear bag of words: the screen decides
    nothing = model.override(threshold=0.5).predict_details(texts)
    assert set(nothing.decided_by) <= {"blend", "transformer"}
    ensemble = model.override(mode="ensemble").predict_proba(texts)
    assert ensemble.shape == (3, 2) and np.allclose(ensemble.sum(axis=1), 1, atol=1e-5)
    assert model.info()["hybrid"]["mode"] == "ensemble"
    assert model.predict(texts)[0]["label"] in ("POSITIVE", "NEGATIVE")


def test_evaluate_reports_transformer_share(hybrid_dir: Path, data_dir: Path, tmp_path: Path) -> None:
    from imdb_sentiment.evaluation import evaluate_model

    model = load_model(hybrid_dir, device="cpu", backend="torch", mode="cascade", threshold=0.0)
    metrics = evaluate_model(model, data_dir, tmp_path / "eval")
    assert 0 <= metrics["transformer_share"] < 1 and metrics["n_test"] == 40
    ensemble = evaluate_model(model.override(mode="ensemble"), data_dir)
    assert ensemble["transformer_share"] == 1.0
    from typer.testing import CliRunner

    from imdb_sentiment.cli import app

    result = CliRunner().invoke(app, ["evaluate", "-m", str(hybrid_dir), "--data", str(data_dir), "--mode",
                                      "cascade", "--threshold", "0.5", "-o", str(tmp_path / "cli")])
    assert result.exit_code == 0, result.output
    assert read_json(tmp_path / "cli" / "metrics.json")["transformer_share"] == 1.0
    assert read_json(tmp_path / "eval" / "metrics.json")["transformer_share"] == metrics["transformer_share"]


def test_cli_predict_json_and_serve(hybrid_dir: Path, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient
    from typer.testing import CliRunner

    from imdb_sentiment.cli import app
    from imdb_sentiment.serving import create_app

    result = CliRunner().invoke(app, ["predict", "-m", str(hybrid_dir), "--json", "--backend", "torch",
                                      "--mode", "cascade", "--threshold", "0", "superb wonderful film"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.output.strip().splitlines()[-1])
    assert record["decided_by"] in ("screen", "blend", "transformer")
    pd.DataFrame({"text": ["superb wonderful film", "", "awful tedious plot"]}).to_csv(tmp_path / "in.csv")
    files = ["-i", str(tmp_path / "in.csv"), "-o", str(tmp_path / "out.csv")]
    result = CliRunner().invoke(app, ["predict", "-m", str(hybrid_dir), "--backend", "torch", "--mode",
                                      "ensemble", *files])
    assert result.exit_code == 0, result.output
    scored = pd.read_csv(tmp_path / "out.csv")
    assert scored["decided_by"].tolist()[::2] == ["blend", "blend"] and scored["decided_by"].isna()[1]
    model = load_model(hybrid_dir, device="cpu", backend="torch", mode="ensemble")
    with TestClient(create_app(model)) as client:
        body = client.post("/predict", json={"texts": ["superb film", "awful plot"]}).json()
        assert [item["decided_by"] for item in body["predictions"]] == ["blend", "blend"]
        assert client.get("/info").json()["hybrid"]["mode"] == "ensemble"


# --------------------------------------------------------------------------- bad input


def test_swapped_or_wrong_folders(data_dir, baseline_dir, tiny_classifier, tmp_path) -> None:
    config = HybridConfig(validation_size=0.25, device="cpu")
    with pytest.raises(UserError, match=r"not a baseline folder.*pass it as --transformer"):
        build_hybrid(tiny_classifier, tiny_classifier, data_dir, tmp_path / "a", config)
    with pytest.raises(UserError, match=r"not a transformer folder.*pass it as --baseline"):
        build_hybrid(baseline_dir, baseline_dir, data_dir, tmp_path / "b", config)
    with pytest.raises(UserError, match="another validation split"):
        build_hybrid(baseline_dir, tiny_classifier, data_dir, tmp_path / "c",
                     HybridConfig(validation_size=0.25, seed=7))
    assert not any(tmp_path.iterdir())


def test_baseline_on_other_labels(data_dir, tiny_classifier, tmp_path) -> None:
    frame = reviews(40, 3, "train").assign(label=lambda f: f["label"] + 1)  # labels 1 and 2
    model = build_baseline("logreg").fit(frame["text"].tolist(), frame["label"].to_numpy())
    save_baseline(model, tmp_path / "odd" / "model", "nbsvm")
    with pytest.raises(UserError, match="trained on other labels"):
        build_hybrid(tmp_path / "odd", tiny_classifier, data_dir, tmp_path / "out",
                     HybridConfig(validation_size=0.25, device="cpu"))


def test_broken_hybrid_folders(hybrid_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(hybrid_dir, broken)
    settings = read_json(broken / HYBRID_FILE)
    (broken / HYBRID_FILE).write_text(json.dumps({**settings, "transformer_labels": [1, 0]}))
    with pytest.raises(UserError, match="mismatched label orders"):
        load_model(broken, device="cpu", backend="torch")
    shutil.rmtree(broken / "baseline")
    with pytest.raises(UserError, match="missing its baseline part"):
        load_model(broken, device="cpu")
    with pytest.raises(UserError, match="threshold must be in"):
        load_model(hybrid_dir, device="cpu", backend="torch", threshold=0.7)
    with pytest.raises(UserError, match="mode must be one of"):
        load_model(hybrid_dir, device="cpu", backend="torch", mode="fastest")


def test_mode_on_a_plain_model_is_refused(tiny_classifier) -> None:
    with pytest.raises(UserError, match="hybrid folders only"):
        load_model(tiny_classifier, mode="cascade")


def test_group_out_of_fold_removes_memorised_titles() -> None:
    from imdb_sentiment.data import carve_split
    from imdb_sentiment.hybrid import group_out_of_fold

    rng = np.random.default_rng(0)
    rows = []
    for i in range(600):  # the movie's title gives its label away; the words say nothing
        movie = i % 40
        rows.append({"id": str(i), "text": f"title{movie} " + " ".join(rng.choice(NEUTRAL, 6)),
                     "label": movie % 2, "movie": f"tt{movie}"})
    train, validation = carve_split(pd.DataFrame(rows), 0.2, seed=0)  # at random: movies straddle
    screen = build_baseline("logreg").fit(train["text"].tolist(), train["label"].to_numpy())
    seen = np.mean((screen.predict_proba(validation["text"].tolist())[:, 1] > 0.5) == validation["label"])
    unseen = group_out_of_fold(screen, train, validation, "movie", folds=4)
    assert seen > 0.95
    assert np.mean((unseen > 0.5) == validation["label"]) < 0.75


def test_build_with_refit_by_movie(data_dir, baseline_dir, tiny_classifier, tmp_path) -> None:
    metrics = build_hybrid(baseline_dir, tiny_classifier, data_dir, tmp_path / "h",
                           HybridConfig(validation_size=0.25, device="cpu", refit_by="movie", refit_folds=3,
                                        mode="ensemble"))
    assert metrics["refit_by"] == "movie" and metrics["mode"] == "ensemble"
    assert load_model(tmp_path / "h", device="cpu", backend="torch").mode == "ensemble"


def test_build_records_its_run_and_what_the_hybrid_cost_to_make(data_dir, baseline_dir, tiny_classifier,
                                                                 tmp_path) -> None:
    from imdb_sentiment.tracking import list_runs

    transformer = tmp_path / "transformer"
    shutil.copytree(tiny_classifier, transformer)
    config = HybridConfig(validation_size=0.25, device="cpu", backend="torch")
    untimed = build_hybrid(baseline_dir, transformer, data_dir, tmp_path / "untimed", config)
    assert untimed["train_seconds"] is None  # the transformer recorded no training time

    (transformer / "metrics.json").write_text(json.dumps({"train_seconds": 100.0}))
    metrics = build_hybrid(baseline_dir, transformer, data_dir, tmp_path / "h", config,
                           runs_dir=tmp_path / "runs")
    screen_seconds = read_json(baseline_dir / "metrics.json")["train_seconds"]
    assert metrics["train_seconds"] == pytest.approx(100.0 + screen_seconds + metrics["seconds"], abs=0.02)
    assert read_json(tmp_path / "h" / "metrics.json")["train_seconds"] == metrics["train_seconds"]
    [record] = list_runs(tmp_path / "runs")
    assert record.stage == "hybrid" and record.metric("train_seconds") == metrics["train_seconds"]
    assert record.metric("validation_accuracy") == metrics["validation_accuracy"]["ensemble"]


def test_a_hybrid_is_explained_by_its_screen_exactly(hybrid_dir: Path) -> None:
    from imdb_sentiment.baselines import load_baseline
    from imdb_sentiment.explain import load_explainer
    from imdb_sentiment.hybrid import screen_file

    explainer = load_explainer(hybrid_dir)
    texts = ["wonderful superb brilliant moving film", "dreadful boring tedious awful plot"]
    screen = load_baseline(screen_file(hybrid_dir))
    for item, value in zip(explainer.explain(texts), screen.decision_function(texts), strict=True):
        assert sum(weight for _, weight in item.words) + explainer.intercept == pytest.approx(value, abs=1e-6)


# --------------------------------------------------------------------------- how the screen is judged


def _titled_reviews(n: int) -> pd.DataFrame:
    """Reviews whose movie title gives the label away and whose words say nothing."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        movie = i % 40
        rows.append({"id": str(i), "text": f"title{movie} " + " ".join(rng.choice(NEUTRAL, 6)),
                     "label": movie % 2, "movie": f"tt{movie}"})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def titled_data(tmp_path_factory) -> tuple[Path, Path]:
    """A data folder of title-giveaway reviews with a ``movie`` column, and a screen trained on its carve."""
    folder = tmp_path_factory.mktemp("titled")
    frame = _titled_reviews(600)
    frame.to_parquet(folder / "train.parquet")
    test = frame.iloc[:40]
    test.assign(text=test["text"] + " again").to_parquet(folder / "test.parquet")
    screen = tmp_path_factory.mktemp("titled-screen") / "logreg"
    run_baseline(DataSpec(str(folder), validation_size=0.2), BaselineConfig("logreg"), screen)
    return folder, screen


def test_the_default_never_judges_the_screen_on_movies_it_learned(titled_data, tiny_classifier,
                                                                   tmp_path) -> None:
    data, screen = titled_data
    lines: list[str] = []
    default = build_hybrid(screen, tiny_classifier, data, tmp_path / "default",
                           HybridConfig(validation_size=0.2, device="cpu", backend="torch"),
                           progress=lines.append)
    assert default["refit"]["scheme"] == "group" and default["refit"]["group_column"] == "movie"
    assert "out of fold by movie" in (tmp_path / "default" / "README.md").read_text()
    assert default["validation_accuracy"]["screen"] < 0.75  # as on new movies: titles tell nothing
    assert any("out of fold" in line and "movies" in line for line in lines)
    saved = json.loads((tmp_path / "default" / HYBRID_FILE).read_text())
    assert saved["validation"]["refit"] == default["refit"]

    expert = build_hybrid(screen, tiny_classifier, data, tmp_path / "as-given",
                          HybridConfig(validation_size=0.2, device="cpu", backend="torch", refit_by="none"))
    assert expert["refit"]["scheme"] == "none"
    assert expert["validation_accuracy"]["screen"] > 0.95  # the memorised titles flatter it


def test_without_a_group_column_a_screen_that_saw_validation_is_refit(data_dir, tiny_classifier,
                                                                        tmp_path) -> None:
    from imdb_sentiment.data import load_splits

    plain = tmp_path / "plain"
    plain.mkdir()
    for split in ("train", "test"):
        frame = pd.read_parquet(data_dir / f"{split}.parquet").drop(columns="movie")
        frame.to_parquet(plain / f"{split}.parquet")
    everything = load_splits(plain, validation_size=0.25)
    seen_all = pd.concat([everything["train"], everything["validation"]])
    # Only the review number tells the labels apart: a screen that saw validation knows them all.
    seen_all = seen_all.assign(text=[f"review{i} " + " ".join(np.random.default_rng(i).choice(NEUTRAL, 6))
                                     for i in range(len(seen_all))],
                               label=np.random.default_rng(1).integers(0, 2, len(seen_all)))
    leaky = tmp_path / "leaky"
    save_baseline(build_baseline("logreg").fit(seen_all["text"].tolist(), seen_all["label"].to_numpy()),
                  leaky, "logreg")
    data = tmp_path / "relabelled"
    data.mkdir()
    seen_all.to_parquet(data / "train.parquet")
    everything["test"].to_parquet(data / "test.parquet")

    lines: list[str] = []
    metrics = build_hybrid(leaky, tiny_classifier, data, tmp_path / "h",
                           HybridConfig(validation_size=0.25, device="cpu", backend="torch"),
                           progress=lines.append)
    assert metrics["refit"]["scheme"] == "folds" and metrics["refit"]["group_column"] is None
    assert metrics["validation_accuracy"]["screen"] < 0.8  # the refit copy never saw these reviews
    assert any(line.startswith("warning:") and "no group column" in line for line in lines)
    expert = build_hybrid(leaky, tiny_classifier, data, tmp_path / "expert",
                          HybridConfig(validation_size=0.25, device="cpu", backend="torch",
                                       refit_by="none"))
    assert expert["validation_accuracy"]["screen"] > 0.9  # scored on reviews it learned


def test_refit_by_a_column_the_data_lacks_is_one_line(data_dir, baseline_dir, tiny_classifier,
                                                      tmp_path) -> None:
    with pytest.raises(UserError, match="no 'director' column"):
        build_hybrid(baseline_dir, tiny_classifier, data_dir, tmp_path / "h",
                     HybridConfig(validation_size=0.25, device="cpu", refit_by="director"))
    assert not (tmp_path / "h").exists()


# --------------------------------------------------------------------------- a hybrid.json that is wrong


@pytest.mark.parametrize(("change", "message"), [
    ({"stacker": {"screen": "x", "transformer": 1.0, "bias": 0.0}},
     "the stacker's screen weight must be a finite number, not 'x'"),
    ({"stacker": {"screen": 1.0, "transformer": 1.0, "bias": None}}, "stacker's bias term must be"),
    ({"stacker": [1.0, 1.0, 0.0]}, "stacker must be a table"),
    ({"threshold": "x"}, "threshold must be in [0, 0.5]"),
    ({"transformer_labels": "01"}, "transformer_labels must be the two output indices"),
    ({"version": 99}, "has version 99, written by a newer imdb-sentiment; this one reads version 1: "
                      "upgrade imdb-sentiment or rebuild"),
    ({"version": "one"}, "has version 'one'; this one reads version 1"),
])
def test_a_bad_hybrid_json_is_one_line_naming_it(hybrid_dir: Path, tmp_path: Path, change: dict,
                                                 message: str) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(hybrid_dir, broken)
    (broken / HYBRID_FILE).write_text(json.dumps({**read_json(hybrid_dir / HYBRID_FILE), **change}))
    with pytest.raises(UserError) as caught:
        load_model(broken, mode="ensemble", device="cpu", backend="torch")
    assert str(caught.value).startswith(f"{broken / HYBRID_FILE} ") and message in str(caught.value)


def test_predict_with_a_bad_stacker_weight_is_one_line(hybrid_dir: Path, tmp_path: Path, capsys) -> None:
    from imdb_sentiment.cli import main

    broken = tmp_path / "broken"
    shutil.copytree(hybrid_dir, broken)
    settings = read_json(hybrid_dir / HYBRID_FILE)
    settings["stacker"]["screen"] = "x"
    (broken / HYBRID_FILE).write_text(json.dumps(settings))
    code = main(["predict", "-m", str(broken), "--mode", "ensemble", "--backend", "torch", "superb film"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert err == (f"error: {broken / HYBRID_FILE} has a bad setting: the stacker's screen weight must be a "
                   "finite number, not 'x'\n")
