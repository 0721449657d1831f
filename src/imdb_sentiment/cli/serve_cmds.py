"""``serve``: predictions over HTTP with micro-batching, OpenAPI docs and a web page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from ..errors import UserError
from .options import (
    BACKEND,
    BATCH_SIZE,
    CHUNK_OVERLAP,
    DEVICE,
    HEAD_TOKENS,
    HYBRID_MODE,
    HYBRID_THRESHOLD,
    INTERPRET_CONFIG,
    INTERPRETER,
    MAX_LENGTH,
    MODEL,
    PRECISION,
    TRUNCATION,
    TRUST_REMOTE_CODE,
    load_classifier,
)


def serve(
    model: str = MODEL,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0: all interfaces)."),
    port: int = typer.Option(8000, "--port", help="TCP port."),
    max_texts: int = typer.Option(64, "--max-texts", help="Most texts per request (more: 413)."),
    max_chars: int = typer.Option(20_000, "--max-chars", help="Most characters per text (more: 413)."),
    max_batch: int = typer.Option(64, "--max-batch", help="Most texts per model call across requests."),
    max_wait_ms: float = typer.Option(
        5.0, "--max-wait-ms", help="How long a request waits for others to share its model call."),
    batch_size: int | None = BATCH_SIZE,
    max_length: int | None = MAX_LENGTH,
    truncation: str | None = TRUNCATION,
    head_tokens: int | None = HEAD_TOKENS,
    chunk_overlap: int | None = CHUNK_OVERLAP,
    device: str | None = DEVICE,
    precision: str = PRECISION,
    backend: str = BACKEND,
    log_level: str = typer.Option("info", "--log-level", help="uvicorn log level (warning: no access log)."),
    show_model_path: bool = typer.Option(
        False, "--show-model-path",
        help="Show the server's paths (the model's full local path, the engine cache) in responses, "
             "errors and /info (default: folder and file names only, which tell clients nothing about "
             "the server's files)."),
    trust_remote_code: bool = TRUST_REMOTE_CODE,
    mode: str | None = HYBRID_MODE,
    threshold: float | None = HYBRID_THRESHOLD,
    interpreter: str | None = INTERPRETER,
    interpret_config: Path | None = INTERPRET_CONFIG,
) -> None:
    """Serve predictions over HTTP: POST /predict, POST /explain, POST /interpret (with --interpreter),
    GET /health, GET /info, docs at /docs, page at /."""
    from ..config import InferenceConfig
    from ..serving import check_address
    from ..serving import serve as run_server

    if log_level not in ("critical", "error", "warning", "info", "debug", "trace"):
        raise UserError(f"unknown --log-level {log_level!r}")
    config = InferenceConfig(device=device, precision=precision, backend=backend, max_length=max_length,
                             truncation=truncation, head_tokens=head_tokens, chunk_overlap=chunk_overlap,
                             batch_size=batch_size, trust_remote_code=trust_remote_code)  # checked now
    check_address(host, port)  # before the slow model load
    if interpret_config is not None and interpreter is None:
        raise UserError("--interpret-config needs --interpreter LLM")
    classifier = load_classifier(model, config, mode=mode, threshold=threshold)
    explainer = None
    if interpreter is not None:
        from ..interpretation import Interpreter

        explainer = Interpreter.load(interpreter, config, settings=interpret_config, classifier=classifier)
    limits: dict[str, Any] = {"max_texts": max_texts, "max_chars": max_chars, "max_batch": max_batch,
                              "max_wait_ms": max_wait_ms, "show_paths": show_model_path}
    run_server(classifier, host, port, log_level=log_level, interpreter=explainer, **limits)


def register(app: typer.Typer) -> None:
    """Add ``serve`` to ``app``."""
    app.command("serve")(serve)
