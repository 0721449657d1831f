"""CPU speed of ``--explain``: reviews explained per second, against plain prediction in the same run.

* transformer: integrated gradients (``--steps`` forward+backward passes per review, the default
  16) on a fine-tuned classifier, fp32, the model's trained length; reference: ``predict`` of
  the same reviews with the same model, fp32, one review at a time and batched;
* bag of words: exact NB-SVM contributions (trained here on ``--bow-train`` training reviews);
  reference: the same model's ``predict_proba``.

Prints a table and writes ``benchmarks/results/explain_speed.json``.

    python benchmarks/explain_speed.py --model ../shared/models/minilm-imdb-fast [--samples 24]
"""

from __future__ import annotations

import time

from common import SHARED, machine_facts, prediction_parser, test_reviews, write_result


def _rate(run, texts: list[str]) -> tuple[float, float]:
    started = time.perf_counter()
    run(texts)
    seconds = time.perf_counter() - started
    return len(texts) / seconds, seconds


def main() -> None:
    parser = prediction_parser(__doc__, "explain_speed", samples=24)
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--bow-train", type=int, default=5000)
    parser.add_argument("--bow-samples", type=int, default=2000)
    args = parser.parse_args()
    import pandas as pd
    import torch

    from imdb_sentiment.baselines import fit_baseline
    from imdb_sentiment.data import clean_text, subsample
    from imdb_sentiment.explain import GradientExplainer, LinearExplainer
    from imdb_sentiment.inference import SentimentClassifier

    texts, _ = test_reviews(args.data, args.samples, args.seed)
    rows = []

    classifier = SentimentClassifier.load(args.model, device="cpu", precision="fp32", backend="torch")
    explainer = GradientExplainer(classifier, steps=args.steps)
    predict_one = _rate(lambda items: [classifier.predict_proba([text]) for text in items], texts)
    predict_batched = _rate(classifier.predict_proba, texts)
    explained = _rate(explainer.explain, texts)
    gaps = [item.extra["completeness_gap"] for item in explainer.explain(texts[:4])]
    rows.append({"path": f"transformer: integrated gradients, {args.steps} steps", "reviews": len(texts),
                 "reviews_per_second": round(explained[0], 3),
                 "vs_predict_one_at_a_time": round(explained[0] / predict_one[0], 4),
                 "vs_predict_batched": round(explained[0] / predict_batched[0], 4),
                 "predict_batched_per_second": round(predict_batched[0], 2),
                 "mean_completeness_gap_4_reviews": round(sum(gaps) / len(gaps), 4),
                 "max_length": classifier.max_length, "truncation": classifier.truncation})

    train = subsample(pd.read_parquet(SHARED / "data" / "imdb" / "train.parquet"), args.bow_train, args.seed)
    model = fit_baseline("nbsvm", train.assign(text=[clean_text(t) for t in train["text"]]))
    bow_texts, _ = test_reviews(args.data, args.bow_samples, args.seed)
    linear = LinearExplainer(model, "nbsvm")
    reference = _rate(model.predict_proba, bow_texts)
    exact = _rate(linear.explain, bow_texts)
    rows.append({"path": f"bag of words: exact NB-SVM contributions (trained on {args.bow_train})",
                 "reviews": len(bow_texts), "reviews_per_second": round(exact[0], 1),
                 "vs_predict_batched": round(exact[0] / reference[0], 4),
                 "predict_batched_per_second": round(reference[0], 1)})
    for row in rows:
        print(" | ".join(f"{key}: {value}" for key, value in row.items()))
    facts = machine_facts()
    write_result(args.output, {"model": args.model, "threads": torch.get_num_threads(), "cpu": facts["cpu"],
                               "rows": rows}, facts)


if __name__ == "__main__":
    main()
