"""HTTP service: ``POST /predict``, ``POST /explain``, ``GET /health``, ``GET /info``, a web page at ``/``.

Requests from concurrent clients are micro-batched: a worker thread takes the first waiting
request, collects whatever else arrives within ``max_wait_ms`` (up to ``max_batch`` texts) and
runs the model once for all of them. One model call at a time also keeps the CPU threads from
fighting each other. Every bad request gets a 4xx JSON ``{"error": ...}`` and the server stays up,
and nothing it answers names a path on the server unless the operator asks for the model's.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import email.message
import json
import queue
import re
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field, StrictStr
from starlette.exceptions import HTTPException

from . import __version__
from .classifier import Classifier, Details, to_predictions
from .errors import UserError

if TYPE_CHECKING:
    from .interpretation import Interpreter

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
    isolated_batches: int = 0
    """Batches that failed and were rerun request by request."""


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
        self.stats.requests += len(jobs)
        self.stats.texts += len(texts)
        try:
            details = self._call(texts)
        except Exception as error:
            if len(jobs) == 1:
                jobs[0].future.set_exception(error)
                return
            # One request's texts may have broken the batch: rerun each request alone so only
            # the culprit fails and the others still get their predictions.
            self.stats.isolated_batches += 1
            for job in jobs:
                self._execute_alone(job)
            return
        start = 0
        for job in jobs:
            end = start + len(job.texts)
            job.future.set_result(_slice(details, start, end))
            start = end


    def _execute_alone(self, job: _Job) -> None:
        try:
            job.future.set_result(self._call(job.texts))
        except Exception as error:
            job.future.set_exception(error)

    def _call(self, texts: list[str]) -> Details:
        self.stats.model_calls += 1
        return self._run(texts)


def _slice(details: Details, start: int, end: int) -> Details:
    return Details(details.probabilities[start:end], details.tokens[start:end],
                   details.truncated[start:end], details.windows[start:end],
                   decided_by=None if details.decided_by is None else details.decided_by[start:end],
                   stars=None if details.stars is None else details.stars[start:end])


# --------------------------------------------------------------------------- API schema


class PredictRequest(BaseModel):
    texts: list[StrictStr] = Field(..., description="Reviews to classify.",
                                   examples=[["A wonderful film.", "Two hours I will never get back."]])


class PredictionOut(BaseModel):
    label: str = Field(..., description="POSITIVE or NEGATIVE.")
    score: float = Field(..., description="Probability of that label.")
    truncated: bool = Field(..., description="True when tokens beyond the model's length were dropped.")
    stars: float | None = Field(None, description="Predicted 1-10 star rating (models with a rating head).")
    decided_by: str | None = Field(
        None, description="Hybrid models: which part decided (screen, transformer or blend).")


class PredictResponse(BaseModel):
    predictions: list[PredictionOut]
    model: str
    truncation: str


class ExplainRequest(PredictRequest):
    top: int | None = Field(None, ge=1, le=1000, description="Strongest words per review (default: all).")


class ExplanationOut(BaseModel):
    label: str
    score: float
    stars: float | None = None
    words: list[tuple[str, float]] = Field(..., description="[word, weight] pairs, strongest first; "
                                           "a positive weight pushes towards POSITIVE.")


class ExplainResponse(BaseModel):
    explanations: list[ExplanationOut]
    method: str
    model: str


MAX_INTERPRET_TEXTS = 8
"""Reviews per /interpret request: each takes seconds of generation on a CPU."""


class InterpretRequest(BaseModel):
    texts: list[StrictStr] = Field(..., description=f"Reviews to interpret (at most {MAX_INTERPRET_TEXTS}).",
                                   examples=[["The acting was wooden, but the soundtrack was gorgeous."]])


class InterpretStreamRequest(BaseModel):
    text: StrictStr = Field(..., description="One review; the answer streams as it is generated.")


class AspectOut(BaseModel):
    aspect: str = Field(..., description="One of the configured aspects (see /info), or other.")
    sentiment: str = Field(..., description="positive or negative.")
    quote: str = Field(..., description="The words of the review that say so.")
    verbatim: bool = Field(..., description="The quote is in the review word for word.")
    start: int | None = Field(None, description="Character offset of the quote in the review.")
    end: int | None = None


class InterpretationOut(BaseModel):
    sentiment: str | None = Field(None, description="positive or negative (see sources).")
    score: float | None = Field(None, description="Probability of that sentiment.")
    rating: int | None = Field(None, description="Star rating, 1-10.")
    aspects: list[AspectOut] | None = None
    emotions: dict[str, int] | None = Field(None,
                                            description="Intensity per emotion, 0 to the scale in /info.")
    summary: str | None = None
    truncated: bool | None = Field(None, description="The review was too long: its middle was not read.")
    review_tokens: int | None = None
    sources: dict[str, str] | None = Field(
        None, description="Which model gave each field: the classifier (--model) or the interpreter "
                          "(the LLM).")
    error: str | None = None


class InterpretResponse(BaseModel):
    interpretations: list[InterpretationOut]
    interpreter: str
    classifier: str | None = None


class ErrorOut(BaseModel):
    error: str


class _Rejected(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# --------------------------------------------------------------------------- app


def create_app(classifier: Classifier, *, max_texts: int = DEFAULT_MAX_TEXTS,
               max_chars: int = DEFAULT_MAX_CHARS, max_batch: int = DEFAULT_MAX_BATCH,
               max_wait_ms: float = DEFAULT_MAX_WAIT_MS, show_paths: bool = False,
               interpreter: Interpreter | None = None) -> FastAPI:
    """The service app around a loaded classifier (tests pass a tiny one to ``TestClient``).

    Responses name the model by its folder name or Hub id, and paths in errors and ``/info`` (such
    as the engine cache) are cut to their last part; ``show_paths`` shows them in full (it tells
    clients about the server's file system). ``interpreter``: an LLM that answers ``/interpret``.
    """
    if max_texts <= 0 or max_chars <= 0:
        raise UserError("max texts and max characters per request must be positive")
    batcher = MicroBatcher(classifier.predict_details, max_batch=max_batch, max_wait_ms=max_wait_ms)
    limits = {"max_texts": max_texts, "max_chars": max_chars, "max_batch": max_batch,
              "max_wait_ms": max_wait_ms}
    # JSON may spend up to 12 bytes on one character (an escaped surrogate pair).
    max_body = max_texts * (max_chars * 12 + 8) + 1024
    model_name = classifier.name if show_paths else public_model_name(classifier.name)
    local_paths = _local_paths(classifier.info())

    def public(text: str) -> str:
        return text if show_paths else public_text(text, local_paths)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        batcher.close()

    app = FastAPI(title="imdb-sentiment", version=__version__, lifespan=lifespan,
                  description="Movie-review sentiment: POSITIVE or NEGATIVE with a probability.")
    app.router.route_class = JsonBodyRoute
    app.state.batcher = batcher
    app.state.classifier = classifier
    _add_error_handlers(app, max_body, public)
    errors: dict[int | str, dict[str, Any]] = {
        code: {"model": ErrorOut} for code in (413, 415, 422, 500)
    }

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    @app.head("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> HTMLResponse:
        return HTMLResponse(_static_text("index.html"))

    @app.get("/health")
    @app.head("/health", include_in_schema=False)  # monitors often probe with HEAD
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/info")
    def info() -> dict[str, Any]:
        described = _map_strings(classifier.info(), public)  # e.g. the engine cache in engine_reason
        interpreting = None
        if interpreter is not None:
            interpreting = {**_map_strings(interpreter.info(), public), "interpreter": interpreter_name,
                            "classifier": model_name if interpreter.classifier is not None else None}
        return {**described, "model": model_name, "limits": limits,
                "batching": dataclasses.asdict(batcher.stats), "interpretation": interpreting}

    @app.post("/predict", response_model=PredictResponse, responses=errors, response_model_exclude_none=True)
    async def predict(request: PredictRequest) -> PredictResponse:
        texts = _check_request(request.texts, max_texts, max_chars)
        details = await asyncio.wrap_future(batcher.submit(texts))
        stars = [None] * len(texts) if details.stars is None else [round(float(v), 2) for v in details.stars]
        decided = [None] * len(texts) if details.decided_by is None else details.decided_by.tolist()
        predictions = [
            PredictionOut(**item, truncated=bool(cut), stars=star, decided_by=who)
            for item, cut, star, who in zip(to_predictions(details.probabilities), details.truncated, stars,
                                            decided, strict=True)
        ]
        return PredictResponse(predictions=predictions, model=model_name,
                               truncation=classifier.truncation)

    explainers: list[Any] = []  # built on first use: a model without gradients still serves /predict
    explain_lock = threading.Lock()  # attributions are many model calls; one review set at a time

    def explain_now(texts: list[str], top: int | None) -> ExplainResponse:
        from .explain import GradientExplainer

        with explain_lock:
            if not explainers:
                explainers.append(GradientExplainer(classifier))
            found = explainers[0].explain(texts)
        return ExplainResponse(model=model_name, method=explainers[0].method, explanations=[
            ExplanationOut(label=item.label, score=item.score, stars=item.stars, words=item.top(top))
            for item in found])

    @app.post("/explain", response_model=ExplainResponse, responses=errors, response_model_exclude_none=True)
    async def explain(request: ExplainRequest) -> ExplainResponse:
        texts = _check_request(request.texts, min(max_texts, 8), max_chars)
        return await asyncio.to_thread(explain_now, texts, request.top)

    interpreter_name = "" if interpreter is None else (
        interpreter.name if show_paths else public_model_name(interpreter.name))
    interpret_lock = threading.Lock()  # generation uses every core: one review set at a time

    def interpreting() -> Interpreter:
        if interpreter is None:
            raise _Rejected(404, "this server has no interpreter; start it with serve --interpreter LLM")
        return interpreter

    @app.post("/interpret", response_model=InterpretResponse, responses={**errors, 404: {"model": ErrorOut}},
              response_model_exclude_none=True)
    async def interpret(request: InterpretRequest) -> InterpretResponse:
        """Sentiment, rating, aspects with quotes, emotions and a summary per review, from an LLM."""
        llm = interpreting()
        texts = _check_request(request.texts, min(max_texts, MAX_INTERPRET_TEXTS), max_chars)

        def run() -> list[dict[str, Any]]:
            with interpret_lock:
                return llm.interpret(texts)

        answers = await asyncio.to_thread(run)
        return InterpretResponse(interpretations=[InterpretationOut(**_map_strings(answer, public))
                                                  for answer in answers],
                                 interpreter=interpreter_name,
                                 classifier=model_name if llm.classifier is not None else None)

    @app.post("/interpret/stream", responses={**errors, 404: {"model": ErrorOut}},
              response_class=StreamingResponse)
    async def interpret_stream(request: InterpretStreamRequest) -> StreamingResponse:
        """The answer for one review as it is generated: newline-delimited JSON, ``{"delta": text}``
        lines (pieces of the answer's JSON), then ``{"result": {...}}`` (as one /interpret item) or
        ``{"error": message}``."""
        llm = interpreting()
        text = _check_request([request.text], 1, max_chars)[0]

        def lines() -> Iterable[str]:
            with interpret_lock:
                try:
                    for event in llm.stream(text):
                        yield json.dumps(_map_strings(event, public), ensure_ascii=False) + "\n"
                except UserError as error:
                    yield json.dumps({"error": public(str(error))}) + "\n"

        return StreamingResponse(lines(), media_type="application/x-ndjson")

    return app


def public_model_name(name: str) -> str:
    """A local model's folder name, or the Hub id as given."""
    path = Path(name).expanduser()
    return path.name if path.is_absolute() or path.exists() else name


_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/~-])(?:/[^\s/'\"`(),;<>\[\]{}]+){2,}/?")
"""An absolute path of two or more parts (``/srv/models/x``; not a route such as ``/explain``, nor
the path inside a URL)."""


def public_text(text: str, local_paths: Iterable[str] = ()) -> str:
    """``text`` naming no path on the server: each of ``local_paths`` (relative ones too) and any
    other absolute path is cut to its last part, a folder or file name."""
    for path in sorted(set(local_paths), key=len, reverse=True):  # longest first: a folder's files too
        text = text.replace(path, Path(path).name)
    return _ABSOLUTE_PATH.sub(lambda found: Path(found.group()).name, text)


def _local_paths(info: Any) -> list[str]:
    """The local paths a classifier's ``info()`` names (its folder, a hybrid's parts), as given
    and absolute."""
    found: list[str] = []

    def note(value: str) -> str:
        path = Path(value).expanduser()
        with contextlib.suppress(OSError, ValueError):  # a sentence is no path (or one too long)
            if "/" in value and path.exists():
                found.extend([value, str(path.resolve())])
        return value

    _map_strings(info, note)
    return found


def _map_strings(value: Any, change: Callable[[str], str]) -> Any:
    """``value`` (JSON-like) with ``change`` applied to every string in it."""
    if isinstance(value, str):
        return change(value)
    if isinstance(value, dict):
        return {key: _map_strings(item, change) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_map_strings(item, change) for item in value]
    return value


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
        problem = text_problem(text)
        if problem:
            raise _Rejected(422, f"texts[{index}] {problem}")
    return texts


def text_problem(text: str) -> str | None:
    """Why a text cannot be tokenized (``None`` when it can): JSON may carry lone surrogates
    (``"\\ud83d"``), which are no characters and make the tokenizer raise."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        return (f"holds an invalid character at position {error.start}: U+{ord(text[error.start]):04X} is "
                "half of a UTF-16 surrogate pair, not a character")
    return None


def _add_error_handlers(app: FastAPI, max_body: int, public: Callable[[str], str]) -> None:
    """Every failure becomes ``{"error": one line}`` with a fitting status code; ``public`` takes
    the server's paths out of the line."""

    app.add_middleware(BodyLimit, max_body=max_body)

    def error_response(message: str, status: int, headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse({"error": public(" ".join(message.split()))}, status, headers=headers)

    @app.exception_handler(_Rejected)
    async def rejected(_: Request, error: _Rejected) -> JSONResponse:
        return error_response(error.message, error.status)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        return error_response(_validation_message(error.errors()), 422)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, error: HTTPException) -> JSONResponse:
        return error_response(str(error.detail), error.status_code, error.headers)

    @app.exception_handler(UserError)
    async def user_error(_: Request, error: UserError) -> JSONResponse:
        return error_response(str(error), 422)

    @app.exception_handler(Exception)
    async def crash(_: Request, error: Exception) -> JSONResponse:
        return JSONResponse({"error": f"internal error: {type(error).__name__}"}, 500)


class JsonBodyRoute(APIRoute):
    """A route whose request body is checked before FastAPI parses it, so a body that is no JSON
    document gets a 4xx saying why (FastAPI answers 400 without a reason for invalid UTF-8 or
    deep nesting, and ``0: JSON decode error`` for text that is not JSON)."""

    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        handler = super().get_route_handler()
        if self.body_field is None:
            return handler

        async def checked(request: Request) -> Response:
            check_json_body(await request.body(), request.headers.get("content-type"))
            return await handler(request)  # reads the same, already received body

        return checked


EXAMPLE_BODY = '{"texts": ["A moving story."]}'


def check_json_body(body: bytes, content_type: str | None) -> None:
    """Refuse a request body that is not one UTF-8 JSON document sent as ``application/json``.

    Other content types (``text/plain``, a form, none) are refused with 415 as FastAPI does not read
    them as JSON: a browser may send those cross-site without asking, so accepting them would let
    any web page a user of this machine opens use the service.
    """
    if not body.strip():
        raise _Rejected(422, f"the body is empty; send JSON such as {EXAMPLE_BODY}")
    if not _is_json_type(content_type):
        raise _Rejected(415, "the body must be JSON sent with the header Content-Type: application/json "
                             f"(got {content_type or 'no Content-Type'})")
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise _Rejected(422, f"the body is not valid UTF-8 (bad byte at offset {error.start})") from None
    try:
        json.loads(text)
    except json.JSONDecodeError as error:
        raise _Rejected(422, f"the body is not valid JSON: {error.msg} at line {error.lineno} column "
                             f"{error.colno}") from None
    except RecursionError:
        raise _Rejected(422, "the body nests JSON arrays or objects too deeply; send JSON such as "
                             f"{EXAMPLE_BODY}") from None


def _is_json_type(content_type: str | None) -> bool:
    """``application/json`` or ``application/...+json``, with any parameters (as FastAPI decides)."""
    if not content_type:
        return False
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (subtype == "json"
                                                                or subtype.endswith("+json"))


class BodyLimit:
    """Refuse a request body over ``max_body`` bytes while it arrives, not after.

    ``Content-Length`` is checked first; a chunked body (no length) is counted as it is read,
    so at most ``max_body`` bytes are ever held for one request.
    """

    def __init__(self, app: Any, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            await self._refuse(scope, receive, send)
            return
        if length is not None or scope.get("method") in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            body += message.get("body", b"")
            if len(body) > self.max_body:
                await self._refuse(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(bytes(body), receive), send)

    async def _refuse(self, scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        response = JSONResponse({"error": f"request body too large (limit {self.max_body} bytes)"}, 413,
                                headers={"Connection": "close"})
        await response(scope, receive, send)


def _replay(body: bytes, receive: Callable) -> Callable:
    sent = False

    async def replay() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


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


def serve(classifier: Classifier, host: str = "127.0.0.1", port: int = 8000, *,
          log_level: str = "info", interpreter: Interpreter | None = None, **limits: Any) -> None:
    """Run the service with uvicorn until interrupted."""
    import uvicorn

    # Limits are checked before the port is taken.
    app = create_app(classifier, interpreter=interpreter, **limits)
    check_address(host, port)
    print(f"serving {classifier.name} ({classifier.info()['backend']} {classifier.precision}) on "
          f"http://{host}:{port}/  (API docs: /docs)", file=sys.stderr, flush=True)
    uvicorn.run(app, host=host, port=port, log_level=log_level)
