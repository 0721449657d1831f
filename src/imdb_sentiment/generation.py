"""Greedy text generation from a causal LM, constrained by a grammar so the output always parses.

The grammar (here a JSON schema) is compiled by ``llguidance`` (a dependency): at each step it
says which tokens may come next (a bitmask over the vocabulary), and which tokens are forced (the
JSON's keys and punctuation, the rest of an enum value once its first tokens are chosen). Forced
tokens are fed to the model together, in one forward pass, rather than one step each.

Reviews are decoded in batches: each row has its own grammar state; every step feeds each row's
new tokens (one chosen token plus any forced ones), left-padded to the longest, with the padding
masked out of attention for the rest of the generation. A row that finishes leaves the batch (its
key/value cache rows are dropped), so a batch costs what its unfinished rows need.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import UserError

LLGUIDANCE_INSTALL = "pip install 'llguidance>=1.0'"
"""What installs ``llguidance``, the grammar engine constrained generation needs."""

StepCallback = Callable[[int, list[int]], None]
"""Called with a row's index and the tokens it just added (chosen and forced), as they come."""
Chooser = Callable[[int, list[int], np.ndarray, np.ndarray], "int | None"]
"""At a choice among few tokens (at most :data:`SMALL_CHOICE`), given the row, its tokens so far and
the allowed token ids with their probabilities: the token to take, or None for the likeliest."""
SMALL_CHOICE = 64


@dataclass
class FirstChoice:
    """The model's distribution over the allowed tokens at a row's first free choice."""

    token_ids: np.ndarray
    probabilities: np.ndarray


@dataclass
class Generated:
    """One row's result: the tokens after the prompt and how the generation ended."""

    tokens: list[int] = field(default_factory=list)
    finished: bool = False
    """The grammar was completed (the output parses)."""
    first_choice: FirstChoice | None = None
    error: str | None = None


def check_llguidance() -> Any:
    """The ``llguidance`` module, or a one-line error saying how to install it."""
    try:
        import llguidance
        import llguidance.hf
        import llguidance.numpy
    except ImportError as error:
        raise UserError("constrained generation needs the llguidance package: "
                        f"{LLGUIDANCE_INSTALL}") from error
    return llguidance


class Grammar:
    """A JSON schema compiled for one tokenizer; :meth:`matcher` starts a fresh parse of it."""

    def __init__(self, grammar_tokenizer: Any, schema: dict[str, Any]) -> None:
        llguidance = check_llguidance()
        self._tokenizer = grammar_tokenizer
        self._grammar = llguidance.LLMatcher.grammar_from_json_schema(
            json.dumps(schema), defaults={"whitespace_flexible": False})

    def matcher(self) -> Any:
        import llguidance

        matcher = llguidance.LLMatcher(self._tokenizer, self._grammar)
        if matcher.is_error():
            raise UserError(f"the output schema cannot be compiled: {matcher.get_error()}")
        return matcher


def grammar_tokenizer(tokenizer: Any, vocabulary_size: int) -> Any:
    """The tokenizer as llguidance needs it, for a model whose logits have ``vocabulary_size`` entries."""
    llguidance = check_llguidance()
    try:
        return llguidance.hf.from_tokenizer(tokenizer, n_vocab=vocabulary_size)
    except (ValueError, TypeError, AttributeError) as error:
        raise UserError(f"this tokenizer cannot drive constrained generation (it needs a fast, "
                        f"tokenizers-based one): {error}") from error


class TorchGenerator:
    """Constrained greedy decoding with a transformers causal LM and a cached prompt prefix."""

    def __init__(self, model: Any, tokenizer: Any, *, device: str = "cpu") -> None:
        from .llm import CACHE_ARGUMENTS, forward_options

        self.model = model
        self.device = device
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        options = forward_options(model)
        self._cache_name = next((name for name in CACHE_ARGUMENTS if name in options), None)
        if self._cache_name is None or "position_ids" not in options:
            raise UserError(f"{type(model).__name__} takes no key/value cache or positions; constrained "
                            "generation needs a causal LM that does")
        self._keep_last = {"logits_to_keep": 1} if "logits_to_keep" in options else {}
        self.vocabulary_size = int(model.get_output_embeddings().weight.shape[0])
        self._prefix: tuple[int, ...] = ()
        self._cache: Any = None

    def set_prefix(self, prefix: Sequence[int]) -> None:
        """The prompt's fixed first tokens (instructions, a worked example): computed once."""
        from .llm import prefix_cache

        if not prefix:
            raise UserError("a generation prompt needs fixed first tokens (a system text)")
        self._prefix = tuple(int(token) for token in prefix)
        self._cache = prefix_cache(self.model, self._prefix, self.device)

    def generate(self, continuations: Sequence[Sequence[int]], matchers: Sequence[Any], max_new_tokens: int,
                 on_step: StepCallback | None = None, chooser: Chooser | None = None) -> list[Generated]:
        """Decode each continuation (the prompt after the prefix) under its own matcher, greedily
        (or as ``chooser`` says at small choices)."""
        import torch

        rows = len(continuations)
        results = [Generated() for _ in range(rows)]
        if not rows:
            return results
        bitmask = _allocate_bitmask(rows, self.vocabulary_size)
        active = list(range(rows))  # the original rows still in the batch, in batch order
        feeds = []
        for row, (tokens, matcher) in enumerate(zip(continuations, matchers, strict=True)):
            forced = _forced(matcher)
            feeds.append([int(token) for token in tokens] + forced)
            results[row].tokens += forced
        if on_step is not None:
            for row in range(rows):
                on_step(row, list(results[row].tokens))
        cache = copy.deepcopy(self._cache)  # the model appends to the cache it is given
        cache.batch_repeat_interleave(rows)
        mask = torch.ones((rows, len(self._prefix)), dtype=torch.long, device=self.device)
        seen = torch.full((rows,), len(self._prefix), dtype=torch.long, device=self.device)
        while active:
            width = max(len(feed) for feed in feeds)
            ids = np.full((len(active), width), self.pad_id, dtype=np.int64)
            step_mask = np.zeros((len(active), width), dtype=np.int64)
            for index, feed in enumerate(feeds):  # left padding: every row's last token is the last column
                ids[index, width - len(feed):] = feed
                step_mask[index, width - len(feed):] = 1
            step_mask_t = torch.from_numpy(step_mask).to(self.device)
            positions = seen[:, None] + torch.clamp(step_mask_t.cumsum(dim=1) - 1, min=0)
            mask = torch.cat([mask, step_mask_t], dim=1)
            seen = seen + step_mask_t.sum(dim=1)
            with torch.inference_mode():
                output = self.model(input_ids=torch.from_numpy(ids).to(self.device), attention_mask=mask,
                                    position_ids=positions, use_cache=True, **{self._cache_name: cache},
                                    **self._keep_last)
            cache = getattr(output, self._cache_name)
            logits = output.logits[:, -1, :].float().cpu().numpy()
            feeds, keep = [], []
            for index, row in enumerate(active):
                result, matcher = results[row], matchers[row]
                chosen = _choose(matcher, bitmask, index, logits[index], result,
                                 None if chooser is None else lambda ids, p, row=row: chooser(
                                     row, results[row].tokens, ids, p))
                if chosen is None:
                    continue  # done: finished, failed or out of budget
                added = [chosen, *_forced(matcher)]
                result.tokens += added
                if on_step is not None:
                    on_step(row, added)
                if matcher.is_stopped():
                    result.finished = not matcher.is_error()
                    continue
                if len(result.tokens) >= max_new_tokens:
                    result.error = (f"the answer did not finish within {max_new_tokens} new tokens; raise "
                                    "max_new_tokens or lower max_aspects")
                    continue
                feeds.append(added)
                keep.append(index)
            if len(keep) < len(active):
                if not keep:
                    break
                selected = torch.tensor(keep, dtype=torch.long, device=self.device)
                cache.batch_select_indices(selected)
                mask, seen = mask[selected], seen[selected]
                active = [active[index] for index in keep]
        return results


def _forced(matcher: Any) -> list[int]:
    """Tokens the grammar allows no alternative to, consumed now."""
    if matcher.is_stopped():
        return []
    forced = list(matcher.compute_ff_tokens())
    if forced:
        matcher.consume_tokens(forced)
    return forced


def _allocate_bitmask(rows: int, vocabulary_size: int) -> np.ndarray:
    import llguidance.numpy

    return llguidance.numpy.allocate_token_bitmask(rows, vocabulary_size)


def _choose(matcher: Any, bitmask: np.ndarray, index: int, logits: np.ndarray, result: Generated,
            chooser: Callable[[np.ndarray, np.ndarray], int | None] | None = None) -> int | None:
    """The most likely allowed token (or the chooser's), consumed; None when the row is done (its
    result says why)."""
    import llguidance.numpy

    if matcher.is_stopped():
        result.finished = not matcher.is_error()
        return None
    llguidance.numpy.fill_next_token_bitmask(matcher, bitmask, index)
    allowed = np.unpackbits(bitmask[index].view(np.uint8), bitorder="little")[:len(logits)].astype(bool)
    if not allowed.any():
        result.error = f"the grammar allows no next token: {matcher.get_error() or 'dead end'}"
        return None
    masked = np.where(allowed, logits, -np.inf)
    chosen = int(np.argmax(masked))
    token_ids = np.flatnonzero(allowed)
    if result.first_choice is None or (chooser is not None and len(token_ids) <= SMALL_CHOICE):
        weights = np.exp(logits[token_ids] - logits[chosen])
        probabilities = weights / weights.sum()
        if result.first_choice is None:
            result.first_choice = FirstChoice(token_ids, probabilities)
        if chooser is not None and len(token_ids) <= SMALL_CHOICE:
            picked = chooser(token_ids, probabilities)
            chosen = chosen if picked is None or not allowed[picked] else int(picked)
    if not matcher.consume_token(chosen):
        result.error = f"the grammar refused its own token: {matcher.get_error()}"
        return None
    return chosen
