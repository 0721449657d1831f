"""A hybrid classifier: a bag-of-words screen (NB-SVM) in front of a transformer.

The transformer is a fine-tuned sequence classifier or a prompted language model (a causal LM
folder or a GGUF model: :class:`~imdb_sentiment.llm.LLMClassifier`); the hybrid takes either
through the :class:`~imdb_sentiment.classifier.Classifier` protocol.

The screen costs about a hundredth of the transformer and makes different mistakes, so

* ``ensemble`` blends both on every review: a logistic stacker on the two parts' log-odds
  (``p = sigmoid(a * logit(p_screen) + b * logit(p_transformer) + c)``), fitted on validation,
  which both calibrates each part and weighs them;
* ``cascade`` lets the screen decide where it is confident (``|p_screen - 0.5| > threshold``) and
  sends only the other reviews to the transformer, whose answer is blended with the screen's
  (or used alone, whichever validation preferred);
* ``auto`` (the default) is cascade on a CPU, where the transformer is the whole cost, and
  ensemble on a GPU.

A hybrid folder holds ``hybrid.json`` (the settings and the choices validation made), the
baseline as a skops file loaded against its trusted types, and a reference to the transformer
folder or GGUF file (or a copy of it). :func:`load_hybrid` gives a :class:`HybridClassifier`: a
:class:`~imdb_sentiment.classifier.Classifier`, so it works wherever a
:class:`~imdb_sentiment.inference.SentimentClassifier` does.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from numbers import Real
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .classifier import PROMPTED_LLM, Classifier, Details, Progress, check_texts
from .errors import UserError, first_line
from .inference import SentimentClassifier

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.pipeline import Pipeline

    from .config import DataSpec, InferenceConfig

MODES = ("auto", "ensemble", "cascade")
REFIT_AUTO, REFIT_FOLDS, REFIT_NONE = "auto", "folds", "none"
REFIT_SCHEMES = (REFIT_AUTO, REFIT_FOLDS, REFIT_NONE)
"""``--refit-by`` values besides a group column's name."""
GROUP_COLUMN_GUESS = "movie"
"""The column ``auto`` groups by when the data has it (IMDB's title ids)."""
FALLBACKS = ("blend", "transformer")
DECIDERS = ("screen", "transformer", "blend")
HYBRID_FILE = "hybrid.json"
FORMAT = "imdb-sentiment-hybrid"
VERSIONS = (1,)
"""The ``hybrid.json`` versions this code reads; it writes the last."""
BASELINE_PART = "baseline"
TRANSFORMER_PART = "transformer"
FINE_TUNED = "fine-tuned"
TRANSFORMER_KINDS = {FINE_TUNED: "a fine-tuned transformer", PROMPTED_LLM: "a prompted language model"}
"""What a hybrid's transformer is (as ``metrics.json`` records it), and how its card says so."""
THRESHOLDS = np.round(np.arange(0.0, 0.5001, 0.01), 2)
"""Cascade thresholds tried on validation: the screen decides where ``|p - 0.5|`` exceeds one."""
MARGIN_SE = 1.0
"""A cascade threshold must beat the transformer alone on validation by this many standard errors
of their paired accuracy difference, so that a choice made on a few thousand reviews holds."""
_EPS = 1e-6


# --------------------------------------------------------------------------- settings


@dataclass
class Stacker:
    """``p(positive) = sigmoid(screen * logit(p_screen) + transformer * logit(p_transformer) + bias)``."""

    screen: float = 1.0
    transformer: float = 1.0
    bias: float = 0.0

    @property
    def weight(self) -> float:
        """The screen's share of the log-odds weight (0.5: equal say)."""
        total = self.screen + self.transformer
        return self.screen / total if total else 0.5

    def __post_init__(self) -> None:
        for name in ("screen", "transformer", "bias"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
                raise UserError(f"the stacker's {name} {'term' if name == 'bias' else 'weight'} must be a "
                                f"finite number, not {value!r}")
            setattr(self, name, float(value))

    def combine(self, screen: np.ndarray, transformer: np.ndarray) -> np.ndarray:
        z = self.screen * logit(screen) + self.transformer * logit(transformer) + self.bias
        return 1.0 / (1.0 + np.exp(-z))


@dataclass
class HybridSettings:
    """Everything ``hybrid.json`` holds: how to combine the parts and where they are."""

    mode: str = "auto"
    threshold: float = 0.4
    fallback: str = "blend"
    stacker: Stacker = field(default_factory=Stacker)
    baseline: str = BASELINE_PART
    """The baseline's folder (``model.skops``), relative to the hybrid folder or absolute."""
    transformer: str = TRANSFORMER_PART
    """The transformer's folder (or GGUF file), relative to the hybrid folder or absolute."""
    screen_cleaning: str = "basic"
    transformer_labels: list[int] = field(default_factory=lambda: [0, 1])
    """The transformer's output index of negative and positive when the hybrid was made
    (a prompted language model's are always ``[0, 1]``)."""
    validation: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_mode(self.mode)
        check_threshold(self.threshold)
        if self.fallback not in FALLBACKS:
            raise UserError(f"fallback must be one of {', '.join(FALLBACKS)}, not {self.fallback!r}")
        if isinstance(self.stacker, dict):
            self.stacker = Stacker(**self.stacker)
        elif not isinstance(self.stacker, Stacker):
            raise UserError(f"stacker must be a table of screen, transformer and bias, not {self.stacker!r}")
        for name in ("baseline", "transformer"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise UserError(f"{name} must be the path of its folder, not {getattr(self, name)!r}")
        labels = self.transformer_labels
        if (not isinstance(labels, list) or len(labels) != 2 or len(set(labels)) != 2
                or not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in labels)):
            raise UserError(f"transformer_labels must be the two output indices of negative and positive, "
                            f"not {labels!r}")
        if not isinstance(self.validation, dict):
            raise UserError(f"validation must be a table, not {self.validation!r}")

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": VERSIONS[-1], **asdict(self)}

    @classmethod
    def from_json(cls, data: object, where: str) -> HybridSettings:
        """Settings read from ``where`` (a ``hybrid.json``); anything wrong is one line naming it."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            found = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise UserError(f"{where} is not a hybrid settings file (format {found!r})")
        version = data.get("version")
        if version not in VERSIONS or isinstance(version, bool):
            newer = isinstance(version, int) and not isinstance(version, bool) and version > VERSIONS[-1]
            raise UserError(f"{where} has version {version!r}"
                            + (", written by a newer imdb-sentiment" if newer else "")
                            + f"; this one reads version {', '.join(map(str, VERSIONS))}: "
                            + ("upgrade imdb-sentiment or " if newer else "")
                            + "rebuild the folder with `imdb-sentiment hybrid`")
        known = {key: value for key, value in data.items() if key in cls.__dataclass_fields__}
        try:
            return cls(**known)
        except UserError as error:
            raise UserError(f"{where} has a bad setting: {error}") from error
        except TypeError as error:  # a key the stacker does not know, a mistyped value
            raise UserError(f"{where} has bad settings: {error}") from error


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise UserError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    return mode


def check_threshold(threshold: float) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, Real) or not 0.0 <= threshold <= 0.5:
        raise UserError(f"threshold must be in [0, 0.5] (the screen decides where |p - 0.5| exceeds it), "
                        f"got {threshold}")
    return threshold


def resolve_mode(mode: str, device: str) -> str:
    """``auto``: cascade on a CPU (the transformer is the whole cost), ensemble on an accelerator."""
    if mode != "auto":
        return mode
    return "cascade" if device == "cpu" else "ensemble"


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


# --------------------------------------------------------------------------- combining


def combine(screen: np.ndarray, transformer: np.ndarray | None, mode: str, threshold: float,
            fallback: str, stacker: Stacker) -> tuple[np.ndarray, np.ndarray]:
    """P(positive) and who decided, per review, from the parts' P(positive).

    ``transformer`` may hold NaN (or be None) where the screen decided and it was not run.
    """
    screen = np.asarray(screen, dtype=np.float64)
    sure = screen_decides(screen, mode, threshold)
    positive = screen.copy()
    decided = np.full(len(screen), "screen", dtype=object)
    rest = ~sure
    if rest.any():
        if transformer is None:
            raise ValueError("the transformer's probabilities are needed for uncertain reviews")
        other = np.asarray(transformer, dtype=np.float64)[rest]
        if fallback == "blend":
            positive[rest], decided[rest] = stacker.combine(screen[rest], other), "blend"
        else:
            positive[rest], decided[rest] = other, "transformer"
    return positive, decided


def screen_decides(screen: np.ndarray, mode: str, threshold: float) -> np.ndarray:
    if mode != "cascade":
        return np.zeros(len(screen), dtype=bool)
    return np.abs(np.asarray(screen) - 0.5) > threshold


def fit_stacker(screen: np.ndarray, transformer: np.ndarray, labels: np.ndarray, seed: int = 42) -> Stacker:
    """Logistic regression on the two log-odds: calibrates each part and weighs them at once."""
    from sklearn.linear_model import LogisticRegression

    features = np.column_stack([logit(screen), logit(transformer)])
    # Balanced: the intercept should not learn the validation split's label mix.
    model = LogisticRegression(C=1.0, class_weight="balanced", random_state=seed).fit(features, labels)
    return Stacker(float(model.coef_[0, 0]), float(model.coef_[0, 1]), float(model.intercept_[0]))


@dataclass
class Choice:
    """What validation chose, with the numbers behind it."""

    stacker: Stacker
    fallback: str
    threshold: float
    curve: list[dict[str, float]]
    """Per threshold: validation accuracy and the share of reviews sent to the transformer."""
    accuracy: dict[str, float]
    """Validation accuracy of each part alone, the ensemble and the chosen cascade."""
    transformer_share: float


def choose(screen: np.ndarray, transformer: np.ndarray, labels: np.ndarray, *, max_drop: float = 0.0,
           seed: int = 42) -> Choice:
    """Fit the stacker, then the most aggressive cascade threshold that keeps validation accuracy.

    The threshold is the smallest one at which it and every larger threshold reach the
    transformer's validation accuracy minus ``max_drop`` points, with a margin of
    :data:`MARGIN_SE` standard errors of the paired difference (from the reviews on which the
    cascade and the transformer disagree). Scanning from "transformer on everything" down, it
    stops at the first miss, so neither one lucky threshold nor validation noise picks itself.
    """
    labels = np.asarray(labels, dtype=np.int64)
    if set(np.unique(labels)) != {0, 1}:
        raise UserError("validation needs both negative and positive reviews to fit the hybrid")
    if max_drop < 0:
        raise UserError(f"--max-drop must be zero or more points, got {max_drop}")
    stacker = fit_stacker(screen, transformer, labels, seed)

    def accuracy(positive: np.ndarray) -> float:
        return float(np.mean((positive > 0.5) == labels))

    alone = accuracy(transformer)
    blended = accuracy(stacker.combine(screen, transformer))
    fallback = "blend" if blended >= alone else "transformer"
    curve = []
    for threshold in THRESHOLDS:
        positive, decided = combine(screen, transformer, "cascade", float(threshold), fallback, stacker)
        disagree = float(np.mean((positive > 0.5) != (transformer > 0.5)))
        curve.append({"threshold": float(threshold), "accuracy": accuracy(positive),
                      "transformer_share": float(np.mean(decided != "screen")),
                      "margin": MARGIN_SE * float(np.sqrt(disagree / len(labels)))})
    chosen = curve[-1]  # the transformer (or the blend) on every review: always allowed
    for point in reversed(curve):
        if point["accuracy"] < alone - max_drop / 100 + point["margin"] - 1e-12:
            break
        chosen = point
    return Choice(stacker, fallback, chosen["threshold"], curve,
                  {"screen": accuracy(screen), "transformer": alone, "ensemble": blended,
                   "cascade": chosen["accuracy"]}, chosen["transformer_share"])


# --------------------------------------------------------------------------- the classifier


def _transformer_setting(name: str) -> Any:
    """A read-only attribute that is the held transformer's of the same name."""
    return property(lambda self: getattr(self.transformer, name), doc=f"The transformer's ``{name}``.")


class HybridClassifier(Classifier):
    """A screen in front of a transformer, as one :class:`~imdb_sentiment.classifier.Classifier`.

    ``predict_details`` runs the screen on the whole batch and the transformer only on the
    reviews it must see; ``decided_by`` says who decided each one and the running counts
    (``reviews``, ``transformer_reviews``) how much went to the transformer. How reviews become
    inputs, the device and the precision are the transformer's (``transformer``).
    """

    def __init__(self, screen: Pipeline, transformer: Classifier, settings: HybridSettings,
                 name: str = "") -> None:
        self.screen = screen
        self.transformer = transformer
        self.settings = settings
        self.name = name
        self.mode = resolve_mode(settings.mode, transformer.device)
        self.threshold = settings.threshold
        self._positive = list(screen.classes_).index(1)
        self.reviews = 0
        self.transformer_reviews = 0

    # How reviews become inputs, the device and the precision: the transformer's, read through.
    max_length = _transformer_setting("max_length")
    truncation = _transformer_setting("truncation")
    head_tokens = _transformer_setting("head_tokens")
    batch_size = _transformer_setting("batch_size")
    device = _transformer_setting("device")
    precision = _transformer_setting("precision")

    def override(self, mode: str | None = None, threshold: float | None = None) -> HybridClassifier:
        """Use another mode or threshold than the folder's for this session."""
        if mode is not None:
            self.mode = resolve_mode(check_mode(mode), self.device)
        if threshold is not None:
            self.threshold = check_threshold(threshold)
        return self

    def gradient_classifier(self) -> Classifier:
        """The transformer part with gradients, for explanations
        (see :meth:`SentimentClassifier.gradient_classifier`); a prompted language model has none
        and says so in one line."""
        return self.transformer.gradient_classifier()

    def info(self) -> dict[str, Any]:
        return {**self.transformer.info(), "model": self.name, "hybrid": {
            "mode": self.mode, "threshold": self.threshold if self.mode == "cascade" else None,
            "fallback": self.settings.fallback, "screen_weight": round(self.settings.stacker.weight, 4),
            "transformer": self.transformer.name,
        }}

    def screen_positive(self, texts: Sequence[str]) -> np.ndarray:
        from .data import clean_text

        cleaned = [clean_text(text, self.settings.screen_cleaning) for text in texts]  # type: ignore[arg-type]
        return self.screen.predict_proba(cleaned)[:, self._positive] if cleaned else np.zeros(0)

    def predict_details(self, texts: Sequence[str], batch_size: int | None = None,
                        progress: Progress | None = None, *, cache: bool = False) -> Details:
        """As :meth:`Classifier.predict_details`; only uncertain texts reach the transformer
        (``cache``: its token cache, for them)."""
        texts = check_texts(texts)
        screen = self.screen_positive(texts)
        sure = screen_decides(screen, self.mode, self.threshold)
        if progress is not None and sure.any():
            progress(int(sure.sum()))
        rest = np.flatnonzero(~sure)
        transformer = np.full(len(texts), np.nan)
        tokens = np.zeros(len(texts), dtype=np.int64)
        truncated = np.zeros(len(texts), dtype=bool)
        windows = np.zeros(len(texts), dtype=np.int64)
        if len(rest):
            details = self.transformer.predict_details([texts[i] for i in rest], batch_size, progress,
                                                       cache=cache)
            transformer[rest] = details.probabilities[:, 1]
            tokens[rest], truncated[rest], windows[rest] = details.tokens, details.truncated, details.windows
        positive, decided = combine(screen, transformer, self.mode, self.threshold, self.settings.fallback,
                                    self.settings.stacker)
        self.reviews += len(texts)
        self.transformer_reviews += len(rest)
        probabilities = np.column_stack([1 - positive, positive]).astype(np.float32)
        return Details(probabilities, tokens, truncated, windows, decided_by=decided.astype(str))


def load_hybrid(folder: str | os.PathLike[str], config: InferenceConfig | None = None,
                **transformer_options: Any) -> HybridClassifier:
    """Load a hybrid folder; ``config`` and ``transformer_options`` go to its transformer's loader
    (:func:`load_transformer`)."""
    from .baselines import load_baseline

    root = Path(folder)
    settings = read_settings(root)
    baseline = _part(root, settings.baseline, "baseline")
    transformer = _part(root, settings.transformer, "transformer")
    screen = load_baseline(baseline)
    check_screen(screen, baseline)
    model = load_transformer(transformer, config, **transformer_options)
    if transformer_labels(model) != list(settings.transformer_labels):
        raise UserError(f"mismatched label orders: the transformer at {transformer} puts negative/positive "
                        f"at {transformer_labels(model)}, the hybrid was fitted with "
                        f"{settings.transformer_labels}; rebuild it with `imdb-sentiment hybrid`")
    return HybridClassifier(screen, model, settings, name=str(folder))


def load_transformer(path: str | os.PathLike[str], config: InferenceConfig | None = None,
                     **options: Any) -> Classifier:
    """A hybrid's transformer: a prompted :class:`~imdb_sentiment.llm.LLMClassifier` for a causal LM
    folder or a GGUF model, else a :class:`SentimentClassifier`."""
    from .llm import LLMClassifier, is_causal_lm

    trust = bool(options.get("trust_remote_code", config.trust_remote_code if config else False))
    if is_causal_lm(path, trust):  # its config names a causal LM (a folder, a GGUF file or a Hub id)
        return LLMClassifier.load(path, config, **options)
    return SentimentClassifier.load(path, config=config, **options)


def transformer_labels(model: Classifier) -> list[int]:
    """The transformer's output index of negative and positive; any classifier but a fine-tuned one
    already gives its probabilities in :data:`~imdb_sentiment.classifier.LABELS` order."""
    return list(model.label_order) if isinstance(model, SentimentClassifier) else [0, 1]


def transformer_kind(model: Classifier) -> str:
    """Which of :data:`TRANSFORMER_KINDS` ``model`` is."""
    from .llm import LLMClassifier

    return PROMPTED_LLM if isinstance(model, LLMClassifier) else FINE_TUNED


def screen_file(folder: str | os.PathLike[str]) -> Path:
    """The hybrid's baseline (screen) file, without loading its transformer."""
    root = Path(folder).expanduser()
    return _part(root, read_settings(root).baseline, "baseline")


def read_settings(root: Path) -> HybridSettings:
    """The checked settings in ``root/hybrid.json``: a broken file is one line that names it."""
    from .artifacts import read_json

    file = root / HYBRID_FILE
    try:
        data = read_json(file)
    except (OSError, ValueError) as error:
        raise UserError(f"cannot read {file}: {first_line(error)}") from error
    return HybridSettings.from_json(data, str(file))


def is_hybrid(folder: str | os.PathLike[str]) -> bool:
    return (Path(str(folder)).expanduser() / HYBRID_FILE).is_file()


def load_model(id_or_path: str | os.PathLike[str], config: InferenceConfig | None = None, *,
               mode: str | None = None, threshold: float | None = None, **options: Any) -> Classifier:
    """The one loader behind predict, serve, evaluate and Ray scoring: a hybrid folder, a causal LM
    folder (a prompted :class:`~imdb_sentiment.llm.LLMClassifier`) or anything
    :meth:`SentimentClassifier.load` takes, with its settings (``config``, then keyword ``options``
    over it). ``mode``/``threshold`` override a hybrid's own and are refused for a plain model."""
    if is_hybrid(id_or_path):
        return load_hybrid(Path(str(id_or_path)).expanduser(), config, **options).override(mode, threshold)
    if mode is not None or threshold is not None:
        raise UserError(f"--mode and --threshold apply to hybrid folders only; {id_or_path} is not one "
                        f"(no {HYBRID_FILE})")
    return load_transformer(id_or_path, config, **options)


def _part(root: Path, where: str, what: str) -> Path:
    path = Path(where) if Path(where).is_absolute() else root / where
    if not path.exists():
        raise UserError(f"the hybrid folder {root} is missing its {what} part: {path} not found")
    return path


def check_screen(screen: Any, where: str | os.PathLike[str]) -> None:
    """The baseline must be a probabilistic classifier over exactly our labels 0 and 1."""
    classes = [int(c) if isinstance(c, int | np.integer) else c for c in getattr(screen, "classes_", [])]
    if classes != [0, 1]:
        raise UserError(f"the baseline at {where} was trained on other labels ({classes}); "
                        "the hybrid needs one trained on 0 negative / 1 positive")
    if not hasattr(screen, "predict_proba"):
        raise UserError(f"the baseline at {where} gives no probabilities")


# --------------------------------------------------------------------------- building a hybrid


@dataclass
class HybridConfig:
    """Options of :func:`build_hybrid` (the ``imdb-sentiment hybrid`` command)."""

    mode: str = "auto"
    threshold: float | None = None
    """A user-set cascade threshold; None: the one validation chose."""
    max_drop: float = 0.0
    """Points of validation accuracy the cascade may give up against the transformer alone."""
    seed: int = 42
    validation_size: float = 0.1
    group_column: str | None = None
    cleaning: str = "basic"
    text_column: str = "text"
    label_column: str = "label"
    copy_transformer: bool = False
    refit_by: str = REFIT_AUTO
    """How the screen is scored on validation (see :func:`resolve_refit`): ``auto`` (out of fold, by
    ``group_column`` or a ``movie`` column where the data has one, else refit on the training part),
    ``folds`` (refit on the training part), a group column name, or ``none`` (the screen as given)."""
    refit_folds: int = 5
    device: str | None = None
    backend: str = "auto"

    def __post_init__(self) -> None:
        check_mode(self.mode)
        if self.threshold is not None:
            check_threshold(self.threshold)
        if self.max_drop < 0:
            raise UserError(f"--max-drop must be zero or more points, got {self.max_drop}")
        if self.refit_folds < 2:
            raise UserError(f"refit folds must be 2 or more, got {self.refit_folds}")
        if not self.refit_by or not self.refit_by.strip():
            raise UserError(f"--refit-by takes {', '.join(REFIT_SCHEMES)} or a group column, got nothing")

    def data_spec(self, source: str | os.PathLike[str]) -> DataSpec:
        """How the hybrid reads ``source``: the carve its two parts were trained with."""
        from .config import DataSpec

        return DataSpec(str(source), text_column=self.text_column, label_column=self.label_column,
                        cleaning=self.cleaning, seed=self.seed, validation_size=self.validation_size,
                        group_column=self.group_column)


def baseline_model_dir(path: str | os.PathLike[str]) -> Path:
    """The folder holding ``model.skops``: a baseline output folder or its ``model/``."""
    from .baselines import MODEL_FILE

    folder = Path(path)
    if not folder.exists():
        raise UserError(f"baseline folder not found: {folder}")
    for candidate in (folder, folder / "model"):
        if (candidate / MODEL_FILE).is_file():
            return candidate
    looks_like = (folder / "config.json").is_file()
    hint = " (it looks like a transformer: pass it as --transformer)" if looks_like else ""
    raise UserError(f"{folder} is not a baseline folder (no {MODEL_FILE}){hint}")


def check_transformer_dir(path: str | os.PathLike[str]) -> Path:
    """A transformer folder (with ``config.json``: fine-tuned or a causal LM) or a GGUF model."""
    from .llm import is_gguf

    folder = Path(path)
    if not folder.exists():
        raise UserError(f"transformer folder not found: {folder}")
    if not (folder / "config.json").is_file() and not is_gguf(folder):
        hint = " (it looks like a baseline: pass it as --baseline)" if (
            (folder / "model.skops").is_file() or (folder / "model" / "model.skops").is_file()) else ""
        raise UserError(f"{folder} is not a transformer folder (no config.json){hint}")
    return folder


def check_same_split(config: HybridConfig, baseline: Path, transformer: Path) -> dict[str, Any]:
    """Both parts must have held out the validation split the hybrid is fitted on.

    Otherwise a part would be scored on reviews it was trained on and look better than it is.
    """
    from .artifacts import read_json

    wanted = {"seed": config.seed, "validation_size": config.validation_size,
              "group_column": config.group_column}
    recorded: dict[str, dict[str, Any]] = {}
    metrics_file = _baseline_metrics_file(baseline)
    if metrics_file.is_file():
        found = read_json(metrics_file)
        recorded["baseline"] = {key: found.get(key, None if key == "group_column" else "?") for key in wanted}
    split = transformer_split(transformer)
    if split is not None:
        recorded["transformer"] = split
    for part, found in recorded.items():
        differing = {key: found[key] for key in wanted if found[key] != "?" and found[key] != wanted[key]}
        if differing:
            raise UserError(f"the {part} was trained with another validation split ({differing} against "
                            f"{ {key: wanted[key] for key in differing} }): its validation reviews would be "
                            "in its training data; pass the same --seed/--validation-size/--group-column")
    return recorded


def transformer_split(transformer: Path) -> dict[str, Any] | None:
    """The validation carve a transformer was trained with (seed, validation_size, group_column),
    from its ``train_config.toml``; None when it was not trained by ``train``."""
    config_file = transformer / "train_config.toml"
    if not config_file.is_file():
        return None
    from .config import train_config_from_file

    train = train_config_from_file(config_file)[0]
    return {"seed": train.seed, "validation_size": train.validation_size, "group_column": train.group_column}


def build_hybrid(baseline: str | os.PathLike[str], transformer: str | os.PathLike[str],
                 data: str | os.PathLike[str], output: str | os.PathLike[str], config: HybridConfig, *,
                 overwrite: bool = False, progress: Any = None,
                 runs_dir: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Score both parts on the validation split of ``data``, choose blend and threshold, write the folder.

    Returns the ``metrics.json`` content (validation only: the test split is never read). With
    ``runs_dir``, records the run there (as every stage does: see ``tracking``).
    """
    from .artifacts import check_output_dir

    started = time.perf_counter()
    check_output_dir(output, overwrite)
    baseline_dir = baseline_model_dir(baseline)
    transformer_dir = check_transformer_dir(transformer)
    check_same_split(config, baseline_dir, transformer_dir)
    frames = config.data_spec(data).load(require=("train", "validation"))
    return fit_hybrid(baseline_dir, transformer_dir, frames, output, config, data=str(data),
                      overwrite=overwrite, progress=progress, runs_dir=runs_dir, started=started)


def fit_hybrid(baseline: str | os.PathLike[str], transformer: str | os.PathLike[str],
               frames: dict[str, pd.DataFrame], output: str | os.PathLike[str], config: HybridConfig, *,
               data: str | None = None, overwrite: bool = False, progress: Any = None,
               runs_dir: str | os.PathLike[str] | None = None, started: float | None = None
               ) -> dict[str, Any]:
    """:func:`build_hybrid` on splits already loaded: ``frames["validation"]`` (reviews neither part
    was trained on) feeds every choice; ``frames["train"]`` only the ``refit_by`` refits."""
    from .baselines import load_baseline

    say = progress or (lambda line: None)
    started = time.perf_counter() if started is None else started
    baseline_dir = baseline_model_dir(baseline)
    transformer_dir = check_transformer_dir(transformer)
    screen = load_baseline(baseline_dir)
    check_screen(screen, baseline_dir)
    validation = frames["validation"]
    say(f"scoring {len(validation):,} validation reviews with both parts")
    model = load_transformer(transformer_dir, device=config.device, backend=config.backend)
    settings = HybridSettings(mode=config.mode, screen_cleaning=config.cleaning,
                              transformer_labels=transformer_labels(model))
    hybrid = HybridClassifier(screen, model, settings)
    texts = validation["text"].tolist()
    scheme = resolve_refit(config, frames["train"], validation)
    say(scheme.describe(config.refit_folds))
    if scheme.kind == REFIT_NONE:
        screen_p = hybrid.screen_positive(texts)
    else:
        if scheme.group_column is None:
            say(f"warning: the data has no group column ({GROUP_COLUMN_GUESS} or --group-column), so "
                "names and titles shared between the training and validation reviews may still flatter "
                "the screen")
        extra = screen_extra_reviews(baseline_dir, frames, config, say)
        screen_p = out_of_fold_screen(screen, frames["train"], validation, scheme.group_column,
                                      config.refit_folds, config.seed, extra)
    transformer_p = model.predict_proba(texts)[:, 1]
    choice = choose(screen_p, transformer_p, validation["label"].to_numpy(), max_drop=config.max_drop,
                    seed=config.seed)
    facts = {"n_validation": len(validation), "data": data, "refit": scheme.record(config.refit_folds),
             "transformer_kind": transformer_kind(model)}
    metrics = save_hybrid(output, settings, choice, baseline_dir, transformer_dir, config, facts,
                          overwrite=overwrite,
                          started=started,
                          parts_train_seconds=_parts_train_seconds(baseline_dir, transformer_dir))
    if runs_dir is not None:
        _record_hybrid(runs_dir, output, metrics)
    return metrics


def screen_extra_reviews(baseline_dir: Path, frames: dict[str, pd.DataFrame], config: HybridConfig,
                         say: Any) -> pd.DataFrame | None:
    """The soft-labelled reviews the screen was trained with (``baseline --extra-data``, as its
    metrics record them), so its refit copies are the screen that was trained; None when it had none.
    A recorded file that has gone is a one-line error: the copies would be another screen."""
    from .artifacts import read_json
    from .data import read_extra_reviews

    metrics_file = _baseline_metrics_file(baseline_dir)
    recorded = read_json(metrics_file) if metrics_file.is_file() else {}
    files = recorded.get("extra_data")
    if not files:
        return None
    missing = [path for path in files if not Path(path).is_file()]
    if missing:
        raise UserError(f"the screen was trained with extra reviews from {', '.join(missing)}, which "
                        "is gone; its refit copies need them (or pass --refit-by none)")
    # Read as the baseline read them: its text column and cleaning.
    extra = read_extra_reviews(files, frames, text_column=recorded.get("text_column", "text"),
                               cleaning=recorded.get("cleaning", config.cleaning))
    say(f"refitting the screen's copies with its {len(extra.frame):,} extra training review(s)")
    return extra.frame


def _parts_train_seconds(baseline_dir: Path, transformer_dir: Path) -> float | None:
    """Both parts' recorded training time, or None when either did not record one."""
    from .artifacts import read_json

    total = 0.0
    for metrics_file in (_baseline_metrics_file(baseline_dir), transformer_dir / "metrics.json"):
        seconds = read_json(metrics_file).get("train_seconds") if metrics_file.is_file() else None
        if not isinstance(seconds, int | float):
            return None
        total += float(seconds)
    return total


def _baseline_metrics_file(baseline_dir: Path) -> Path:
    folder = baseline_dir.parent if baseline_dir.name == "model" else baseline_dir
    return folder / "metrics.json"


def _record_hybrid(runs_dir: str | os.PathLike[str], output: str | os.PathLike[str],
                   metrics: dict[str, Any]) -> None:
    from .tracking import RunEntry, log_run

    accuracy = metrics["validation_accuracy"]
    params = {key: metrics[key] for key in ("data", "baseline", "transformer", "mode", "threshold",
                                            "fallback", "seed", "validation_size", "group_column",
                                            "refit_by", "max_drop")}
    scores = {"validation_accuracy": accuracy["ensemble"], "screen_weight": metrics["screen_weight"],
              "validation_transformer_share": metrics["validation_transformer_share"],
              "train_seconds": metrics["train_seconds"], "n_validation": metrics["n_validation"],
              **{f"validation_accuracy_{key}": value for key, value in accuracy.items()}}
    log_run(runs_dir, RunEntry(stage="hybrid", model=str(output), params=params, metrics=scores,
                               duration=metrics.get("seconds"), artifacts=[output]))


def save_hybrid(output: str | os.PathLike[str], settings: HybridSettings, choice: Choice, baseline_dir: Path,
                transformer_dir: Path, config: HybridConfig, facts: dict[str, Any], *,
                overwrite: bool = False, started: float | None = None,
                parts_train_seconds: float | None = None) -> dict[str, Any]:
    """Write the hybrid folder (atomically) with what validation chose; returns its metrics.

    ``train_seconds`` is what the hybrid cost to make (``parts_train_seconds`` plus its own fit),
    so it sits on the report's accuracy-against-training-time plot next to its parts.
    """
    import shutil

    from .artifacts import atomic_output_dir, write_json
    from .model_card import render_hybrid_card

    settings.stacker, settings.fallback = choice.stacker, choice.fallback
    settings.threshold = config.threshold if config.threshold is not None else choice.threshold
    settings.validation = {
        "validation_accuracy": {key: round(value, 4) for key, value in choice.accuracy.items()},
        "validation_transformer_share": round(choice.transformer_share, 4),
        "chosen_threshold": choice.threshold, "seed": config.seed, "validation_size": config.validation_size,
        "group_column": config.group_column, "refit_by": config.refit_by, "max_drop": config.max_drop,
        **facts,
    }
    metrics = {"stage": "hybrid", **settings.validation, "threshold": settings.threshold,
               "mode": settings.mode, "fallback": settings.fallback,
               "screen_weight": round(choice.stacker.weight, 4), "stacker": asdict(choice.stacker),
               "baseline": str(baseline_dir), "transformer": str(transformer_dir)}
    with atomic_output_dir(output, overwrite) as tmp:
        shutil.copytree(baseline_dir, tmp / BASELINE_PART)
        if config.copy_transformer and transformer_dir.is_file():  # a GGUF file: in a folder of its own
            settings.transformer = _copy_gguf(transformer_dir, tmp / TRANSFORMER_PART)
        elif config.copy_transformer:
            shutil.copytree(transformer_dir, tmp / TRANSFORMER_PART)
        else:
            settings.transformer = str(transformer_dir.resolve())
        write_json(tmp / HYBRID_FILE, settings.to_json())
        _write_curve(tmp, choice, settings.threshold)
        if started is not None:
            metrics["seconds"] = round(time.perf_counter() - started, 2)
        metrics["train_seconds"] = (None if parts_train_seconds is None
                                    else round(parts_train_seconds + metrics.get("seconds", 0.0), 2))
        write_json(tmp / "metrics.json", metrics)
        kind = TRANSFORMER_KINDS[facts.get("transformer_kind", FINE_TUNED)]
        (tmp / "README.md").write_text(render_hybrid_card(settings, metrics, kind), encoding="utf-8")
    return metrics


def _copy_gguf(file: Path, folder: Path) -> str:
    """Copy a GGUF file, with the prompt settings beside it, into ``folder``; its path in the hybrid."""
    import shutil

    from .llm import PROMPT_FILE

    folder.mkdir()
    shutil.copy2(file, folder / file.name)
    if (file.parent / PROMPT_FILE).is_file():
        shutil.copy2(file.parent / PROMPT_FILE, folder / PROMPT_FILE)
    return f"{folder.name}/{file.name}"


@dataclass(frozen=True)
class RefitScheme:
    """How the screen's validation scores were made: what ``hybrid.json`` records and the command says."""

    kind: str
    """``none`` (the screen as given), ``folds`` (refit on the training part) or ``group``."""
    group_column: str | None = None

    def describe(self, folds: int) -> str:
        if self.kind == REFIT_NONE:
            return ("scoring the screen on validation as given (--refit-by none): if it learned from "
                    "these reviews or their movies, the choices trust it too much")
        if self.group_column is None:
            return ("scoring the screen on validation with a copy refit on the training part, which holds "
                    "none of the validation reviews")
        return (f"scoring the screen on validation out of fold: {folds} copies, each refit without one "
                f"fold of the validation {self.group_column}s")

    def record(self, folds: int) -> dict[str, Any]:
        return {"scheme": self.kind, "group_column": self.group_column, "summary": self.summary(folds)}

    def summary(self, folds: int) -> str:
        if self.kind == REFIT_NONE:
            return "as given (--refit-by none)"
        if self.group_column is None:
            return "by a copy refit on the training part (no group column)"
        return f"out of fold by {self.group_column} ({folds} folds)"


def resolve_refit(config: HybridConfig, train: pd.DataFrame, validation: pd.DataFrame) -> RefitScheme:
    """The scheme ``config.refit_by`` names, on these splits.

    ``auto`` never judges the screen on reviews or movies it learned from: it groups by
    ``config.group_column`` or a ``movie`` column when both splits have one (a bag-of-words screen
    memorises titles and names, and test movies are all new: measured on IMDB, the cascade chosen on
    the screen's own validation scores lost 1.6 points on test, the one chosen out of fold by movie
    none), and otherwise refits on the training part, since a given screen may have seen validation.
    """
    wanted = config.refit_by
    if wanted == REFIT_NONE:
        return RefitScheme(REFIT_NONE)
    if wanted == REFIT_FOLDS:
        return RefitScheme(REFIT_FOLDS)
    if wanted == REFIT_AUTO:
        for column in (config.group_column, GROUP_COLUMN_GUESS):
            if column and column in train.columns and column in validation.columns:
                return RefitScheme("group", column)
        return RefitScheme(REFIT_FOLDS)
    missing = [name for name, frame in (("training", train), ("validation", validation))
               if wanted not in frame.columns]
    if missing:
        raise UserError(f"--refit-by {wanted}: the {' and '.join(missing)} reviews have no {wanted!r} column "
                        f"(pass a group column the data has, or one of {', '.join(REFIT_SCHEMES)})")
    return RefitScheme("group", wanted)


def out_of_fold_screen(screen: Pipeline, train: pd.DataFrame, validation: pd.DataFrame,
                       group_column: str | None, folds: int = 5, seed: int = 42,
                       extra: pd.DataFrame | None = None) -> np.ndarray:
    """The screen's P(positive) on validation from copies that never saw those reviews (or groups).

    Without a group column (or where ``train`` holds none of the validation groups, as after a carve
    by that column) one refit on ``train`` is out of fold for every validation review: the carve keeps
    identical texts on one side, so ``train`` holds none of them and every fold's copy would be the
    same model. ``extra``: the soft-labelled reviews the screen was trained with, in every copy.
    """
    from .baselines import refit_screen

    if group_column is not None and train[group_column].isin(validation[group_column]).any():
        return group_out_of_fold(screen, train, validation, group_column, folds, seed, extra)
    model = refit_screen(screen, train["text"].tolist(), train["label"].to_numpy(), extra)
    return model.predict_proba(validation["text"].tolist())[:, 1]


def group_out_of_fold(screen: Pipeline, train: pd.DataFrame, validation: pd.DataFrame, column: str,
                      folds: int = 5, seed: int = 42, extra: pd.DataFrame | None = None) -> np.ndarray:
    """The screen's P(positive) on validation as if every validation group (movie) were new.

    A split carved at random shares movies with the training part, and a bag-of-words model
    memorises their names and titles, so it looks better on validation than on test (where all
    movies are new) and would get too much weight. Here the validation groups are dealt into
    ``folds`` folds; for each, a copy of the screen (same settings) is refit on the training part
    without that fold's groups and scores that fold's reviews.
    """
    from .baselines import refit_screen
    from .data import check_group_column

    check_group_column(train, column)
    check_group_column(validation, column)
    groups = np.sort(validation[column].unique())
    fold_of = dict(zip(np.random.default_rng(seed).permutation(groups), np.arange(len(groups)) % folds,
                       strict=True))
    fold = validation[column].map(fold_of).to_numpy()
    positive = np.empty(len(validation))
    for k in range(min(folds, len(groups))):
        held_out = set(groups[[fold_of[g] == k for g in groups]])
        part = train[~train[column].isin(held_out)]
        model = refit_screen(screen, part["text"].tolist(), part["label"].to_numpy(), extra)
        rows = np.flatnonzero(fold == k)
        positive[rows] = model.predict_proba(validation["text"].iloc[rows].tolist())[:, 1]
    return positive


def _write_curve(folder: Path, choice: Choice, threshold: float) -> None:
    from .artifacts import write_json
    from .plots import plot_cascade_curve

    write_json(folder / "validation_curve.json", choice.curve)
    plot_cascade_curve(choice.curve, choice.accuracy["transformer"], threshold,
                       folder / "validation_curve.png")
