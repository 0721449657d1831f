"""Classic bag-of-words baselines: the reference study's Random Forest and two stronger linear models.

Each baseline is a scikit-learn :class:`~sklearn.pipeline.Pipeline` (``fit`` / ``predict`` /
``predict_proba`` on raw texts). Models are saved with skops and loaded back against an explicit
list of trusted types, so loading never unpickles arbitrary code.

The fixed hyper-parameters below were chosen once on the validation split carved from IMDB train
(seed 42); the test split played no part:

* ``nbsvm``: C in {0.1, 0.3, 1, 3} scored 0.923-0.924 with word 1-2-grams, single-letter words,
  "!" and "?" (0.923 without them; 1-3-grams reach 0.93 but double the time of a run);
* ``logreg``: C in {1, 3, 10, 30, 100} scored 0.901, 0.909, 0.918, 0.922, 0.921 with sklearn's
  default tokens (0.919 with the NB-SVM ones);
* ``random-forest``: 5,000 TF-IDF features and 200 trees, each on 30 % of the reviews, scored 0.841
  in under a minute (full bootstrap samples: 0.848 in three minutes);
* ``ridge-rating``: ridge regression of the 1-10 star rating on the ``logreg`` TF-IDF features;
  its stars decide the polarity (> 5.5). alpha in {0.3, 1, 3} gave validation MAE 1.59, 1.61,
  1.71 on a split carved by movie (``benchmarks/rating_head.py``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer

from .errors import UserError, first_line

if TYPE_CHECKING:
    import pandas as pd
    from scipy import sparse
    from sklearn.pipeline import Pipeline

    from .config import DataSpec

MODELS = ("random-forest", "logreg", "nbsvm")
"""The sentiment classifiers."""
RATING_MODELS = ("ridge-rating",)
"""Baselines fitted to the star rating rather than the label (for comparison with ``--target rating``)."""
MODEL_FILE = "model.skops"
INFO_FILE = "model.json"
# Words (single letters too) plus "!" and "?", which the default token pattern drops.
TOKEN_PATTERN = r"(?u)\b\w+\b|[!?]"

Progress = Callable[[str], None]
RIDGE_ALPHA = 0.3


@dataclass(frozen=True)
class BaselineConfig:
    """Which baseline to fit and any of its pipeline's hyper-parameters to change.

    ``params`` are pipeline parameters such as ``{"classifier__C": 1.0}``.
    """

    model: str = "nbsvm"
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        build_baseline(self.model, **self.params)  # a bad name or setting fails here, before any data loads


# --------------------------------------------------------------------------- estimators


class NBFeatures(TransformerMixin, BaseEstimator):
    """Scale (binarized) counts by the naive Bayes log-count ratio (Wang & Manning, 2012).

    ``r = log((p / |p|) / (q / |q|))`` with ``p`` and ``q`` the ``alpha``-smoothed feature counts
    of the positive and negative reviews; a linear model on ``x * r`` is the NB-SVM/NB-LR recipe.
    """

    def __init__(self, alpha: float = 1.0) -> None:
        self.alpha = alpha

    def fit(self, X: sparse.spmatrix, y: np.ndarray, sample_weight: np.ndarray | None = None) -> NBFeatures:
        """``sample_weight`` scales each review's counts (a soft-labelled review enters as a positive
        with weight p and as a negative with weight 1 - p)."""
        labels = np.asarray(y)
        weights = np.ones(len(labels)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        if set(np.unique(labels[weights > 0])) != {0, 1}:
            raise ValueError("NB features need both negative (0) and positive (1) training reviews")
        positive = self.alpha + np.asarray(X.T @ (weights * (labels == 1))).ravel()
        negative = self.alpha + np.asarray(X.T @ (weights * (labels == 0))).ravel()
        self.ratio_ = np.log(positive / positive.sum()) - np.log(negative / negative.sum())
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X: sparse.spmatrix) -> sparse.csr_matrix:
        from scipy import sparse

        if X.shape[1] != self.ratio_.shape[0]:
            raise ValueError(f"expected {self.ratio_.shape[0]} features, got {X.shape[1]}")
        return sparse.csr_matrix(X @ sparse.diags(self.ratio_))


class _CompactVocabulary:
    """Save ``vocabulary_`` as one newline-joined string of terms in index order.

    skops stores a dict entry by entry: for the 400,000 n-grams of a bigram model that takes half
    a minute each way, against a fraction of a second for one string.
    """

    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())  # type: ignore[misc]
        vocabulary = state.get("vocabulary_")
        if isinstance(vocabulary, dict) and not any("\n" in term for term in vocabulary):
            terms = sorted(vocabulary, key=vocabulary.__getitem__)
            if [vocabulary[term] for term in terms] == list(range(len(terms))):
                state["vocabulary_"] = "\n".join(terms)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        vocabulary = state.get("vocabulary_")
        if isinstance(vocabulary, str):
            state = {**state, "vocabulary_": {term: i for i, term in enumerate(vocabulary.split("\n"))}}
        super().__setstate__(state)  # type: ignore[misc]


class Counts(_CompactVocabulary, CountVectorizer):
    """``CountVectorizer`` that saves its vocabulary compactly."""


class Tfidf(_CompactVocabulary, TfidfVectorizer):
    """``TfidfVectorizer`` that saves its vocabulary compactly."""


def build_baseline(name: str, seed: int = 42, **params: Any) -> Pipeline:
    """An unfitted baseline; ``params`` override pipeline settings (``classifier__C=3``)."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import Pipeline

    if name == "random-forest":
        steps = [
            ("vectorizer", Tfidf(max_features=5000, stop_words="english", sublinear_tf=True)),
            ("classifier", RandomForestClassifier(n_estimators=200, max_samples=0.3, n_jobs=-1,
                                                  random_state=seed)),
        ]
    elif name == "logreg":
        steps = [
            ("vectorizer", Tfidf(ngram_range=(1, 2), min_df=2, max_df=0.9, sublinear_tf=True)),
            ("classifier", LogisticRegression(C=30.0, solver="liblinear", random_state=seed)),
        ]
    elif name == "nbsvm":
        steps = [
            ("vectorizer", Counts(ngram_range=(1, 2), min_df=2, binary=True,
                                           token_pattern=TOKEN_PATTERN)),
            ("nb", NBFeatures(alpha=1.0)),
            ("classifier", LogisticRegression(C=1.0, solver="liblinear", dual=True, max_iter=1000,
                                              random_state=seed)),
        ]
    elif name == "ridge-rating":
        steps = [
            ("vectorizer", Tfidf(ngram_range=(1, 2), min_df=2, max_df=0.9, sublinear_tf=True)),
            ("regressor", Ridge(alpha=RIDGE_ALPHA, solver="sparse_cg", random_state=seed)),
        ]
    else:
        raise UserError(f"unknown baseline {name!r}; choose one of {', '.join(MODELS + RATING_MODELS)}")
    pipeline = Pipeline(steps)
    if params:
        try:
            pipeline.set_params(**params)
        except ValueError as error:
            raise UserError(f"bad setting for baseline {name!r}: {error}") from error
    return pipeline


# --------------------------------------------------------------------------- saving and loading

# The types a saved baseline is made of. Loading refuses a file holding any type that is neither
# listed here nor one of skops' own safe defaults, so a tampered model file cannot run code.
TRUSTED_TYPES = (
    "imdb_sentiment.baselines.Counts",
    "imdb_sentiment.baselines.NBFeatures",
    "imdb_sentiment.baselines.Tfidf",
    "sklearn.ensemble._forest.RandomForestClassifier",
    "sklearn.feature_extraction.text.TfidfTransformer",
    "sklearn.linear_model._logistic.LogisticRegression",
    "sklearn.linear_model._ridge.Ridge",
    "sklearn.pipeline.Pipeline",
    "sklearn.tree._classes.DecisionTreeClassifier",
    "sklearn.tree._tree.Tree",
)


def save_baseline(model: Pipeline, folder: str | Path, name: str = "") -> Path:
    """Write ``model`` as ``folder/model.skops`` plus a small ``model.json`` description."""
    import sklearn
    import skops
    import skops.io as sio

    from .artifacts import write_json

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    sio.dump(model, out / MODEL_FILE, compression=8)  # ZIP_DEFLATED
    write_json(out / INFO_FILE, {
        "model": name, "format": "skops", "file": MODEL_FILE,
        "sklearn_version": sklearn.__version__, "skops_version": skops.__version__,
    })
    return out


def load_baseline(path: str | Path) -> Pipeline:
    """Load a saved baseline (its folder or the ``.skops`` file), trusting only known types."""
    import skops.io as sio

    file = Path(path)
    if file.is_dir():
        file = file / MODEL_FILE
    if not file.is_file():
        raise UserError(f"no saved baseline at {path} (expected {MODEL_FILE})")
    try:
        untrusted = sio.get_untrusted_types(file=file)
    except Exception as error:  # not a zip, or not a skops file
        raise UserError(f"{file} is not a readable skops model: {error}") from error
    unknown = sorted(set(untrusted) - set(TRUSTED_TYPES))
    if unknown:
        raise UserError(f"{file} holds types that are not trusted: {', '.join(unknown)}")
    return sio.load(file, trusted=list(untrusted))


# --------------------------------------------------------------------------- a full run


@contextlib.contextmanager
def _step(progress: Progress | None, what: str, announce: bool = True) -> Iterator[None]:
    """Report the start of a long step (unless it may still fail on bad input) and its duration."""
    started = time.perf_counter()
    if progress and announce:
        progress(f"{what} ...")
    yield
    if progress:
        progress(f"{what}: done in {time.perf_counter() - started:.1f} s")


def fit_baseline(name: str, train: pd.DataFrame, seed: int = 42, **params: Any) -> Pipeline:
    """Build and fit a baseline on a frame with ``text`` and ``label`` columns."""
    _check_labels(train)
    return _fit(build_baseline(name, seed, **params), name, train["text"].tolist(), train["label"].to_numpy())


def _check_labels(train: pd.DataFrame, where: str = "the training reviews") -> None:
    from .data import LABEL_NAMES

    labels = train["label"].unique()
    if len(labels) < 2:
        only = f" (only {LABEL_NAMES[int(labels[0])]} ones)" if len(labels) else ""
        raise UserError(f"{where} must include both negative and positive reviews{only}: "
                        "no classifier can be fitted to one label")


def _fit(pipeline: Pipeline, name: str, texts: list[str], targets: np.ndarray,
         vocabulary_built: Callable[[], None] | None = None, extra: pd.DataFrame | None = None) -> Pipeline:
    """Fit ``pipeline``; texts that give its vectorizer no vocabulary are a one-line error.

    ``vocabulary_built`` is called once they have given one: from then on bad input cannot fail it.
    ``extra`` (``text``, ``p_positive``) are soft-labelled reviews, fitted by sample weight (see
    :func:`soft_label_rows`); their texts count once in the vocabulary, as any review's.

    scikit-learn's messages ("max_df corresponds to < documents than min_df", "empty vocabulary",
    "no terms remain") name its settings, not the cause: too few reviews, or none with words
    shared by two reviews.
    """
    from .data import SOFT_LABEL_COLUMN

    vectorizer = pipeline.steps[0][1]
    extra_texts = extra["text"].tolist() if extra is not None else []
    try:
        features = vectorizer.fit_transform(texts + extra_texts)
    except ValueError as error:
        raise UserError(
            f"{name} finds no vocabulary in the {len(texts):,} training review(s) ({first_line(error)}); "
            "it needs more reviews, with words that recur across them"
        ) from error
    if vocabulary_built is not None:
        vocabulary_built()
    fit_params: dict[str, np.ndarray] = {}
    if extra_texts:
        features, targets, weights = soft_label_rows(features, targets, extra[SOFT_LABEL_COLUMN].to_numpy())
        fit_params = {f"{step}__sample_weight": weights for step, _ in pipeline.steps[1:]}
    try:  # the remaining steps are the pipeline's own objects, fitted in place
        pipeline[1:].fit(features, targets, **fit_params)
    except ValueError as error:  # scikit-learn estimators refuse unusable targets or settings so
        raise UserError(f"cannot fit {name} on the training reviews: {first_line(error)}") from error
    return pipeline


def refit_screen(screen: Pipeline, texts: list[str], labels: np.ndarray,
                 extra: pd.DataFrame | None = None) -> Pipeline:
    """A fresh copy of ``screen`` (same settings) fitted on these reviews, plus the soft-labelled
    ``extra`` ones (``text``, ``p_positive``) the way ``baseline --extra-data`` fits them."""
    from sklearn.base import clone

    return _fit(clone(screen), "the screen", texts, np.asarray(labels), extra=extra)


def soft_label_rows(features: sparse.spmatrix, labels: np.ndarray, soft_labels: np.ndarray,
                    ) -> tuple[sparse.csr_matrix, np.ndarray, np.ndarray]:
    """Rows, targets and sample weights for gold reviews (the first ``len(labels)`` rows of
    ``features``, weight 1) plus soft-labelled ones (the rest): each of those enters twice, as a
    positive with weight p and as a negative with weight 1 - p, so its expected loss is the cross
    entropy against p. Rows of weight 0 are left out."""
    from scipy import sparse

    gold = len(labels)
    extra = features[gold:]
    soft = np.asarray(soft_labels, dtype=float)
    rows = sparse.vstack([features[:gold], extra, extra], format="csr")
    targets = np.concatenate([np.asarray(labels), np.ones(len(soft), dtype=int),
                              np.zeros(len(soft), dtype=int)])
    weights = np.concatenate([np.ones(gold), soft, 1.0 - soft])
    keep = np.flatnonzero(weights > 0)
    return rows[keep], targets[keep], weights[keep]


def evaluate_baseline(model: Pipeline, frame: pd.DataFrame) -> dict[str, Any]:
    """Accuracy, F1, precision, recall, confusion matrix and ROC AUC of ``model`` on ``frame``
    (and MAE and within-one-star accuracy for a rating baseline)."""
    from .evaluation import classification_metrics

    if not hasattr(model, "predict_proba"):  # a regressor of the star rating
        return _evaluate_rating(model, frame)
    positive = model.predict_proba(frame["text"].tolist())[:, list(model.classes_).index(1)]
    return classification_metrics(frame["label"].to_numpy(), (positive >= 0.5).astype(int), positive)


def _evaluate_rating(model: Pipeline, frame: pd.DataFrame) -> dict[str, Any]:
    """Classification metrics (polarity: stars > 5.5) plus MAE and within-one-star accuracy."""
    from .evaluation import classification_metrics
    from .ratings import MIDPOINT, check_ratings, rating_metrics

    check_ratings(frame, "the evaluation split")
    stars = np.clip(model.predict(frame["text"].tolist()), 1.0, 10.0)
    score = (stars - 1.0) / 9.0  # a monotone score in [0, 1] for ROC AUC
    metrics = classification_metrics(frame["label"].to_numpy(), (stars > MIDPOINT).astype(int), score)
    metrics.update(rating_metrics(frame["rating"], stars))
    return metrics


def run_baseline(
    data: DataSpec,
    settings: BaselineConfig,
    output: str | Path,
    *,
    overwrite: bool = False,
    runs_dir: str | Path | None = None,
    progress: Progress | None = None,
    extra_data: Sequence[str | Path] = (),
) -> dict[str, Any]:
    """Train ``settings.model`` on train, score validation, evaluate on the full test split, save both.

    The pipeline is seeded with ``data.seed``. Writes ``output/metrics.json`` (with the data
    settings) and ``output/model/`` in one atomic step and returns the metrics. ``extra_data``:
    soft-labelled review files (see :func:`data.read_extra_reviews`) added to the training part
    only, by sample weight; validation and test stay gold.
    """
    from .artifacts import atomic_output_dir, check_output_dir, write_json
    from .data import LoadReport, read_extra_reviews, warn_about_splits

    started = time.perf_counter()
    spec, model, source = data, settings.model, data.source
    pipeline = build_baseline(model, spec.seed, **settings.params)
    if extra_data and model in RATING_MODELS:
        raise UserError(f"--extra-data gives P(positive), not star ratings; {model} cannot use it")
    # An occupied output, or one overlapping an input, fails now.
    check_output_dir(output, overwrite, inputs=(source, *extra_data))
    extra = None
    if extra_data:  # a bad extra file fails before the gold data loads
        extra = read_extra_reviews(extra_data, text_column=spec.text_column,
                                   cleaning=spec.cleaning)  # type: ignore[arg-type]  # DataSpec checks it
    report = LoadReport(source, "")
    with _step(progress, f"loading {source}", announce=False):  # bad data: the error line alone
        frames = spec.load(require=("train", "test"), report=report)
    _check_labels(frames["train"], f"the train split of {source}")
    warn_about_splits(frames, source)
    target = "label"
    if model in RATING_MODELS:
        from .ratings import check_ratings

        check_ratings(frames["train"], f"the train split of {source}")
        target = "rating"
    if extra is not None:
        extra = extra.held_out_of(frames)
        if progress:
            progress(extra.summary())
    training = f"training {model} on {len(frames['train']) + (len(extra.frame) if extra else 0):,} reviews"
    with _step(progress, training, announce=False):  # texts without a vocabulary: the error line alone
        fit_started = time.perf_counter()
        fitted = _fit(pipeline, model, frames["train"]["text"].tolist(), frames["train"][target].to_numpy(),
                      vocabulary_built=(lambda: progress(f"{training} ...")) if progress else None,
                      extra=extra.frame if extra else None)
        train_seconds = time.perf_counter() - fit_started
    validation_accuracy = None
    if "validation" in frames:
        with _step(progress, f"validating on {len(frames['validation']):,} reviews"):
            validation_accuracy = evaluate_baseline(fitted, frames["validation"])["accuracy"]
        if progress:
            progress(f"validation accuracy: {validation_accuracy:.4f}")
    with _step(progress, f"evaluating on {len(frames['test']):,} test reviews"):
        metrics = evaluate_baseline(fitted, frames["test"])
    metrics.update({
        "model": model,
        "validation_accuracy": validation_accuracy,
        "train_seconds": round(train_seconds, 2),
        "n_train": len(frames["train"]),
        "n_validation": len(frames.get("validation", ())),
        "skipped_empty": report.skipped_empty,
        **(extra.record() if extra else {}),
        **spec.record(),
        "params": _params(fitted),
    })
    with _step(progress, f"saving to {output}"), atomic_output_dir(output, overwrite) as tmp:
        save_baseline(fitted, tmp / "model", model)
        metrics["seconds"] = round(time.perf_counter() - started, 2)
        write_json(tmp / "metrics.json", metrics)
    if runs_dir is not None:
        _log_run(runs_dir, spec, model, metrics, Path(output))
    return metrics


def _params(model: Pipeline) -> dict[str, Any]:
    """The pipeline's plain hyper-parameters (numbers, strings, tuples), for the run record."""
    plain = (int, float, str, bool, tuple, type(None))
    return {key: list(value) if isinstance(value, tuple) else value
            for key, value in model.get_params(deep=True).items()
            if "__" in key and isinstance(value, plain)}


def _log_run(runs_dir: str | Path, spec: DataSpec, model: str, metrics: dict[str, Any], output: Path) -> None:
    """Record the run in the run store (``tracking`` decides what ``runs_dir`` means)."""
    from .tracking import RunEntry, log_run

    scores = {key: value for key, value in metrics.items() if key != "params"}
    log_run(runs_dir, RunEntry(stage="baseline", model=model, params={**spec.record(), **metrics["params"]},
                               metrics=scores, duration=metrics["seconds"],
                               artifacts=[output / "metrics.json", output / "model"]))
