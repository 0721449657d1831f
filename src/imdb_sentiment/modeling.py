"""Load a model and tokenizer from a Hub id or a local path; labels; precision and memory.

Tokenization and truncation live in :mod:`imdb_sentiment.encoding`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import HubUnreachableError, UserError, first_line

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

ID2LABEL = {0: "NEGATIVE", 1: "POSITIVE"}
LABEL2ID = {name: index for index, name in ID2LABEL.items()}
STARS_PREFIX = "STARS_"
"""Rating-head outputs are named ``STARS_1`` ... ``STARS_10`` (next to NEGATIVE and POSITIVE)."""
_NEGATIVE_NAMES = {"negative", "neg", "label_0", "0", "bad"}
_POSITIVE_NAMES = {"positive", "pos", "label_1", "1", "good"}


# --------------------------------------------------------------------------- loading


def is_local(id_or_path: str | os.PathLike[str]) -> bool:
    """True for what can only be a local path; ``org/name`` is a Hub id unless ``org`` is a local folder."""
    text = str(id_or_path)
    path = Path(text).expanduser()
    return (path.exists() or text.startswith((".", "/", "~")) or text.count("/") > 1
            or (len(path.parts) > 1 and Path(path.parts[0]).is_dir()))


def resolve_model_source(id_or_path: str | os.PathLike[str]) -> str:
    """A local folder as a string path, or the Hub id; a missing local path is a clear error."""
    text = str(id_or_path)
    path = Path(text).expanduser()
    if path.exists():
        if not path.is_dir():
            raise UserError(f"model path {path} is a file; pass the model folder")
        if not (path / "config.json").is_file():
            raise UserError(f"{path} is not a model folder (no config.json){_baseline_hint(path)}")
        return str(path)
    if is_local(text):
        raise UserError(f"model path not found: {text}")
    from .hub import hub_accepts_connections, hub_offline

    if not hub_offline() and not hub_accepts_connections():  # else the Hub client retries for half a minute
        raise HubUnreachableError(
            f"model path not found: {text}, and the Hugging Face Hub cannot be reached to load it as a "
            "Hub id; pass a local model folder, e.g. --model ../shared/models/all-MiniLM-L6-v2")
    return text


def _baseline_hint(folder: Path) -> str:
    """What to do with a bag-of-words baseline folder (a scikit-learn ``.skops`` model) given as a model."""
    if not any(folder.glob("*.skops")) and not any(folder.glob("model/*.skops")):
        return ""
    return ("; it holds a bag-of-words baseline, which `predict --explain` scores and "
            "`hybrid --baseline` combines with a transformer")


def hub_error(id_or_path: str, error: Exception) -> UserError:
    """The one-line error for a model that failed to load: from a local path, or from the Hub."""
    if is_local(id_or_path):
        return UserError(f"cannot load model from {id_or_path}: {first_line(error)}")
    return HubUnreachableError(
        f"could not load {id_or_path!r} from the Hugging Face Hub ({first_line(error)[:160]}); "
        "pass a local model folder instead, e.g. --model ../shared/models/all-MiniLM-L6-v2"
    )



def load_config(id_or_path: str | os.PathLike[str], trust_remote_code: bool = False):
    from transformers import AutoConfig

    source = resolve_model_source(id_or_path)
    try:
        return AutoConfig.from_pretrained(source, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as error:
        raise hub_error(source, error) from error


def load_tokenizer(id_or_path: str | os.PathLike[str], trust_remote_code: bool = False
                   ) -> PreTrainedTokenizerBase:
    from transformers import AutoTokenizer

    source = resolve_model_source(id_or_path)
    check_tokenizer_files(source)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as error:
        raise hub_error(source, error) from error
    # Without vocabulary files transformers builds a tokenizer of special tokens only, which turns
    # every word into [UNK], so the model scores at chance; a Hub id can lack them as a folder can.
    added = getattr(tokenizer, "added_tokens_decoder", None) or {}
    specials = len(set(tokenizer.all_special_tokens) | {str(token) for token in added.values()})
    if len(tokenizer) <= specials:
        raise tokenizer_files_error(source, f"has a tokenizer that knows no words (only {len(tokenizer)} "
                                            "special tokens): its tokenizer files are missing or empty")
    return tokenizer


TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json", "merges.txt",
                   "spiece.model", "sentencepiece.bpe.model", "tokenizer.model")
"""The files a tokenizer is saved as (``save_pretrained``): any one of them makes a folder's tokenizer."""


def tokenizer_files_error(where: str | os.PathLike[str], problem: str) -> UserError:
    """``problem`` (e.g. "has no tokenizer files") said of ``where``, with the files expected and the fix."""
    return UserError(f"{where} {problem} (expected tokenizer.json, or tokenizer_config.json with vocab.txt, "
                     "vocab.json + merges.txt or a SentencePiece .model); save the tokenizer of the model it "
                     "was fine-tuned from into it (tokenizer.save_pretrained)")


def check_tokenizer_files(source: str | os.PathLike[str]) -> None:
    """Refuse a local folder without tokenizer files (a Hub id's arrive with the download)."""
    folder = Path(source).expanduser()
    if not folder.is_dir():
        return
    if not any((folder / name).is_file() for name in TOKENIZER_FILES) and not any(folder.glob("*.model")):
        raise tokenizer_files_error(folder, "has no tokenizer files")


def is_classifier_config(config: Any) -> bool:
    """True when the checkpoint carries a trained sequence-classification head."""
    architectures = getattr(config, "architectures", None) or []
    return any(name.endswith("ForSequenceClassification") for name in architectures)


def quiet_if_asked() -> None:
    """No "Loading weights" bars where the command line asked for quiet loading before
    transformers was imported (a lazy load for explanations, a prompted language model)."""
    if os.environ.get("HF_HUB_DISABLE_PROGRESS_BARS") == "1":
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()


def load_classifier(
    id_or_path: str | os.PathLike[str],
    *,
    require_head: bool = True,
    trust_remote_code: bool = False,
    dtype: torch.dtype | None = None,
    labels: dict[int, str] | None = None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a sequence classifier and its tokenizer.

    With ``require_head`` (evaluation, prediction) the checkpoint must already be a classifier
    with binary-mappable labels. Without it (fine-tuning) a bare encoder gets a fresh 2-way
    head labelled ``NEGATIVE``/``POSITIVE``; ``labels`` asks for a head with these outputs instead.
    """
    from transformers import AutoModelForSequenceClassification

    quiet_if_asked()
    source = resolve_model_source(id_or_path)
    check_model_folder(source, classifier=False)  # files first: one line, not a loader's traceback
    config = load_config(source, trust_remote_code)
    kwargs: dict[str, Any] = {"trust_remote_code": trust_remote_code}
    if dtype is not None:
        kwargs["dtype"] = dtype
    if require_head:
        check_classifier_config(config, id_or_path)  # before loading weights
    elif labels is not None and {int(k): v for k, v in (config.id2label or {}).items()} != labels:
        # A head with other outputs (e.g. a rating output next to the two classes): start it fresh.
        kwargs.update(num_labels=len(labels), id2label=dict(labels),
                      label2id={name: index for index, name in labels.items()},
                      ignore_mismatched_sizes=is_classifier_config(config))
    elif not is_classifier_config(config) or _safe_label_order(config) is None:
        # A bare encoder, or a classifier whose labels are not ours: start a fresh 2-way head.
        kwargs.update(num_labels=2, id2label=dict(ID2LABEL), label2id=dict(LABEL2ID),
                      ignore_mismatched_sizes=is_classifier_config(config))
    tokenizer = load_tokenizer(source, trust_remote_code)  # refused, if unusable, before the weights
    try:
        model = AutoModelForSequenceClassification.from_pretrained(source, **kwargs)
    except (OSError, ValueError) as error:
        raise hub_error(source, error) from error
    return model, tokenizer


def check_classifier_config(config: Any, where: str | os.PathLike[str]) -> None:
    """A trained sequence-classification head with labels that map to negative/positive."""
    if not is_classifier_config(config):
        raise UserError(f"{where} is neither a sequence-classification model nor a causal language model "
                        f"(architectures: {', '.join(getattr(config, 'architectures', None) or ['none'])}); "
                        "fine-tune it first with `imdb-sentiment train`")
    label_order(config)


WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin", "*.index.json")
"""PyTorch weights as ``transformers`` saves them: one file, or shards with their index."""


def check_model_folder(source: str | os.PathLike[str], *, classifier: bool = True, weights: bool = True
                       ) -> None:
    """Refuse a local folder that cannot make a working model, in milliseconds and without importing
    torch or transformers: not a model folder (a baseline's is named as one), no or damaged weights
    (``weights``), no tokenizer, or, with ``classifier``, no head with negative/positive labels.
    A Hub id passes: its files are checked as they load."""
    folder = Path(source).expanduser()
    if not folder.is_dir():
        return
    resolve_model_source(folder)
    if weights:
        if not any(any(folder.glob(pattern)) for pattern in WEIGHT_PATTERNS):
            raise UserError(f"{folder} has no model weights (no model.safetensors or pytorch_model.bin)")
        check_weight_files(folder)
    check_tokenizer_files(folder)
    if classifier:
        check_classifier_config(folder_config(folder), folder)


def folder_config(folder: str | os.PathLike[str]) -> Any:
    """A folder's ``config.json`` as attributes, read without transformers.

    ``save_pretrained`` leaves out labels that are transformers' defaults (``LABEL_0``, ``LABEL_1``);
    they are filled in as ``AutoConfig`` does, so every back end reads the labels the same way.
    """
    import json
    from types import SimpleNamespace

    file = Path(folder).expanduser() / "config.json"
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise UserError(f"{file.parent} is not a model folder (no config.json)") from error
    except (OSError, ValueError) as error:
        raise UserError(f"cannot read {file}: {first_line(error)}") from error
    if not isinstance(data, dict):
        raise UserError(f"cannot read {file}: not a JSON object")
    if not data.get("id2label"):
        data["id2label"] = {index: f"LABEL_{index}" for index in range(int(data.get("num_labels") or 2))}
    return SimpleNamespace(**data)


def check_weight_files(source: str | os.PathLike[str]) -> None:
    """Refuse a local folder whose safetensors files are empty, truncated or not safetensors.

    Only the header is read (and the file size checked against it), so this costs milliseconds;
    without it the loader fails deep inside with a traceback.
    """
    folder = Path(source).expanduser()
    if not folder.is_dir():
        return  # a Hub id: the files arrive with the download
    from safetensors import safe_open

    for file in sorted(folder.glob("*.safetensors")):
        try:
            with safe_open(str(file), framework="numpy"):
                pass
        except Exception as error:  # SafetensorError is not exported under a stable name
            reason = first_line(error).removeprefix("Error while deserializing header: ")
            raise UserError(f"damaged weights file {file}: {reason}; replace it with a complete copy "
                            "(e.g. save or download the model again)") from error


# --------------------------------------------------------------------------- labels


def label_order(config: Any) -> list[int]:
    """For our classes (0 negative, 1 positive), the index of each in the model's outputs.

    Understands ``NEGATIVE``/``POSITIVE``, ``neg``/``pos``, ``LABEL_0``/``LABEL_1`` in any case.
    """
    order = _safe_label_order(config)
    if order is None:
        names = ", ".join(str(v) for v in (getattr(config, "id2label", None) or {}).values())
        raise UserError(f"cannot map the model's labels ({names or 'none'}) to negative/positive; "
                        "a binary sentiment model needs labels like NEGATIVE/POSITIVE or LABEL_0/LABEL_1")
    return order


def rating_outputs(config: Any) -> dict[int, int] | None:
    """Output index -> star rating, for a model trained with ``--target rating`` (else None)."""
    found = {int(index): int(str(name).strip().upper().removeprefix(STARS_PREFIX))
             for index, name in (getattr(config, "id2label", None) or {}).items()
             if str(name).strip().upper().startswith(STARS_PREFIX)}
    return dict(sorted(found.items())) or None


def _safe_label_order(config: Any) -> list[int] | None:
    id2label = {int(k): str(v).strip().lower() for k, v in (getattr(config, "id2label", None) or {}).items()
                if not str(v).strip().upper().startswith(STARS_PREFIX)}  # rating outputs are not classes
    if len(id2label) != 2:
        return None
    negative = [index for index, name in id2label.items() if name in _NEGATIVE_NAMES]
    positive = [index for index, name in id2label.items() if name in _POSITIVE_NAMES]
    if len(negative) != 1 or len(positive) != 1 or negative == positive:
        return None
    return [negative[0], positive[0]]


# --------------------------------------------------------------------------- precision


def cpu_supports_bf16() -> bool:
    """True on CPUs with native bf16 matrix units (AMX or AVX512-BF16), where bf16 is faster."""
    from .engines import cpu_flags

    return bool({"amx_bf16", "avx512_bf16"} & set(cpu_flags()))


def resolve_precision(precision: str, device: str) -> str:
    """``auto`` → ``bf16`` on bf16-capable GPUs and CPUs, else ``fp32``."""
    if precision in {"bf16", "fp32"}:
        return precision
    if precision != "auto":
        raise UserError(f"precision must be auto, bf16 or fp32, not {precision!r}")
    import torch

    if device.startswith("cuda"):
        return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if device == "cpu" and cpu_supports_bf16() else "fp32"


def default_device() -> str:
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


# --------------------------------------------------------------------------- memory


def is_out_of_memory(error: BaseException) -> bool:
    """True for CUDA/MPS/CPU allocation failures, whichever exception type the backend raises."""
    import torch

    if isinstance(error, torch.OutOfMemoryError | MemoryError):
        return True
    return isinstance(error, RuntimeError) and "out of memory" in str(error).lower()


@contextlib.contextmanager
def out_of_memory_hint(batch_size: int, option: str = "--batch-size") -> Iterator[None]:
    """Turn an out-of-memory error into a one-line hint to lower the batch size."""
    try:
        yield
    except (RuntimeError, MemoryError) as error:
        if not is_out_of_memory(error):
            raise
        smaller = max(1, batch_size // 2)
        raise UserError(f"out of memory with batch size {batch_size}; "
                        f"try a smaller {option} (e.g. {smaller}) or a shorter --max-length") from error
