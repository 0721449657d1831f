"""Load IMDB-style review data from any source into ``train`` / ``validation`` / ``test``.

Sources, detected in this order:

* a folder of files named by split (``train.parquet``, ``test.csv``, ``train.jsonl`` ...),
  the layout of ``../shared/data/imdb``;
* the original ``aclImdb`` folder (``train|test/pos|neg/<id>_<rating>.txt``) or its tarball;
* a single CSV / JSONL / parquet file (the test split is carved from it, seeded and stratified);
* otherwise a Hugging Face Hub dataset id (default ``stanfordnlp/imdb``).

Every split gets the columns ``id`` (str), ``text`` (str) and ``label`` (0 negative, 1 positive),
plus ``rating`` where the source has one. Unless the source has its own validation split, it is
carved from train, so the test split is never used for any choice. Empty or whitespace-only
reviews are skipped with a warning that gives their count.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import string
import tarfile
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from .errors import HubUnreachableError, UserError, first_line
from .hub import hub_accepts_connections, hub_offline
from .tables import check_columns, read_table

if TYPE_CHECKING:
    from datasets import DatasetDict

DEFAULT_SOURCE = "stanfordnlp/imdb"
SPLITS = ("train", "validation", "test")
FILE_SUFFIXES = (".parquet", ".csv", ".jsonl", ".json", ".tsv")
LABEL_NAMES = ("negative", "positive")
GROUP_COLUMNS = ("movie",)
"""Columns a validation split may be carved by (``--group-column``): reviews of one movie share
names and titles, which a bag-of-words model memorises, so they should sit on one side only."""
Cleaning = Literal["basic", "none", "study"]
CLEANINGS = ("basic", "none", "study")

_LABEL_WORDS = {
    "0": 0, "neg": 0, "negative": 0, "false": 0,
    "1": 1, "pos": 1, "positive": 1, "true": 1,
}
_BR = re.compile(r"<br\s*/?>", re.IGNORECASE)
_ACL_NAME = re.compile(r"^(\d+)_(\d+)\.txt$")


@dataclass
class LoadReport:
    """What loading dropped or decided, for ``data info`` and run records."""

    source: str
    kind: str
    skipped_empty: int = 0
    test_carved: bool = False


# --------------------------------------------------------------------------- cleaning


def clean_text(text: str, cleaning: Cleaning = "basic") -> str:
    """Apply a named cleaning: ``basic`` (``<br />`` → space), ``none``, or ``study``."""
    if cleaning == "none":
        return text
    text = _BR.sub(" ", text)
    if cleaning == "basic":
        return text
    if cleaning == "study":
        return study_preprocess(text)
    raise UserError(f"cleaning must be one of {', '.join(CLEANINGS)}, not {cleaning!r}")


def study_preprocess(text: str, max_chars: int = 512) -> str:
    """The reference study's preprocessing: strip punctuation, lowercase, drop stop words, cut."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    text = _BR.sub(" ", text).translate(_PUNCTUATION_TABLE).lower()
    words = [word for word in text.split() if word not in ENGLISH_STOP_WORDS]
    return " ".join(words)[:max_chars]


_PUNCTUATION_TABLE = str.maketrans(string.punctuation, " " * len(string.punctuation))


# --------------------------------------------------------------------------- labels


def normalize_labels(values: Iterable[object], where: str = "data") -> np.ndarray:
    """Map 0/1 (also ``1.0``/``0.0``, as numbers or text), booleans, ``neg``/``pos`` or
    ``negative``/``positive`` (any case) to 0/1; anything else (``0.5``) is a one-line error."""
    series = pd.Series(list(values), dtype=object)
    mapped = series.map(_label_value)
    bad = series[mapped.isna()]
    if len(bad):
        shown = ", ".join(repr(v) for v in pd.unique(bad)[:5])
        raise UserError(
            f"labels in {where} must be binary (0/1, neg/pos, negative/positive); found {shown}"
        )
    return mapped.to_numpy(dtype=np.int64)


def _label_value(value: object) -> int | None:
    if isinstance(value, bool | np.bool_):
        return int(value)
    if isinstance(value, str):  # text files hold numbers as text: "1.0" is 1 as in a parquet float
        word = value.strip().lower()
        if word in _LABEL_WORDS:
            return _LABEL_WORDS[word]
        try:
            value = float(word)
        except ValueError:
            return None
    if isinstance(value, int | np.integer | float | np.floating):
        return int(value) if value in (0, 1) else None
    return None


# --------------------------------------------------------------------------- readers


def _standardize(frame: pd.DataFrame, split: str, text_column: str, label_column: str | None,
                 where: str) -> pd.DataFrame:
    """Rename to id/text/label(/rating, group columns), check types; labels optional (prediction inputs)."""
    out = pd.DataFrame()
    texts = frame[text_column]
    non_text = texts.map(lambda v: v is not None and not isinstance(v, str))
    if non_text.any():
        raise UserError(f"column {text_column!r} in {where} holds non-text values "
                        f"(first at row {int(np.argmax(non_text.to_numpy()))})")
    if "id" in frame.columns and text_column != "id":
        out["id"] = frame["id"].astype(str).to_numpy()
    else:
        out["id"] = [f"{split}/{i}" for i in range(len(frame))]
    out["text"] = texts.fillna("").astype(str).to_numpy()
    if label_column:
        out["label"] = normalize_labels(frame[label_column], where)
    if "rating" in frame.columns and "rating" not in (text_column, label_column):
        out["rating"] = pd.to_numeric(frame["rating"], errors="coerce").fillna(0).astype(int).to_numpy()
    for column in GROUP_COLUMNS:  # kept so validation can be carved by group
        if column in frame.columns and column not in (text_column, label_column):
            out[column] = frame[column].astype(str).to_numpy()
    return out


def _split_files(folder: Path) -> dict[str, Path]:
    """Files in ``folder`` named by split: ``train.parquet``, ``test.csv``, ``validation.jsonl``."""
    found: dict[str, Path] = {}
    for split in (*SPLITS, "valid", "dev"):
        for suffix in FILE_SUFFIXES:
            candidate = folder / f"{split}{suffix}"
            if candidate.is_file():
                name = "validation" if split in {"valid", "dev"} else split
                found.setdefault(name, candidate)
    return found


def _acl_root(path: Path) -> Path | None:
    for root in (path, path / "aclImdb"):
        if (root / "train" / "pos").is_dir() or (root / "test" / "pos").is_dir():
            return root
    return None


def _acl_rows(members: Iterator[tuple[str, bytes]]) -> dict[str, list[dict]]:
    """Rows per split from ``(relative path, raw bytes)`` pairs of an aclImdb tree."""
    rows: dict[str, list[dict]] = {}
    for relative, raw in members:
        parts = relative.split("/")
        if len(parts) < 3:
            continue
        split, polarity, name = parts[-3], parts[-2], parts[-1]
        match = _ACL_NAME.match(name)
        if split not in ("train", "test") or polarity not in ("pos", "neg") or not match:
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise UserError(f"{relative} is not valid UTF-8 (bad byte at offset {error.start})") from error
        rows.setdefault(split, []).append({
            "id": f"{split}/{polarity}/{match.group(1)}",
            "text": text,
            "label": int(polarity == "pos"),
            "rating": int(match.group(2)),
        })
    return rows


def _acl_folder_members(root: Path) -> Iterator[tuple[str, bytes]]:
    for split in ("train", "test"):
        for polarity in ("neg", "pos"):
            folder = root / split / polarity
            if folder.is_dir():
                for file in sorted(folder.glob("*.txt")):
                    yield f"{split}/{polarity}/{file.name}", file.read_bytes()


def _acl_tar_members(path: Path) -> Iterator[tuple[str, bytes]]:
    try:
        with tarfile.open(path, "r:*") as archive:
            for member in archive:
                if member.isfile() and member.name.endswith(".txt"):
                    handle = archive.extractfile(member)
                    if handle is not None:
                        yield member.name, handle.read()
    except tarfile.TarError as error:
        raise UserError(f"cannot read archive {path}: {error}") from error


def _rows_to_frames(rows: dict[str, list[dict]]) -> dict[str, pd.DataFrame]:
    return {split: pd.DataFrame(items).sort_values("id", kind="stable").reset_index(drop=True)
            for split, items in rows.items()}


_LOCAL_HINT = "pass a local path instead, e.g. --data ../shared/data/imdb"


def _hub_frames(source: str, text_column: str, label_column: str) -> dict[str, pd.DataFrame]:
    if not hub_offline() and not hub_accepts_connections():
        # Without this check the Hub client retries for half a minute before giving up.
        raise HubUnreachableError(
            f"{source!r} is no local path and the Hugging Face Hub cannot be reached; {_LOCAL_HINT} "
            "(or set HF_HUB_OFFLINE=1 to use a cached copy)"
        )
    import datasets

    try:
        loaded = datasets.load_dataset(source)
    except Exception as error:
        reason = first_line(error)
        raise HubUnreachableError(
            f"{source!r} is no local path and could not be loaded from the Hugging Face Hub "
            f"({reason[:160]}); {_LOCAL_HINT}"
        ) from error
    frames = {split: loaded[split].to_pandas() for split in loaded if split in SPLITS}
    for split, frame in frames.items():
        check_columns(frame, text_column, label_column, f"{source}:{split}")
    return frames


def _looks_like_path(source: str) -> bool:
    return (source.startswith((".", "/", "~")) or "\\" in source
            or Path(source).suffix.lower() in (*FILE_SUFFIXES, ".gz", ".tgz", ".tar")
            or source.count("/") > 1)


def read_source(source: str | Path, text_column: str = "text", label_column: str = "label",
                ) -> tuple[dict[str, pd.DataFrame], str]:
    """Raw frames per split found at ``source`` and the kind of source it was."""
    path = Path(source).expanduser()
    if path.is_dir():
        files = _split_files(path)
        if files:
            return {split: _standardize(read_table(file, text_column, label_column), split,
                                        text_column, label_column, str(file))
                    for split, file in files.items()}, "split files"
        root = _acl_root(path)
        if root is not None:
            return _rows_to_frames(_acl_rows(_acl_folder_members(root))), "aclImdb folder"
        raise UserError(f"{path} holds neither split files (train.parquet, test.csv, ...) "
                        "nor an aclImdb layout (train/pos, test/neg, ...)")
    if path.is_file():
        name = path.name.lower()
        if name.endswith((".tar.gz", ".tgz", ".tar")):
            frames = _rows_to_frames(_acl_rows(_acl_tar_members(path)))
            if not frames:
                raise UserError(f"{path} holds no aclImdb reviews (train|test/pos|neg/*.txt)")
            return frames, "aclImdb archive"
        frame = read_table(path, text_column, label_column)
        return {"all": _standardize(frame, "all", text_column, label_column, str(path))}, "file"
    if _looks_like_path(str(source)):
        raise UserError(f"data path not found: {source}")
    frames = _hub_frames(str(source), text_column, label_column)
    return {split: _standardize(frame, split, text_column, label_column, f"{source}:{split}")
            for split, frame in frames.items()}, "hub"


# --------------------------------------------------------------------------- splitting


def carve_split(frame: pd.DataFrame, fraction: float, seed: int, group_column: str | None = None,
                ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split ``frame`` into (rest, carved): seeded, stratified by label, duplicates kept together.

    Identical texts always land on the same side so the carved split never leaks into the rest.
    With ``group_column`` whole groups (e.g. all reviews of a movie) are carved instead.
    """
    if not 0 < fraction < 1:
        raise UserError(f"split fraction must be in (0, 1), got {fraction}")
    if group_column is not None:
        return _carve_groups(frame, fraction, seed, group_column)
    groups = frame["text"].map(_text_key)
    first = frame.assign(_group=groups).drop_duplicates("_group")
    rng = np.random.default_rng(seed)
    carved_groups: list[str] = []
    for _, members in first.groupby("label", sort=True):
        keys = members["_group"].to_numpy()
        count = round(len(keys) * fraction)
        if count == 0 and len(keys) > 1:  # small data: still carve one review of each label
            count = 1
        carved_groups.extend(rng.permutation(keys)[:count])
    mask = groups.isin(set(carved_groups)).to_numpy()
    if mask.all() or not mask.any():
        raise UserError(f"too few reviews ({len(frame)}) to carve a {fraction:.0%} split")
    return frame[~mask].reset_index(drop=True), frame[mask].reset_index(drop=True)


def _carve_groups(frame: pd.DataFrame, fraction: float, seed: int, column: str,
                  ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Carve whole groups, in seeded random order, until ``fraction`` of the reviews is reached."""
    check_group_column(frame, column)
    sizes = frame[column].value_counts(sort=False)
    order = np.random.default_rng(seed).permutation(np.sort(sizes.index.to_numpy()))
    reached = np.cumsum(sizes[order].to_numpy()) <= round(len(frame) * fraction)
    mask = frame[column].isin(set(order[reached])).to_numpy()
    if mask.all() or not mask.any():
        raise UserError(f"too few {column} groups ({len(sizes)}) to carve a {fraction:.0%} split")
    return frame[~mask].reset_index(drop=True), frame[mask].reset_index(drop=True)


def check_group_column(frame: pd.DataFrame, column: str) -> None:
    if column not in GROUP_COLUMNS:
        raise UserError(f"group column must be one of {', '.join(GROUP_COLUMNS)}, not {column!r}")
    if column not in frame.columns:
        raise UserError(f"the data has no {column!r} column to carve validation by")


def _text_key(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=12).hexdigest()


def subsample(frame: pd.DataFrame, n: int | None, seed: int) -> pd.DataFrame:
    """A fixed, seeded, label-stratified subset of ``n`` rows (all rows when ``n`` is None)."""
    if n is None or n >= len(frame):
        return frame
    if n <= 0:
        raise UserError(f"sample size must be positive, got {n}")
    fraction = n / len(frame)
    parts = [members.sample(n=max(1, round(len(members) * fraction)), random_state=seed)
             for _, members in frame.groupby("label", sort=True)]
    picked = pd.concat(parts).sample(frac=1.0, random_state=seed)
    return picked.head(n).reset_index(drop=True)


# --------------------------------------------------------------------------- public API


def load_splits(
    source: str | Path = DEFAULT_SOURCE,
    *,
    text_column: str = "text",
    label_column: str = "label",
    validation_size: float = 0.1,
    test_size: float = 0.2,
    seed: int = 42,
    cleaning: Cleaning = "basic",
    require: Iterable[str] = ("train", "test"),
    report: LoadReport | None = None,
    group_column: str | None = None,
) -> dict[str, pd.DataFrame]:
    """Load ``source`` into cleaned ``train`` / ``validation`` / ``test`` data frames.

    ``group_column`` (e.g. ``movie``) carves validation by whole groups rather than by review.

    ``require`` names the splits the caller needs; a missing one is a clear error. Empty or
    whitespace-only reviews are skipped with a warning (counted in ``report``).
    """
    if cleaning not in CLEANINGS:
        raise UserError(f"cleaning must be one of {', '.join(CLEANINGS)}, not {cleaning!r}")
    if not 0 <= validation_size < 1:
        raise UserError(f"validation size must be a fraction in [0, 1), got {validation_size}")
    if not 0 < test_size < 1:
        raise UserError(f"test size must be a fraction in (0, 1), got {test_size}")
    require = tuple(require)
    frames, kind = read_source(source, text_column, label_column)
    report = report if report is not None else LoadReport(str(source), kind)
    report.kind = kind
    for split, frame in list(frames.items()):
        frames[split] = _drop_empty(frame, split, report)
    if "all" in frames:  # a single file: carve a test split so nothing else ever sees it
        frames["train"], frames["test"] = carve_split(frames.pop("all"), test_size, seed)
        report.test_carved = True
    _check_required(frames, [split for split in require if split != "validation"], source)
    if "validation" not in frames and "train" in frames and validation_size > 0:
        frames["train"], frames["validation"] = carve_split(frames["train"], validation_size, seed,
                                                            group_column)
    _check_required(frames, require, source)
    if cleaning != "none":
        for split, frame in frames.items():
            frames[split] = frame.assign(text=[clean_text(t, cleaning) for t in frame["text"]])
    return {split: frames[split] for split in SPLITS if split in frames}


def load_dataset_dict(source: str | Path = DEFAULT_SOURCE, **options) -> DatasetDict:
    """Like :func:`load_splits`, as a ``datasets.DatasetDict``."""
    from datasets import Dataset, DatasetDict

    frames = load_splits(source, **options)
    return DatasetDict({split: Dataset.from_pandas(frame, preserve_index=False)
                        for split, frame in frames.items()})


def _check_required(frames: dict[str, pd.DataFrame], require: Iterable[str], source: object) -> None:
    missing = [split for split in require if split not in frames]
    if missing:
        found = ", ".join(sorted(frames)) or "none"
        raise UserError(f"{source} has no {' or '.join(missing)} split (found: {found})")
    empty = [split for split in require if frames[split].empty]
    if empty:
        raise UserError(f"the {' and '.join(empty)} split of {source} holds no reviews")


def _drop_empty(frame: pd.DataFrame, split: str, report: LoadReport) -> pd.DataFrame:
    empty = frame["text"].str.strip().eq("")
    count = int(empty.sum())
    if count:
        report.skipped_empty += count
        where = f"{report.source}" if split == "all" else f"the {split} split"
        warnings.warn(f"skipped {count} empty or whitespace-only review(s) in {where}", stacklevel=3)
        frame = frame[~empty].reset_index(drop=True)
    return frame


REPEATED_SHARE = 0.05
"""Warn when more than this share of a validation or test split's reviews also appear in train: their
score then measures memory. IMDB's own test split repeats 123 of its 25,000 reviews (0.5 %)."""


def warn_about_splits(frames: dict[str, pd.DataFrame], source: object) -> None:
    """One warning each for a split of one label only and a validation or test split that repeats train."""
    for split, frame in frames.items():
        labels = frame["label"].unique() if "label" in frame.columns else ()
        if len(labels) == 1:
            warnings.warn(f"the {split} split of {source} holds only {LABEL_NAMES[int(labels[0])]} reviews "
                          f"({len(frame):,}): accuracy on it says little and F1 or ROC AUC nothing",
                          stacklevel=2)
    texts = {split: set(frames[split]["text"]) if split in frames else set()
             for split in ("train", "validation")}
    # Validation is carved from train, so test is checked against both.
    for split, seen, where in (("validation", texts["train"], "train"),
                               ("test", texts["train"] | texts["validation"], "train or validation")):
        frame = frames.get(split)
        if frame is None or frame.empty:
            continue
        repeated = int(frame["text"].isin(seen).sum())
        if repeated > REPEATED_SHARE * len(frame):
            warnings.warn(f"{repeated:,} of the {len(frame):,} {split} reviews of {source} "
                          f"({repeated / len(frame):.0%}) also appear in {where}: their score measures "
                          "memory, not how well a model reads new reviews", stacklevel=2)


def describe(frames: dict[str, pd.DataFrame]) -> dict[str, dict[str, float]]:
    """Per split: size, label balance and length statistics (characters and words)."""
    info: dict[str, dict[str, float]] = {}
    for split, frame in frames.items():
        chars = frame["text"].str.len()
        words = frame["text"].str.split().str.len()
        info[split] = {
            "reviews": len(frame),
            "positive": int((frame["label"] == 1).sum()),
            "negative": int((frame["label"] == 0).sum()),
            "mean_chars": float(chars.mean()) if len(frame) else 0.0,
            "median_chars": float(chars.median()) if len(frame) else 0.0,
            "max_chars": int(chars.max()) if len(frame) else 0,
            "mean_words": float(words.mean()) if len(frame) else 0.0,
            "duplicate_texts": int(frame["text"].duplicated().sum()),
        }
    return info


# --------------------------------------------------------------------------- extra (soft-labelled) reviews

SOFT_LABEL_COLUMN = "p_positive"
"""The column of a soft-labelled review file (``imdb-sentiment label``): P(positive) per review."""


@dataclass
class ExtraReviews:
    """Reviews added to the training part only (``--extra-data``), each with P(positive) as its target."""

    frame: pd.DataFrame
    """``text`` (cleaned as the gold splits) and ``p_positive`` (0-1; a hard label is 0 or 1)."""
    files: list[str]
    dropped_in_evaluation: int = 0
    """Reviews whose text is in the validation or test split: dropped, so no score measures memory."""
    dropped_unscored: int = 0
    """Reviews without a usable text or P(positive) (empty, or a teacher's error row)."""

    def record(self) -> dict[str, object]:
        """What a stage records in its metrics about the extra reviews."""
        return {"extra_data": self.files, "n_extra": len(self.frame),
                "extra_dropped_in_evaluation": self.dropped_in_evaluation,
                "extra_dropped_unscored": self.dropped_unscored}

    def summary(self) -> str:
        """One line for the command's output."""
        return (f"added {len(self.frame):,} extra training review(s) from {', '.join(self.files)}; dropped "
                f"{self.dropped_in_evaluation:,} whose text is in the validation or test split"
                + (f" and {self.dropped_unscored:,} without a text or P(positive)"
                   if self.dropped_unscored else ""))

    def held_out_of(self, frames: dict[str, pd.DataFrame]) -> ExtraReviews:
        """These reviews less those whose text is in ``frames``' validation or test split (runs of
        white space count as one space: a copy whose <br /> became a space is the same review), so
        evaluation stays on gold reviews no model has seen."""
        held_out = {" ".join(text.split()) for split in ("validation", "test") if split in frames
                    for text in frames[split]["text"]}
        leaked = self.frame["text"].map(lambda text: " ".join(text.split()) in held_out)
        return dataclasses.replace(self, frame=self.frame[~leaked].reset_index(drop=True),
                                   dropped_in_evaluation=self.dropped_in_evaluation + int(leaked.sum()))


def read_extra_reviews(paths: Iterable[str | Path], frames: dict[str, pd.DataFrame] | None = None, *,
                       text_column: str = "text", cleaning: Cleaning = "basic") -> ExtraReviews:
    """Read soft-labelled review files for the training part: ``p_positive`` (else a hard ``label``)
    is each review's target, texts are cleaned as the gold splits; with ``frames``, reviews found in
    their validation or test split are dropped and counted (see :meth:`ExtraReviews.held_out_of`)."""
    files = [str(path) for path in paths]
    if not files:
        raise UserError("no extra review files given")
    extra = pd.concat([_extra_file(Path(path), text_column, cleaning) for path in files], ignore_index=True)
    unscored = extra["text"].str.strip().eq("") | extra[SOFT_LABEL_COLUMN].isna()
    reviews = ExtraReviews(extra[~unscored].reset_index(drop=True), files, 0, int(unscored.sum()))
    return reviews if frames is None else reviews.held_out_of(frames)


def _extra_file(path: Path, text_column: str, cleaning: Cleaning) -> pd.DataFrame:
    """``text`` and ``p_positive`` of one extra file; a bad target is a one-line error naming the file."""
    from .tables import check_input_file

    check_input_file(path)
    frame = read_table(path, text_column, label_column=None)
    texts = frame[text_column]
    if texts.map(lambda value: value is not None and not isinstance(value, str)).any():
        raise UserError(f"column {text_column!r} in {path} holds non-text values")
    if SOFT_LABEL_COLUMN in frame.columns:
        targets = pd.to_numeric(frame[SOFT_LABEL_COLUMN], errors="coerce")
        if (frame[SOFT_LABEL_COLUMN].notna() & targets.isna()).any() or ((targets < 0) | (targets > 1)).any():
            raise UserError(f"{SOFT_LABEL_COLUMN} in {path} must be a probability between 0 and 1")
    elif "label" in frame.columns:
        targets = pd.Series(normalize_labels(frame["label"], str(path)), dtype=float)
    else:
        raise UserError(f"{path} has neither a {SOFT_LABEL_COLUMN!r} column (soft labels, as "
                        "`imdb-sentiment label` writes) nor a 'label' column")
    cleaned = [clean_text(text, cleaning) if isinstance(text, str) else "" for text in texts]
    return pd.DataFrame({"text": cleaned, SOFT_LABEL_COLUMN: targets.to_numpy(dtype=float)})


def read_split(source: str | Path, split: str, text_column: str = "text") -> pd.DataFrame:
    """One split of a folder of split files (``unsupervised.parquet`` too), or a single review file,
    raw: every column kept, no cleaning, no rows dropped."""
    from .tables import TABLE_SUFFIXES

    path = Path(source).expanduser()
    if path.is_file():
        return read_table(path, text_column, label_column=None)
    if not path.is_dir():
        raise UserError(f"data path not found: {source} (give a folder of split files or one review file)")
    for suffix in TABLE_SUFFIXES:
        candidate = path / f"{split}{suffix}"
        if candidate.is_file():
            return read_table(candidate, text_column, label_column=None)
    found = sorted({file.stem for file in path.iterdir() if file.suffix.lower() in TABLE_SUFFIXES})
    raise UserError(f"{path} has no {split} split (found: {', '.join(found) or 'none'})")
