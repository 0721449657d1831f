"""``export``: a fine-tuned model to ONNX (optionally int8) for ONNX Runtime."""

from __future__ import annotations

from pathlib import Path

import typer

from .options import (
    OUTPUT,
    OVERWRITE,
    TRUST_REMOTE_CODE,
    quiet_model_loading,
)


def export(
    model: str = typer.Option(..., "--model", "-m", help="Fine-tuned model folder (or Hub id)."),
    output: Path = OUTPUT,
    quantize: str | None = typer.Option(
        None, "--quantize",
        help="int8: int8 encoder weights, activations quantized on the fly (faster on CPUs)."),
    opset: int = typer.Option(17, "--opset", help="ONNX opset version."),
    overwrite: bool = OVERWRITE,
    trust_remote_code: bool = TRUST_REMOTE_CODE,
) -> None:
    """Export a fine-tuned model to ONNX for ONNX Runtime (`predict`/`serve` accept the folder)."""
    from ..exporters.onnx import export_onnx

    quiet_model_loading()
    record = export_onnx(model, output, quantize=quantize, opset=opset, overwrite=overwrite,
                         trust_remote_code=trust_remote_code)
    size = (output / record["file"]).stat().st_size / 2**20
    typer.echo(f"exported {record['precision']} ONNX model ({size:.1f} MiB, largest logit difference "
               f"from PyTorch {record['max_abs_logit_difference']:.2g}) -> {output}")


def register(app: typer.Typer) -> None:
    """Add ``export`` to ``app``."""
    app.command("export")(export)
