"""The comparison report: recorded runs told as a story, as Markdown and self-contained HTML.

Reads the run store (``--runs-dir``) and any Optuna studies, and writes ``report.md``,
``report.html`` and PNG plots side by side: a leaderboard, the best model's confusion matrix,
ROC curves (from each run's ``predictions.parquet``), accuracy against training time, and each
study's history and parameter importances. Both documents only reference the PNGs next to
them, so the folder reads anywhere without the tool.
"""

from __future__ import annotations

import datetime as dt
import html
import math
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .classifier import PROMPTED_LLM
from .errors import UserError
from .evaluation import prompting_phrase
from .formatting import format_value, short_model_name
from .plots import (
    new_figure,
    plot_confusion_matrix,
    plot_importances,
    plot_roc_curves,
    plot_study_history,
)
from .tracking import RunRecord

if TYPE_CHECKING:
    import optuna

STAGE_ORDER = ("baseline", "pretrained", PROMPTED_LLM, "evaluate", "train", "fine-tuned", "tune-trial",
               "tuned", "ready", "hybrid")
"""The story's steps; a prompted language model's evaluation (quickstart's, or ``evaluate`` on one) is
the ``prompted-llm`` step."""
STAGE_TITLES = {
    "baseline": "Baseline (bag of words)",
    "pretrained": "Pretrained classifier",
    PROMPTED_LLM: "Prompted LLM",
    "evaluate": "Fine-tuned, re-evaluated",
    "train": "Fine-tuned",
    "fine-tuned": "Fine-tuned",
    "tune-trial": "Tuning trial (best)",
    "tuned": "Tuned, retrained",
    "ready": "Ready fine-tuned model",
    "hybrid": "Hybrid (screen + transformer)",
}
MAX_ROC_CURVES = 8
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


# --------------------------------------------------------------------------- run summaries


@dataclass
class Entry:
    """One leaderboard row: a run's headline numbers, whichever names its stage used."""

    record: RunRecord
    split: str
    accuracy: float | None
    f1: float | None
    roc_auc: float | None
    reviews: int | None
    train_seconds: float | None
    train_reviews: int | None
    """How many labelled reviews the model learned from (None: not trained here, or not recorded)."""
    reviews_per_second: float | None
    confusion: list[list[int]] | None
    note: str = ""

    @property
    def stage(self) -> str:
        return story_stage(self.record)

    @property
    def model(self) -> str:
        return self.record.model


def story_stage(record: RunRecord) -> str:
    """The run's step in the story: an evaluation of a model not trained here is "pretrained"."""
    if record.stage == "evaluate" and record.metric("transformer_share") is not None:
        return "hybrid"  # an evaluation of a hybrid folder
    if record.stage == "evaluate" and record.tags.get("model_kind") == PROMPTED_LLM:
        return PROMPTED_LLM
    if record.stage == "evaluate" and record.tags.get("model_origin") == "pretrained":
        return "pretrained"
    return record.stage


def summarize_run(record: RunRecord) -> Entry:
    """Headline numbers of a run, preferring test metrics over validation ones."""
    split, prefix, accuracy = _headline_accuracy(record)

    def names(*keys: str) -> list[str]:
        return [f"{prefix}{k}" for k in keys] + list(keys)

    reviews = record.metric(*names("n_test", "n", "n_reviews"))
    train_seconds = record.metric("train_seconds")
    if train_seconds is None and record.stage in ("baseline", "train", "fine-tuned", "tune-trial", "tuned"):
        train_seconds = record.duration
    return Entry(
        record=record, split=split, accuracy=accuracy, f1=record.metric(*names("f1")),
        roc_auc=record.metric(*names("roc_auc")), reviews=_count(reviews),
        train_seconds=train_seconds, train_reviews=_count(record.metric("n_train")),
        reviews_per_second=record.metric(*names("reviews_per_second", "eval_reviews_per_second")),
        confusion=_confusion(record, prefix),
    )


def _count(value: float | None) -> int | None:
    return int(value) if value is not None else None


def _headline_accuracy(record: RunRecord) -> tuple[str, str, float | None]:
    """(split, metric prefix, accuracy): test first, then unprefixed, then validation."""
    candidates = (("test", "test_"), (record.tags.get("split", "test"), ""), ("validation", "validation_"))
    for split, prefix in candidates:
        accuracy = record.metric(f"{prefix}accuracy")
        if accuracy is not None:
            return split, prefix, accuracy
    return "?", "", None


def _confusion(record: RunRecord, prefix: str) -> list[list[int]] | None:
    for head in (prefix, ""):
        cells = [record.metric(f"{head}confusion_{name}") for name in ("tn", "fp", "fn", "tp")]
        if all(cell is not None for cell in cells):
            tn, fp, fn, tp = (int(cell) for cell in cells)  # type: ignore[arg-type]
            return [[tn, fp], [fn, tp]]
    return None


def leaderboard(records: Sequence[RunRecord]) -> list[Entry]:
    """Finished runs in story order (stage, then accuracy); tuning trials only as each study's best."""
    entries = [summarize_run(r) for r in records if r.status == "FINISHED"]
    entries = [e for e in entries if e.accuracy is not None]
    trials = [e for e in entries if e.stage == "tune-trial" and e.record.tags.get("trial_state") != "pruned"]
    rows = [e for e in entries if e.stage != "tune-trial"]
    for study in sorted({e.record.tags.get("study", "") for e in trials}):
        members = [e for e in trials if e.record.tags.get("study", "") == study]
        best = max(members, key=lambda e: e.accuracy or 0.0)
        best.note = f"study {study}: best of {len(members)} completed trials"
        rows.append(best)
    return sorted(rows, key=lambda e: (_stage_rank(e.stage), -(e.accuracy or 0.0)))


def best_entry(entries: Sequence[Entry]) -> Entry | None:
    """The most accurate run on test (validation only when nothing was scored on test)."""
    tested = [e for e in entries if e.split == "test"] or list(entries)
    return max(tested, key=lambda e: e.accuracy or 0.0) if tested else None


def _stage_rank(stage: str) -> int:
    return STAGE_ORDER.index(stage) if stage in STAGE_ORDER else len(STAGE_ORDER)


# --------------------------------------------------------------------------- plots


def plot_accuracy_vs_time(entries: Sequence[Entry], trials: Sequence[Entry], path: Path) -> Path:
    """Two panels: accuracy against what a model cost to make (a hybrid: its parts plus its fit) and
    against what it costs to use (seconds per 1,000 reviews), where a hybrid's screen pays off."""
    figure, (train_ax, predict_ax) = new_figure(10.0, 4.2, columns=2)
    colors = {stage: f"C{i}" for i, stage in enumerate(sorted({e.stage for e in entries}, key=_stage_rank))}
    for (stage, tested), group in _by_stage_and_split(entries).items():
        # Validation accuracies (hollow) are not comparable with test ones (filled).
        label = STAGE_TITLES.get(stage, stage) + ("" if tested else " (validation)")
        paint = {"color": colors[stage]} if tested else {"facecolors": "none", "edgecolors": colors[stage]}
        style = {"s": 50, "zorder": 3, "label": label, **paint}
        trained = [e for e in group if e.train_seconds]
        if trained:
            train_ax.scatter([e.train_seconds for e in trained], [e.accuracy for e in trained], **style)
        used = [e for e in group if e.reviews_per_second]
        if used:
            predict_ax.scatter([1000 / e.reviews_per_second for e in used], [e.accuracy for e in used],
                               **style)
    timed = [e for e in trials if e.train_seconds]
    if timed:
        train_ax.scatter([e.train_seconds for e in timed], [e.accuracy for e in timed], s=18, marker="x",
                         color="grey", label="tuning trials (validation)", zorder=2)
    train_ax.set_xlabel("training time (s, log scale)")
    train_ax.set_ylabel("accuracy")
    predict_ax.set_xlabel("prediction time per 1,000 reviews (s, log scale)")
    for ax in (train_ax, predict_ax):
        if ax.collections:
            ax.set_xscale("log")
            ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    figure.savefig(path)
    return path


def _by_stage_and_split(entries: Sequence[Entry]) -> dict[tuple[str, bool], list[Entry]]:
    """Entries grouped by (stage, scored on test), in story order."""
    groups: dict[tuple[str, bool], list[Entry]] = {}
    for entry in sorted(entries, key=lambda e: (_stage_rank(e.stage), e.split != "test")):
        groups.setdefault((entry.stage, entry.split == "test"), []).append(entry)
    return groups


# --------------------------------------------------------------------------- documents


@dataclass
class Document:
    """A tiny document model rendered to both Markdown and HTML, so the two never drift apart."""

    title: str
    blocks: list[tuple[str, Any]] = field(default_factory=list)

    def heading(self, text: str) -> None:
        self.blocks.append(("h2", text))

    def para(self, text: str) -> None:
        self.blocks.append(("p", text))

    def items(self, items: Iterable[str], ordered: bool = False) -> None:
        self.blocks.append(("ol" if ordered else "ul", list(items)))

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
        self.blocks.append(("table", (list(headers), [list(r) for r in rows])))

    def image(self, file: str, alt: str) -> None:
        self.blocks.append(("img", (file, alt)))

    def markdown(self) -> str:
        out = [f"# {self.title}", ""]
        for kind, value in self.blocks:
            if kind == "h2":
                out += [f"## {value}", ""]
            elif kind == "p":
                out += [value, ""]
            elif kind in ("ul", "ol"):
                out += [f"{i + 1}. {item}" if kind == "ol" else f"- {item}" for i, item in enumerate(value)]
                out.append("")
            elif kind == "table":
                headers, rows = value
                out.append("| " + " | ".join(headers) + " |")
                out.append("|" + "|".join("---" for _ in headers) + "|")
                out += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
                out.append("")
            elif kind == "img":
                out += [f"![{value[1]}]({value[0]})", ""]
        return "\n".join(out)

    def html(self) -> str:
        body = [f"<h1>{_inline(self.title)}</h1>", *(_html_block(kind, value) for kind, value in self.blocks)]
        return _HTML_PAGE.format(title=html.escape(self.title), body="\n".join(body))


def _html_block(kind: str, value: Any) -> str:
    if kind in ("h2", "p"):
        return f"<{kind}>{_inline(value)}</{kind}>"
    if kind in ("ul", "ol"):
        return f"<{kind}>" + "".join(f"<li>{_inline(i)}</li>" for i in value) + f"</{kind}>"
    if kind == "table":
        headers, rows = value
        head = "".join(f"<th>{_inline(h)}</th>" for h in headers)
        cells = "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>" for row in rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{cells}</tbody></table>"
    file, alt = value
    return (f'<figure><img src="{html.escape(file)}" alt="{html.escape(alt)}">'
            f"<figcaption>{_inline(alt)}</figcaption></figure>")


_HTML_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 62rem; margin: 2rem auto; padding: 0 1rem;
       color: #222; line-height: 1.45; }}
table {{ border-collapse: collapse; margin: 1rem 0; font-size: 0.9rem; }}
th, td {{ border: 1px solid #ccc; padding: 0.3rem 0.6rem; text-align: left; }}
th {{ background: #f2f2f2; }}
img {{ max-width: 100%; }}
figure {{ margin: 1rem 0; }} figcaption {{ color: #666; font-size: 0.85rem; }}
code {{ background: #f4f4f4; padding: 0 0.2rem; }}
</style></head>
<body>
{body}
</body></html>
"""


def _inline(text: str) -> str:
    """Escape, then render the only inline Markdown we write: ``code`` and **bold**."""
    escaped = html.escape(text)
    escaped = re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", escaped)


# --------------------------------------------------------------------------- building the report


@dataclass
class ReportResult:
    folder: Path
    files: list[str]
    runs: int


def write_report(runs_dir: str | os.PathLike[str], output: str | os.PathLike[str], *,
                 storage: str | None = None, overwrite: bool = False, notes: Sequence[str] = (),
                 only: dict[str, str] | None = None) -> ReportResult:
    """Write ``report.md``, ``report.html`` and their PNGs into ``output`` (atomically).

    ``only`` keeps the runs carrying these tags (e.g. one quickstart's); studies are then left out
    unless ``storage`` names them.
    """
    from .artifacts import atomic_output_dir, atomic_write_text, check_output_dir
    from .tracking import list_runs

    check_output_dir(output, overwrite, inputs=(runs_dir, storage and storage.removeprefix("sqlite:///")))

    records = [r for r in list_runs(runs_dir) if all(r.tags.get(k) == v for k, v in (only or {}).items())]
    if not records:
        raise UserError(f"no runs recorded in {runs_dir}; run baseline, train, evaluate or tune first")
    studies = load_studies(storage or (None if only else _default_storage(runs_dir)))
    with atomic_output_dir(output, overwrite) as folder:
        document = build_document(records, studies, folder, runs_dir, notes)
        atomic_write_text(folder / "report.md", document.markdown())
        atomic_write_text(folder / "report.html", document.html())
        files = sorted(p.name for p in folder.iterdir())
    return ReportResult(Path(output), files, len(records))


def build_document(records: Sequence[RunRecord], studies: Sequence[optuna.Study], folder: Path,
                   runs_dir: str | os.PathLike[str], notes: Sequence[str] = ()) -> Document:
    """Assemble the sections; each plot is drawn into ``folder`` only when its data exists."""
    entries = leaderboard(records)
    finished = [summarize_run(r) for r in records if r.status == "FINISHED"]
    trials = [e for e in finished if e.stage == "tune-trial" and e.accuracy is not None]
    document = Document("Movie-review sentiment: model comparison")
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    document.para(f"Generated {stamp} from {len(records)} recorded runs in `{runs_dir}`.")
    for note in notes:
        document.para(note)
    _story_section(document, entries)
    _leaderboard_section(document, entries)
    _cost_section(document, entries)
    _rating_section(document, entries)
    _best_section(document, entries, folder)
    _roc_section(document, entries, folder)
    _time_section(document, entries, trials, folder)
    for study in studies:
        _study_section(document, study, folder)
    return document


def _story_section(document: Document, entries: Sequence[Entry]) -> None:
    steps = []
    for stage in STAGE_ORDER:
        best = best_entry([e for e in entries if e.stage == stage])
        if best is not None:
            steps.append(f"**{STAGE_TITLES[stage]}** — `{short_model_name(best.model)}`: accuracy "
                         f"{_num(best.accuracy)} on {best.reviews or '?'} {best.split} reviews"
                         + _training_phrase(best))
    if steps:
        document.heading("The story")
        document.items(steps, ordered=True)
        comparison = _same_data_comparison(entries)
        if comparison:
            document.para(comparison)


def _training_phrase(entry: Entry) -> str:
    """How the model was trained, as far as the run says: how many reviews, how long, where."""
    if entry.stage == "ready":
        where = entry.record.params.get("trained_on")
        trained = f"{entry.train_reviews:,} reviews" if entry.train_reviews else "its own data"
        took = _seconds(entry.train_seconds) if entry.train_seconds else None
        facts = [fact for fact in (where, took) if fact]
        return f", fine-tuned beforehand on {trained}" + (f" ({', '.join(facts)})" if facts else "")
    if entry.stage in ("pretrained", "evaluate"):
        return ", not trained here"
    if entry.stage == PROMPTED_LLM:
        return f", {prompting(entry.record)}, not fine-tuned" + _cost_phrase(entry)
    if entry.stage == "hybrid":
        share = entry.record.metric("transformer_share", "validation_transformer_share")
        made = (f", made in {_seconds(entry.train_seconds)} (both parts' training and its fit)"
                if entry.train_seconds else "")
        return made + (f", sending {share:.0%} of reviews to the transformer" if share is not None else "")
    parts = [f"{entry.train_reviews:,} train reviews"] if entry.train_reviews else []
    if entry.train_seconds:
        parts.append(f"{_seconds(entry.train_seconds)} of training")
    return f", from {' and '.join(parts)}" if parts else ""


def prompting(record: RunRecord) -> str:
    """How a prompted language model was asked: its shots and calibration bias, as its run recorded
    them (``llm.shots``, ``llm.bias``: the classifier's ``info()["llm"]``)."""
    return prompting_phrase({key: record.params.get(f"llm.{key}") for key in ("shots", "bias")})


def seconds_per_1000(entry: Entry) -> float | None:
    """What scoring 1,000 reviews took, from the run's reviews per second."""
    return 1000 / entry.reviews_per_second if entry.reviews_per_second else None


def _cost_phrase(entry: Entry) -> str:
    per_1000 = seconds_per_1000(entry)
    if per_1000 is None:
        return ""
    return f"; {_seconds(per_1000)} per 1,000 reviews ({_num(entry.reviews_per_second, 1)} reviews/s)"


def _same_data_comparison(entries: Sequence[Entry]) -> str:
    """With the same labelled reviews, which approach wins: the data-efficiency story."""
    baseline = best_entry([e for e in entries if e.stage == "baseline"])
    tuned = best_entry([e for e in entries if e.stage in ("train", "fine-tuned")])
    if baseline is None or tuned is None or not baseline.train_reviews:
        return ""
    if baseline.train_reviews != tuned.train_reviews or baseline.split != tuned.split:
        return ""
    winner, loser = sorted([baseline, tuned], key=lambda e: -(e.accuracy or 0.0))
    return (f"With the same {baseline.train_reviews:,} labelled reviews, the "
            f"{STAGE_TITLES[winner.stage].lower()} model reaches {_num(winner.accuracy)} and the "
            f"{STAGE_TITLES[loser.stage].lower()} one {_num(loser.accuracy)} on the same "
            f"{winner.reviews or '?'} {winner.split} reviews.")


def _leaderboard_section(document: Document, entries: Sequence[Entry]) -> None:
    document.heading("Leaderboard")
    headers = ["stage", "model", "train reviews", "split", "reviews", "accuracy", "F1", "ROC AUC",
               "train time", "eval reviews/s", "hardware", "run"]
    rows = [[STAGE_TITLES.get(e.stage, e.stage), f"`{short_model_name(e.model)}`", _int(e.train_reviews),
             e.split, _int(e.reviews), _num(e.accuracy), _num(e.f1), _num(e.roc_auc),
             _seconds(e.train_seconds), _num(e.reviews_per_second, 1), e.record.tags.get("hardware", ""),
             e.record.run_id[:8]]
            for e in entries]
    document.table(headers, rows)
    notes = [f"{e.record.run_id[:8]}: {e.note}." for e in entries if e.note]
    document.para(" ".join(["Accuracy is on the test split unless the split column says validation "
                            "(tuning trials never see test).", *notes]))


COST_STAGES = (PROMPTED_LLM, "pretrained", "train", "fine-tuned", "tuned", "ready", "hybrid")
"""The stages set beside a prompted language model: what else a user could run on the same reviews."""


def _cost_section(document: Document, entries: Sequence[Entry]) -> None:
    """With a prompted language model: its accuracy and what it costs to run, beside the fine-tuned
    models and the hybrid (each stage's best on test), so the report shows when prompting pays."""
    prompted = best_entry([e for e in entries if e.stage == PROMPTED_LLM])
    if prompted is None:
        return
    bests = [best_entry([e for e in entries if e.stage == stage and e.split == prompted.split])
             for stage in COST_STAGES]
    rows = [[STAGE_TITLES[best.stage], f"`{short_model_name(best.model)}`",
             prompting(best.record) if best.stage == PROMPTED_LLM else "", _int(best.reviews),
             _num(best.accuracy), _seconds(seconds_per_1000(best)), _num(best.reviews_per_second, 1)]
            for best in bests if best is not None]
    document.heading("Prompting against fine-tuning: accuracy and cost")
    document.table(["stage", "model", "prompt", "reviews", "accuracy", "time per 1,000 reviews", "reviews/s"],
                   rows)
    document.para(_cost_verdict(prompted, [best for best in bests[1:] if best is not None]))


def _cost_verdict(prompted: Entry, rivals: Sequence[Entry]) -> str:
    """One sentence: which model beats the prompted one on accuracy, and at what speed."""
    if not rivals:
        return ("No fine-tuned model or hybrid was scored on these reviews to compare the prompted "
                "language model with.")
    better = [e for e in rivals if (e.accuracy or 0.0) > (prompted.accuracy or 0.0)]
    if not better:
        return (f"The prompted language model is the most accurate of these ({_num(prompted.accuracy)}): "
                "prompting pays here, with no training at all.")
    best = max(better, key=lambda e: e.accuracy or 0.0)
    speed = ""
    theirs, mine = seconds_per_1000(best), seconds_per_1000(prompted)
    if theirs and mine:
        speed = (f" and runs {mine / theirs:.1f}x faster" if mine >= theirs
                 else f" and runs {theirs / mine:.1f}x slower")
    return (f"The {STAGE_TITLES[best.stage].lower()} model reaches {_num(best.accuracy)} against the "
            f"prompted language model's {_num(prompted.accuracy)}{speed}; prompting pays where no labelled "
            "reviews or training time are at hand.")


def _rating_section(document: Document, entries: Sequence[Entry]) -> None:
    """Star-rating errors of the runs that predict ratings (``--target rating``, ``ridge-rating``)."""
    rows = []
    for e in entries:
        mae = e.record.metric(f"{e.split}_mae", "mae")
        if mae is not None:
            within = e.record.metric(f"{e.split}_within_one_star", "within_one_star")
            rows.append([STAGE_TITLES.get(e.stage, e.stage), f"`{short_model_name(e.model)}`", e.split,
                         _num(mae, 3), _num(within, 3), _num(e.accuracy), e.record.run_id[:8]])
    if rows:
        document.heading("Star ratings")
        document.table(["stage", "model", "split", "MAE (stars)", "within one star", "accuracy", "run"], rows)


def _best_section(document: Document, entries: Sequence[Entry], folder: Path) -> None:
    best = best_entry([e for e in entries if e.confusion is not None])
    if best is None or best.confusion is None:
        return
    document.heading("Confusion matrix of the best model")
    title = f"{short_model_name(best.model)} ({STAGE_TITLES.get(best.stage, best.stage)}), {best.split}"
    plot_confusion_matrix(best.confusion, folder / "confusion_matrix.png", title)
    (tn, fp), (fn, tp) = best.confusion
    document.para(f"`{short_model_name(best.model)}` ({STAGE_TITLES.get(best.stage, best.stage)}, run "
                  f"{best.record.run_id[:8]}): {tp:,} positive and {tn:,} negative reviews right, "
                  f"{fp:,} negative reviews called positive, {fn:,} positive reviews called negative.")
    document.image("confusion_matrix.png", f"Confusion matrix: {title}")


def _roc_section(document: Document, entries: Sequence[Entry], folder: Path) -> None:
    curves = []
    for entry in entries:
        frame = _predictions(entry.record)
        if frame is not None and frame["label"].nunique() == 2:
            label = f"{STAGE_TITLES.get(entry.stage, entry.stage)}: {short_model_name(entry.model)}"
            curves.append((label, frame["label"].to_numpy(), frame["score"].to_numpy()))
    if not curves:
        return
    document.heading("ROC curves")
    plot_roc_curves(curves[:MAX_ROC_CURVES], folder / "roc_curves.png")
    document.para("From each run's per-review scores (`predictions.parquet`: probability of positive).")
    document.image("roc_curves.png", "ROC curves on the test reviews")


def _predictions(record: RunRecord) -> Any:
    import pandas as pd

    path = record.artifact("predictions.parquet")
    if path is None:
        return None
    try:
        frame = pd.read_parquet(path)
    except Exception:  # an unreadable artifact costs one curve, not the report
        return None
    return frame if {"label", "score"} <= set(frame.columns) else None


def _time_section(document: Document, entries: Sequence[Entry], trials: Sequence[Entry], folder: Path
                  ) -> None:
    if not any(e.train_seconds or e.reviews_per_second for e in [*entries, *trials]):
        return
    document.heading("Accuracy against training and prediction time")
    plot_accuracy_vs_time(entries, trials, folder / "accuracy_vs_time.png")
    document.image("accuracy_vs_time.png", "Accuracy against training and prediction time")


def _study_section(document: Document, study: optuna.Study, folder: Path) -> None:
    states: dict[str, int] = {}
    for trial in study.trials:
        states[trial.state.name.lower()] = states.get(trial.state.name.lower(), 0) + 1
    document.heading(f"Hyper-parameter search: study {study.study_name}")
    counts = ", ".join(f"{count} {state}" for state, count in sorted(states.items()))
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    if not complete:
        document.para(f"Trials: {counts}. No trial has completed yet.")
        return
    best = max(complete, key=lambda t: t.value)
    settings = ", ".join(f"{k} = {format_value(v)}" for k, v in best.params.items())
    document.para(f"Trials: {counts}. Best: trial {best.number}, validation accuracy "
                  f"{best.value:.4f} with {settings}.")
    name = _UNSAFE.sub("_", study.study_name)
    plot_study_history(study, folder / f"optuna_history_{name}.png")
    document.image(f"optuna_history_{name}.png", f"Optimisation history of {study.study_name}")
    importances = _importances(study)
    if importances:
        plot_importances(importances, folder / f"optuna_importances_{name}.png")
        document.image(f"optuna_importances_{name}.png", f"Parameter importances in {study.study_name}")
    else:
        document.para("Parameter importances need at least two completed trials that differ.")


def _importances(study: optuna.Study) -> dict[str, float]:
    import optuna

    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    if len(complete) < 2 or len({t.value for t in complete}) < 2:
        return {}
    try:
        return dict(optuna.importance.get_param_importances(study))
    except Exception:  # too few distinct trials for the evaluator
        return {}


# --------------------------------------------------------------------------- studies


def _default_storage(runs_dir: str | os.PathLike[str]) -> str | None:
    from .tuning import STUDY_DB

    path = Path(runs_dir).expanduser() / STUDY_DB
    return f"sqlite:///{path.resolve()}" if path.is_file() else None


def load_studies(storage: str | None) -> list[optuna.Study]:
    """Every study in ``storage`` (none when there is no storage)."""
    if storage is None:
        return []
    import optuna

    from .tuning import open_storage

    backend = open_storage(storage)
    return [optuna.load_study(study_name=s.study_name, storage=backend)
            for s in optuna.get_all_study_summaries(backend, include_best_trial=False)]


# --------------------------------------------------------------------------- formatting


def _num(value: float | None, digits: int = 4) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _int(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def _seconds(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.1f} s" if value < 120 else f"{value / 60:.1f} min"
