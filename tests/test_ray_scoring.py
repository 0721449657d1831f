"""``predict --engine ray``: many files scored on a local Ray instance match single-process ``predict``."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_hybrid import baseline_dir, data_dir, hybrid_dir  # noqa: F401  (fixtures: a tiny hybrid folder)

from imdb_sentiment.cli import main

SETTINGS = ["--max-length", "32", "--backend", "torch", "--precision", "fp32"]


@pytest.fixture(scope="module")
def local_ray():
    """One small local Ray instance for the module (its start-up takes seconds)."""
    ray = pytest.importorskip("ray", reason="Ray comes with pip install 'imdb-sentiment[scale]'")
    ray.init(num_cpus=2, object_store_memory=100 * 1024**2, include_dashboard=False, log_to_driver=False,
             logging_level="ERROR")
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """3,000 short reviews in four files of three formats; one row has no text."""
    folder = tmp_path_factory.mktemp("corpus")
    words = ["wonderful", "moving", "dull", "boring", "great", "awful"]
    rng = np.random.default_rng(0)
    texts = [f"A {' and '.join(rng.choice(words, size=1 + i % 4))} film, number {i}." for i in range(3000)]
    frame = pd.DataFrame({"id": [f"r{i}" for i in range(3000)], "text": texts})
    frame.loc[5, "text"] = ""
    frame.iloc[:1000].to_parquet(folder / "part-a.parquet", index=False)
    frame.iloc[1000:1800].to_parquet(folder / "part-b.parquet", index=False)
    frame.iloc[1800:2400].to_csv(folder / "part-c.csv", index=False)
    frame.iloc[2400:].to_json(folder / "part-d.jsonl", orient="records", lines=True)
    return folder


@pytest.mark.slow
def test_ray_scores_like_single_process_predict(local_ray, corpus, tiny_classifier, tmp_path, capsys):
    from imdb_sentiment.inference import SentimentClassifier
    from imdb_sentiment.scoring import predict_frame
    from imdb_sentiment.tables import read_reviews

    output = tmp_path / "scored"
    code = main(["predict", "--engine", "ray", "--model", str(tiny_classifier),
                 "--input", str(corpus / "part-*"), "--output", str(output), *SETTINGS, "--actors", "2"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "2999 review(s) from 4 file(s) on 2 Ray actor(s)" in err and "1 row(s)" in err
    parts = sorted(output.glob("*.parquet"))
    assert len(parts) >= 4  # partitioned output
    got = pd.concat([pd.read_parquet(part) for part in parts]).set_index("id").sort_index()

    classifier = SentimentClassifier.load(tiny_classifier, max_length=32, backend="torch", precision="fp32")
    expected = pd.concat([predict_frame(classifier, read_reviews(path))[0]
                          for path in sorted(corpus.iterdir())])
    expected = expected.set_index("id").sort_index()
    assert list(got.columns) == list(expected.columns) == ["text", "label", "score", "truncated", "error"]
    assert got.index.equals(expected.index)  # every row once, none lost or doubled
    assert (got["label"].fillna("") == expected["label"].fillna("")).all()
    np.testing.assert_allclose(got["score"].to_numpy(float), expected["score"].to_numpy(float), atol=1e-5)
    assert got.loc["r5", "error"] == expected.loc["r5", "error"] == "empty text"
    assert got["error"].notna().sum() == 1


@pytest.mark.slow
def test_ray_scores_a_hybrid_like_single_process_predict(local_ray, corpus, hybrid_dir,  # noqa: F811
                                                         tmp_path, capsys):
    from imdb_sentiment.hybrid import load_model
    from imdb_sentiment.scoring import predict_frame
    from imdb_sentiment.tables import read_reviews

    output = tmp_path / "scored"
    code = main(["predict", "--engine", "ray", "--model", str(hybrid_dir), "--mode", "cascade",
                 "--input", str(corpus / "part-*"), "--output", str(output), "--actors", "1"])
    assert code == 0, capsys.readouterr().err
    got = pd.concat([pd.read_parquet(part) for part in sorted(output.glob("*.parquet"))])
    got = got.set_index("id").sort_index()
    hybrid = load_model(hybrid_dir, mode="cascade")
    expected = pd.concat([predict_frame(hybrid, read_reviews(path))[0] for path in sorted(corpus.iterdir())])
    expected = expected.set_index("id").sort_index()
    assert "decided_by" in got.columns and got.index.equals(expected.index)
    assert (got["label"].fillna("") == expected["label"].fillna("")).all()
    assert (got["decided_by"].fillna("") == expected["decided_by"].fillna("")).all()
    np.testing.assert_allclose(got["score"].to_numpy(float), expected["score"].to_numpy(float), atol=1e-5)


def test_ray_engine_errors_are_one_line(tmp_path, corpus, tiny_classifier, capsys, monkeypatch):
    (tmp_path / "notes.md").write_text("# not reviews\n")
    cases = [
        (["--input", str(tmp_path / "missing-*.parquet")], "no input files match"),
        (["--input", str(tmp_path / "notes.md")], "not .md"),
        (["--input", str(corpus), "--output", str(tmp_path / "o"), "great film"], "no review texts"),
        (["--input", str(corpus), "--output", str(tmp_path / "o"), "--engine", "spark"],
         "engine must be one of"),
    ]
    monkeypatch.setitem(sys.modules, "ray", None)  # as without the scale extra
    cases.append((["--input", str(corpus)], "pip install 'imdb-sentiment[scale]'"))
    for extra, message in cases:
        args = ["predict", "--engine", "ray", "--model", str(tiny_classifier), *extra]
        if "--output" not in extra:
            args += ["--output", str(tmp_path / "scored")]
        code = main(args)
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2, extra
        assert err[-1].startswith("error: ") and message in err[-1], err
    assert not (tmp_path / "scored").exists()


@pytest.mark.slow
def test_the_summary_reads_the_columns_the_scoring_named(local_ray, tiny_classifier, tmp_path, capsys):
    # The input has both `error` and `predicted_error`, so the results' error column is `predicted_error_2`.
    frame = pd.DataFrame({"id": [f"r{i}" for i in range(6)], "text": ["A fine film."] * 5 + [""],
                          "error": ["kept"] * 6, "predicted_error": ["also kept"] * 6})
    frame.to_parquet(tmp_path / "reviews.parquet", index=False)
    output = tmp_path / "scored"
    code = main(["predict", "--engine", "ray", "--model", str(tiny_classifier), "--input",
                 str(tmp_path / "reviews.parquet"), "--output", str(output), *SETTINGS, "--actors", "1"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "predicted 5 review(s) from 1 file(s)" in err
    assert "warning: 1 row(s) (see the predicted_error_2 column)" in err
    got = pd.concat([pd.read_parquet(part) for part in sorted(output.glob("*.parquet"))]).set_index("id")
    assert (got["error"] == "kept").all() and (got["predicted_error"] == "also kept").all()
    assert got.loc["r5", "predicted_error_2"] == "empty text" and got["predicted_error_2"].notna().sum() == 1


@pytest.mark.slow
def test_ray_scores_a_prompted_llm_like_single_process_predict(local_ray, tmp_path, capsys):
    from tiny_llm import REVIEWS, build_tiny_llm

    from imdb_sentiment.config import InferenceConfig
    from imdb_sentiment.hybrid import load_model
    from imdb_sentiment.llm import LLMClassifier
    from imdb_sentiment.scoring import predict_frame
    from imdb_sentiment.tables import read_reviews

    llm = build_tiny_llm(tmp_path / "tiny-llm")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    texts = [f"{REVIEWS[i % len(REVIEWS)]} ({i})" for i in range(24)]
    frame = pd.DataFrame({"id": [f"r{i}" for i in range(24)], "text": texts})
    frame.loc[3, "text"] = " "
    frame.iloc[:12].to_parquet(corpus / "a.parquet", index=False)
    frame.iloc[12:].to_json(corpus / "b.jsonl", orient="records", lines=True)
    output = tmp_path / "scored"
    code = main(["predict", "--engine", "ray", "--model", str(llm), "--input", str(corpus), "--output",
                 str(output), "--precision", "fp32", "--actors", "1"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "predicted 23 review(s) from 2 file(s) on 1 Ray actor(s)" in err and "1 row(s)" in err
    got = pd.concat([pd.read_parquet(part) for part in sorted(output.glob("*.parquet"))])
    got = got.set_index("id").sort_index()
    classifier = load_model(llm, InferenceConfig(precision="fp32", device="cpu"))
    assert isinstance(classifier, LLMClassifier)
    expected = pd.concat([predict_frame(classifier, read_reviews(path))[0]
                          for path in sorted(corpus.iterdir())]).set_index("id").sort_index()
    assert list(got.columns) == ["text", "label", "score", "truncated", "error"]
    assert got.index.equals(expected.index)
    assert (got["label"].fillna("") == expected["label"].fillna("")).all()
    np.testing.assert_allclose(got["score"].to_numpy(float), expected["score"].to_numpy(float), atol=1e-5)
    assert got.loc["r3", "error"] == "empty text"
