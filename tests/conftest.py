"""Shared fixtures: paths to the real shared data/model and tiny random models for speed."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("IMDB_SHARED", ROOT.parent / "shared"))
SHARED_DATA = SHARED / "data" / "imdb"
SHARED_MODEL = SHARED / "models" / "all-MiniLM-L6-v2"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Commands record runs in ./runs by default; tests record only where they pass --runs-dir.
os.environ.setdefault("IMDB_SENTIMENT_RUNS_DIR", "none")
# ONNX exports, engine choices and token caches of the tests' tiny models stay out of the user's cache.
os.environ.setdefault("IMDB_SENTIMENT_CACHE", tempfile.mkdtemp(prefix="imdb-sentiment-test-cache-"))


PRECISION_TOLERANCE = {"fp32": 1e-5, "bf16": 2e-2}
"""How far two runs of the same model at one precision may differ (batching changes the rounding)."""


@pytest.fixture(params=sorted(PRECISION_TOLERANCE))
def precision(request: pytest.FixtureRequest) -> str:
    """Run a precision-sensitive test under fp32 and bf16: torch does bf16 on any x86 CPU (natively
    where the CPU has bf16 units, emulated and slower elsewhere), so every machine checks both."""
    return request.param


def _require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"shared resource missing: {path}")
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return _require(SHARED_DATA)


@pytest.fixture(scope="session")
def shared_model() -> Path:
    return _require(SHARED_MODEL)


def build_tiny_model(folder: Path, *, classifier: bool = True, id2label: dict[int, str] | None = None,
                     max_positions: int = 512, seed: int = 0) -> Path:
    """Save a 2-layer random BERT with the shared WordPiece tokenizer to ``folder``."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification, BertModel

    torch.manual_seed(seed)
    labels = id2label or {0: "NEGATIVE", 1: "POSITIVE"}
    config = BertConfig(
        vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=max_positions,
        id2label=labels, label2id={v: k for k, v in labels.items()},
    )
    model = BertForSequenceClassification(config) if classifier else BertModel(config)
    model.save_pretrained(folder)
    tokenizer = AutoTokenizer.from_pretrained(_require(SHARED_MODEL))
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_classifier(tmp_path_factory) -> Path:
    """A tiny random sequence classifier with NEGATIVE/POSITIVE labels (seconds to build)."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-classifier"))


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory) -> Path:
    """A tiny random bare encoder (no classification head), like a pretrained base model."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-encoder"), classifier=False)


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A module's own ONNX export cache: the command line's default backend exports a model once."""
    folder = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("IMDB_SENTIMENT_CACHE", str(folder))
        yield folder


@pytest.fixture
def review_frame():
    """A small balanced set of reviews, with a few duplicates, as a data frame."""
    import pandas as pd

    positive = [f"A wonderful film {i}, great acting and a moving story." for i in range(30)]
    negative = [f"A dreadful film {i}, boring plot and awful acting." for i in range(30)]
    return pd.DataFrame({
        "text": positive + negative,
        "label": [1] * 30 + [0] * 30,
    })


@pytest.fixture(scope="session")
def _empty_run_store(tmp_path_factory) -> Path:
    """An MLflow database with its schema, migrated once per session (a fresh one takes seconds)."""
    from imdb_sentiment.tracking import create_schema

    return create_schema(tmp_path_factory.mktemp("run-store-template"))


@pytest.fixture
def runs_dir(tmp_path, _empty_run_store) -> Path:
    """A fresh runs folder whose MLflow store already has its tables."""
    import shutil

    folder = tmp_path / "runs"
    folder.mkdir()
    shutil.copy(_empty_run_store, folder / _empty_run_store.name)
    return folder


@pytest.fixture(scope="session")
def tiny_llm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer random Qwen2 decoder with a real (trained) byte-level tokenizer and a chat template."""
    from tiny_llm import build_tiny_llm

    return build_tiny_llm(tmp_path_factory.mktemp("tiny-llm"))


@pytest.fixture(scope="session")
def tiny_gpt2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same as a GPT-2 (learned absolute positions, ``GPT2LMHeadModel``)."""
    from tiny_llm import build_tiny_llm

    return build_tiny_llm(tmp_path_factory.mktemp("tiny-gpt2"), architecture="gpt2")
