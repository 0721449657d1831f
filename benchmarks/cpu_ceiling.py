"""How fast can any runtime on this CPU go? Per-length network timings, no Python around them.

For a grid of input lengths it times the bare network, warmed up, with nothing else running:

* ``torch fp32 b1``  the PyTorch model at batch 1: what the transformers pipeline runs per review;
* ``onnx fp32`` / ``onnx int8``  ONNX Runtime on ``imdb-sentiment export`` folders (fused
  attention, GELU and layer norms; dynamic int8 weights and activations), at the batch size our
  default path uses for that length (``max_batch_tokens`` / length);
* ``attention core``  PyTorch ``scaled_dot_product_attention`` alone (softmax(QKᵀ)V for every
  layer, fp32): work that int8 does not touch in any runtime here.

It then weights those per-review costs by the token lengths of real test reviews (cleaned, cut at
512 as the pipeline cuts them) to give the best ratio to the pipeline that each engine allows on
that mix. The ratios in ``cpu_inference.py`` include tokenization, batching and Python; this
script shows the ceiling above them.

    python benchmarks/cpu_ceiling.py --model DIR
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from common import machine_facts, prediction_parser, test_reviews, write_result

LENGTHS = (16, 32, 64, 128, 192, 256, 320, 384, 448, 512)


def parse_args() -> argparse.Namespace:
    parser = prediction_parser(__doc__, "cpu_ceiling", samples=1000)
    parser.add_argument("--seconds", type=float, default=1.5, help="Timing budget per engine and length.")
    return parser.parse_args()


def per_input_ms(run: Callable[[], object], inputs: int, budget: float) -> float:
    """Median milliseconds per input over repeated calls (after one warm-up call)."""
    run()
    times: list[float] = []
    deadline = time.perf_counter() + budget
    while len(times) < 3 or (time.perf_counter() < deadline and len(times) < 200):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return 1000 * float(np.median(times)) / inputs


def review_lengths(model: str, data: str, samples: int, seed: int) -> np.ndarray:
    """Tokens per review with specials, cut at 512: the pipeline's input lengths."""
    from imdb_sentiment.encoding import TextEncoder

    encoder = TextEncoder.from_folder(Path(model))
    bare = encoder.bare_ids(test_reviews(data, samples, seed)[0])
    return np.minimum(np.array([len(ids) for ids in bare]) + encoder.special_count, 512)


def engines(model: str, workdir: Path, config: dict) -> dict[str, Callable[[int, int], Callable[[], object]]]:
    """Per engine: (batch, length) -> a zero-argument call running one forward pass."""
    import onnxruntime as ort
    import torch
    from transformers import AutoModelForSequenceClassification

    from imdb_sentiment.exporters.onnx import export_onnx

    network = AutoModelForSequenceClassification.from_pretrained(model).eval()
    sessions = {}
    for quantize in (None, "int8"):
        folder = workdir / (quantize or "fp32")
        export_onnx(model, folder, quantize=quantize)
        options = ort.SessionOptions()
        options.log_severity_level = 3
        sessions[quantize or "fp32"] = ort.InferenceSession(str(folder / "model.onnx"), options,
                                                            providers=["CPUExecutionProvider"])

    def feed(batch: int, length: int) -> dict[str, np.ndarray]:
        ids = np.random.default_rng(0).integers(1000, 20000, (batch, length), dtype=np.int64)
        return {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}

    def torch_call(batch: int, length: int) -> Callable[[], object]:
        tensors = {key: torch.from_numpy(value) for key, value in feed(batch, length).items()}

        def run() -> object:
            with torch.inference_mode():
                return network(**tensors)
        return run

    def onnx_call(name: str) -> Callable[[int, int], Callable[[], object]]:
        session = sessions[name]
        wanted = {item.name for item in session.get_inputs()}

        def make(batch: int, length: int) -> Callable[[], object]:
            inputs = {key: value for key, value in feed(batch, length).items() if key in wanted}
            return lambda: session.run(None, inputs)
        return make

    heads, layers = config["num_attention_heads"], config["num_hidden_layers"]
    head_dim = config["hidden_size"] // heads

    def attention_call(batch: int, length: int) -> Callable[[], object]:
        q, k, v = (torch.randn(batch, heads, length, head_dim) for _ in range(3))

        def run() -> object:
            with torch.inference_mode():
                for _ in range(layers):
                    torch.nn.functional.scaled_dot_product_attention(q, k, v)
        return run

    return {"torch fp32 b1": torch_call, "onnx fp32": onnx_call("fp32"), "onnx int8": onnx_call("int8"),
            "attention core": attention_call}


def main() -> None:
    args = parse_args()
    import torch

    from imdb_sentiment.batching import DEFAULT_BATCH_SIZE, DEFAULT_CPU_BATCH_TOKENS

    config = json.loads((Path(args.model) / "config.json").read_text(encoding="utf-8"))
    lengths = review_lengths(args.model, args.data, args.samples, args.seed)
    with tempfile.TemporaryDirectory(prefix="cpu-ceiling-") as workdir:
        calls = engines(args.model, Path(workdir), config)
        table: dict[str, list[float]] = {name: [] for name in calls}
        for length in LENGTHS:
            for name, make in calls.items():
                batch = 1 if name == "torch fp32 b1" else max(1, min(DEFAULT_BATCH_SIZE,
                                                                    DEFAULT_CPU_BATCH_TOKENS // length))
                table[name].append(per_input_ms(make(batch, length), batch, args.seconds))
            print(f"{length:>4} tokens: " + "  ".join(f"{n} {table[n][-1]:.1f} ms" for n in calls),
                  file=sys.stderr)
    # Cost of the real review mix: each review costs the engine's time at its length (interpolated).
    mix = {name: float(np.interp(lengths, LENGTHS, times).sum()) for name, times in table.items()}
    base = mix["torch fp32 b1"]
    print(f"\n{'tokens':>6} " + " ".join(f"{name:>15}" for name in calls) + "   (ms per input)")
    for i, length in enumerate(LENGTHS):
        print(f"{length:>6} " + " ".join(f"{table[name][i]:>15.2f}" for name in calls))
    print(f"\nreview mix: {len(lengths)} test reviews, mean {lengths.mean():.0f} tokens "
          f"(cut at 512), {100 * (lengths >= 512).mean():.1f} % at 512")
    for name in calls:
        bound = "  (if every other operation took no time)" if name == "attention core" else ""
        print(f"  {name:<15} {mix[name] / 1000:7.1f} s for the mix   best ratio to the pipeline "
              f"{base / mix[name]:5.2f}x{bound}")
    facts = machine_facts()
    write_result(args.output, {
        "benchmark": "cpu_ceiling", "model": args.model, "reviews": len(lengths), "seed": args.seed,
        "cores": facts["cpu_count"], "torch_threads": torch.get_num_threads(),
        "mean_tokens": round(float(lengths.mean()), 1), "lengths": list(LENGTHS),
        "ms_per_input": {name: [round(t, 3) for t in times] for name, times in table.items()},
        "mix_seconds": {name: round(value / 1000, 2) for name, value in mix.items()},
        "best_ratio_to_pipeline": {name: round(base / value, 2) for name, value in mix.items()},
    }, facts)
    print(f"-> {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
