"""HTTP service: ``POST /predict``, ``GET /health``, ``GET /info``, a web page at ``/``.

Requests from concurrent clients are micro-batched: a worker thread takes the first waiting
request, collects whatever else arrives within ``max_wait_ms`` (up to ``max_batch`` texts) and
runs the model once for all of them. One model call at a time also keeps the CPU threads from
fighting each other. Every bad request gets a 4xx JSON ``{"error": ...}`` and the server stays up.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import queue
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, Field, StrictStr
from starlette.exceptions import HTTPException

from . import __version__
from .errors import UserError
from .inference import Details, SentimentClassifier, to_predictions

DEFAULT_MAX_TEXTS = 64
"""Texts per request."""
DEFAULT_MAX_CHARS = 20_000
"""Characters per text: the longest IMDB review has about 13,700."""
DEFAULT_MAX_BATCH = 64
"""Texts per model call, across requests."""
DEFAULT_MAX_WAIT_MS = 5.0
"""How long the first waiting request may wait for others to join its batch."""


# --------------------------------------------------------------------------- micro-batching


@dataclass
class _Job:
    texts: list[str]
    future: Future = field(default_factory=Future)


@dataclass
class BatcherStats:
    requests: int = 0
    texts: int = 0
    model_calls: int = 0


class MicroBatcher:
    """Collects texts from concurrent requests into bounded batches run by one worker thread."""

    def __init__(self, run: Callable[[list[str]], Details], *, max_batch: int = DEFAULT_MAX_BATCH,
                 max_wait_ms: float = DEFAULT_MAX_WAIT_MS) -> None:
        if max_batch <= 0:
            raise UserError(f"max batch size must be positive, got {max_batch}")
        if not 0 <= max_wait_ms <= 1000:
            raise UserError(f"max wait must be in [0, 1000] ms, got {max_wait_ms}")
        self._run = run
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000
        self.stats = BatcherStats()
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._carry: _Job | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, texts: Sequence[str]) -> Future:
        """Queue ``texts``; the future resolves to their :class:`Details`, in order."""
        self._ensure_started()
        job = _Job(list(texts))
        self._queue.put(job)
        return job.future

    def close(self) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout=30)

    def _ensure_started(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="micro-batcher", daemon=True)
                self._thread.start()

    def _work(self) -> None:
        while True:
            jobs = self._collect()
            if jobs is None:
                return
            self._execute(jobs)

    def _collect(self) -> list[_Job] | None:
        """The next batch: the oldest job plus those arriving within the wait, up to the bound."""
        first, self._carry = self._carry or self._queue.get(), None
        if first is None:
            return None
        jobs, size = [first], len(first.texts)
        deadline = time.monotonic() + self.max_wait
        while size < self.max_batch:
            remaining = deadline - time.monotonic()
            try:
                job = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if job is None:  # closing: finish this batch, then stop
                self._queue.put(None)
                break
            if size + len(job.texts) > self.max_batch:
                self._carry = job  # keeps the bound; it opens the next batch
                break
            jobs.append(job)
            size += len(job.texts)
        return jobs

    def _execute(self, jobs: list[_Job]) -> None:
        texts = [text for job in jobs for text in job.texts]
        self.stats.model_calls += 1
        self.stats.requests += len(jobs)
        self.stats.texts += len(texts)
        try:
            details = self._run(texts)
        except Exception as error:  # hand the failure to every waiting request
            for job in jobs:
                job.future.set_exception(error)
            return
        start = 0
        for job in jobs:
            end = start + len(job.texts)
            job.future.set_result(_slice(details, start, end))
            start = end


def _slice(details: Details, start: int, end: int) -> Details:
    return Details(details.probabilities[start:end], details.tokens[start:end],
                   details.truncated[start:end], details.windows[start:end],
                   None if details.decided_by is None else details.decided_by[start:end])


# --------------------------------------------------------------------------- API schema


class PredictRequest(BaseModel):
    texts: list[StrictStr] = Field(..., description="Reviews to classify.",
                                   examples=[["A wonderful film.", "Two hours I will never get back."]])


class PredictionOut(BaseModel):
    label: str = Field(..., description="POSITIVE or NEGATIVE.")
    score: float = Field(..., description="Probability of that label.")
    truncated: bool = Field(..., description="True when tokens beyond the model's length were dropped.")
    decided_by: str | None = Field(
        None, description="Hybrid models: which part decided (screen, transformer or blend).")


class PredictResponse(BaseModel):
    predictions: list[PredictionOut]
    model: str
    truncation: str


class ErrorOut(BaseModel):
    error: str


class _Rejected(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# --------------------------------------------------------------------------- app


def create_app(classifier: SentimentClassifier, *, max_texts: int = DEFAULT_MAX_TEXTS,
               max_chars: int = DEFAULT_MAX_CHARS, max_batch: int = DEFAULT_MAX_BATCH,
               max_wait_ms: float = DEFAULT_MAX_WAIT_MS) -> FastAPI:
    """The service app around a loaded classifier (tests pass a tiny one to ``TestClient``)."""
    if max_texts <= 0 or max_chars <= 0:
        raise UserError("max texts and max characters per request must be positive")
    batcher = MicroBatcher(classifier.predict_details, max_batch=max_batch, max_wait_ms=max_wait_ms)
    limits = {"max_texts": max_texts, "max_chars": max_chars, "max_batch": max_batch,
              "max_wait_ms": max_wait_ms}
    # JSON may spend up to 12 bytes on one character (an escaped surrogate pair).
    max_body = max_texts * (max_chars * 12 + 8) + 1024

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        batcher.close()

    app = FastAPI(title="imdb-sentiment", version=__version__, lifespan=lifespan,
                  description="Movie-review sentiment: POSITIVE or NEGATIVE with a probability.")
    app.state.batcher = batcher
    app.state.classifier = classifier
    _add_error_handlers(app, max_body)
    errors: dict[int | str, dict[str, Any]] = {
        code: {"model": ErrorOut} for code in (413, 422, 500)
    }

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> HTMLResponse:
        return HTMLResponse(_static_text("index.html"))

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/info")
    def info() -> dict[str, Any]:
        return {**classifier.info(), "limits": limits, "batching": dataclasses.asdict(batcher.stats)}

    @app.post("/predict", response_model=PredictResponse, responses=errors)
    async def predict(request: PredictRequest) -> PredictResponse:
        texts = _check_request(request.texts, max_texts, max_chars)
        details = await asyncio.wrap_future(batcher.submit(texts))
        decided = [None] * len(texts) if details.decided_by is None else details.decided_by.tolist()
        predictions = [
            PredictionOut(**item, truncated=bool(cut), decided_by=who)
            for item, cut, who in zip(to_predictions(details.probabilities), details.truncated, decided,
                                      strict=True)
        ]
        return PredictResponse(predictions=predictions, model=classifier.name,
                               truncation=classifier.truncation)

    return app


def _check_request(texts: list[str], max_texts: int, max_chars: int) -> list[str]:
    if not texts:
        raise _Rejected(422, "texts must hold at least one review")
    if len(texts) > max_texts:
        raise _Rejected(413, f"too many texts: {len(texts)} > {max_texts} per request")
    for index, text in enumerate(texts):
        if not text.strip():
            raise _Rejected(422, f"texts[{index}] is empty")
        if len(text) > max_chars:
            raise _Rejected(413, f"texts[{index}] is too long: {len(text)} > {max_chars} characters")
    return texts


def _add_error_handlers(app: FastAPI, max_body: int) -> None:
    """Every failure becomes ``{"error": one line}`` with a fitting status code."""

    @app.middleware("http")
    async def limit_body(request: Request, call_next: Callable) -> Any:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > max_body):
            return JSONResponse({"error": f"request body too large (limit {max_body} bytes)"}, 413)
        return await call_next(request)

    @app.exception_handler(_Rejected)
    async def rejected(_: Request, error: _Rejected) -> JSONResponse:
        return JSONResponse({"error": error.message}, error.status)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": _validation_message(error.errors())}, 422)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, error: HTTPException) -> JSONResponse:
        return JSONResponse({"error": str(error.detail)}, error.status_code, headers=error.headers)

    @app.exception_handler(UserError)
    async def user_error(_: Request, error: UserError) -> JSONResponse:
        return JSONResponse({"error": str(error)}, 422)

    @app.exception_handler(Exception)
    async def crash(_: Request, error: Exception) -> JSONResponse:
        return JSONResponse({"error": f"internal error: {type(error).__name__}"}, 500)


def _validation_message(problems: Sequence[Any]) -> str:
    """One line from pydantic's error list, e.g. ``texts[2]: Input should be a valid string``."""
    if not problems:
        return "invalid request"
    first = problems[0]
    location = [str(part) for part in first.get("loc", ()) if part != "body"]
    where = location[0] if location else "body"
    for part in location[1:]:
        where += f"[{part}]" if part.isdigit() else f".{part}"
    more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
    return f"{where}: {first.get('msg', 'invalid')}{more}"


def _static_text(name: str) -> str:
    return resources.files("imdb_sentiment").joinpath("static", name).read_text(encoding="utf-8")


def check_address(host: str, port: int) -> None:
    """A clear one-line error, before the model loads, when the address cannot be listened on."""
    import socket

    if not 0 < port < 65536:
        raise UserError(f"--port must be in 1..65535, got {port}")
    try:
        with socket.create_server((host, port)):
            pass
    except OSError as error:
        reason = (error.strerror or str(error)).split(" (while")[0]
        raise UserError(f"cannot listen on {host}:{port}: {reason}") from error


def serve(classifier: SentimentClassifier, host: str = "127.0.0.1", port: int = 8000, *,
          log_level: str = "info", **limits: Any) -> None:
    """Run the service with uvicorn until interrupted."""
    import uvicorn

    app = create_app(classifier, **limits)  # limits are checked before the port is taken
    check_address(host, port)
    print(f"serving {classifier.name} ({classifier.backend.name} {classifier.precision}) on "
          f"http://{host}:{port}/  (API docs: /docs)", file=sys.stderr, flush=True)
    uvicorn.run(app, host=host, port=port, log_level=log_level)
