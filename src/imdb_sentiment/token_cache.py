"""Tokenized reviews kept on disk, so scoring, training and tuning trials on the same reviews
tokenize them once.

An entry holds the uncut token ids of a list of texts (NumPy ``.npy`` files read without pickle,
plus a JSON note), under ``$IMDB_SENTIMENT_CACHE/tokens/KEY``. The key hashes the tokenizer's full
definition and the exact texts after cleaning, so a different tokenizer, data set, subset or
cleaning gets its own entry. Length and truncation are not part of the key on purpose: cutting
happens after the cache (array arithmetic, milliseconds), so one entry serves every length and
truncation. An unreadable or inconsistent entry is ignored and rewritten; a cache that cannot be
written only costs the time to tokenize again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .artifacts import atomic_output_dir, cache_root
from .encoding import TextEncoder, TokenArrays
from .errors import UserError

FORMAT = 1
"""Bump when the entry layout changes: old entries are then simply not found."""
MIN_TEXTS = 256
"""Smaller batches (API calls, the service) are tokenized directly: nothing worth keeping."""
SWITCH_ENV = "IMDB_SENTIMENT_TOKEN_CACHE"
"""Set to ``0``/``off``/``false`` to neither read nor write the token cache."""

log = logging.getLogger("imdb_sentiment")


def enabled() -> bool:
    return os.environ.get(SWITCH_ENV, "1").strip().lower() not in {"0", "off", "false", "no"}


def texts_fingerprint(texts: Sequence[str]) -> str:
    """A hash of the exact texts, in order (each length-prefixed, so boundaries count)."""
    digest = hashlib.blake2b(digest_size=16)
    for text in texts:
        data = text.encode("utf-8", "surrogatepass")
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


def cache_key(encoder: TextEncoder, texts: Sequence[str]) -> str | None:
    """The entry name for ``texts`` under ``encoder``; ``None`` when the tokenizer has no fingerprint."""
    if encoder.fingerprint is None:
        return None
    parts = f"{FORMAT}\n{encoder.fingerprint}\n{len(texts)}\n{texts_fingerprint(texts)}"
    return hashlib.sha256(parts.encode("utf-8")).hexdigest()[:32]


def entry_folder(key: str) -> Path:
    return cache_root() / "tokens" / key


def cached_tokens(encoder: TextEncoder, texts: Sequence[str]) -> TokenArrays:
    """``encoder.tokenize(texts)``, read from the cache when this exact job was done before."""
    key = cache_key(encoder, texts) if enabled() and len(texts) >= MIN_TEXTS else None
    if key is None:
        return encoder.tokenize(texts)
    folder = entry_folder(key)
    found = read_entry(folder, len(texts))
    if found is not None:
        return found
    tokens = encoder.tokenize(texts)
    try:
        write_entry(folder, tokens)
    except (OSError, UserError) as error:  # the cache is optional: tokens are still returned
        log.warning("cannot write the token cache at %s (%s); set %s=0 to stop trying", folder,
                    getattr(error, "strerror", None) or error, SWITCH_ENV)
    return tokens


def write_entry(folder: Path, tokens: TokenArrays) -> None:
    with atomic_output_dir(folder, overwrite=True) as staging:
        np.save(staging / "ids.npy", tokens.ids, allow_pickle=False)
        np.save(staging / "offsets.npy", tokens.offsets, allow_pickle=False)
        (staging / "entry.json").write_text(json.dumps(
            {"format": FORMAT, "texts": len(tokens), "tokens": len(tokens.ids)}), encoding="utf-8")


def read_entry(folder: Path, count: int) -> TokenArrays | None:
    """The entry's tokens if it is complete and consistent, else ``None``."""
    try:
        note = json.loads((folder / "entry.json").read_text(encoding="utf-8"))
        ids = np.load(folder / "ids.npy", allow_pickle=False)
        offsets = np.load(folder / "offsets.npy", allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    consistent = (
        isinstance(note, dict) and note.get("format") == FORMAT and note.get("texts") == count
        and ids.dtype == np.int32 and ids.ndim == 1 and offsets.dtype == np.int64
        and offsets.shape == (count + 1,) and offsets[0] == 0 and offsets[-1] == len(ids)
        and bool(np.all(np.diff(offsets) >= 0))
    )
    if not consistent:
        log.warning("ignoring an inconsistent token cache entry in %s", folder)
        return None
    return TokenArrays(ids, offsets)
