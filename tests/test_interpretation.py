"""Interpretation by an instruction LLM: constrained JSON answers, verbatim quotes, batching, long
reviews, a classifier's verdict, bad input, the CLI and the service (tiny random decoders; one real
run with SmolLM2 when it is fetched)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tiny_llm import SMOLLM2, build_tiny_llm

from imdb_sentiment.cli import main
from imdb_sentiment.config import InferenceConfig
from imdb_sentiment.errors import UserError
from imdb_sentiment.interpretation import (
    GAP_MARK,
    RATING_RANGES,
    Interpreter,
    InterpretSettings,
    answer_schema,
    median_rating_token,
    review_clauses,
)

MIXED = ("The acting was wooden and the plot made no sense, but the soundtrack was gorgeous and the final "
         "scene moved me to tears.")
REVIEWS = [MIXED, "A great film.",
           "Dull, dull, dull. The jokes were flat; the pacing awful.<br /><br />Skip it.",
           "Wonderful acting, and the music was lovely."]
TINY_SETTINGS = {"system": "Explain the review as JSON. Aspects: {aspects}. Emotions: {emotions}.",
                 "aspects": ["acting", "music", "story", "other"], "emotions": ["joy", "anger", "neutral"],
                 "max_aspects": 3, "max_review_tokens": 96, "max_new_tokens": 300, "max_summary_chars": 24}


@pytest.fixture(scope="module")
def settings_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("settings") / "interpret.toml"
    lines = [f"{key} = {json.dumps(value)}" for key, value in TINY_SETTINGS.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _interpreter(model: Path, **changes) -> Interpreter:
    settings = InterpretSettings(**{**TINY_SETTINGS, **changes})
    return Interpreter.load(model, InferenceConfig(device="cpu", precision="fp32"), settings=settings)


@pytest.fixture(scope="module")
def interpreter(tiny_llm: Path) -> Interpreter:
    return _interpreter(tiny_llm)


def _check_answer(answer: dict, text: str, settings: InterpretSettings) -> None:
    assert answer["error"] is None
    assert answer["sentiment"] in ("positive", "negative")
    low, high = RATING_RANGES[answer["sentiment"]]
    assert low <= answer["rating"] <= high
    assert 0.0 <= answer["score"] <= 1.0
    assert sorted(answer["emotions"]) == sorted(settings.emotions)
    assert all(0 <= value <= settings.emotion_scale for value in answer["emotions"].values())
    assert len(answer["aspects"]) <= settings.max_aspects
    for item in answer["aspects"]:
        assert item["aspect"] in settings.aspects and item["sentiment"] in ("positive", "negative")
        assert item["verbatim"] and text[item["start"]:item["end"]] == item["quote"]
    assert 8 <= len(answer["summary"]) <= settings.max_summary_chars


# --------------------------------------------------------------------------- pieces


def test_clauses_are_verbatim_parts_of_the_review() -> None:
    clauses = review_clauses(MIXED)
    assert clauses == ["The acting was wooden", "the plot made no sense", "the soundtrack was gorgeous",
                       "the final scene moved me to tears"]
    text = REVIEWS[2]
    found = review_clauses(text)
    assert "Skip it" in found and all(clause in text for clause in found)
    assert not any("<br" in clause for clause in found)
    assert review_clauses(MIXED, [(0, 21)]) == ["The acting was wooden"]


def test_the_schema_ties_the_rating_to_the_sentiment_and_can_fix_the_sentiment() -> None:
    settings = InterpretSettings(**TINY_SETTINGS)
    free = answer_schema(settings, ["a quote"])
    ranges = {branch["properties"]["sentiment"]["const"]: (branch["properties"]["rating"]["minimum"],
                                                           branch["properties"]["rating"]["maximum"])
              for branch in free["anyOf"]}
    assert ranges == RATING_RANGES
    fixed = answer_schema(settings, None, "negative")
    assert fixed["properties"]["sentiment"] == {"const": "negative"}
    assert fixed["properties"]["aspects"]["items"]["properties"]["quote"]["type"] == "string"


@pytest.mark.parametrize("changes, message", [
    ({"quotes": "any"}, "quotes"),
    ({"user": "no slot"}, "{review}"),
    ({"aspects": []}, "aspects"),
    ({"emotions": ["joy", "joy"]}, "duplicates"),
    ({"max_new_tokens": 4}, "max_new_tokens"),
    ({"examples": [{"review": "x", "answer": {"sentiment": "positive"}}]}, "lacks"),
    ({"examples": {"review": "x"}}, "list"),
])
def test_bad_settings_are_one_line_errors(changes: dict, message: str) -> None:
    with pytest.raises(UserError, match=message.replace("{", r"\{").replace("}", r"\}")):
        InterpretSettings(**{**TINY_SETTINGS, **changes})


def test_the_packaged_settings_load_and_their_example_quotes_are_clauses() -> None:
    settings = InterpretSettings.from_file()
    assert settings.examples
    for example in settings.examples:
        clauses = review_clauses(example["review"])
        assert all(item["quote"] in clauses for item in example["answer"]["aspects"])
        assert all(item["aspect"] in settings.aspects for item in example["answer"]["aspects"])
        assert sorted(example["answer"]["emotions"]) == sorted(settings.emotions)
        low, high = RATING_RANGES[example["answer"]["sentiment"]]
        assert low <= example["answer"]["rating"] <= high
        assert len(example["answer"]["summary"]) <= settings.max_summary_chars


def test_an_unknown_settings_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('system = "x"\ncolour = "red"\n', encoding="utf-8")
    with pytest.raises(UserError, match="colour"):
        InterpretSettings.from_file(path)


# --------------------------------------------------------------------------- generation


def test_every_answer_parses_and_keeps_to_the_schema(interpreter: Interpreter) -> None:
    answers = interpreter.interpret(REVIEWS)
    for text, answer in zip(REVIEWS, answers, strict=True):
        _check_answer(answer, text, interpreter.settings)
        assert answer["sources"]["sentiment"] == "interpreter"


@pytest.mark.parametrize("model_fixture", ["tiny_llm", "tiny_gpt2"])
def test_a_batch_decodes_as_each_review_alone(model_fixture: str, request: pytest.FixtureRequest) -> None:
    """The padding between and inside rows (and rows leaving the batch) changes nothing."""
    explainer = _interpreter(request.getfixturevalue(model_fixture))
    explainer.batch_size = len(REVIEWS)
    together = explainer.interpret(REVIEWS)
    explainer.batch_size = 1
    alone = explainer.interpret(REVIEWS)
    for first, second in zip(together, alone, strict=True):
        assert {key: value for key, value in first.items() if key != "score"} == \
               {key: value for key, value in second.items() if key != "score"}
        assert first["score"] == pytest.approx(second["score"], abs=1e-4)


def test_the_rating_is_the_median_of_the_allowed_ratings(interpreter: Interpreter) -> None:
    """IMDB ratings are bimodal: a model torn between 6 and 10 gets 8, not either extreme."""
    from imdb_sentiment.llm import bare_ids

    tokenizer = interpreter.tokenizer
    before = bare_ids(tokenizer, '{"sentiment":"positive","rating":')
    digits = np.array([bare_ids(tokenizer, digit)[0] for digit in "67891"])  # 6 7 8 9 and 10's 1
    torn = np.array([0.35, 0.1, 0.1, 0.1, 0.35])
    assert tokenizer.decode([median_rating_token(tokenizer, before, digits, torn)]) == "8"
    sure = np.array([0.0, 0.0, 0.0, 0.2, 0.8])
    assert tokenizer.decode([median_rating_token(tokenizer, before, digits, sure)]) == "1"
    elsewhere = bare_ids(tokenizer, '{"sentiment":"positive","rating":8,"emotions":{"joy":')
    assert median_rating_token(tokenizer, elsewhere, digits, torn) is None


def test_free_quotes_are_checked_against_the_review(tiny_llm: Path) -> None:
    explainer = _interpreter(tiny_llm, quotes="free")
    for text, answer in zip(REVIEWS, explainer.interpret(REVIEWS), strict=True):
        for item in answer["aspects"]:
            assert item["verbatim"] == (item["quote"] in text)
            assert (item["start"] is None) == (not item["verbatim"])


def test_a_long_review_is_cut_head_and_tail_and_says_so(tiny_llm: Path) -> None:
    long_review = " ".join(f"Scene {i} was fine." for i in range(120))
    explainer = _interpreter(tiny_llm, max_review_tokens=40, head_tokens=10)
    view = explainer.view(long_review)
    assert view.truncated and len(view.spans) == 2 and view.review_tokens > 40
    assert GAP_MARK in view.shown() and view.shown().startswith("Scene 0")
    assert view.shown().endswith("Scene 119 was fine.")
    answer = explainer.interpret([long_review])[0]
    assert answer["truncated"] is True and answer["review_tokens"] == view.review_tokens
    visible = [long_review[start:end] for start, end in view.spans]
    assert all(any(item["quote"] in part for part in visible) for item in answer["aspects"])


def test_a_budget_too_small_fails_per_review_and_loses_no_row(tiny_llm: Path) -> None:
    explainer = _interpreter(tiny_llm, max_new_tokens=16)
    answers = explainer.interpret(["A great film.", "", None, "Dull."])
    assert len(answers) == 4
    assert all("did not finish within 16 new tokens" in answers[i]["error"] for i in (0, 3))
    assert answers[1]["error"] == "empty text" and answers[2]["error"] == "missing text"


def test_the_stream_adds_up_to_the_answer(interpreter: Interpreter) -> None:
    events = list(interpreter.stream(MIXED))
    deltas = [event["delta"] for event in events if "delta" in event]
    assert len(deltas) > 3 and "result" in events[-1]
    streamed = json.loads("".join(deltas))
    result = events[-1]["result"]
    assert {key: streamed[key] for key in ("sentiment", "rating", "emotions", "summary")} == \
           {key: result[key] for key in ("sentiment", "rating", "emotions", "summary")}
    with pytest.raises(UserError, match="empty"):
        next(interpreter.stream("  "))


class FixedClassifier:
    """Stands for a fine-tuned classifier: P(positive) by review."""

    name = "fixed"

    def __init__(self, positive: list[float]) -> None:
        self.positive = positive

    def predict_proba(self, texts):
        values = np.array(self.positive[:len(texts)])
        return np.column_stack([1 - values, values])


def test_a_classifier_gives_the_headline_and_the_llm_explains_it(tiny_llm: Path) -> None:
    settings = InterpretSettings(**TINY_SETTINGS)
    explainer = Interpreter.load(tiny_llm, InferenceConfig(device="cpu", precision="fp32"), settings=settings,
                                 classifier=FixedClassifier([0.1, 0.8]))
    answers = explainer.interpret(REVIEWS[:2])
    assert [answer["sentiment"] for answer in answers] == ["negative", "positive"]
    assert [answer["score"] for answer in answers] == pytest.approx([0.9, 0.8])
    for text, answer in zip(REVIEWS[:2], answers, strict=True):
        _check_answer(answer, text, settings)
        assert answer["sources"]["sentiment"] == "classifier" and answer["sources"]["rating"] == "interpreter"


def test_a_model_that_cannot_generate_is_a_one_line_error(tiny_classifier: Path, tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"not a causal language model.*--interpreter"):
        Interpreter.load(tiny_classifier, InferenceConfig(device="cpu"))
    plain = build_tiny_llm(tmp_path / "plain")
    config = json.loads((plain / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (plain / "tokenizer_config.json").write_text(json.dumps(config))
    (plain / "chat_template.jinja").unlink(missing_ok=True)
    with pytest.raises(UserError, match="no chat template"):
        Interpreter.load(plain, InferenceConfig(device="cpu", precision="fp32"))


def test_a_prompt_too_long_for_the_model_is_refused(tiny_llm: Path) -> None:
    with pytest.raises(UserError, match="exceed this model's 1024 positions"):
        _interpreter(tiny_llm, max_review_tokens=900)


# --------------------------------------------------------------------------- command line and service


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_predict_interpret_prints_one_json_object_per_review(tiny_llm: Path, settings_file: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["predict", "--model", str(tiny_llm), "--interpret", "--interpret-config",
                          str(settings_file), "--device", "cpu", "--precision", "fp32", MIXED, " "], capsys)
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["text"] for line in lines] == [MIXED, " "]
    _check_answer(lines[0], MIXED, InterpretSettings.from_file(settings_file))
    assert lines[1]["error"] == "empty text" and "1 review(s) could not be interpreted" in err


def test_predict_interpret_on_a_file_keeps_every_row_and_column(tiny_llm: Path, settings_file: Path,
                                                                 tiny_classifier: Path, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    import pandas as pd

    source = tmp_path / "in.csv"
    pd.DataFrame({"id": [1, 2, 3], "text": [MIXED, "", "A great film."], "label": ["x", "y", "z"]}
                 ).to_csv(source, index=False)
    target = tmp_path / "out.jsonl"
    code, _, err = run(["predict", "--model", str(tiny_classifier), "--interpreter", str(tiny_llm),
                        "--interpret-config", str(settings_file), "--device", "cpu", "--precision", "fp32",
                        "-i", str(source), "-o", str(target)], capsys)
    assert code == 0, err
    rows = [json.loads(line) for line in target.read_text().splitlines()]
    assert [row["id"] for row in rows] == ["1", "2", "3"]
    assert [row["label"] for row in rows] == ["x", "y", "z"]
    assert rows[1]["predicted_error"] in ("empty text", "missing text") and rows[1]["predicted_label"] is None
    assert rows[0]["predicted_label"] in ("positive", "negative")
    assert isinstance(rows[0]["predicted_aspects"], list)
    assert "the results are in predicted_label" in err and "1 row(s) could not be interpreted" in err


def test_predict_interpret_refuses_explain_and_a_classifier_alone(
        tiny_classifier: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = str(tiny_classifier)
    code, _, err = run(["predict", "--model", model, "--interpret", "--explain", "Good."], capsys)
    assert code == 2 and "not both" in err and err.count("\n") == 1
    code, _, err = run(["predict", "--model", str(tiny_classifier), "--interpret", "Good."], capsys)
    assert code == 2 and "not a causal language model" in err and err.count("\n") == 1


def test_options_interpretation_would_ignore_are_refused_in_one_line(
        tiny_llm: Path, tiny_classifier: Path, settings_file: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "in.csv"
    source.write_text("text\nA great film.\n", encoding="utf-8")
    calls = {
        "runs in this process": ["predict", "--model", str(tiny_llm), "--interpret", "--engine", "ray",
                                 "-i", str(source), "-o", str(tmp_path / "parts")],
        "give the hybrid as --model": ["predict", "--model", str(tiny_llm), "--interpret",
                                       "--mode", "cascade", "Good."],
        "hybrid folders only": ["predict", "--model", str(tiny_classifier), "--interpreter", str(tiny_llm),
                                "--interpret-config", str(settings_file), "--threshold", "0.3", "Good."],
        "needs --interpreter": ["serve", "--model", str(tiny_classifier), "--interpret-config",
                                str(settings_file)],
    }
    for message, argv in calls.items():
        code, _, err = run(argv, capsys)
        assert code == 2 and message in err and err.count("\n") == 1, (argv, err)
    assert not (tmp_path / "parts").exists()
    with pytest.raises(UserError, match="runs on PyTorch"):
        Interpreter.load(tiny_llm, InferenceConfig(device="cpu", backend="onnx"))


def test_the_service_interprets_and_streams(interpreter: Interpreter, tiny_classifier: Path) -> None:
    from fastapi.testclient import TestClient

    from imdb_sentiment.inference import SentimentClassifier
    from imdb_sentiment.serving import MAX_INTERPRET_TEXTS, create_app

    classifier = SentimentClassifier.load(tiny_classifier, device="cpu", backend="torch")
    client = TestClient(create_app(classifier, interpreter=interpreter))
    answered = client.post("/interpret", json={"texts": REVIEWS[:2]})
    assert answered.status_code == 200
    body = answered.json()
    assert body["interpreter"] == Path(interpreter.name).name and len(body["interpretations"]) == 2
    for text, answer in zip(REVIEWS[:2], body["interpretations"], strict=True):
        _check_answer({"error": None, **answer}, text, interpreter.settings)
    with client.stream("POST", "/interpret/stream", json={"text": MIXED}) as streamed:
        assert streamed.headers["content-type"].startswith("application/x-ndjson")
        events = [json.loads(line) for line in streamed.iter_lines() if line]
    assert "delta" in events[0] and events[-1]["result"]["aspects"] is not None
    assert client.post("/interpret", json={"texts": [""]}).status_code == 422
    assert client.post("/interpret", json={"texts": ["x"] * (MAX_INTERPRET_TEXTS + 1)}).status_code == 413
    assert client.post("/interpret/stream", json={"text": 5}).status_code == 422
    assert client.get("/info").json()["interpretation"]["aspects"] == interpreter.settings.aspects
    plain = TestClient(create_app(classifier)).post("/interpret", json={"texts": ["x"]})
    assert plain.status_code == 404 and "--interpreter" in plain.json()["error"]


# --------------------------------------------------------------------------- a real model


@pytest.mark.skipif(not (SMOLLM2 / "model.gguf").is_file(), reason="smollm2-135m-instruct not fetched")
def test_smollm2_interprets_a_mixed_review_with_the_packaged_settings() -> None:
    explainer = Interpreter.load(SMOLLM2, InferenceConfig(device="cpu"))
    answer = explainer.interpret([MIXED])[0]
    _check_answer(answer, MIXED, explainer.settings)
    assert answer["aspects"], "a real instruction model names at least one aspect"
