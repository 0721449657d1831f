"""Does running int8 rows one at a time change the hybrid's numbers? — on the 2,000-review test subset.

    python benchmarks/int8_rows.py --baseline outputs/nbsvm-random42 --cache outputs/hybrid-cache

Dynamic int8 quantization scales activations by the whole input, so scored in a batch a review's
probability depends on its neighbours; the ONNX engine now runs int8 rows one at a time. This
rescores the seeded (seed 0) 2,000-review test subset that way and compares it with the batched
scores cached by ``score_cache.py`` (chunks of 100, batches of up to 32): transformer alone and
the hybrid's two modes with the refit-by-movie choice from ``results/hybrid.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from common import SHARED, result_path, write_result
from score_cache import read_cache


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", required=True)
    parser.add_argument("--cache", required=True)
    parser.add_argument("--transformer", default=str(SHARED / "models" / "minilm-imdb-fast"))
    parser.add_argument("--data", default=str(SHARED / "data" / "imdb"))
    parser.add_argument("--output", default=str(result_path("int8_rows")))
    args = parser.parse_args()
    from imdb_sentiment.baselines import load_baseline
    from imdb_sentiment.data import load_splits, subsample
    from imdb_sentiment.hybrid import Stacker, baseline_model_dir, combine
    from imdb_sentiment.inference import SentimentClassifier

    test = load_splits(args.data, seed=42, validation_size=0.1)["test"]
    subset = subsample(test, 2000, 0)
    cache = read_cache(Path(args.cache))
    batched = np.array([cache[key] for key in subset["id"].astype(str)])
    model = SentimentClassifier.load(args.transformer, device="cpu", backend="auto")
    rows = model.predict_proba(subset["text"].tolist())[:, 1]
    screen = load_baseline(baseline_model_dir(args.baseline)).predict_proba(subset["text"].tolist())[:, 1]
    labels = subset["label"].to_numpy()
    choice = json.loads(result_path("hybrid").read_text())["choices"]["refit by movie"]
    stacker = Stacker(**choice["stacker"])

    def accuracy(positive: np.ndarray) -> float:
        return round(float(np.mean((positive > 0.5) == labels)), 4)

    out: dict[str, object] = {"engine": model.info().get("engine_reason"),
                              "max_abs_difference": round(float(np.max(np.abs(rows - batched))), 4),
                              "label_flips": int(np.sum((rows > 0.5) != (batched > 0.5)))}
    for name, transformer in (("batched (cached)", batched), ("one row at a time", rows)):
        settings = (choice["threshold"], choice["fallback"], stacker)
        ensemble, _ = combine(screen, transformer, "ensemble", *settings)
        cascade, decided = combine(screen, transformer, "cascade", *settings)
        out[name] = {"transformer": accuracy(transformer), "ensemble": accuracy(ensemble),
                     "cascade": accuracy(cascade),
                     "transformer_share": round(float(np.mean(decided != "screen")), 4)}
    print(json.dumps(out, indent=1))
    write_result(args.output, out)


if __name__ == "__main__":
    main()
