"""Why a review was called positive or negative: signed weights per word.

Two explainers, one output (:class:`Explanation`: words with weights, strongest first; a
positive weight pushes towards POSITIVE, a negative one towards NEGATIVE):

* :class:`LinearExplainer` for the bag-of-words baselines with linear weights (``nbsvm``,
  ``logreg``): each feature's contribution is its value times its weight, exactly; an n-gram's
  contribution is shared equally by its words, so a review's word weights plus the intercept add
  up to the model's decision value.
* :class:`GradientExplainer` for transformer classifiers: integrated gradients (Sundararajan et
  al. 2017) along a straight path from a baseline where every text token's embedding is the
  ``[PAD]`` embedding (special tokens kept) to the review, of the margin ``logit(POSITIVE) -
  logit(NEGATIVE)``; word pieces are summed into the words the tokenizer split the text into.
  Attributions add up to the margin's change along the path (up to the Riemann-sum error).
  A classifier running on ONNX Runtime or int8 gives its predictions; the gradients come from
  its PyTorch weights, loaded on the first explanation (see
  :meth:`~imdb_sentiment.inference.SentimentClassifier.gradient_classifier`).

Words are lower-cased and a word's occurrences are summed, so a page can colour every place it
appears. Models that fit neither way (random forests, ONNX export folders, which hold no PyTorch
weights) get a one-line error.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from .errors import UserError

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.pipeline import Pipeline

    from .classifier import Classifier
    from .config import InferenceConfig
    from .inference import SentimentClassifier

DEFAULT_STEPS = 16
"""Integrated-gradient steps (midpoint rule). On the shared fine-tuned MiniLM the completeness gap
averaged 0.8 logit at 16 steps (``benchmarks/explain_speed.py``); more steps shrink it at
proportional cost."""
DEFAULT_TOP = 10
"""Words per review shown by ``predict --explain`` and written to files."""


@dataclass
class Explanation:
    """A prediction and the signed word weights behind it."""

    label: str
    score: float
    words: list[tuple[str, float]]
    """``(word, weight)``, strongest (largest absolute weight) first."""
    method: str
    stars: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def top(self, count: int | None = DEFAULT_TOP) -> list[list[Any]]:
        """The ``count`` strongest ``[word, weight]`` pairs (all with ``None``), weights to 5 digits."""
        return [[word, float(f"{weight:.5g}")] for word, weight in self.words[:count]]


class Explainer(Protocol):
    name: str
    method: str

    def explain(self, texts: Sequence[str]) -> list[Explanation]: ...


def _ranked(weights: dict[str, float]) -> list[tuple[str, float]]:
    return sorted(weights.items(), key=lambda item: (-abs(item[1]), item[0]))


def _label(probability_positive: float) -> tuple[str, float]:
    from .modeling import ID2LABEL

    positive = probability_positive > 0.5
    return ID2LABEL[int(positive)], float(probability_positive if positive else 1 - probability_positive)


# --------------------------------------------------------------------------- bag of words


class LinearExplainer:
    """Exact contributions of a fitted bag-of-words pipeline whose last step is linear."""

    method = "linear"

    def __init__(self, pipeline: Pipeline, name: str = "", cleaning: str = "basic") -> None:
        classifier = pipeline.steps[-1][1]
        coefficients = getattr(classifier, "coef_", None)
        if coefficients is None or np.asarray(coefficients).shape[0] != 1:
            raise UserError(f"{name or 'this model'} ({type(classifier).__name__}) has no linear weights "
                            "to explain; --explain works with the nbsvm and logreg baselines and with "
                            "transformer classifiers")
        self.pipeline = pipeline
        self.name = name
        self.cleaning = cleaning
        self.features = pipeline[:-1]
        vectorizer = pipeline.steps[0][1]
        self.terms = vectorizer.get_feature_names_out()
        self.weights = np.asarray(coefficients, dtype=np.float64).ravel()
        self.intercept = float(np.ravel(getattr(classifier, "intercept_", [0.0]))[0])
        self._positive = list(classifier.classes_).index(1) if hasattr(classifier, "classes_") else None

    def contributions(self, texts: Sequence[str]) -> Any:
        """Feature value times weight, one sparse row per text (sums + intercept = decision value)."""
        from .data import clean_text

        matrix = self.features.transform([clean_text(text, self.cleaning) for text in texts])
        return matrix.multiply(self.weights).tocsr()

    def explain(self, texts: Sequence[str]) -> list[Explanation]:
        from .data import clean_text

        texts = list(texts)
        rows = self.contributions(texts)
        cleaned = [clean_text(text, self.cleaning) for text in texts]
        positive = self.pipeline.predict_proba(cleaned)[:, self._positive]
        out = []
        for index in range(len(texts)):
            row = rows.getrow(index)
            words: dict[str, float] = {}
            for column, value in zip(row.indices, row.data, strict=True):
                parts = str(self.terms[column]).split(" ")
                for part in parts:  # an n-gram's contribution is shared by its words
                    words[part] = words.get(part, 0.0) + float(value) / len(parts)
            label, score = _label(float(positive[index]))
            out.append(Explanation(label, score, _ranked(words), self.method,
                                   extra={"intercept": self.intercept}))
        return out


# --------------------------------------------------------------------------- transformers


class GradientExplainer:
    """Integrated gradients over the input embeddings of a transformer classifier.

    Labels, scores and stars are ``classifier``'s own (as it predicts them); the word weights come
    from its PyTorch model with gradients, which for an ONNX Runtime or int8 classifier is loaded
    here, once.
    """

    method = "integrated-gradients"

    def __init__(self, classifier: Classifier, steps: int = DEFAULT_STEPS) -> None:
        if steps <= 0:
            raise UserError(f"integrated-gradient steps must be positive, got {steps}")
        gradients: SentimentClassifier = classifier.gradient_classifier()  # type: ignore[assignment]
        tokenizer = gradients.tokenizer
        if tokenizer is None or not getattr(tokenizer, "is_fast", False):
            raise UserError("explanations need a fast (Rust) tokenizer to map word pieces back to words")
        self.classifier = classifier
        self.gradients = gradients
        self.tokenizer = tokenizer
        self.steps = steps
        self.name = classifier.name

    def explain(self, texts: Sequence[str]) -> list[Explanation]:
        from .data import clean_text

        texts = list(texts)
        details = self.classifier.predict_details(texts)
        out = []
        for index, text in enumerate(texts):
            words, gap = self.attribute(clean_text(text, self.gradients.cleaning))
            label, score = _label(float(details.probabilities[index, 1]))
            stars = None if details.stars is None else round(float(details.stars[index]), 2)
            out.append(Explanation(label, score, _ranked(words), self.method, stars,
                                   extra={"completeness_gap": gap}))
        return out

    def attribute(self, text: str) -> tuple[dict[str, float], float]:
        """Word weights for one (cleaned) text and the completeness gap: |sum - margin change|."""
        import torch

        from .encoding import truncate_ids
        from .modeling import label_order

        classifier = self.gradients
        encoded = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        ids, offsets, word_of = encoded["input_ids"], encoded["offset_mapping"], encoded.word_ids()
        budget = classifier.max_length - classifier.encoder.special_count
        cut = "head-tail" if classifier.truncation == "chunks" else classifier.truncation
        kept = truncate_ids(list(range(len(ids))), budget, cut, classifier.head_tokens)  # positions
        prefix, suffix = classifier.encoder.prefix, classifier.encoder.suffix
        model = classifier.model
        device = classifier.device
        input_ids = torch.tensor([prefix + [ids[i] for i in kept] + suffix], device=device)
        text_slots = slice(len(prefix), len(prefix) + len(kept))
        negative, positive = label_order(model.config)
        embed = model.get_input_embeddings()
        with torch.no_grad():
            actual = embed(input_ids).float()
            baseline = actual.clone()
            pad = embed(torch.tensor([[classifier.encoder.pad_id]], device=device)).float()
            baseline[:, text_slots] = pad
        extra: dict[str, Any] = {"attention_mask": torch.ones_like(input_ids)}
        if "token_type_ids" in classifier.backend.input_names:
            extra["token_type_ids"] = torch.zeros_like(input_ids)
        alphas = (torch.arange(self.steps, device=device, dtype=torch.float32) + 0.5) / self.steps
        total = torch.zeros_like(actual)
        with torch.enable_grad():
            for chunk in alphas.split(8):  # bounded memory on long reviews
                path = (baseline + chunk[:, None, None] * (actual - baseline)).requires_grad_(True)
                batch = {key: value.expand(len(chunk), -1) for key, value in extra.items()}
                logits = model(inputs_embeds=path, **batch).logits.float()
                margin = logits[:, positive] - logits[:, negative]
                total += torch.autograd.grad(margin.sum(), path)[0].sum(0, keepdim=True)
        with torch.no_grad():  # the margin at both ends of the path, for the completeness gap
            ends = {key: value.expand(2, -1) for key, value in extra.items()}
            end_logits = model(inputs_embeds=torch.cat([baseline, actual]), **ends).logits.float()
        scores = ((actual - baseline) * total / self.steps).sum(-1)[0].detach().cpu().numpy()
        change = float((end_logits[1, positive] - end_logits[1, negative])
                       - (end_logits[0, positive] - end_logits[0, negative]))
        words: dict[str, tuple[int, int, float]] = {}  # word index -> (start, end, weight)
        for slot, position in enumerate(kept):
            word = word_of[position] if word_of[position] is not None else -1 - position
            start, end = offsets[position]
            if word in words:
                first, _, weight = words[word]
                words[word] = (first, end, weight + float(scores[text_slots.start + slot]))
            else:
                words[word] = (start, end, float(scores[text_slots.start + slot]))
        merged: dict[str, float] = {}
        for start, end, weight in words.values():
            key = text[start:end].lower()
            merged[key] = merged.get(key, 0.0) + weight
        gap = abs(float(scores[text_slots].sum()) - change)
        return merged, gap


# --------------------------------------------------------------------------- loading


def is_baseline_folder(path: Path) -> bool:
    from .baselines import MODEL_FILE

    return (path / MODEL_FILE).is_file() or (path / "model" / MODEL_FILE).is_file()


def load_explainer(model: str | os.PathLike[str], *, config: InferenceConfig | None = None,
                   device: str | None = None, steps: int = DEFAULT_STEPS,
                   classifier: Classifier | None = None, **options: Any) -> Explainer:
    """An explainer for a baseline folder (``baseline`` output or its ``model/``), a hybrid folder (its
    bag-of-words screen) or a classifier.

    ``config`` and keyword ``options`` over it go to :meth:`SentimentClassifier.load` (backend,
    precision, length, truncation, ...); without a config a transformer runs on PyTorch in fp32.
    Any engine explains: one without gradients (ONNX Runtime, int8) predicts, and its PyTorch
    weights give the word weights.
    """
    from .exporters.onnx import ONNX_META
    from .hybrid import is_hybrid, screen_file

    folder = Path(str(model)).expanduser()
    if is_hybrid(folder):  # its screen decides the confident reviews: its exact contributions
        from .baselines import load_baseline

        return LinearExplainer(load_baseline(screen_file(folder)), name=f"{model} (screen)")
    if folder.is_dir() and is_baseline_folder(folder):
        from .baselines import MODEL_FILE, load_baseline

        file = folder / MODEL_FILE if (folder / MODEL_FILE).is_file() else folder / "model" / MODEL_FILE
        return LinearExplainer(load_baseline(file), name=str(model))
    if (folder / ONNX_META).is_file():
        raise UserError(f"{model} is an ONNX export without PyTorch weights, so it has no gradients to "
                        "explain; explain the PyTorch model folder it was exported from")
    if classifier is None:
        from .config import InferenceConfig
        from .inference import SentimentClassifier

        settings = config or InferenceConfig(precision="fp32", backend="torch")
        classifier = SentimentClassifier.load(model, config=settings, device=device, **options)
    return GradientExplainer(classifier, steps)


# --------------------------------------------------------------------------- files


def explain_frame(explainer: Explainer, frame: pd.DataFrame, text_column: str = "text",
                  top: int = DEFAULT_TOP) -> pd.DataFrame:
    """``frame`` plus label, score, (stars,) explanation (JSON ``[[word, weight], ...]``) and error,
    named as ``predict`` names its columns (:func:`tables.free_names`: no input column is overwritten)."""
    from .tables import add_columns, row_problem

    problems = [row_problem(value) for value in frame[text_column].tolist()]
    good = [i for i, problem in enumerate(problems) if problem is None]
    found = explainer.explain([frame[text_column].iat[i] for i in good])
    columns: dict[str, list[Any]] = {name: [None] * len(frame) for name in ("label", "score", "explanation")}
    stars: list[Any] = [None] * len(frame)
    for i, item in zip(good, found, strict=True):
        columns["label"][i], columns["score"][i] = item.label, item.score
        columns["explanation"][i] = json.dumps(item.top(top), ensure_ascii=False)
        stars[i] = item.stars
    outputs = {"label": columns["label"], "score": columns["score"]}
    if any(value is not None for value in stars):
        outputs["stars"] = stars
    outputs.update(explanation=columns["explanation"], error=problems)
    return add_columns(frame, outputs)[0]
