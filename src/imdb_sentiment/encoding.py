"""Reviews to model inputs, the same way for training, evaluation and prediction.

One :class:`TextEncoder` tokenizes whole reviews without any cut (in parallel, in native threads)
into flat token arrays; :func:`cut_windows` then cuts each review (``head``, ``head-tail``) or
splits it into overlapping windows (``chunks``) with array arithmetic, and :meth:`Windows.batch`
pads a batch straight from those arrays. So the same review becomes the same tokens everywhere.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import UserError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

PARALLEL_MIN_TEXTS = 64
"""Below this many texts a batch is tokenized in the calling thread (threads would cost more)."""
SLICES_PER_THREAD = 4
"""Each thread gets several slices so one slice of long reviews does not hold up the rest."""


def available_cpus() -> int:
    """CPU cores this process may run on (its affinity, not the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


# --------------------------------------------------------------------------- token arrays


@dataclass
class TokenArrays:
    """Bare token ids (no special tokens, no cut) of many texts, in one flat array."""

    ids: np.ndarray
    """int32 ids of all texts, one after the other."""
    offsets: np.ndarray
    """int64, ``len(texts) + 1`` entries: text ``i`` is ``ids[offsets[i]:offsets[i + 1]]``."""

    @classmethod
    def from_lists(cls, rows: Sequence[Sequence[int]]) -> TokenArrays:
        lengths = np.fromiter((len(row) for row in rows), dtype=np.int64, count=len(rows))
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        flat = np.fromiter((token for row in rows for token in row), dtype=np.int32, count=int(offsets[-1]))
        return cls(flat, offsets)

    @classmethod
    def concatenate(cls, parts: Sequence[TokenArrays]) -> TokenArrays:
        if not parts:
            return cls.from_lists([])
        ids = np.concatenate([part.ids for part in parts])
        shifts = np.cumsum([0] + [len(part.ids) for part in parts[:-1]])
        offsets = np.concatenate([[0]] + [part.offsets[1:] + shift for part, shift in zip(parts, shifts,
                                                                                          strict=True)])
        return cls(ids, offsets.astype(np.int64))

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def row(self, index: int) -> list[int]:
        return self.ids[self.offsets[index] : self.offsets[index + 1]].tolist()


# --------------------------------------------------------------------------- the encoder


class TextEncoder:
    """What the model inputs need from a tokenizer: bare ids, the special tokens, pad id, limit.

    Built from a ``transformers`` tokenizer (PyTorch models) or straight from ``tokenizer.json``
    with the ``tokenizers`` library (ONNX folders), which avoids importing transformers. Fast
    tokenizers run in this encoder's own threads (``threads``, default: the usable cores): the
    Rust library releases the GIL per batch, so this needs neither ``TOKENIZERS_PARALLELISM``
    (the CLI turns it off) nor survives-a-fork thread pools, and gives the same ids as one call.
    """

    def __init__(self, bare_ids: Callable[[list[str]], list[list[int]]], prefix: Sequence[int],
                 suffix: Sequence[int], pad_id: int, model_max_length: int | None, *,
                 threads: int | None = None, fingerprint: str | None = None,
                 model_input_names: Sequence[str] = ("input_ids", "attention_mask")) -> None:
        self.bare_ids = bare_ids
        self.prefix = list(prefix)
        self.suffix = list(suffix)
        self.pad_id = pad_id
        self.model_max_length = model_max_length
        self.threads = threads
        self.fingerprint = fingerprint
        """A hash of the tokenizer's definition (``None``: unknown, so its tokens are not cached)."""
        self.model_input_names = list(model_input_names)

    @classmethod
    def from_transformers(cls, tokenizer: PreTrainedTokenizerBase, threads: int | None = None) -> TextEncoder:
        specials = special_tokens(tokenizer)
        backend = getattr(tokenizer, "backend_tokenizer", None)
        fingerprint = None
        if backend is not None:  # a fast tokenizer: call its Rust core directly
            bare_ids, fingerprint = _rust_bare_ids(_detached_copy(backend))
        else:
            mute_length_warning(tokenizer)

            def bare_ids(texts: list[str]) -> list[list[int]]:
                return tokenizer(texts, add_special_tokens=False, truncation=False,
                                 return_attention_mask=False, return_token_type_ids=False)["input_ids"]

        return cls(bare_ids, specials.prefix, specials.suffix, tokenizer.pad_token_id or 0,
                   getattr(tokenizer, "model_max_length", None), threads=threads, fingerprint=fingerprint,
                   model_input_names=getattr(tokenizer, "model_input_names", ("input_ids", "attention_mask")))

    @classmethod
    def from_folder(cls, folder: Path, threads: int | None = None) -> TextEncoder:
        """Read ``tokenizer.json`` (+ ``tokenizer_config.json``) without transformers."""
        from tokenizers import Tokenizer

        if not (folder / "tokenizer.json").is_file():  # an older tokenizer format: let transformers read it
            from .modeling import load_tokenizer

            return cls.from_transformers(load_tokenizer(folder), threads)
        try:
            tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        except Exception as error:  # the Rust library raises plain Exceptions
            raise UserError(f"cannot read {folder / 'tokenizer.json'}: {error}") from error
        specials = len(tokenizer.get_added_tokens_decoder())
        if tokenizer.get_vocab_size(with_added_tokens=True) <= specials:  # saved with no vocabulary files
            from .modeling import tokenizer_files_error

            raise tokenizer_files_error(folder, f"has a tokenizer.json that knows no words (only {specials} "
                                                "special tokens)")
        tokenizer.no_padding()  # saved files may carry a fixed padding/truncation: we do our own
        tokenizer.no_truncation()
        settings = _read_settings(folder / "tokenizer_config.json")
        bare_ids, fingerprint = _rust_bare_ids(tokenizer)
        probe_bare = tokenizer.encode(_PROBE, add_special_tokens=False).ids
        probe_full = tokenizer.encode(_PROBE).ids
        start = _find(probe_full, probe_bare)
        pad_token = settings.get("pad_token") or "[PAD]"
        if isinstance(pad_token, dict):  # saved as an AddedToken
            pad_token = pad_token.get("content", "[PAD]")
        pad = tokenizer.token_to_id(str(pad_token))
        limit = settings.get("model_max_length")
        names = settings.get("model_input_names") or ("input_ids", "token_type_ids", "attention_mask")
        return cls(bare_ids, probe_full[:start], probe_full[start + len(probe_bare):], pad or 0,
                   int(limit) if isinstance(limit, int | float) else None, threads=threads,
                   fingerprint=fingerprint, model_input_names=names)

    @property
    def special_count(self) -> int:
        return len(self.prefix) + len(self.suffix)

    def tokenize(self, texts: Sequence[str]) -> TokenArrays:
        """Bare ids of every text, in order; large batches in parallel (same ids as one call)."""
        texts = list(texts)
        threads = self.threads or available_cpus()
        if not texts:  # some tokenizers fail on an empty batch
            return TokenArrays.from_lists([])
        if threads <= 1 or len(texts) < PARALLEL_MIN_TEXTS:
            return TokenArrays.from_lists(self.bare_ids(texts))
        from concurrent.futures import ThreadPoolExecutor

        size = -(-len(texts) // (threads * SLICES_PER_THREAD))
        starts = range(0, len(texts), size)
        with ThreadPoolExecutor(threads, thread_name_prefix="tokenize") as pool:
            # Each thread also packs its slice into arrays, so little waits for the main thread.
            parts = list(pool.map(
                lambda start: TokenArrays.from_lists(self.bare_ids(texts[start : start + size])), starts))
        return TokenArrays.concatenate(parts)


_PROBE = "movie"


def _detached_copy(backend: Any) -> Any:
    """A copy of a transformers tokenizer's Rust core without its per-call padding/truncation."""
    from tokenizers import Tokenizer

    copy = Tokenizer.from_str(backend.to_str())
    copy.no_padding()
    copy.no_truncation()
    return copy


def _rust_bare_ids(tokenizer: Any) -> tuple[Callable[[list[str]], list[list[int]]], str]:
    import hashlib

    fast = getattr(tokenizer, "encode_batch_fast", None)  # no character offsets: cheaper

    def bare_ids(texts: list[str]) -> list[list[int]]:
        encode = fast or tokenizer.encode_batch
        return [item.ids for item in encode(texts, add_special_tokens=False)]

    return bare_ids, hashlib.sha256(tokenizer.to_str().encode("utf-8")).hexdigest()[:24]


def _read_settings(path: Path) -> dict[str, Any]:
    import json

    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise UserError(f"cannot read {path}: {error}") from error
    return data if isinstance(data, dict) else {}


def _find(full: list[int], part: list[int]) -> int:
    for start in range(len(full) - len(part) + 1):
        if full[start : start + len(part)] == part:
            return start
    raise UserError("cannot find where this tokenizer places its special tokens")


def mute_length_warning(tokenizer: Any) -> None:
    """Whole reviews are tokenized on purpose and cut later; mute the "longer than max" warning."""
    warned = getattr(tokenizer, "deprecation_warnings", None)
    if isinstance(warned, dict):
        warned["sequence-length-is-longer-than-the-specified-maximum"] = True


@dataclass(frozen=True)
class SpecialTokens:
    """The special tokens a tokenizer puts around one sequence (e.g. ``[CLS] … [SEP]``)."""

    prefix: tuple[int, ...]
    suffix: tuple[int, ...]

    @property
    def count(self) -> int:
        return len(self.prefix) + len(self.suffix)


def special_tokens(tokenizer: PreTrainedTokenizerBase) -> SpecialTokens:
    return _special_tokens_cached(tokenizer)


@functools.lru_cache(maxsize=16)
def _special_tokens_cached(tokenizer: Any) -> SpecialTokens:
    # transformers v5 has no build_inputs_with_special_tokens; read the template off one encoding.
    bare = tokenizer(_PROBE, add_special_tokens=False)["input_ids"]
    full = tokenizer(_PROBE)["input_ids"]
    start = _find(full, bare)
    return SpecialTokens(tuple(full[:start]), tuple(full[start + len(bare) :]))


@functools.lru_cache(maxsize=16)
def encoder_for(tokenizer: Any) -> TextEncoder:
    """One encoder per loaded transformers tokenizer (training encodes several splits with it)."""
    return TextEncoder.from_transformers(tokenizer)


# --------------------------------------------------------------------------- lengths


POSITIONS_AFTER_PADDING = frozenset({"roberta", "xlm-roberta", "camembert", "mpnet"})
"""Model types whose position ids count from the padding index + 1: two positions are never used."""


def max_model_length(model_config: Any, tokenizer: Any) -> int:
    """The longest input the model accepts, special tokens included."""
    limits = [getattr(model_config, "max_position_embeddings", None)]
    if getattr(model_config, "model_type", "") in POSITIONS_AFTER_PADDING:
        limits = [limits[0] - 2 if limits[0] else None]  # positions start after the padding index
    tokenizer_limit = getattr(tokenizer, "model_max_length", None)
    if tokenizer_limit and tokenizer_limit < 1_000_000:
        limits.append(tokenizer_limit)
    known = [limit for limit in limits if limit]
    return min(known) if known else 512


def check_length(max_length: int, limit: int, special_count: int) -> int:
    if max_length > limit:
        raise UserError(f"--max-length {max_length} is beyond this model's {limit} positions")
    if max_length <= special_count:
        raise UserError(f"--max-length {max_length} leaves no room for text")
    return max_length


def check_max_length(max_length: int, model_config: Any, tokenizer: PreTrainedTokenizerBase) -> int:
    limit = max_model_length(model_config, tokenizer)
    return check_length(max_length, limit, special_tokens(tokenizer).count)


# --------------------------------------------------------------------------- cutting


def head_budget(budget: int, head_tokens: int | None = None) -> int:
    """Tokens kept from the start under head-tail truncation.

    ``None`` keeps a quarter of the budget: 128 + 382 at 512 positions (Sun et al. 2019's best
    split), and the same proportion for shorter inputs, e.g. 32 + 94 at 128 positions.
    """
    if head_tokens is None:
        return round(budget / 4)
    return min(head_tokens, budget)


def truncate_ids(ids: list[int], budget: int, strategy: str = "head",
                 head_tokens: int | None = None) -> list[int]:
    """Cut one review's ids (without specials) to ``budget``: first tokens, or first + last."""
    windows = cut_windows(TokenArrays.from_lists([ids]), budget, strategy, head_tokens)
    return windows.body(0)


def head_tail_spans(tokenizer: PreTrainedTokenizerBase, text: str, budget: int,
                    head_tokens: int | None = None) -> tuple[list[tuple[int, int]], int]:
    """The character spans of ``text`` that its first and last tokens cover under head-tail
    truncation to ``budget`` tokens (one span when it fits), and the text's token count; spans of
    the text itself, so what is shown of a review can be quoted from it verbatim."""
    offsets = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    if len(offsets) <= budget:
        return [(0, len(text))], len(offsets)
    head = head_budget(budget, head_tokens)
    spans = [(0, offsets[head - 1][1])] if head else []
    if budget - head:
        spans.append((offsets[len(offsets) - (budget - head)][0], len(text)))
    return spans, len(offsets)


def chunk_spans(n_tokens: int, window: int, overlap: int) -> list[tuple[int, int]]:
    """``[start, end)`` token spans of width ``window`` that cover ``n_tokens`` tokens.

    Consecutive windows share exactly ``overlap`` tokens; the last one may be shorter.
    """
    starts, lengths = _chunk_layout(np.array([n_tokens]), window, overlap)[1:]
    return [(int(start), int(start + length)) for start, length in zip(starts, lengths, strict=True)]


def _chunk_layout(lengths: np.ndarray, window: int, overlap: int
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Owner, start (within its text) and length of every chunk window of texts of ``lengths``."""
    if not 0 <= overlap < window:
        raise UserError(f"chunk overlap must be in [0, {window}), got {overlap}")
    step = window - overlap
    counts = 1 + -(-np.maximum(lengths - window, 0) // step)
    owners = np.repeat(np.arange(len(lengths)), counts)
    first = np.repeat(np.cumsum(counts) - counts, counts)
    starts = (np.arange(len(owners)) - first) * step
    return owners, starts, np.minimum(window, lengths[owners] - starts)


@dataclass
class Windows:
    """Model inputs for a list of texts: one or more windows per text, each at most two spans
    of the flat token array (head-tail keeps two) between the special tokens."""

    source: TokenArrays
    owners: np.ndarray
    """Index of the text each window belongs to."""
    head_start: np.ndarray
    head_length: np.ndarray
    tail_start: np.ndarray
    tail_length: np.ndarray
    truncated: np.ndarray
    """Per text: True when tokens were dropped (never with ``chunks``)."""
    prefix: tuple[int, ...] = ()
    suffix: tuple[int, ...] = ()

    @property
    def tokens(self) -> np.ndarray:
        """Text tokens (specials excluded) per text, before any cut."""
        return self.source.lengths

    @property
    def lengths(self) -> np.ndarray:
        """Model input length of every window, special tokens included."""
        return self.head_length + self.tail_length + len(self.prefix) + len(self.suffix)

    def body(self, window: int) -> list[int]:
        ids = self.source.ids
        head = ids[self.head_start[window] : self.head_start[window] + self.head_length[window]]
        tail = ids[self.tail_start[window] : self.tail_start[window] + self.tail_length[window]]
        return head.tolist() + tail.tolist()

    @property
    def input_ids(self) -> list[list[int]]:
        """Every window as a list of ids, special tokens included."""
        prefix, suffix = list(self.prefix), list(self.suffix)
        return [prefix + self.body(window) + suffix for window in range(len(self.owners))]

    def batch(self, rows: np.ndarray, pad_id: int, width: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``input_ids`` and ``attention_mask`` (int64, ``[len(rows), width]``) of windows ``rows``,
        padded on the right, gathered from the flat array in one step."""
        rows = np.asarray(rows, dtype=np.int64)
        text = (self.head_length[rows] + self.tail_length[rows])[:, None]
        full = text + len(self.prefix) + len(self.suffix)
        width = int(full.max(initial=0)) if width is None else width
        column = np.arange(width)[None, :] - len(self.prefix)
        head = self.head_length[rows][:, None]
        source = np.where(column < head, self.head_start[rows][:, None] + column,
                          self.tail_start[rows][:, None] + column - head)
        inside = (column >= 0) & (column < text)
        ids = np.full((len(rows), width), pad_id, dtype=np.int64)
        ids[inside] = self.source.ids[source[inside]]
        if self.prefix:
            ids[:, : len(self.prefix)] = self.prefix
        for k, token in enumerate(self.suffix):
            ids[np.arange(len(rows)), len(self.prefix) + text[:, 0] + k] = token
        mask = (np.arange(width)[None, :] < full).astype(np.int64)
        return ids, mask


def cut_windows(source: TokenArrays, budget: int, truncation: str, head_tokens: int | None = None,
                overlap: int = 0, prefix: Sequence[int] = (), suffix: Sequence[int] = ()) -> Windows:
    """Cut (``head``, ``head-tail``) or split (``chunks``) every text to ``budget`` text tokens."""
    from .config import TRUNCATIONS

    lengths = source.lengths
    starts = source.offsets[:-1]
    if truncation == "chunks":
        owners, local, sizes = _chunk_layout(lengths, budget, overlap)
        zeros = np.zeros(len(owners), dtype=np.int64)
        return Windows(source, owners, starts[owners] + local, sizes, zeros, zeros,
                       np.zeros(len(lengths), dtype=bool), tuple(prefix), tuple(suffix))
    if truncation not in TRUNCATIONS:
        raise UserError(f"unknown truncation {truncation!r}; use one of {', '.join(TRUNCATIONS)}")
    long = lengths > budget
    head = np.minimum(lengths, budget)
    tail = np.zeros(len(lengths), dtype=np.int64)
    if truncation == "head-tail":
        kept = head_budget(budget, head_tokens)
        head = np.where(long, kept, lengths)
        tail = np.where(long, budget - kept, 0)
    return Windows(source, np.arange(len(lengths)), starts.copy(), head, starts + lengths - tail, tail,
                   long, tuple(prefix), tuple(suffix))


def make_windows(encoder: TextEncoder, texts: Sequence[str], max_length: int, truncation: str,
                 head_tokens: int | None, overlap: int, tokens: TokenArrays | None = None) -> Windows:
    """Tokenize ``texts`` (unless their ``tokens`` are given) and cut or split each one."""
    source = encoder.tokenize(texts) if tokens is None else tokens
    return cut_windows(source, max_length - encoder.special_count, truncation, head_tokens, overlap,
                       encoder.prefix, encoder.suffix)


def encode(tokenizer: PreTrainedTokenizerBase, texts: list[str], max_length: int = 512,
           truncation: str = "head", head_tokens: int | None = None,
           tokens: TokenArrays | None = None) -> dict[str, list[list[int]]]:
    """Token-exact model inputs (lists, unpadded) for ``texts``, as training's datasets take them."""
    encoder = encoder_for(tokenizer)
    windows = make_windows(encoder, texts, max_length, truncation, head_tokens, 0, tokens)
    if len(windows.owners) != len(texts):
        raise UserError("chunks make several inputs per review; training takes head or head-tail")
    input_ids = windows.input_ids
    encoded: dict[str, list[list[int]]] = {
        "input_ids": input_ids,
        "attention_mask": [[1] * len(ids) for ids in input_ids],
    }
    if "token_type_ids" in getattr(tokenizer, "model_input_names", []):
        encoded["token_type_ids"] = [[0] * len(ids) for ids in input_ids]
    return encoded
