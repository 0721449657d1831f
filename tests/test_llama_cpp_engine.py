"""The llama.cpp runner: the prefix is evaluated once, each prompt only its own tokens, and the label
log-odds come from the last token's logits. Unit tests run on a stand-in for ``llama_cpp`` (no
package, no model); the real SmolLM2 GGUF is checked against llama.cpp's own tokenizer and against
transformers' fp32 forward pass when both are here."""

from __future__ import annotations

import ctypes
import sys
import zlib
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from tiny_llm import SMOLLM2

from imdb_sentiment.errors import UserError
from imdb_sentiment.llama_cpp_engine import LlamaCppRunner, load_llama_cpp_runner

VOCAB = 16


def sequence_logits(tokens: Sequence[int]) -> list[float]:
    """Deterministic next-token logits of a whole token sequence (what a causal LM depends on)."""
    seed = zlib.crc32(np.asarray(tokens, dtype=np.int64).tobytes())
    return np.random.default_rng(seed).normal(size=VOCAB).tolist()


class FakeLlama:
    """Keeps ``llama_cpp.Llama``'s contract: ``eval`` continues after ``n_tokens`` (dropping any cache
    beyond it) and only the last token's logits are there to read."""

    def __init__(self, model_path: str = "", n_ctx: int = 64, n_ctx_train: int = 2048, **options: object
                 ) -> None:
        self.model_path, self.options, self._n_ctx = model_path, options, n_ctx
        self.model = SimpleNamespace(n_ctx_train=n_ctx_train)
        self.ctx = self
        self.n_tokens = 0
        self.cache: list[int] = []
        self.evaluated: list[list[int]] = []
        self.last: list[float] = [0.0] * VOCAB
        self.closed = False

    def n_ctx(self) -> int:
        return self._n_ctx

    def n_vocab(self) -> int:
        return VOCAB

    def reset(self) -> None:
        self.n_tokens = 0

    def eval(self, tokens: Sequence[int]) -> None:
        self.cache = [*self.cache[:self.n_tokens], *tokens]
        self.evaluated.append(list(tokens))
        self.n_tokens = len(self.cache)
        self.last = sequence_logits(self.cache)

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def fake_llama_cpp(monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """A stand-in ``llama_cpp`` module: ``Llama`` builds a :class:`FakeLlama`, the logits come back
    as llama.cpp hands them out (a C float array of the vocabulary's size)."""
    made: list[FakeLlama] = []

    def llama(**options: object) -> FakeLlama:
        if "broken" in str(options["model_path"]):
            raise ValueError(f"Failed to load model from file: {options['model_path']}")
        made.append(FakeLlama(**options))  # type: ignore[arg-type]
        return made[-1]

    def logits_ith(ctx: FakeLlama, index: int) -> ctypes.Array:
        assert index == -1
        return (ctypes.c_float * VOCAB)(*ctx.last)

    module = SimpleNamespace(Llama=llama, llama_get_logits_ith=logits_ith,
                             llama_model_n_ctx_train=lambda model: model.n_ctx_train, made=made)
    monkeypatch.setitem(sys.modules, "llama_cpp", module)
    return module


def expected_log_odds(prefix: Sequence[int], continuation: Sequence[int], labels: tuple[int, int]) -> float:
    logits = np.asarray(sequence_logits([*prefix, *continuation]), dtype=np.float32)
    return float(logits[labels[1]]) - float(logits[labels[0]])


def test_the_prefix_is_evaluated_once_and_each_prompt_only_its_own_tokens(fake_llama_cpp) -> None:
    llama = FakeLlama(n_ctx=32)
    runner = LlamaCppRunner(llama)
    assert runner.engine == "llama.cpp" and runner.max_positions == 32
    prefix, labels = [1, 2, 3, 4], (5, 9)
    runner.set_prefix(prefix)
    continuations = [[7, 8, 9], [10], [7, 8, 9, 11, 12], [3, 3]]
    log_odds = runner.label_log_odds(continuations, labels)
    assert log_odds.dtype == np.float64 and log_odds.shape == (4,)
    assert log_odds.tolist() == pytest.approx([expected_log_odds(prefix, c, labels) for c in continuations])
    assert llama.evaluated == [prefix, *continuations]  # the prefix once, then only each continuation

    again = runner.label_log_odds(continuations[::-1], labels[::-1])  # order and labels swapped
    assert again.tolist() == pytest.approx((-log_odds[::-1]).tolist())

    runner.set_prefix([6])  # a new prefix starts from an empty cache
    assert runner.label_log_odds([[7]], labels)[0] == pytest.approx(expected_log_odds([6], [7], labels))


def test_an_empty_continuation_scores_the_prefix_alone(fake_llama_cpp) -> None:
    runner = LlamaCppRunner(FakeLlama())
    runner.set_prefix([1, 2])
    assert runner.label_log_odds([[]], (3, 4))[0] == pytest.approx(expected_log_odds([1, 2], [], (3, 4)))
    runner.set_prefix([])
    with pytest.raises(UserError, match="empty prompt"):
        runner.label_log_odds([[]], (3, 4))


def test_a_prompt_beyond_the_context_is_a_one_line_error(fake_llama_cpp) -> None:
    runner = LlamaCppRunner(FakeLlama(n_ctx=8))
    runner.set_prefix([1, 2, 3])
    assert runner.label_log_odds([[4] * 5], (1, 2)).shape == (1,)
    with pytest.raises(UserError, match=r"a prompt of 9 tokens exceeds llama\.cpp's context of 8 positions"):
        runner.label_log_odds([[4] * 6], (1, 2))
    with pytest.raises(UserError, match="fixed tokens leave no room"):
        runner.set_prefix(list(range(8)))


def test_the_loader_sizes_the_context_and_uses_the_usable_cores(fake_llama_cpp, tmp_path: Path) -> None:
    from imdb_sentiment.encoding import available_cpus

    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF")
    runner = load_llama_cpp_runner(gguf, 48)
    llama = fake_llama_cpp.made[-1]
    assert runner.max_positions == 48 and llama.model_path == str(gguf)
    assert llama.options["n_threads"] == llama.options["n_threads_batch"] == available_cpus()
    assert llama.options["verbose"] is False and llama.options["logits_all"] is False
    assert fake_llama_cpp.made[-1].options["n_gpu_layers"] == 0
    load_llama_cpp_runner(gguf, 48, threads=1)
    assert fake_llama_cpp.made[-1].options["n_threads"] == 1


def test_bad_inputs_to_the_loader_are_one_line_errors(fake_llama_cpp, tmp_path: Path) -> None:
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF")
    with pytest.raises(UserError, match="no GGUF file at"):
        load_llama_cpp_runner(tmp_path / "missing.gguf", 64)
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF")
    with pytest.raises(UserError, match=f"llama.cpp cannot load the GGUF model {broken}: Failed to load"):
        load_llama_cpp_runner(broken, 64)
    with pytest.raises(UserError, match="must be a positive number of tokens"):
        load_llama_cpp_runner(gguf, 0)
    with pytest.raises(UserError, match=r"prompts of 4096 tokens exceed the 2048 positions model\.gguf was"):
        load_llama_cpp_runner(gguf, 4096)
    assert fake_llama_cpp.made[-1].closed


def test_without_llama_cpp_python_the_loader_names_the_install(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # `import llama_cpp` now raises ImportError
    with pytest.raises(UserError, match=r"needs the llama-cpp-python package: "
                                        r"pip install 'imdb-sentiment\[llamacpp\]'$"):
        load_llama_cpp_runner(tmp_path / "model.gguf", 64)


# --------------------------------------------------------------------------- the real model


@pytest.fixture(scope="module")
def smollm2_gguf() -> Path:
    pytest.importorskip("llama_cpp", reason="llama-cpp-python (the llamacpp extra) is not installed")
    pytest.importorskip("gguf", reason="the gguf package (the llm extra) is not installed")
    found = sorted(SMOLLM2.glob("*.gguf")) if SMOLLM2.is_dir() else []
    if not found:
        pytest.skip(f"SmolLM2's GGUF is not in {SMOLLM2} (../shared/models/fetch.sh smollm2-135m-instruct)")
    return found[0]


def test_rewinding_to_the_prefix_scores_as_a_whole_fresh_evaluation(smollm2_gguf: Path) -> None:
    """Against llama.cpp itself: each prompt evaluated from scratch with every token's logits kept."""
    import llama_cpp

    runner = load_llama_cpp_runner(smollm2_gguf, 128, threads=1)
    prefix = runner.llama.tokenize(b"<|im_start|>user\nIs this review positive?", add_bos=False, special=True)
    continuations = [runner.llama.tokenize(text.encode(), add_bos=False, special=True) for text in
                     (" A great film.<|im_end|>\n", " Dull and long, a bad film.<|im_end|>\n", " Fine.")]
    labels = (runner.llama.tokenize(b"negative", add_bos=False)[0], runner.llama.tokenize(b"positive",
                                                                                          add_bos=False)[0])
    runner.set_prefix(prefix)
    ours = runner.label_log_odds(continuations, labels)
    whole = llama_cpp.Llama(model_path=str(smollm2_gguf), n_ctx=128, n_threads=1, logits_all=True,
                            verbose=False)
    expected = []
    for continuation in continuations:
        whole.reset()
        whole.eval([*prefix, *continuation])
        last = whole.scores[whole.n_tokens - 1]
        expected.append(float(last[labels[1]]) - float(last[labels[0]]))
    assert ours.tolist() == pytest.approx(expected, abs=1e-3)


@pytest.mark.slow
def test_the_gguf_tokenizer_of_transformers_matches_llama_cpp_s(smollm2_gguf: Path) -> None:
    """The prompts' ids come from transformers' tokenizer built from the GGUF; llama.cpp must read them
    as its own tokenizer would have written them, special tokens included."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(smollm2_gguf.parent, gguf_file=smollm2_gguf.name)
    runner = load_llama_cpp_runner(smollm2_gguf, 256, threads=1)
    text = ("<|im_start|>system\nYou classify reviews.<|im_end|>\n<|im_start|>user\nReview: A "
            "wonderful, heart-warming film -- 10/10!  Naïve? Maybe.\n\nSentiment:<|im_end|>\n"
            "<|im_start|>assistant\n")
    ours = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert ours == runner.llama.tokenize(text.encode("utf-8"), add_bos=False, special=True)
    assert tokenizer.convert_tokens_to_ids("<|im_start|>") in ours


@pytest.mark.slow
def test_llama_cpp_ranks_reviews_as_transformers_fp32_does(smollm2_gguf: Path,
                                                           capfd: pytest.CaptureFixture[str]) -> None:
    """The same prompts through llama.cpp (Q4 weights) and transformers (de-quantized, fp32): the
    weights differ slightly, so the log-odds agree closely in order and sign, not exactly."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from imdb_sentiment.llm import PromptSettings, build_prompt

    reviews = ["A wonderful film, moving and beautifully acted.", "Dull, far too long and badly written.",
               "I loved every minute of it.", "The worst movie I have seen this year.",
               "A masterpiece: the cast is superb.", "Boring. I walked out after an hour.",
               "Great music, great story, great fun.", "Terrible acting and a plot that makes no sense.",
               "Charming and funny, a delight for the whole family.", "A waste of time and money."]
    folder, name = smollm2_gguf.parent, smollm2_gguf.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    prompt = build_prompt(tokenizer, PromptSettings())
    continuations = [[*tokenizer(prompt.review_lead + review, add_special_tokens=False)["input_ids"],
                      *prompt.suffix] for review in reviews]
    capfd.readouterr()
    runner = load_llama_cpp_runner(smollm2_gguf, 256)
    runner.set_prefix(prompt.prefix)
    ours = runner.label_log_odds(continuations, prompt.label_ids)
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == ""  # llama.cpp says nothing when loading or running

    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32).eval()
    reference = []
    with torch.inference_mode():
        for continuation in continuations:
            ids = torch.tensor([[*prompt.prefix, *continuation]])
            logits = model(input_ids=ids).logits[0, -1, list(prompt.label_ids)]
            reference.append(float(logits[1] - logits[0]))
    reference = np.asarray(reference)
    assert np.corrcoef(ours, reference)[0, 1] > 0.9
    assert (np.sign(ours) == np.sign(reference)).mean() >= 0.8
    assert np.abs(ours - reference).max() < max(1.0, 0.5 * np.abs(reference).max())
