"""A prompted language model's next-token logits from llama.cpp (``llama-cpp-python``), on a GGUF file's
own quantized weights.

The prompt's fixed first tokens (system text, demonstrations) are evaluated once and stay in
llama.cpp's key-value cache; each review rewinds the cache to the end of that prefix and evaluates
only its own tokens. Only the last token's logits are computed and read (two of them, the label
words): asking llama.cpp for every token's logits (``logits_all``) would cost a vocabulary-wide
product per token and a context-by-vocabulary buffer.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .config import LLAMA_CPP
from .encoding import available_cpus
from .errors import UserError, first_line

LLAMA_CPP_INSTALL = "pip install 'imdb-sentiment[llamacpp]'"
"""What installs ``llama-cpp-python``, which the llama.cpp backend needs."""


class LlamaCppRunner:
    """Label log-odds of prompts that share a prefix, from a loaded ``llama_cpp.Llama``."""

    engine = LLAMA_CPP

    def __init__(self, llama: Any) -> None:
        self.llama = llama
        self.max_positions = int(llama.n_ctx())
        """The context length of this runner (prefix and continuation together)."""
        self._prefix: tuple[int, ...] = ()
        self._prefix_logits: np.ndarray | None = None
        """The next-token logits after the prefix alone (for an empty continuation)."""

    def set_prefix(self, prefix: Sequence[int]) -> None:
        """Evaluate the prompt's fixed first tokens once; every continuation starts after them."""
        prefix = tuple(int(token) for token in prefix)
        if len(prefix) >= self.max_positions:
            raise UserError(f"the prompt's {len(prefix)} fixed tokens leave no room in llama.cpp's "
                            f"context of {self.max_positions} positions")
        self.llama.reset()
        self._prefix, self._prefix_logits = prefix, None
        if prefix:
            self._eval(prefix)
            self._prefix_logits = self._last_logits()

    def label_log_odds(self, continuations: Sequence[Sequence[int]], label_ids: tuple[int, int]
                       ) -> np.ndarray:
        """Per continuation, the next-token logit of ``label_ids[1]`` minus that of ``label_ids[0]``
        after the prefix and the continuation."""
        negative, positive = int(label_ids[0]), int(label_ids[1])
        log_odds = np.empty(len(continuations), dtype=np.float64)
        for row, continuation in enumerate(continuations):
            tokens = [int(token) for token in continuation]
            room = self.max_positions - len(self._prefix)
            if len(tokens) > room:
                raise UserError(f"a prompt of {len(self._prefix) + len(tokens)} tokens exceeds llama.cpp's "
                                f"context of {self.max_positions} positions")
            if tokens:
                self.llama.n_tokens = len(self._prefix)  # the next eval drops the cache after the prefix
                self._eval(tokens)
                logits = self._last_logits()
            elif self._prefix_logits is not None:
                logits = self._prefix_logits
            else:
                raise UserError("an empty prompt has no next token to score")
            log_odds[row] = float(logits[positive]) - float(logits[negative])
        return log_odds

    def _eval(self, tokens: Sequence[int]) -> None:
        try:
            self.llama.eval(tokens)
        except RuntimeError as error:  # llama_decode failed (e.g. out of memory): one line
            raise UserError(f"llama.cpp could not evaluate the prompt: {first_line(error)}") from error

    def _last_logits(self) -> np.ndarray:
        """The vocabulary's logits for the token after the last one evaluated (a copy: the next eval
        overwrites llama.cpp's buffer)."""
        import llama_cpp

        pointer = llama_cpp.llama_get_logits_ith(self.llama.ctx, -1)
        return np.ctypeslib.as_array(pointer, shape=(int(self.llama.n_vocab()),)).copy()


def load_llama_cpp_runner(gguf_file: Path, n_ctx: int, threads: int | None = None) -> LlamaCppRunner:
    """A :class:`LlamaCppRunner` on ``gguf_file`` with room for ``n_ctx`` tokens per prompt, on
    ``threads`` threads (default: the cores this process may use), silent on stdout and stderr.

    A missing ``llama-cpp-python``, an unreadable file or a context beyond what the model was trained
    for is a one-line :class:`UserError`."""
    try:
        import llama_cpp
    except ImportError as error:
        raise UserError(f"the llama.cpp backend needs the llama-cpp-python package: {LLAMA_CPP_INSTALL}"
                        ) from error
    if isinstance(n_ctx, bool) or not isinstance(n_ctx, int) or n_ctx <= 0:
        raise UserError(f"llama.cpp's context must be a positive number of tokens, got {n_ctx!r}")
    gguf_file = Path(gguf_file).expanduser()
    if not gguf_file.is_file():
        raise UserError(f"no GGUF file at {gguf_file}")
    threads = available_cpus() if threads is None else threads
    try:
        llama = llama_cpp.Llama(model_path=str(gguf_file), n_ctx=n_ctx, n_batch=n_ctx, n_threads=threads,
                                n_threads_batch=threads, n_gpu_layers=0, logits_all=False, verbose=False)
    except (ValueError, RuntimeError, OSError) as error:  # llama.cpp says only "Failed to load model"
        raise UserError(f"llama.cpp cannot load the GGUF model {gguf_file}: {first_line(error)}") from error
    trained = int(llama_cpp.llama_model_n_ctx_train(llama.model))
    if 0 < trained < n_ctx:
        llama.close()
        raise UserError(f"prompts of {n_ctx} tokens exceed the {trained} positions {gguf_file.name} was "
                        "trained for; lower max_review_tokens (or --max-length)")
    return LlamaCppRunner(llama)
