"""Fit a prompted language model to labelled reviews: demonstrations drawn from train (k-shot) and
the label bias fitted on validation, saved as a *prompted folder* that loads wherever a model does.

A prompted folder holds ``prompted.json`` (the language model it prompts, how the demonstrations
were drawn, validation accuracy before and after the bias) and ``prompt.toml`` (the prompt
settings with the demonstrations and the bias). It refers to the language model; it does not copy it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from .config import DataSpec, InferenceConfig, check_seed
from .errors import UserError
from .llm import (
    PROMPT_FILE,
    PROMPTED_FILE,
    VERBALIZER_LABELS,
    LLMClassifier,
    PromptSettings,
    best_bias,
)

DEFAULT_SHOT_MAX_TOKENS = 160
"""Demonstrations are drawn among training reviews of at most this many tokens: short solved
examples cost little prompt (a 4-shot prefix of ~700 tokens) and leave room for the review."""
DEFAULT_VALIDATION_SAMPLES = 500
"""Validation reviews the bias is fitted on (seeded, label-balanced): one bias, so a few hundred do."""
CHARACTERS_PER_TOKEN_BOUND = 12
"""A review this many characters per allowed token is surely too long: skipped before tokenizing."""


@dataclass
class PromptFitting:
    """How a prompted folder is made from a language model and labelled reviews."""

    shots: int = 0
    """Demonstrations per prompt, half of each label (an odd one goes to a seeded choice of label)."""
    shot_max_tokens: int = DEFAULT_SHOT_MAX_TOKENS
    calibrate: bool = True
    """Fit the bias on the label log-odds on validation (never on test)."""
    validation_samples: int | None = DEFAULT_VALIDATION_SAMPLES
    """Validation reviews to fit the bias on (``None``: all)."""
    seed: int = 42

    def __post_init__(self) -> None:
        for name in ("shots", "shot_max_tokens"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < (0 if name == "shots" else 1):
                raise UserError(f"{name.replace('_', ' ')} must be a whole number "
                                f"{'>= 0' if name == 'shots' else '> 0'}, got {value!r}")
        if self.validation_samples is not None and (isinstance(self.validation_samples, bool)
                                                    or self.validation_samples <= 0):
            raise UserError(f"validation samples must be positive, got {self.validation_samples}")
        check_seed(self.seed)


def draw_demonstrations(texts: Sequence[str], labels: Sequence[int], shots: int, *, seed: int,
                        max_tokens: int, tokenizer: Any) -> list[dict[str, str]]:
    """``shots`` solved examples from these (training) reviews: balanced between the labels, each at
    most ``max_tokens`` tokens, drawn with ``seed`` and shuffled so the labels alternate at random."""
    if shots == 0:
        return []
    targets = np.asarray(list(labels), dtype=np.int64)
    rng = np.random.default_rng(seed)
    wanted = [shots // 2, shots // 2]
    if shots % 2:
        wanted[int(rng.integers(2))] += 1
    chosen: list[int] = []
    for label, count in enumerate(wanted):
        pool = [row for row in np.flatnonzero(targets == label)
                if len(texts[row]) <= max_tokens * CHARACTERS_PER_TOKEN_BOUND]
        lengths = _token_counts(tokenizer, [texts[row] for row in pool])
        short = [row for row, length in zip(pool, lengths, strict=True) if length <= max_tokens]
        if len(short) < count:
            raise UserError(f"{shots} shots need {count} {VERBALIZER_LABELS[label]} training reviews of at "
                            f"most {max_tokens} tokens; there are {len(short)}: lower --shots or raise "
                            "--shot-max-tokens")
        chosen += [int(row) for row in rng.choice(short, size=count, replace=False)]
    rng.shuffle(chosen)
    return [{"review": texts[row], "label": VERBALIZER_LABELS[int(targets[row])]} for row in chosen]


def _token_counts(tokenizer: Any, texts: list[str]) -> list[int]:
    if not texts:
        return []
    return [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]


def balanced_sample(labels: np.ndarray, size: int | None, seed: int) -> np.ndarray:
    """Row numbers of a seeded sample with as many of each label as the data allows, in input order."""
    if size is None or size >= len(labels):
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    rows = []
    for label in (0, 1):
        pool = np.flatnonzero(labels == label)
        rows.append(rng.choice(pool, size=min(len(pool), size // 2 + (label and size % 2)), replace=False))
    picked = np.concatenate(rows)
    if len(picked) < size:  # one label is short: fill up from the other
        rest = np.setdiff1d(np.arange(len(labels)), picked)
        picked = np.concatenate([picked, rng.choice(rest, size=size - len(picked), replace=False)])
    return np.sort(picked)


def fit_prompt(model: str | os.PathLike[str], spec: DataSpec, output: str | os.PathLike[str],
               fitting: PromptFitting, *, settings: PromptSettings | None = None,
               config: InferenceConfig | None = None, overwrite: bool = False,
               progress: bool = False) -> dict[str, Any]:
    """Draw the demonstrations from train, fit the bias on validation, write the prompted folder.

    Returns what ``prompted.json`` records (validation accuracy with and without the bias, the
    positive share, the bias, how the demonstrations were drawn)."""
    from .artifacts import atomic_output_dir, check_output_dir, write_json
    from .modeling import is_local

    check_output_dir(output, overwrite)
    if not spec.validation_size:
        raise UserError("fitting a prompt needs a validation split to fit the bias on; set a validation size")
    classifier = LLMClassifier.load(model, config, settings=settings)
    splits = spec.load(require=("train", "validation"))
    train, validation = splits["train"], splits["validation"]
    demonstrations = draw_demonstrations(train["text"].tolist(), train["label"].tolist(), fitting.shots,
                                         seed=fitting.seed, max_tokens=fitting.shot_max_tokens,
                                         tokenizer=classifier.tokenizer)
    classifier.use_settings(replace(classifier.settings, demonstrations=demonstrations, bias=0.0))
    rows = balanced_sample(validation["label"].to_numpy(), fitting.validation_samples, fitting.seed)
    texts = validation["text"].iloc[rows].tolist()
    labels = validation["label"].to_numpy()[rows].astype(int)
    log_odds = classifier.label_log_odds(texts, progress=_progress_bar(len(texts)) if progress else None)
    bias = best_bias(log_odds, labels) if fitting.calibrate else 0.0
    classifier.settings.bias = bias
    source = str(Path(str(model)).expanduser().resolve()) if is_local(str(model)) else str(model)
    record = {
        "format": PROMPTED_FILE,
        "model": source,
        "fitting": asdict(fitting),
        "data": asdict(spec),
        "demonstrations": len(demonstrations),
        "validation": {
            "reviews": len(texts),
            "accuracy_without_bias": _accuracy(log_odds, labels, 0.0),
            "accuracy": _accuracy(log_odds, labels, bias),
            "positive_share_without_bias": float(np.mean(log_odds > 0)),
            "positive_share": float(np.mean(log_odds + bias > 0)),
            "bias": bias,
        },
        "prompt_tokens": len(classifier.prompt.prefix) + len(classifier.prompt.suffix),
    }
    with atomic_output_dir(output, overwrite) as folder:
        classifier.save_settings(folder / PROMPT_FILE)
        write_json(folder / PROMPTED_FILE, record)
    return record


def _accuracy(log_odds: np.ndarray, labels: np.ndarray, bias: float) -> float:
    return float(np.mean((log_odds + bias > 0).astype(int) == labels))


def _progress_bar(total: int) -> Any:
    from tqdm.auto import tqdm

    bar = tqdm(total=total, unit="review", desc="validation", leave=False)
    return bar.update
