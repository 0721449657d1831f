"""Export a fine-tuned classifier to ONNX (optionally int8) for ONNX Runtime.

The output folder holds ``model.onnx``, the tokenizer, ``config.json`` and ``onnx_export.json``
(how it was made and how closely it matches the PyTorch model), so
``SentimentClassifier.load(folder)`` can run it without torch or transformers.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..artifacts import CACHE_ENV, atomic_output_dir, cache_root, check_output_dir, check_writable, write_json
from ..errors import UserError, first_line

ONNX_META = "onnx_export.json"
"""Written next to ``model.onnx``; its presence marks an ONNX model folder."""

QUANTIZATIONS = ("int8",)
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
DEFAULT_OPSET = 17
_PROBES = [
    "A wonderful film with great acting and a moving story.",
    "Dreadful. Boring plot, awful dialogue, and I wanted my two hours back.",
    "ok",
]


def export_onnx(model: str | os.PathLike[str], output: str | os.PathLike[str], *,
                quantize: str | None = None, opset: int = DEFAULT_OPSET, overwrite: bool = False,
                trust_remote_code: bool = False) -> dict[str, Any]:
    """Write ``output`` (atomically) and return its ``onnx_export.json`` record."""
    from ..modeling import check_model_folder, load_classifier

    if quantize not in (None, *QUANTIZATIONS):
        raise UserError(f"--quantize must be one of {', '.join(QUANTIZATIONS)}, not {quantize!r}")
    if not 9 <= opset <= 20:
        raise UserError(f"--opset must be between 9 and 20, got {opset}")
    check_model_folder(model)  # files, tokenizer and labels, before anything is written
    check_output_dir(output, overwrite, inputs=(model,))  # before the slow load and export
    classifier, tokenizer = load_classifier(model, trust_remote_code=trust_remote_code)
    names = [name for name in INPUT_NAMES if name in tokenizer.model_input_names]
    with atomic_output_dir(output, overwrite=overwrite) as folder:
        raw_path = folder / "model.raw.onnx"
        _torch_export(classifier, tokenizer, names, raw_path, opset)
        fused_path = folder / "model.fused.onnx"
        fused = _fuse(raw_path, fused_path, classifier.config)
        best = fused_path if fused else raw_path
        if quantize == "int8":
            _quantize_int8(best, folder / "model.onnx")
        else:
            best.rename(folder / "model.onnx")
        for leftover in (raw_path, fused_path):
            leftover.unlink(missing_ok=True)
        tokenizer.save_pretrained(folder)
        _save_config(classifier.config, folder)
        _copy_training_record(Path(model), folder)
        record = {
            "format": "onnx",
            "file": "model.onnx",
            "precision": quantize or "fp32",
            "source": str(model),
            "opset": opset,
            "inputs": names,
            "fused_operators": fused,
            "max_abs_logit_difference": _compare(classifier, tokenizer, names, folder / "model.onnx"),
            "exported_by": f"imdb-sentiment {__version__}",
        }
        write_json(folder / ONNX_META, record)
    return record


def _torch_export(model: Any, tokenizer: Any, names: list[str], path: Path, opset: int) -> None:
    """TorchScript-based export with dynamic batch and sequence axes (needs no onnxscript)."""
    import torch

    model = model.float().eval()
    with contextlib.suppress(Exception):  # the plain attention graph is what ONNX Runtime can fuse
        model.set_attn_implementation("eager")
    sample = tokenizer(_PROBES[:2], padding=True, return_tensors="pt")
    inputs = {name: sample[name] for name in names}
    axes = {name: {0: "batch", 1: "sequence"} for name in names}
    axes["logits"] = {0: "batch"}
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")  # tracer warnings about Python control flow are expected
        try:
            torch.onnx.export(model, (), str(path), kwargs=inputs, input_names=names,
                              output_names=["logits"], dynamic_axes=axes, opset_version=opset,
                              dynamo=False)
        except Exception as error:  # exporter errors are many and deep; report the first line
            raise UserError(f"ONNX export failed: {first_line(error)}") from error


def _fuse(source: Path, target: Path, config: Any) -> dict[str, int]:
    """ONNX Runtime's transformer fusions (attention, layer norm, GELU) for BERT-like encoders.

    Returns the fused operator counts; empty when the model is not one ONNX Runtime knows how
    to fuse, in which case the plain graph is used (ONNX Runtime still optimizes it at load).
    """
    from onnxruntime.transformers import optimizer

    heads = getattr(config, "num_attention_heads", None) or getattr(config, "n_heads", None)
    hidden = getattr(config, "hidden_size", None) or getattr(config, "dim", None)
    if getattr(config, "model_type", "") not in _FUSABLE or not heads or not hidden:
        return {}
    try:
        optimized = optimizer.optimize_model(str(source), model_type="bert", num_heads=int(heads),
                                             hidden_size=int(hidden))
    except Exception:  # fusion is an optimization only; never fail the export for it
        return {}
    counts = {name: int(n) for name, n in optimized.get_fused_operator_statistics().items() if n}
    if not counts.get("Attention"):
        return {}
    optimized.save_model_to_file(str(target))
    return counts


_FUSABLE = {"bert", "distilbert", "roberta", "xlm-roberta", "electra", "camembert"}


def _quantize_int8(source: Path, target: Path) -> None:
    """Dynamic int8 quantization of the MatMul weights (activations are quantized per batch)."""
    import logging

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    logging.getLogger().setLevel(max(logging.getLogger().level, logging.ERROR))  # pre-processing hint
    # Per-channel weight scales keep the error small; fused Attention is quantized as a whole.
    quantize_dynamic(source, target, weight_type=QuantType.QInt8, per_channel=True,
                     op_types_to_quantize=["MatMul", "Attention"],
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})


def _compare(model: Any, tokenizer: Any, names: list[str], onnx_path: Path) -> float:
    """Largest absolute logit difference between PyTorch and the exported file on probe texts."""
    import onnxruntime as ort
    import torch

    sample = tokenizer(_PROBES, padding=True, return_tensors="np")
    feed = {name: sample[name].astype(np.int64) for name in names}
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    exported = session.run(None, feed)[0]
    with torch.inference_mode():
        reference = model(**{k: torch.from_numpy(v) for k, v in feed.items()}).logits.numpy()
    return float(np.abs(exported - reference).max())


def _save_config(config: Any, folder: Path) -> None:
    """``config.json`` with the labels always written: ``save_pretrained`` leaves out transformers'
    default ``LABEL_0``/``LABEL_1``, which the ONNX loader, reading the file without transformers,
    would otherwise not see."""
    from ..artifacts import read_json

    config.save_pretrained(folder)
    data = read_json(folder / "config.json")
    data["id2label"] = {str(index): name for index, name in config.id2label.items()}
    data["label2id"] = {name: int(index) for name, index in config.label2id.items()}
    write_json(folder / "config.json", data)


def _copy_training_record(source: Path, folder: Path) -> None:
    """Keep the training settings (truncation) so predictions cut reviews the same way."""
    record = source / "train_config.toml"
    if record.is_file():
        shutil.copy2(record, folder / record.name)


# --------------------------------------------------------------------------- cache

def cache_key(folder: Path, quantize: str | None) -> str:
    """Changes whenever a file of the model folder, this package or ONNX Runtime changes."""
    import importlib.metadata

    from ..artifacts import folder_fingerprint

    return folder_fingerprint(folder, str(quantize), __version__, importlib.metadata.version("onnxruntime"))


def cached_export(model: str | os.PathLike[str], quantize: str | None = "int8",
                  trust_remote_code: bool = False) -> tuple[Path, bool]:
    """An ONNX export of the local model folder ``model``, made once and kept in the cache.

    Returns the export folder and whether it was made now (first use) rather than reused.
    """
    import logging

    from ..modeling import check_model_folder

    folder = Path(model).expanduser()
    target = cache_root() / "onnx" / cache_key(folder, quantize)
    if (target / ONNX_META).is_file() and (target / "model.onnx").is_file():
        return target, False
    check_model_folder(folder)  # an unusable model fails before the export is announced
    try:
        check_writable(target)
    except UserError as error:
        raise UserError(f"cannot write the ONNX cache ({error}); set {CACHE_ENV} to a writable folder "
                        "or use --backend torch") from error
    logging.getLogger("imdb_sentiment").warning(
        "preparing a one-time %s ONNX Runtime copy of %s for fast CPU prediction (cached in %s)",
        quantize or "fp32", folder, target)
    try:
        export_onnx(folder, target, quantize=quantize, overwrite=True, trust_remote_code=trust_remote_code)
    except OSError as error:
        raise UserError(f"cannot write the ONNX cache at {target}: {error.strerror or error}; "
                        f"set {CACHE_ENV} to a writable folder or use --backend torch") from error
    return target, True
