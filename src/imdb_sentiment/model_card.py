"""The README.md model card saved next to a fine-tuned model (YAML front matter for the Hub)."""

from __future__ import annotations

from typing import Any

from .config import TrainConfig
from .formatting import format_value
from .modeling import is_local

IMDB_HUB_ID = "stanfordnlp/imdb"


def render_model_card(
    *,
    base_model: str,
    data: str | None,
    config: TrainConfig,
    metrics: dict[str, Any],
    name: str = "imdb-sentiment model",
    repo_id: str | None = None,
) -> str:
    """Markdown card: what the model is, how it was trained, how well it does, how to use it.

    ``metrics`` is the run's ``metrics.json`` content (test metrics at the top level, when the
    test split was scored, plus ``validation_accuracy`` and ``train_seconds``).
    """
    sections = [
        _front_matter(base_model, data, metrics, name),
        f"# {name}\n",
        _summary(base_model, data),
        _results(metrics),
        _hyper_parameters(config),
        _usage(repo_id or "path/to/this/model", config),
    ]
    return "\n".join(sections)


def _front_matter(base_model: str, data: str | None, metrics: dict[str, Any], name: str) -> str:
    import yaml

    meta: dict[str, Any] = {
        "library_name": "transformers",
        "pipeline_tag": "text-classification",
        "tags": ["text-classification", "sentiment-analysis", "imdb"],
    }
    if not is_local(base_model):  # the Hub links base_model only for Hub ids
        meta["base_model"] = base_model
    dataset = _hub_dataset(data)
    if dataset:
        meta["datasets"] = [dataset]
    if "accuracy" in metrics:
        meta["metrics"] = ["accuracy", "f1"]
        meta["model-index"] = [{
            "name": name,
            "results": [{
                "task": {"type": "text-classification", "name": "Sentiment analysis"},
                "dataset": {"name": "IMDB", "type": dataset or "imdb", "split": "test"},
                "metrics": [{"type": key, "value": round(float(metrics[key]), 4)}
                            for key in ("accuracy", "f1") if key in metrics],
            }],
        }]
    return "---\n" + yaml.safe_dump(meta, sort_keys=False) + "---\n"


def _hub_dataset(data: str | None) -> str | None:
    """The Hub dataset id to declare: the source itself if it is one, IMDB for local IMDB copies."""
    if not data:
        return None
    if not is_local(data) and "/" in data:
        return data
    return IMDB_HUB_ID if "imdb" in data.lower() else None


def _summary(base_model: str, data: str | None) -> str:
    return (f"A binary movie-review sentiment classifier (labels `NEGATIVE`, `POSITIVE`) fine-tuned "
            f"from `{base_model}` on {f'`{data}`' if data else 'in-memory review data'} with "
            "`imdb-sentiment train`. The validation split was carved from the training reviews; "
            "the test split was used only for the final score.\n")


def _results(metrics: dict[str, Any]) -> str:
    rows = [("test accuracy", metrics.get("accuracy")), ("test F1", metrics.get("f1")),
            ("test precision", metrics.get("precision")), ("test recall", metrics.get("recall")),
            ("test reviews", metrics.get("n_test")),
            ("validation accuracy (best epoch)", metrics.get("validation_accuracy")),
            ("training time (s)", metrics.get("train_seconds")), ("device", metrics.get("device"))]
    lines = ["## Results\n", "| metric | value |", "|---|---|"]
    lines += [f"| {label} | {format_value(value, digits=4)} |" for label, value in rows if value is not None]
    if "accuracy" not in metrics:
        lines.append("\nThe test split was not scored in this run.")
    return "\n".join(lines) + "\n"


def _hyper_parameters(config: TrainConfig) -> str:
    lines = ["## Training settings\n", "| setting | value |", "|---|---|"]
    lines += [f"| {key} | {format_value(value, digits=4)} |"
              for key, value in config.to_dict().items() if value is not None]
    lines.append("\nThe full run file is `train_config.toml`: "
                 "`imdb-sentiment train --config train_config.toml --output DIR` repeats the run.")
    return "\n".join(lines) + "\n"


def _usage(where: str, config: TrainConfig) -> str:
    cut = ("the first tokens" if config.truncation == "head"
           else "the first and the last tokens (head-tail)")
    return f"""## Usage

The model reads at most {config.max_length} tokens; it was trained on {cut}. The
`imdb-sentiment` tools read `train_config.toml` and apply the same truncation:

```bash
imdb-sentiment predict --model {where} "A moving, beautifully acted film."
imdb-sentiment evaluate --model {where} --data ../shared/data/imdb --output eval-out
```

```python
from imdb_sentiment.inference import SentimentClassifier

classifier = SentimentClassifier.load("{where}")
classifier.predict(["A moving, beautifully acted film."])  # [{{'label': 'POSITIVE', 'score': ...}}]
```

With plain `transformers` (which keeps the first tokens of long reviews):

```python
from transformers import pipeline

classify = pipeline("text-classification", model="{where}")
classify("A moving, beautifully acted film.", truncation=True, max_length={config.max_length})
```
"""


def render_hybrid_card(settings: Any, metrics: dict[str, Any], kind: str = "a fine-tuned transformer") -> str:
    """README.md of a hybrid folder: its parts, what validation chose, how to use it. ``kind`` says
    what its transformer is."""
    accuracy = metrics.get("validation_accuracy", {})
    rows = "\n".join(f"| {name} | {value:.4f} |" for name, value in accuracy.items())
    return f"""# imdb-sentiment hybrid classifier

A bag-of-words screen (`{settings.baseline}`) in front of {kind}
(`{settings.transformer}`). Default mode: **{settings.mode}** (auto: cascade on a CPU, ensemble on a GPU).

* ensemble: a logistic stacker on both parts' log-odds (screen weight {settings.stacker.weight:.3f}:
  `{settings.stacker.screen:.3f}·logit(p_screen) + {settings.stacker.transformer:.3f}·logit(p_transformer)
  + {settings.stacker.bias:.3f}`);
* cascade: the screen decides where |p - 0.5| > **{settings.threshold:.2f}**, the other reviews get the
  {settings.fallback} ({metrics.get("validation_transformer_share", 0):.1%} of validation reviews went to
  the transformer at the threshold validation chose, {metrics.get("chosen_threshold")}).

Chosen on {metrics.get("n_validation")} validation reviews (seed {metrics.get("seed")}, group column
{metrics.get("group_column")}), the screen scored {metrics.get("refit", {}).get("summary", "as given")};
the test split played no part.

| validation | accuracy |
|---|---|
{rows}

See `validation_curve.png` (accuracy and transformer share against the threshold).

```
imdb-sentiment predict -m THIS_FOLDER "A wonderful film."          # --mode/--threshold override
imdb-sentiment evaluate -m THIS_FOLDER --data ../shared/data/imdb -o eval/   # adds transformer_share
```
"""
