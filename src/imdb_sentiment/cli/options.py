"""Options shared by several commands, defined once so they read the same everywhere, and the
model loading that the prediction commands share."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from ..data import DEFAULT_SOURCE

if TYPE_CHECKING:
    from ..classifier import Classifier
    from ..config import InferenceConfig

DATA = typer.Option(
    DEFAULT_SOURCE, "--data", "-d",
    help="Data source: Hub dataset id, folder of split files (e.g. ../shared/data/imdb), "
         "aclImdb folder or tarball, or one CSV/JSONL/parquet file.",
)
TEXT_COLUMN = typer.Option("text", "--text-column", help="Column holding the review text.")
LABEL_COLUMN = typer.Option("label", "--label-column", help="Column holding the 0/1 or neg/pos label.")
CLEANING = typer.Option(
    "basic", "--cleaning",
    help="basic (<br /> to space), none, or study (the reference study's: no punctuation, "
         "lowercase, no stop words, first 512 characters).",
)


def _checked_seed(value: int | None) -> int | None:
    """Every command's --seed passes here, so -1 is one line before any work, not numpy's traceback."""
    from ..config import check_seed

    if value is not None:
        check_seed(value)
    return value


SEED = typer.Option(42, "--seed", callback=_checked_seed, help="Seed for splits, sampling and training.")
VALIDATION_SIZE = typer.Option(0.1, "--validation-size", help="Fraction of train held out for validation.")
GROUP_COLUMN = typer.Option(
    None, "--group-column",
    help="Carve validation by whole groups of this column (movie: no movie on both sides), so a "
         "bag-of-words model cannot look better by memorising names and titles.",
)
EXTRA_DATA = typer.Option(
    None, "--extra-data",
    help="File of extra training reviews with soft labels (p_positive, as `imdb-sentiment label` writes) or "
         "a hard label; repeatable. Added to the training part only; reviews whose text is in the "
         "validation or test split are dropped (counted in the output and in metrics.json).",
)
OUTPUT = typer.Option(..., "--output", "-o", help="Output folder (refused if it holds anything).")
OVERWRITE = typer.Option(False, "--overwrite", help="Replace an existing, non-empty output folder.")
RUNS_DIR = typer.Option(
    "runs", "--runs-dir", envvar="IMDB_SENTIMENT_RUNS_DIR",
    help="Record this run (parameters, metrics, artifacts) in the MLflow store in this folder "
         "(mlflow.db); 'none' records nothing. Recording problems are warnings, never failures.",
)
TRUST_REMOTE_CODE = typer.Option(
    False, "--trust-remote-code", help="Allow model code from the model's repository (off: safer).",
)


def optional_path(value: str | None) -> Path | None:
    return Path(value) if value else None


MODEL = typer.Option(
    ..., "--model", "-m",
    help="Fine-tuned model folder, a folder from `imdb-sentiment export` (ONNX), or a Hub id.",
)


INTERPRETER = typer.Option(
    None, "--interpreter",
    help="An instruction LLM (a GGUF file, or a folder or Hub id of a causal LM) that explains each review: "
         "aspects with verbatim quotes, emotions, a rating and a summary. The sentiment and its score come "
         "from --model, and the LLM explains them.",
)
INTERPRET_CONFIG = typer.Option(
    None, "--interpret-config",
    help="Interpretation settings (TOML): prompt, examples, aspect and emotion sets, token budgets "
         "(default: the packaged interpret.toml).",
)


BATCH_SIZE = typer.Option(
    None, "--batch-size",
    help="Reviews per forward pass (default: 32 on CPUs; on GPUs up to 1,024, at most 64 Ki padded tokens).",
)


MAX_LENGTH = typer.Option(
    None, "--max-length",
    help="Tokens per model input, special tokens included (default: as trained, else 512).",
)


TRUNCATION = typer.Option(
    None, "--truncation",
    help="Long reviews: head-tail (first and last tokens), head (first tokens), or chunks "
         "(overlapping windows, logits averaged: reads everything). Default: as trained, else head-tail.",
)


HEAD_TOKENS = typer.Option(None, "--head-tokens", help="With head-tail: tokens kept from the start.")


CHUNK_OVERLAP = typer.Option(
    None, "--chunk-overlap", help="With chunks: tokens shared by neighbouring windows (128).",
)


DEVICE = typer.Option(None, "--device", help="cpu, cuda, cuda:N or mps (default: a GPU if there is one).")


PRECISION = typer.Option(
    "auto", "--precision",
    help="auto (bf16 on GPUs and CPUs with bf16 units, else fp32; int8 with the auto backend on other "
         "CPUs), fp32, bf16, or int8 (CPU).",
)


BACKEND = typer.Option(
    "auto", "--backend",
    help="auto: ONNX Runtime int8 on CPUs without bf16 units (the model is exported once and cached; "
         "in our benchmark about 1.7x PyTorch fp32 with the same accuracy), PyTorch elsewhere; "
         "torch; onnx; or llama.cpp (GGUF language models, on the file's quantized weights).",
)


MODEL_HELP = "Hub id or local folder of the model (offline: pass a local folder)."


TRUNCATION_HELP = ("head (first tokens) or head-tail (first and last tokens); counted in tokens, "
                   "special tokens included.")


HEAD_TOKENS_HELP = "With head-tail: tokens kept from the start (default: a quarter of --max-length)."



HYBRID_MODE = typer.Option(
    None, "--mode",
    help="Hybrid folders: ensemble (both parts on every review), cascade (the transformer only where "
         "the screen is unsure) or auto (cascade on a CPU, ensemble on a GPU). Default: the folder's.",
)
HYBRID_THRESHOLD = typer.Option(
    None, "--threshold",
    help="Hybrid cascade: the screen decides where |p - 0.5| exceeds this (0-0.5). Default: the folder's.",
)


def load_classifier(model: str, config: InferenceConfig, *, mode: str | None = None,
                    threshold: float | None = None) -> Classifier:
    """The model (or hybrid folder) a prediction command names, run as ``config`` says."""
    from ..hybrid import load_model

    quiet_model_loading()
    return load_model(model, config, mode=mode, threshold=threshold)


def quiet_model_loading() -> None:
    """No "Loading weights" bars from transformers: they would bury our one-line output."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if "transformers" in sys.modules:
        sys.modules["transformers"].utils.logging.disable_progress_bar()
