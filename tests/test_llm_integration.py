"""A prompted language model wherever a model is taken: as a hybrid's transformer, served over HTTP,
scored by quickstart and told apart in the report."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from test_hybrid import baseline_dir, data_dir  # noqa: F401  (fixtures: tiny data and an NB-SVM screen)
from tiny_llm import REVIEWS, build_tiny_llm

from imdb_sentiment.artifacts import read_json
from imdb_sentiment.config import InferenceConfig
from imdb_sentiment.errors import UserError
from imdb_sentiment.hybrid import HYBRID_FILE, HybridClassifier, HybridConfig, build_hybrid, load_model
from imdb_sentiment.llm import LLMClassifier
from imdb_sentiment.serving import create_app

RUN = InferenceConfig(precision="fp32", device="cpu")


@pytest.fixture(scope="module")
def tiny_llm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llm(tmp_path_factory.mktemp("tiny-llm") / "tiny-llm")


@pytest.fixture(scope="module")
def llm(tiny_llm: Path) -> LLMClassifier:
    classifier = load_model(tiny_llm, RUN)
    assert isinstance(classifier, LLMClassifier)
    return classifier


@pytest.fixture(scope="module")
def llm_hybrid(data_dir: Path, baseline_dir: Path, tiny_llm: Path,  # noqa: F811
               tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("llm-hybrid") / "hybrid"
    build_hybrid(baseline_dir, tiny_llm, data_dir, out, HybridConfig(validation_size=0.25, device="cpu"))
    return out


# --------------------------------------------------------------------------- hybrid


def test_a_hybrid_records_its_prompted_llm_and_reloads_it(llm_hybrid: Path, tiny_llm: Path) -> None:
    settings = read_json(llm_hybrid / HYBRID_FILE)
    metrics = read_json(llm_hybrid / "metrics.json")
    assert settings["transformer"] == str(tiny_llm.resolve()) and settings["transformer_labels"] == [0, 1]
    assert metrics["transformer_kind"] == "prompted-llm" and metrics["n_validation"] == 40
    assert "in front of a prompted language model" in (llm_hybrid / "README.md").read_text()
    model = load_model(llm_hybrid, RUN)
    assert isinstance(model, HybridClassifier) and isinstance(model.transformer, LLMClassifier)
    assert model.transformer.name == str(tiny_llm.resolve())
    info = model.info()
    assert info["llm"]["verbalizers"] == {"negative": "negative", "positive": "positive"}
    assert info["hybrid"]["transformer"] == str(tiny_llm.resolve())


def test_a_hybrid_blends_and_cascades_to_its_prompted_llm(llm_hybrid: Path, llm: LLMClassifier) -> None:
    texts = ["wonderful superb brilliant moving film", *REVIEWS]
    model = load_model(llm_hybrid, RUN, mode="ensemble")
    screen = model.screen_positive(texts)
    expected = model.settings.stacker.combine(screen, llm.predict_proba(texts)[:, 1])
    details = model.predict_details(texts)
    np.testing.assert_allclose(details.probabilities[:, 1], expected, atol=1e-5)
    assert set(details.decided_by) == {"blend"}
    margins = np.abs(screen - 0.5)
    threshold = float(margins.min() + margins.max()) / 2  # the surest reviews are the screen's
    cascade = model.override(mode="cascade", threshold=threshold).predict_details(texts)
    sent = [i for i, who in enumerate(cascade.decided_by) if who != "screen"]
    assert 0 < len(sent) < len(texts)  # the sure reviews never reach the language model
    np.testing.assert_allclose(cascade.probabilities[sent, 1],
                               model.settings.stacker.combine(screen[sent], llm.predict_proba(
                                   [texts[i] for i in sent])[:, 1]), atol=1e-5)


def test_a_hybrid_can_hold_a_copy_of_its_prompted_llm(data_dir: Path, baseline_dir: Path,  # noqa: F811
                                                      tiny_llm: Path, tmp_path: Path) -> None:
    original = tmp_path / "llm"
    shutil.copytree(tiny_llm, original)
    out = tmp_path / "hybrid"
    build_hybrid(baseline_dir, original, data_dir, out,
                 HybridConfig(validation_size=0.25, device="cpu", copy_transformer=True, mode="ensemble"))
    shutil.rmtree(original)
    model = load_model(out, RUN)
    assert isinstance(model.transformer, LLMClassifier)
    assert Path(model.transformer.name) == out / "transformer"
    assert model.predict(["A great film."])[0]["label"] in model.labels


def test_a_copied_gguf_transformer_keeps_its_prompt_settings(baseline_dir: Path, tmp_path: Path) -> None:  # noqa: F811
    from imdb_sentiment.hybrid import Choice, HybridSettings, Stacker, baseline_model_dir, save_hybrid

    source = tmp_path / "models"
    source.mkdir()
    (source / "tiny.gguf").write_bytes(b"GGUF not really")
    (source / "prompt.toml").write_text("bias = 0.5\n")
    choice = Choice(Stacker(), "blend", 0.4, [], {"screen": 0.5, "transformer": 0.5, "ensemble": 0.5,
                                                  "cascade": 0.5}, 1.0)
    settings = HybridSettings()
    save_hybrid(tmp_path / "hybrid", settings, choice, baseline_model_dir(baseline_dir), source / "tiny.gguf",
                HybridConfig(copy_transformer=True), {"transformer_kind": "prompted-llm"})
    assert read_json(tmp_path / "hybrid" / HYBRID_FILE)["transformer"] == "transformer/tiny.gguf"
    assert sorted(p.name for p in (tmp_path / "hybrid" / "transformer").iterdir()) == ["prompt.toml",
                                                                                       "tiny.gguf"]


def test_a_gguf_file_is_taken_as_a_transformer(tmp_path: Path) -> None:
    from imdb_sentiment.hybrid import check_transformer_dir

    folder = tmp_path / "gguf"
    folder.mkdir()
    with pytest.raises(UserError, match="not a transformer folder"):
        check_transformer_dir(folder)
    (folder / "tiny.gguf").write_bytes(b"GGUF")
    assert check_transformer_dir(folder / "tiny.gguf") == folder / "tiny.gguf"
    assert check_transformer_dir(folder) == folder  # a folder holding one GGUF model


def test_explaining_through_a_hybrid_with_a_prompted_llm_is_one_line(llm_hybrid: Path) -> None:
    from imdb_sentiment.explain import GradientExplainer

    model = load_model(llm_hybrid, RUN)
    with pytest.raises(UserError, match="is a prompted language model; explanations need a fine-tuned"):
        GradientExplainer(model)
    with TestClient(create_app(model)) as client:
        response = client.post("/explain", json={"texts": ["A great film."]})
        assert response.status_code == 422 and "prompted language model" in response.json()["error"]
        assert str(llm_hybrid.parent) not in response.text
        body = client.post("/predict", json={"texts": ["A great film.", "Dull."]}).json()
        assert [item["decided_by"] for item in body["predictions"]] != [None, None]


# --------------------------------------------------------------------------- serving


def test_the_service_predicts_with_a_prompted_llm_and_names_no_server_path(llm: LLMClassifier,
                                                                           tiny_llm: Path) -> None:
    with TestClient(create_app(llm)) as client:
        response = client.post("/predict", json={"texts": REVIEWS})
        assert response.status_code == 200
        body = response.json()
        assert body["model"] == tiny_llm.name
        expected = llm.predict(REVIEWS)
        assert [p["label"] for p in body["predictions"]] == [p["label"] for p in expected]
        np.testing.assert_allclose([p["score"] for p in body["predictions"]], [p["score"] for p in expected],
                                   atol=1e-5)
        info = client.get("/info")
        assert info.json()["model"] == tiny_llm.name and info.json()["llm"]["bias"] == llm.settings.bias
        assert str(tiny_llm.parent) not in info.text
        explained = client.post("/explain", json={"texts": ["A great film."]})
        assert explained.status_code == 422
        assert explained.json() == {"error": f"{tiny_llm.name} is a prompted language model; explanations "
                                             "need a fine-tuned sequence classifier"}
        assert client.get("/health").json() == {"status": "ok"}  # still up


# --------------------------------------------------------------------------- evaluate and report


def test_evaluate_records_a_prompted_llm_with_its_prompt_and_timing(tiny_llm: Path, data_dir: Path,  # noqa: F811
                                                                    runs_dir: Path, tmp_path: Path) -> None:
    from imdb_sentiment.cli import main
    from imdb_sentiment.reporting import story_stage
    from imdb_sentiment.tracking import list_runs

    out = tmp_path / "eval"
    assert main(["evaluate", "-m", str(tiny_llm), "--data", str(data_dir), "-o", str(out), "--precision",
                 "fp32", "--runs-dir", str(runs_dir)]) == 0
    metrics = read_json(out / "metrics.json")
    assert metrics["n_test"] == 40 and metrics["seconds"] > 0
    # seconds are rounded to milliseconds: the rate agrees within that rounding
    assert 40 / (metrics["seconds"] + 0.0005) <= metrics["reviews_per_second"] * 1.01
    assert metrics["reviews_per_second"] <= 40 / max(metrics["seconds"] - 0.0005, 1e-9) * 1.01
    assert metrics["llm"]["bias"] == 0.0 and metrics["llm"]["verbalizers"]["positive"] == "positive"
    [record] = list_runs(runs_dir)
    assert record.tags["model_kind"] == "prompted-llm" and story_stage(record) == "prompted-llm"
    assert record.params["llm.bias"] == "0.0" and record.metric("reviews_per_second") > 0


def _log(runs_dir: Path, **fields) -> None:
    from imdb_sentiment.tracking import RunEntry, log_run

    log_run(runs_dir, RunEntry(**fields))


def test_the_report_sets_a_prompted_llm_beside_fine_tuning_and_the_hybrid(runs_dir: Path,
                                                                         tmp_path: Path) -> None:
    from imdb_sentiment.reporting import write_report

    _log(runs_dir, stage="evaluate", model="models/smollm2-prompted", tags={"model_kind": "prompted-llm"},
         params={"llm": {"shots": 4, "bias": 0.25}},
         metrics={"accuracy": 0.80, "n_test": 100, "reviews_per_second": 10.0})
    _log(runs_dir, stage="train", model="models/minilm",
         metrics={"test": {"accuracy": 0.90, "n_test": 100, "reviews_per_second": 50.0},
                  "train_seconds": 80.0})
    _log(runs_dir, stage="evaluate", model="outputs/hybrid",
         metrics={"accuracy": 0.92, "n_test": 100, "transformer_share": 0.25, "reviews_per_second": 200.0})
    write_report(runs_dir, tmp_path / "report")
    markdown = (tmp_path / "report" / "report.md").read_text()
    story = markdown.split("## The story")[1].split("##")[0]
    assert ("**Prompted LLM** — `smollm2-prompted`: accuracy 0.8000 on 100 test reviews, prompted 4-shot, "
            "calibration bias +0.25, not fine-tuned; 100.0 s per 1,000 reviews (10.0 reviews/s)") in story
    section = markdown.split("## Prompting against fine-tuning: accuracy and cost")[1].split("##")[0]
    rows = [[cell.strip() for cell in line.strip("|").split("|")]
            for line in section.splitlines() if line.startswith("| ")][1:]
    assert rows == [
        ["Prompted LLM", "`smollm2-prompted`", "prompted 4-shot, calibration bias +0.25", "100", "0.8000",
         "100.0 s", "10.0"],
        ["Fine-tuned", "`minilm`", "", "100", "0.9000", "20.0 s", "50.0"],
        ["Hybrid (screen + transformer)", "`hybrid`", "", "100", "0.9200", "5.0 s", "200.0"]]
    assert ("The hybrid (screen + transformer) model reaches 0.9200 against the prompted language model's "
            "0.8000 and runs 20.0x faster") in section


def test_without_a_prompted_llm_the_report_has_no_prompting_section(runs_dir: Path, tmp_path: Path) -> None:
    from imdb_sentiment.reporting import write_report

    _log(runs_dir, stage="train", model="models/minilm",
         metrics={"accuracy": 0.90, "n_test": 100, "reviews_per_second": 50.0})
    write_report(runs_dir, tmp_path / "report")
    assert "Prompting against fine-tuning" not in (tmp_path / "report" / "report.md").read_text()


# --------------------------------------------------------------------------- quickstart


def _fake_stage(stage: str, accuracy: float):
    """A quickstart stage that only records a run (the real ones train for seconds to minutes)."""
    import time

    from imdb_sentiment import quickstart

    def run(plan, frames, session):
        seconds = quickstart._record(plan, session, stage, stage, {"accuracy": accuracy, "n_test": 40,
                                                                   "reviews_per_second": 100.0},
                                     time.perf_counter(), [], {})
        return f"{stage} recorded", seconds

    return run


@pytest.fixture
def fast_quickstart(monkeypatch: pytest.MonkeyPatch) -> None:
    from imdb_sentiment import quickstart

    monkeypatch.setattr(quickstart, "run_baseline_stage", _fake_stage("baseline", 0.7))
    monkeypatch.setattr(quickstart, "run_finetune_stage", _fake_stage("train", 0.9))
    monkeypatch.setattr(quickstart, "run_hybrid_stage", _fake_stage("hybrid", 0.91))


def test_quickstart_scores_a_given_llm_as_its_own_stage(fast_quickstart, tiny_llm: Path,
                                                        data_dir: Path, tmp_path: Path) -> None:  # noqa: F811
    from imdb_sentiment import quickstart, tracking

    lines: list[str] = []
    plan = quickstart.make_plan(data=str(data_dir), model="m", pretrained="none", output=tmp_path / "q",
                                runs_dir=tmp_path / "runs", device="cpu", llm=str(tiny_llm),
                                overrides={"max_length": 32})
    report = quickstart.run_quickstart(plan, echo=lines.append)
    assert quickstart.LLM_SKIPPED not in lines
    line = next(x for x in lines if x.startswith("prompted LLM: "))
    assert "test accuracy" in line and "on 40 reviews; prompted zero-shot, calibration bias +0.00" in line
    assert "s per 1,000 reviews" in line
    records = tracking.list_runs(tmp_path / "runs")
    # stages that start within one clock tick may list in either order: compare them as a set
    assert sorted(r.stage for r in records) == sorted(["baseline", "prompted-llm", "train", "hybrid"])
    [prompted] = [r for r in records if r.stage == "prompted-llm"]
    assert prompted.model == str(tiny_llm) and prompted.metric("n_test") == 40
    assert prompted.params["max_length"] == "32" and prompted.params["llm.bias"] == "0.0"
    assert read_json(tmp_path / "q" / "prompted-llm" / "metrics.json")["reviews_per_second"] > 0
    assert set(read_json(tmp_path / "q" / "quickstart.json")["seconds"]) == {
        "baseline", "prompted LLM", "fine-tune", "hybrid"}
    markdown = (report / "report.md").read_text()
    assert f"**Prompted LLM** — `{tiny_llm.name}`: accuracy" in markdown
    assert "## Prompting against fine-tuning: accuracy and cost" in markdown


def test_quickstart_without_an_llm_says_the_stage_was_skipped(fast_quickstart, data_dir: Path,  # noqa: F811
                                                              tmp_path: Path) -> None:
    from imdb_sentiment import quickstart, tracking

    lines: list[str] = []
    plan = quickstart.make_plan(data=str(data_dir), model="m", pretrained="none", output=tmp_path / "q",
                                runs_dir=tmp_path / "runs", device="cpu")
    report = quickstart.run_quickstart(plan, echo=lines.append)
    assert lines.count("no --llm given: the prompted-LLM stage was skipped") == 1
    assert not any(x.startswith("prompted LLM") for x in lines)
    assert [r.stage for r in tracking.list_runs(tmp_path / "runs")] == ["baseline", "train", "hybrid"]
    assert "no --llm given: the prompted-LLM stage was skipped." in (report / "report.md").read_text()


def test_a_bad_llm_is_refused_before_any_work(tiny_classifier: Path, tmp_path: Path, capsys) -> None:
    from imdb_sentiment.cli import main

    for llm, message in ((tmp_path / "missing", "not found"),
                         (tiny_classifier, "is not a causal language model")):
        code = main(["quickstart", "--data", str(tmp_path), "--output", str(tmp_path / "q"), "--pretrained",
                     "none", "--llm", str(llm)])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and err[-1].startswith(f"error: --llm {llm} ") and message in err[-1], err
    assert not (tmp_path / "q").exists()
